import { Inject, Injectable } from '@nestjs/common';
import { type EntityManager } from 'typeorm';
import { KEY_MATERIAL, type KeyMaterial } from '../platform/crypto/key-material.js';
import { SLUICE_CONFIG, type SluiceConfig } from '../platform/config/config.js';
import { Traced } from '../platform/observability/traced.js';
import { Sql } from '../platform/database/sql.js';
import { canonicalJson } from './domain/canonical-json.js';
import { verifierKey } from './domain/checkpoint.js';
import { timeOrderedId } from './domain/random-pool.js';
import { AuditCheckpointEntity } from './infrastructure/audit.entities.js';
import { TransactionRunner } from '../platform/database/transaction-runner.js';

export type AuditEntryKind =
  | 'share.decided'
  | 'message.sent'
  | 'message.status'
  | 'message.cancelled'
  | 'message.failed'
  | 'consent.granted'
  | 'consent.withdrawn'
  | 'policy.activated'
  | 'subject.erased';

/** What a caller records. It must already be free of personal data: pseudonyms, digests, categories. */
export interface AuditDraft {
  kind: AuditEntryKind;
  body: Record<string, unknown>;
  /** From `newEntryId`, when the caller must name the entry before queuing it; else one is made. */
  id?: string;
}

/** Keys the sequencer adds to every entry; a caller's body must not carry them. */
const ENVELOPE_KEYS = ['v', 'kind', 'id', 'index', 'time'];

/** An entry as the log holds it: the envelope and the writer's body. */
export type NamedEntry = Record<string, unknown> & { kind: string; index: number; time: string };

const ENTRIES_PAGE = 1000;

/** SQL that is true where the text column holds the parameter's text. */
function holds(sql: Sql, column: string, parameter: string): string {
  return sql.dialect === 'postgres' ? `position(${parameter} in ${column}) > 0` : `instr(${column}, ${parameter}) > 0`;
}

export interface QueuedEntry {
  id: string;
}

/**
 * The write side of the audit log: callers queue entries in their own transaction, so an entry
 * exists exactly when the change it records does. The AuditSequencer then gives queued entries
 * their log index, in batches; `indexOf` waits for that.
 */
@Injectable()
export class AuditLogService {
  private readonly sequencedListeners = new Set<() => void>();

  constructor(
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(KEY_MATERIAL) private readonly keys: KeyMaterial,
    @Inject(SLUICE_CONFIG) private readonly config: SluiceConfig,
  ) {}

  newEntryId(): string {
    return timeOrderedId('ent_');
  }

  /** Queues entries inside the caller's transaction; they are in the log once sequenced. */
  @Traced('sluice.audit.append', { attributes: (_manager: EntityManager, drafts: AuditDraft[]) => ({ 'sluice.audit.entries': drafts.length, 'sluice.audit.kinds': [...new Set(drafts.map((d) => d.kind))] }) })
  async append(manager: EntityManager, drafts: AuditDraft[]): Promise<QueuedEntry[]> {
    if (drafts.length === 0) return [];
    this.checkDrafts(drafts);
    const now = new Date().toISOString();
    const rows = drafts.map((draft) => ({
      id: draft.id ?? this.newEntryId(),
      kind: draft.kind,
      // Canonical now, so the entry text is fixed at the moment the change is recorded.
      body: canonicalJson(draft.body),
    }));
    await Sql.of(manager).insert(
      manager,
      'audit_queue',
      ['id', 'kind', 'body', 'queued_at'],
      rows.map((r) => [r.id, r.kind, r.body, now]),
    );
    return rows.map((r) => ({ id: r.id }));
  }

  /** Refuses a body that sets a key the sequencer adds to every entry. */
  checkDrafts(drafts: AuditDraft[]): void {
    for (const draft of drafts) {
      const clash = ENVELOPE_KEYS.find((key) => Object.hasOwn(draft.body, key));
      if (clash) throw new Error(`an audit entry body may not set ${clash}`);
    }
  }

  /** The log indices of entries, once sequenced; undefined for those not (yet) in the log. */
  async indicesOf(ids: string[], manager: EntityManager = this.transactions.reader.manager): Promise<Map<string, number>> {
    if (ids.length === 0) return new Map();
    const sql = Sql.of(manager);
    const rows = await sql.rows<{ id: string; idx: number | string }>(manager, `SELECT id, idx FROM audit_entries WHERE id IN (${sql.params(ids.length)})`, ids);
    return new Map(rows.map((r) => [r.id, Number(r.idx)]));
  }

  /**
   * The sequenced entries whose text holds `pseudonym` (quoted, so never inside a longer one), in
   * log order after index `after`, of one kind if given. sluice keeps no index from a person to
   * their entries: this reads the whole log, a page at a time.
   */
  async entriesNaming(manager: EntityManager, pseudonym: string, options: { kind?: AuditEntryKind; after?: number } = {}): Promise<NamedEntry[]> {
    const sql = Sql.of(manager);
    const contains = holds(sql, 'entry', sql.params(1, 2));
    const ofKind = options.kind ? ` AND kind = ${sql.params(1, 3)}` : '';
    const found: NamedEntry[] = [];
    for (let after = options.after ?? -1; ; ) {
      const rows = await sql.rows<{ idx: number | string; entry: string }>(
        manager,
        `SELECT idx, entry FROM audit_entries WHERE idx > ${sql.params(1)} AND ${contains}${ofKind} ORDER BY idx LIMIT ${ENTRIES_PAGE}`,
        [after, `"${pseudonym}"`, ...(options.kind ? [options.kind] : [])],
      );
      for (const row of rows) found.push(JSON.parse(row.entry) as NamedEntry);
      if (rows.length < ENTRIES_PAGE) return found;
      after = Number(rows.at(-1)!.idx);
    }
  }

  /** The bodies of entries of one kind still queued for the sequencer whose text holds `pseudonym` (quoted). */
  async queuedEntriesNaming(manager: EntityManager, pseudonym: string, kind: AuditEntryKind): Promise<Record<string, unknown>[]> {
    const sql = Sql.of(manager);
    const contains = holds(sql, 'body', sql.params(1, 2));
    const rows = await sql.rows<{ body: string }>(manager, `SELECT body FROM audit_queue WHERE kind = ${sql.params(1)} AND ${contains}`, [kind, `"${pseudonym}"`]);
    return rows.map((row) => JSON.parse(row.body) as Record<string, unknown>);
  }

  async latestCheckpoint(manager: EntityManager = this.transactions.reader.manager): Promise<AuditCheckpointEntity | null> {
    return manager.getRepository(AuditCheckpointEntity).findOne({ where: {}, order: { treeSize: 'DESC' } });
  }

  /** The log's public key in the signed-note verifier key format. */
  publicVerifierKey(): string {
    return verifierKey(this.config.auditLogOrigin, this.keys.auditSigningKey);
  }

  /** Called by the sequencer after each batch it commits, so waiters look again at once. */
  notifySequenced(): void {
    for (const listener of this.sequencedListeners) listener();
  }

  onSequenced(listener: () => void): () => void {
    this.sequencedListeners.add(listener);
    return () => this.sequencedListeners.delete(listener);
  }
}
