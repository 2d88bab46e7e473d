import { isUtf8 } from 'node:buffer';
import { createReadStream, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { type Checkpoint, type ParsedVerifierKey, parseVerifierKey, verifyCheckpoint } from '../domain/checkpoint.js';
import { checkConsistency, CompactRange, rangeCoordinates } from '../domain/merkle.js';
import { type BundleFormat, type BundleHeader, CSV_COLUMNS } from './bundle-format.js';
import { type BatchResult, EntryChecker, type VerificationFailure } from './entry-checks.js';
import { EntryWorkers, entryWorkersAvailable } from './entry-workers.js';
import { bundleSchemas, describeSchemaError } from './schemas.js';

export type { VerificationFailure } from './entry-checks.js';

export interface VerifyOptions {
  /** The log's verifier key, obtained apart from the bundle (vkey text). Without it the bundle's own key is used, with a warning. */
  publicKey?: string;
  /** The DPO's last kept checkpoint (signed note text): the log must have grown from it, never been rewritten. */
  trustedCheckpoint?: string;
  /** Worker threads checking entries; this thread checks its share of them as well. 0: this thread alone. */
  threads?: number;
}

export interface VerificationReport {
  ok: boolean;
  failure: VerificationFailure | null;
  /** What was checked and held, in order. */
  checked: string[];
  warnings: string[];
  format: BundleFormat | null;
  /** Entries that passed every per-entry check. */
  entries: number;
}

/** A line longer than this is refused rather than buffered: memory stays bounded on hostile input. */
const MAX_LINE_BYTES = 64 * 1024 * 1024;
const NEWLINE = 0x0a;
/** Batches in flight per thread: enough to keep every thread busy, few enough to bound memory. */
const BATCHES_PER_THREAD = 3;

class VerificationFailed extends Error {
  constructor(readonly failure: VerificationFailure) {
    super(failure.reason);
  }
}

function fail(index: number | null, reason: string): never {
  throw new VerificationFailed({ index, reason });
}

/**
 * Verifies an audit export bundle fed to it in chunks, in one pass and in bounded memory: the
 * header's checkpoint signature and the trusted checkpoint's consistency first, then every entry
 * (see EntryChecker; batches of them on worker threads when asked), and finally the root of the
 * entries with the range proof against the checkpoint. Stops at the first failure. Depends on
 * nothing of the server: the domain (Merkle tree, checkpoints), node built-ins and ajv.
 */
export class BundleVerifier {
  private format: BundleFormat | null = null;
  private headerLinesSeen = 0;
  /** The unfinished line's bytes so far, in the chunks they came in (joined once its end comes: a long line costs no quadratic copying). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private failure: VerificationFailure | null = null;
  private readonly checked: string[] = [];
  private readonly warnings: string[] = [];

  private header: BundleHeader | null = null;
  private checkpoint: Checkpoint | null = null;
  private range: CompactRange | null = null;
  /** The index of the next entry line to dispatch, and of the first not yet verified. */
  private dispatched = 0;
  private verifiedEnd = 0;
  private checker: EntryChecker | null = null;
  private workers: EntryWorkers | null = null;
  private readonly inFlight: Promise<BatchResult>[] = [];
  /** Batches handed to worker threads and not yet back. */
  private workerBatches = 0;
  private trusted: Checkpoint | null = null;
  /** The trusted checkpoint's size when the entries themselves reach it: its root is recomputed there. */
  private trustedSizeInRange: number | null = null;

  constructor(private readonly options: VerifyOptions = {}) {}

  /** Feeds the next bytes of the bundle; false once verification has failed (the rest need not be read). */
  async push(chunk: Buffer): Promise<boolean> {
    if (this.failure) return false;
    if (this.pending.length > 0 && chunk.indexOf(NEWLINE) === -1) {
      // A copy: the caller may reuse the chunk's memory.
      this.pending.push(Buffer.from(chunk));
      this.pendingBytes += chunk.length;
      return this.pendingBytes > MAX_LINE_BYTES ? this.lineTooLong() : true;
    }
    let bytes = this.pending.length > 0 ? Buffer.concat([...this.pending, chunk]) : chunk;
    this.pending = [];
    this.pendingBytes = 0;
    try {
      while (!this.range) {
        const newline = bytes.indexOf(NEWLINE);
        if (newline === -1) break;
        this.headerLine(bytes.subarray(0, newline));
        bytes = bytes.subarray(newline + 1);
      }
      const lastNewline = this.range ? bytes.lastIndexOf(NEWLINE) : -1;
      if (lastNewline !== -1) {
        await this.dispatch(bytes.subarray(0, lastNewline + 1));
        bytes = bytes.subarray(lastNewline + 1);
      }
    } catch (error) {
      if (!(error instanceof VerificationFailed)) throw error;
      this.failure = error.failure;
      return false;
    }
    if (bytes.length > 0) {
      this.pending = [Buffer.from(bytes)];
      this.pendingBytes = bytes.length;
    }
    return this.pendingBytes > MAX_LINE_BYTES ? this.lineTooLong() : true;
  }

  private async lineTooLong(): Promise<false> {
    // Entries before it may still be under check (on worker threads): a bad one among them is the first bad index.
    try {
      while (this.inFlight.length > 0) this.apply(await this.inFlight.shift()!);
      this.failure = { index: this.range ? this.dispatched : null, reason: `a line is longer than ${MAX_LINE_BYTES} bytes` };
    } catch (error) {
      if (!(error instanceof VerificationFailed)) throw error;
      this.failure = error.failure;
    }
    return false;
  }

  async finish(): Promise<VerificationReport> {
    try {
      if (!this.failure) await this.end();
    } catch (error) {
      if (!(error instanceof VerificationFailed)) throw error;
      this.failure = error.failure;
    } finally {
      await this.close();
    }
    return {
      ok: this.failure === null,
      failure: this.failure,
      checked: this.checked,
      warnings: this.warnings,
      format: this.format,
      entries: this.header ? this.verifiedEnd - this.header.since : 0,
    };
  }

  /** Stops the worker threads, if any (finish does it too); the verifier can take no more bytes. */
  async close(): Promise<void> {
    const workers = this.workers;
    this.workers = null;
    await workers?.close();
  }

  private headerLine(line: Buffer): void {
    const number = ++this.headerLinesSeen;
    if (number === 1) {
      if (line[0] === 0x7b) this.format = 'ndjson';
      else if (line.toString('latin1') === `${CSV_COLUMNS}\r`) this.format = 'csv';
      else if (line.toString('latin1') === CSV_COLUMNS) fail(null, 'the CSV column names end in LF, not CRLF: the line ends were changed since the export (verify the file as it was exported)');
      else fail(null, 'this is not an audit export bundle: line 1 is neither an NDJSON header nor the CSV column names');
      if (this.format === 'csv') return;
    }
    if (!isUtf8(line)) fail(null, 'the header is not valid UTF-8');
    if (this.format === 'ndjson') {
      if (line.at(-1) === 0x0d) fail(null, 'the header line ends in CRLF, not LF: the line ends were changed since the export (verify the file as it was exported)');
      this.readHeader(line.toString('utf8'));
      return;
    }
    const match = /^bundle,,,,,"(.*)"\r$/s.exec(line.toString('utf8'));
    if (!match || match[1]!.replaceAll('""', '').includes('"')) fail(null, 'CSV row 2 is not the bundle row: bundle,,,,,"<header JSON>" and CRLF');
    this.readHeader(match[1]!.replaceAll('""', '"'));
  }

  private readHeader(text: string): void {
    const schemas = bundleSchemas();
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      fail(null, 'the header is not JSON');
    }
    if (!schemas.header(parsed)) fail(null, `the header does not match audit-export.schema.json: ${describeSchemaError(schemas.header.errors)}`);
    // Only the exporter's own compact form: no byte of the header can change unnoticed.
    if (JSON.stringify(parsed) !== text) fail(null, 'the header is not in the compact form the exporter writes');
    const header = parsed as BundleHeader;
    if (header.since > header.until) fail(null, `the header's range is empty: since ${header.since} is after until ${header.until}`);
    this.header = header;

    const key = this.publicKey(header);
    const verified = verifyCheckpoint(header.checkpoint, key);
    if (!verified.ok) fail(null, `the checkpoint: ${verified.reason}`);
    if (!hasCanonicalSignatures(header.checkpoint)) fail(null, 'the checkpoint: a signature is not in canonical base64');
    const checkpoint = verified.checkpoint;
    // The signature covers the note's body, not the key name on its line: another log signed
    // with the same key (a staging copy) could be relabelled as this one's.
    if (checkpoint.origin !== key.name) fail(null, `the checkpoint: it is of log ${checkpoint.origin}, not ${key.name}, the log the key is for`);
    this.checkpoint = checkpoint;
    this.checked.push(`checkpoint  ${checkpoint.origin}, tree size ${checkpoint.size}, root ${b64(checkpoint.root)}: signature by ${key.name} OK`);
    if (header.until >= checkpoint.size) fail(null, `the checkpoint (tree size ${checkpoint.size}) does not cover the entries up to index ${header.until}`);

    const left = rangeCoordinates(0, header.since).length;
    const right = rangeCoordinates(header.until + 1, checkpoint.size).length;
    if (header.rangeProof.left.length !== left || header.rangeProof.right.length !== right) {
      fail(
        null,
        `the range proof has ${header.rangeProof.left.length} hash(es) left and ${header.rangeProof.right.length} right of the entries; ` +
          `a tree of ${checkpoint.size} leaves needs ${left} and ${right}`,
      );
    }
    this.checkBundledConsistency(header, checkpoint);
    this.checkTrustedCheckpoint(header, checkpoint, key);
    this.range = CompactRange.ofPrefix(header.since, header.rangeProof.left.map(unb64));
    this.dispatched = header.since;
    this.verifiedEnd = header.since;
    if (this.trustedSizeInRange === header.since) this.compareTrustedRoot('the range proof');
    this.startChecking(header);
  }

  private startChecking(header: BundleHeader): void {
    const threads = this.options.threads ?? 0;
    this.checker = new EntryChecker(this.format!, header.until);
    if (threads > 0) this.workers = new EntryWorkers(threads, this.format!, header.until);
  }

  private publicKey(header: BundleHeader): ParsedVerifierKey {
    const given = this.options.publicKey?.trim();
    if (given !== undefined) {
      const key = parseCanonicalVerifierKey(given, 'the given public key');
      if (header.publicKey !== null && header.publicKey !== given) fail(null, 'the bundle names a public key other than the given one');
      this.checked.push(`public key  ${given} (given)`);
      return key;
    }
    if (header.publicKey === null) fail(null, "the bundle carries no public key: pass the log's key with --public-key");
    this.warnings.push(
      "the public key is the bundle's own, so this only shows that the bundle is consistent with itself: " +
        "pass the log's key, obtained separately (GET /v1/audit/public-key, or the copy you keep), with --public-key",
    );
    this.checked.push(`public key  ${header.publicKey} (the bundle's own, self-asserted)`);
    return parseCanonicalVerifierKey(header.publicKey, "the bundle's public key");
  }

  private checkBundledConsistency(header: BundleHeader, checkpoint: Checkpoint): void {
    if (!header.consistency) return;
    const { from, fromRoot, proof } = header.consistency;
    const result = checkConsistency(from, checkpoint.size, proof.map(unb64), unb64(fromRoot), checkpoint.root);
    if (!result.ok) fail(null, `the consistency proof from tree size ${from}: ${result.reason}`);
    if (this.options.trustedCheckpoint === undefined) {
      this.checked.push(`consistency proof from tree size ${from} (${proof.length} hashes) holds; not compared: no trusted checkpoint given`);
    }
  }

  private checkTrustedCheckpoint(header: BundleHeader, checkpoint: Checkpoint, key: ParsedVerifierKey): void {
    if (this.options.trustedCheckpoint === undefined) {
      this.warnings.push('no trusted checkpoint given: whether the log was rewritten since you last kept one is not checked (--trusted-checkpoint)');
      return;
    }
    const verified = verifyCheckpoint(this.options.trustedCheckpoint, key);
    if (!verified.ok) fail(null, `the trusted checkpoint: ${verified.reason}`);
    const trusted = verified.checkpoint;
    this.trusted = trusted;
    const what = `trusted checkpoint (tree size ${trusted.size})`;
    if (trusted.origin !== checkpoint.origin) fail(null, `the ${what} is of log ${trusted.origin}, the bundle of ${checkpoint.origin}`);
    if (trusted.size === 0) fail(null, `the ${what} is of the empty tree: there is nothing to be consistent with`);
    if (trusted.size > checkpoint.size) {
      fail(null, `the ${what} is larger than the bundle's checkpoint (tree size ${checkpoint.size}): the log lost entries, or the bundle is not from its latest checkpoint`);
    }
    if (trusted.size === checkpoint.size) {
      if (!Buffer.from(trusted.root).equals(checkpoint.root)) fail(null, `the ${what} and the bundle's checkpoint have the same size and different roots: the log was rewritten`);
      this.checked.push(`consistency ${what}: the same tree as the bundle's checkpoint`);
      return;
    }
    if (trusted.size >= header.since && trusted.size <= header.until + 1) {
      this.trustedSizeInRange = trusted.size;
      return;
    }
    const consistency = header.consistency;
    if (!consistency || consistency.from !== trusted.size) {
      fail(
        null,
        `the bundle carries no consistency proof from tree size ${trusted.size}: export again with --trusted-checkpoint <this checkpoint> ` +
          `(GET /v1/audit/export?consistencyFrom=${trusted.size}), or export a range that includes index ${trusted.size - 1}`,
      );
    }
    if (!unb64(consistency.fromRoot).equals(trusted.root)) fail(null, `the log's root at tree size ${trusted.size} is not the ${what}'s: the log was rewritten`);
    this.checked.push(`consistency ${what} -> tree size ${checkpoint.size}: RFC 9162 consistency proof of ${consistency.proof.length} hashes OK`);
    // The proof shows they were not rewritten, not what they say: keeping this checkpoint would skip them.
    if (trusted.size < header.since) {
      this.warnings.push(`entries ${trusted.size}..${header.since - 1}, logged since the trusted checkpoint, are not in this bundle and were not read: export from --since ${trusted.size} to review them`);
    }
  }

  private compareTrustedRoot(source: string): void {
    const trusted = this.trusted!;
    if (!Buffer.from(this.range!.root()).equals(trusted.root)) {
      fail(null, `the log's root at tree size ${trusted.size}, recomputed from ${source}, is not the trusted checkpoint's: the log was rewritten`);
    }
    this.checked.push(`consistency trusted checkpoint (tree size ${trusted.size}): its root recomputed from ${source}: OK`);
    this.trustedSizeInRange = null;
  }

  /** Sends whole entry lines to be checked, split where the trusted checkpoint's root must be recomputed. */
  private async dispatch(lines: Buffer): Promise<void> {
    let rest = lines;
    while (rest.length > 0) {
      const first = this.dispatched;
      const stopAt = this.trustedSizeInRange !== null && this.trustedSizeInRange > first ? this.trustedSizeInRange - first : Infinity;
      let count = 0;
      let end = 0;
      while (end < rest.length && count < stopAt) {
        end = rest.indexOf(NEWLINE, end) + 1;
        count++;
      }
      const batch = rest.subarray(0, end);
      rest = rest.subarray(end);
      this.dispatched += count;
      const threads = this.options.threads ?? 0;
      if (!this.workers) {
        this.apply(this.checker!.checkBatch(batch, first));
        continue;
      }
      let result: Promise<BatchResult>;
      if (this.workerBatches < BATCHES_PER_THREAD * threads) {
        // A buffer of its own, handed over to the thread.
        const copy = new Uint8Array(batch.length);
        copy.set(batch);
        this.workerBatches++;
        result = this.workers.check(Buffer.from(copy.buffer), first);
        // Handled here too, so a thread's crash after an earlier failure is no unhandled rejection.
        result.then(
          () => this.workerBatches--,
          () => undefined,
        );
      } else {
        // Every worker has its fill queued: this thread checks this batch meanwhile.
        result = Promise.resolve(this.checker!.checkBatch(batch, first));
      }
      this.inFlight.push(result);
      if (this.inFlight.length >= BATCHES_PER_THREAD * (threads + 1)) this.apply(await this.inFlight.shift()!);
    }
  }

  /** Results in the order of the entries: the first failing batch names the first bad entry. */
  private apply(result: BatchResult): void {
    for (const node of result.nodes) this.range!.appendSubtree(node.level, node.hash);
    this.verifiedEnd = this.range!.end;
    if (result.failure) throw new VerificationFailed(result.failure);
    if (this.trustedSizeInRange === this.range!.end) this.compareTrustedRoot(`the entries up to index ${this.range!.end - 1}`);
  }

  private async end(): Promise<void> {
    while (this.inFlight.length > 0) this.apply(await this.inFlight.shift()!);
    const header = this.header;
    const checkpoint = this.checkpoint;
    const range = this.range;
    if (this.pending.length > 0) fail(range ? range.end : null, 'the bundle ends in the middle of a line: it was cut short');
    if (this.headerLinesSeen === 0) fail(null, 'the bundle is empty');
    if (!header || !checkpoint || !range) fail(null, 'the bundle ends before its header does');
    if (range.end <= header.until) {
      fail(range.end, `the bundle ends before index ${range.end}: entries ${range.end}..${header.until} that its header announces are missing`);
    }
    this.checked.push(
      `entries     ${header.since}..${header.until} (${header.until - header.since + 1}): valid UTF-8, canonical JSON (RFC 8785), ` +
        'audit-entry.schema.json, indices contiguous and in order, leaf hashes as recorded',
    );
    rangeCoordinates(header.until + 1, checkpoint.size).forEach(({ level }, i) => range.appendSubtree(level, unb64(header.rangeProof.right[i]!)));
    if (!Buffer.from(range.root()).equals(checkpoint.root)) {
      fail(
        null,
        `the entries ${header.since}..${header.until} with the range proof do not hash to the checkpoint's root: ` +
          'an entry together with its leaf hash, or a hash of the range proof, was changed',
      );
    }
    this.checked.push(
      `root        entries + range proof (${header.rangeProof.left.length} hash(es) left, ${header.rangeProof.right.length} right) ` +
        `= the checkpoint's root of tree size ${checkpoint.size}: OK`,
    );
  }
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

/** The schemas admit canonical base64 of 32 bytes only, so this decodes exactly. */
function unb64(text: string): Buffer {
  return Buffer.from(text, 'base64');
}

function isCanonicalBase64(text: string): boolean {
  return Buffer.from(text, 'base64').toString('base64') === text;
}

/** Each signature of the note in canonical base64: otherwise unused bits could differ unnoticed. */
function hasCanonicalSignatures(note: string): boolean {
  const block = note.slice(note.indexOf('\n\n') + 2, -1);
  return block.split('\n').every((line) => isCanonicalBase64(line.slice(line.lastIndexOf(' ') + 1)));
}

function parseCanonicalVerifierKey(text: string, what: string): ParsedVerifierKey {
  let key: ParsedVerifierKey;
  try {
    key = parseVerifierKey(text);
  } catch (error) {
    fail(null, `${what}: ${(error as Error).message}`);
  }
  if (!isCanonicalBase64(text.slice(text.indexOf('+', text.indexOf('+') + 1) + 1))) fail(null, `${what}: the key is not in canonical base64`);
  return key;
}

/** Worker threads worth starting for a bundle of this size (one per further CPU): none for small ones. */
export function verificationThreads(bytes: number): number {
  if (!entryWorkersAvailable() || bytes < 8 * 1024 * 1024) return 0;
  return Math.min(availableParallelism() - 1, 15);
}

/** Verifies a bundle file, reading it once in 1 MiB chunks; threads default to what its size is worth. */
export async function verifyBundleFile(path: string, options: VerifyOptions = {}): Promise<VerificationReport> {
  const verifier = new BundleVerifier({ ...options, threads: options.threads ?? verificationThreads(statSync(path).size) });
  const stream = createReadStream(path, { highWaterMark: 1 << 20 });
  try {
    for await (const chunk of stream) {
      if (!(await verifier.push(chunk as Buffer))) break;
    }
    return await verifier.finish();
  } finally {
    stream.destroy();
    await verifier.close();
  }
}

/** Verifies a bundle held in memory (tests, small bundles), on this thread. */
export async function verifyBundle(bytes: Buffer, options: Omit<VerifyOptions, 'threads'> = {}): Promise<VerificationReport> {
  const verifier = new BundleVerifier(options);
  await verifier.push(bytes);
  return verifier.finish();
}
