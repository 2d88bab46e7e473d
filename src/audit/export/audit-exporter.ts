import { Between, type EntityManager } from 'typeorm';
import type { FieldProblem } from '../../platform/http/problem.js';
import { AuditEntryEntity } from '../infrastructure/audit.entities.js';
import { AuditTreeReader } from '../proofs/audit-tree-reader.js';
import { type BundleFormat, type BundleHeader, BUNDLE_FORMAT, BUNDLE_VERSION, csvEntryRow, csvPreamble, headerJson, ndjsonEntryLine } from '../verifier/bundle-format.js';

export interface ExportRequest {
  /** First index (default 0). */
  since?: number;
  /** Last index, inclusive (default: the last the latest checkpoint covers). */
  until?: number;
  format: BundleFormat;
  /** The tree size of the DPO's last kept checkpoint: the bundle then carries a consistency proof from it. */
  consistencyFrom?: number;
}

export interface ExportPlan {
  header: BundleHeader;
  format: BundleFormat;
}

/** Entries read per query: memory stays flat however long the range. */
const PAGE_SIZE = 1000;
const b64 = (hash: Uint8Array) => Buffer.from(hash).toString('base64');

/**
 * Streams an audit export bundle (verifier/bundle-format.ts): the entries of a range exactly as
 * stored, the latest signed checkpoint, the range proof tying them to its root and, when asked,
 * a consistency proof from the DPO's last kept checkpoint. It reports what it finds, tampered or
 * not: judging is the offline verifier's job.
 */
export class AuditExporter {
  private readonly tree: AuditTreeReader;

  constructor(
    private readonly manager: EntityManager,
    private readonly publicKey: string | null,
  ) {
    this.tree = new AuditTreeReader(manager);
  }

  /** Checks the request against the latest checkpoint and reads the proofs; problems name every bad parameter. */
  async prepare(request: ExportRequest): Promise<{ plan: ExportPlan } | { problems: FieldProblem[] }> {
    const checkpoint = await this.tree.latestCheckpoint();
    if (!checkpoint) return { problems: [{ path: '(log)', message: 'the log has no signed checkpoint yet: there is nothing to export' }] };
    const size = checkpoint.size;
    const since = request.since ?? 0;
    const until = request.until ?? size - 1;
    const problems: FieldProblem[] = [];
    if (since >= size) problems.push({ path: 'since', message: `since must be below the latest checkpoint's tree size (${size})` });
    if (until >= size) problems.push({ path: 'until', message: `until must be below the latest checkpoint's tree size (${size})` });
    if (since < size && until < size && since > until) problems.push({ path: 'until', message: `until must not be below since (${since})` });
    const from = request.consistencyFrom;
    if (from !== undefined && (from < 1 || from > size)) {
      problems.push({ path: 'consistencyFrom', message: `a consistency proof can start at a tree size from 1 to the latest checkpoint's (${size})` });
    }
    if (problems.length > 0) return { problems };

    const rangeProof = await this.tree.rangeProof(since, until + 1, size);
    const consistency = from === undefined ? null : await this.tree.consistency(from, size);
    const header: BundleHeader = {
      format: BUNDLE_FORMAT,
      version: BUNDLE_VERSION,
      since,
      until,
      checkpoint: checkpoint.note,
      publicKey: this.publicKey,
      rangeProof: { left: rangeProof.left.map(b64), right: rangeProof.right.map(b64) },
      consistency: consistency && { from: consistency.from, fromRoot: consistency.fromRootHash, proof: consistency.proof },
    };
    return { plan: { header, format: request.format } };
  }

  /** The bundle, page by page; entries that are missing or altered are written as they are found. */
  async *stream({ header, format }: ExportPlan): AsyncGenerator<string> {
    yield format === 'ndjson' ? `${headerJson(header)}\n` : csvPreamble(header);
    const repo = this.manager.getRepository(AuditEntryEntity);
    for (let start = header.since; start <= header.until; start += PAGE_SIZE) {
      const rows = await repo.find({
        select: { index: true, entry: true, leafHash: true },
        where: { index: Between(start, Math.min(start + PAGE_SIZE - 1, header.until)) },
        order: { index: 'ASC' },
      });
      yield rows.map((row) => (format === 'ndjson' ? ndjsonEntryLine(Buffer.from(row.leafHash, 'hex'), row.entry) : csvEntryRow(columnsOf(row), Buffer.from(row.leafHash, 'hex'), row.entry))).join('');
    }
  }
}

/** Index, kind and time for the CSV columns, from the entry itself (left empty where it has none fit to show). */
function columnsOf(row: AuditEntryEntity): { index: number; kind: string; time: string } {
  let entry: { kind?: unknown; time?: unknown } = {};
  try {
    entry = JSON.parse(row.entry) as typeof entry;
  } catch {
    // An entry that is not JSON is exported as it is; the verifier names it.
  }
  const kind = typeof entry.kind === 'string' && /^[a-z.]{1,50}$/.test(entry.kind) ? entry.kind : '';
  const time = typeof entry.time === 'string' && /^[0-9TZ:.-]{1,40}$/.test(entry.time) ? entry.time : '';
  return { index: row.index, kind, time };
}
