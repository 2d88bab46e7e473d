import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { KEY_MATERIAL, type KeyMaterial } from '../platform/crypto/key-material.js';
import { SLUICE_CONFIG, type SluiceConfig } from '../platform/config/config.js';
import { Sql } from '../platform/database/sql.js';
import { TransactionRunner } from '../platform/database/transaction-runner.js';
import { Traced } from '../platform/observability/traced.js';
import { type AuditDraft, AuditLogService } from './audit-log.service.js';
import { canonicalJson } from './domain/canonical-json.js';
import { signCheckpoint } from './domain/checkpoint.js';
import { appendLeaves, frontierCoordinates, leafHash, type NodeCoordinate, type SubtreeNode } from './domain/merkle.js';
import { shutdownSteps } from '../platform/shutdown/shutdown-steps.js';

/** Any 64-bit number works: it only has to be the same for every replica. */
export const SEQUENCER_LOCK_ID = 0x5_1c_e0_a0_d1;
const BATCH = 500;
/**
 * How long a writer's transaction waits for the sequencer lock (PostgreSQL) before it queues its
 * entries instead: about as long as another batch takes to commit, so that a batch that began
 * while the previous one was committing sequences itself right after it.
 */
const LOCK_WAIT_MS = 250;
/** PostgreSQL's lock_not_available: the wait for the lock ran out. */
const LOCK_NOT_AVAILABLE = '55P03';

/** An entry to integrate: from the queue (`seq`, its row there), or straight from its writer. */
interface QueuedRow {
  seq?: string | number;
  id: string;
  kind: string;
  body: Record<string, unknown>;
  queuedAt: string;
}

/** A row of audit_queue as read. */
interface QueuedRecord {
  seq: string | number;
  id: string;
  kind: string;
  body: string;
  queued_at: string;
}

/** The newest signed checkpoint's tree. */
interface LatestCheckpoint {
  tree_size: string | number;
  root_hash: string;
}

/** Someone in this process waiting for log indices (see awaitIndices). */
interface Waiter {
  ids: ReadonlySet<string>;
  found: Map<string, number>;
}

export class AuditSequencingTimeout extends Error {
  constructor() {
    super('audit entries were not sequenced in time');
    this.name = 'AuditSequencingTimeout';
  }
}

/**
 * Gives queued entries their log index (Trillian's design): whichever replica takes the advisory
 * lock integrates a batch (PostgreSQL; SQLite has one writer anyway), appending the leaves,
 * storing the new complete subtrees and signing one checkpoint for the batch, in one
 * transaction. Concurrent writers share a pass, so a burst of decisions costs one signature.
 */
@Injectable()
export class AuditSequencer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('AuditSequencer');
  private chain: Promise<void> = Promise.resolve();
  private pending: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly waiters = new Set<Waiter>();
  /** The frontier (the complete subtrees a tree's next leaves build on) of the last tree this process sequenced. */
  private frontier: { size: number; root: string; nodes: SubtreeNode[] } | undefined;

  constructor(
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
    @Inject(KEY_MATERIAL) private readonly keys: KeyMaterial,
    @Inject(SLUICE_CONFIG) private readonly config: SluiceConfig,
  ) {}

  onApplicationBootstrap(): void {
    // Picks up what no writer waited for (delivery outcomes) and what another replica left.
    const tick = () => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.sequenceNow()
          .catch((error: Error) => this.logger.error(`sequencing pass failed: ${error.name}`))
          .finally(tick);
      }, this.config.auditSequencePollMs);
    };
    tick();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await shutdownSteps.run('audit sequencer: last sequencing pass', async () => {
      await this.chain;
      // What the last requests and deliveries queued gets its index now, not at the next start.
      await this.sequenceNow().catch((error: Error) => this.logger.error(`last sequencing pass failed: ${error.name}`));
    });
  }

  /** Runs a sequencing pass soon; callers that arrive while one runs share the next one. */
  sequenceNow(): Promise<void> {
    if (this.pending) return this.pending;
    const next = this.chain.then(async () => {
      this.pending = undefined;
      while ((await this.integrateBatch()) === BATCH);
    });
    this.pending = next;
    this.chain = next.catch(() => undefined);
    return next;
  }

  /**
   * Waits until the entries have their log index (another replica may be the one sequencing).
   * Indices this process gives are handed over when their transaction commits; the database is
   * asked only for the others.
   */
  @Traced('sluice.audit.await_index', { attributes: (ids: string[]) => ({ 'sluice.audit.entries': ids.length }) })
  async awaitIndices(ids: string[], timeoutMs = 15_000): Promise<Map<string, number>> {
    const waiter: Waiter = { ids: new Set(ids), found: new Map() };
    this.waiters.add(waiter);
    try {
      const deadline = Date.now() + timeoutMs;
      let pause = 2;
      for (;;) {
        await this.sequenceNow();
        const missing = ids.filter((id) => !waiter.found.has(id));
        if (missing.length > 0) {
          for (const [id, index] of await this.transactions.read((m) => this.auditLog.indicesOf(missing, m))) waiter.found.set(id, index);
        }
        if (waiter.found.size === waiter.ids.size) return waiter.found;
        if (Date.now() > deadline) throw new AuditSequencingTimeout();
        await new Promise((resolve) => setTimeout(resolve, pause));
        pause = Math.min(pause * 2, 50);
      }
    } finally {
      this.waiters.delete(waiter);
    }
  }

  /**
   * Records entries in the caller's transaction. When this replica may sequence now (SQLite has
   * one writer; on PostgreSQL the advisory lock must be free) they go straight into the log,
   * after what is already queued, in the caller's own commit: no second transaction, no trip
   * through the queue. Otherwise they are queued for the sequencer. A failure while sequencing
   * rolls back only that (a savepoint), and the entries are queued instead. Returns the indices
   * given, which hold once the caller's transaction commits: pass them to `committed` then.
   */
  async appendSequenced(manager: EntityManager, drafts: (AuditDraft & { id: string })[]): Promise<Map<string, number>> {
    if (drafts.length === 0) return new Map();
    this.auditLog.checkDrafts(drafts);
    const sql = Sql.of(manager);
    try {
      // Not released: the commit keeps what the savepoint holds, one statement less per commit.
      const batch = await this.openBatch(manager, sql, { first: 'SAVEPOINT sluice_sequence', waitMs: LOCK_WAIT_MS });
      if (batch) {
        const queuedAt = new Date().toISOString();
        const own = drafts.map((d) => ({ id: d.id, kind: d.kind, body: d.body, queuedAt }));
        return await this.integrate(manager, [...batch.queued, ...own], batch.latest);
      }
    } catch (error) {
      // If the savepoint itself was not made, the writer's transaction fails, with this error.
      await sql.execute(manager, 'ROLLBACK TO SAVEPOINT sluice_sequence').catch(() => {
        throw error;
      });
      // Another batch (of this replica or another) held the lock for the whole wait: the next
      // sequencing pass takes these.
      if ((error as { code?: unknown }).code !== LOCK_NOT_AVAILABLE) {
        this.logger.error(`sequencing in a writer's transaction failed, its entries are queued instead: ${(error as Error).name}`);
      }
    }
    await this.auditLog.append(manager, drafts);
    return new Map();
  }

  /** Hands indices given in a transaction that has now committed to whoever waits for them. */
  committed(indices: ReadonlyMap<string, number>): void {
    if (indices.size === 0) return;
    for (const waiter of this.waiters) {
      for (const id of waiter.ids) {
        const index = indices.get(id);
        if (index !== undefined) waiter.found.set(id, index);
      }
    }
    this.auditLog.notifySequenced();
  }

  /** One batch in one transaction; returns how many entries it integrated (0 if another replica holds the lock). */
  private async integrateBatch(): Promise<number> {
    const indices = await this.transactions.run((manager) => this.integrateQueued(manager));
    this.committed(indices);
    return indices.size;
  }

  private async integrateQueued(manager: EntityManager): Promise<Map<string, number>> {
    const batch = await this.openBatch(manager, Sql.of(manager));
    if (!batch || batch.queued.length === 0) return new Map();
    return this.integrate(manager, batch.queued, batch.latest);
  }

  /**
   * Whether this transaction may sequence (PostgreSQL elects one replica at a time with the
   * advisory lock; SQLite has one writer) and, if so, what is queued and the latest checkpoint.
   * On PostgreSQL one round trip (after `first`, if given): the lock is its own statement, so the
   * reads after it see every batch committed before it was taken; they read only if it was.
   * With `waitMs` the lock is waited for that long (then lock_not_available is thrown), else
   * only taken if free.
   */
  private async openBatch(manager: EntityManager, sql: Sql, options: { first?: string; waitMs?: number } = {}): Promise<{ queued: QueuedRow[]; latest: LatestCheckpoint | undefined } | undefined> {
    const postgres = sql.dialect === 'postgres';
    const { first, waitMs } = options;
    // Reentrant: taking the lock again in the same transaction succeeds at once. (Should another
    // replica release it between the two, the reads take it: this transaction then holds it
    // without sequencing until it ends, and others queue meanwhile. Nothing is lost.)
    const ifLocked = postgres ? ` WHERE (SELECT pg_try_advisory_xact_lock(${SEQUENCER_LOCK_ID}))` : '';
    // The wait applies to this statement only: the transaction's later statements wait for row
    // locks as long as they always did.
    const lock =
      waitMs === undefined
        ? [`SELECT pg_try_advisory_xact_lock(${SEQUENCER_LOCK_ID}) AS locked`]
        : [`SET LOCAL lock_timeout = ${Math.round(waitMs)}`, `SELECT true AS locked FROM (SELECT pg_advisory_xact_lock(${SEQUENCER_LOCK_ID})) AS waited`, 'SET LOCAL lock_timeout TO DEFAULT'];
    const results = await sql.batch(manager, [
      ...(first ? [first] : []),
      ...(postgres ? lock : []),
      `SELECT seq, id, kind, body, queued_at FROM audit_queue${ifLocked} ORDER BY seq LIMIT ${BATCH}`,
      `SELECT tree_size, root_hash FROM audit_checkpoints${ifLocked} ORDER BY tree_size DESC LIMIT 1`,
    ]);
    const [queuedRows, latestRows] = results.slice(-2) as unknown as [QueuedRecord[], LatestCheckpoint[]];
    const locked = results.at(waitMs === undefined ? -3 : -4)?.[0]?.locked;
    if (postgres && locked !== true) return undefined;
    const queued = queuedRows.map((row) => ({ seq: row.seq, id: row.id, kind: row.kind, body: JSON.parse(row.body) as Record<string, unknown>, queuedAt: row.queued_at }));
    return { queued, latest: latestRows[0] };
  }

  @Traced('sluice.audit.sequence', { attributes: (_manager: EntityManager, queued: QueuedRow[]) => ({ 'sluice.audit.entries': queued.length }) })
  private async integrate(manager: EntityManager, queued: QueuedRow[], latest: LatestCheckpoint | undefined): Promise<Map<string, number>> {
    const sql = Sql.of(manager);
    const size = latest ? Number(latest.tree_size) : 0;
    const cached = this.frontier;
    const frontier = cached && latest && cached.size === size && cached.root === latest.root_hash ? cached.nodes : await this.loadSubtrees(manager, sql, frontierCoordinates(size));
    const now = new Date().toISOString();

    const entries = queued.map((row, offset) => {
      const index = size + offset;
      const text = canonicalJson({ ...row.body, v: 1, kind: row.kind, id: row.id, index, time: row.queuedAt });
      return { index, id: row.id, kind: row.kind, text, leaf: leafHash(Buffer.from(text, 'utf8')) };
    });
    const appended = appendLeaves(
      size,
      frontier,
      entries.map((e) => e.leaf),
    );
    const note = signCheckpoint({ origin: this.config.auditLogOrigin, size: appended.size, root: appended.root, privateKey: this.keys.auditSigningKey });

    const hex = (bytes: Uint8Array) => Buffer.from(bytes).toString('hex');
    await sql.insertAll(manager, [
      { table: 'audit_entries', columns: ['idx', 'id', 'kind', 'entry', 'leaf_hash', 'created_at'], rows: entries.map((e) => [e.index, e.id, e.kind, e.text, hex(e.leaf), now]) },
      { table: 'audit_subtrees', columns: ['level', 'idx', 'hash'], rows: appended.newNodes.map((n) => [n.level, n.index, hex(n.hash)]) },
      { table: 'audit_checkpoints', columns: ['tree_size', 'root_hash', 'note', 'created_at'], rows: [[appended.size, hex(appended.root), note, now]] },
    ]);
    // The tree's frontier after this batch, for the next one. Kept by size and root: if this
    // transaction rolls back, the next batch finds another root in the database and reads the
    // frontier there; a tree of the same size and root has the same frontier.
    this.frontier = { size: appended.size, root: hex(appended.root), nodes: appended.frontier };
    const seqs = queued.flatMap((q) => (q.seq === undefined ? [] : [q.seq]));
    for (let i = 0; i < seqs.length; i += 200) {
      const chunk = seqs.slice(i, i + 200);
      await sql.execute(manager, `DELETE FROM audit_queue WHERE seq IN (${sql.params(chunk.length)})`, chunk);
    }
    return new Map(entries.map((e) => [e.id, e.index]));
  }

  private async loadSubtrees(manager: EntityManager, sql: Sql, coordinates: NodeCoordinate[]): Promise<SubtreeNode[]> {
    if (coordinates.length === 0) return [];
    const where = coordinates.map((_, i) => `(level = ${sql.params(1, 2 * i + 1)} AND idx = ${sql.params(1, 2 * i + 2)})`).join(' OR ');
    const rows = await sql.rows<{ level: number | string; idx: number | string; hash: string }>(
      manager,
      `SELECT level, idx, hash FROM audit_subtrees WHERE ${where}`,
      coordinates.flatMap((c) => [c.level, c.index]),
    );
    const byKey = new Map(rows.map((r) => [`${Number(r.level)}/${Number(r.idx)}`, r]));
    return coordinates.map(({ level, index }) => {
      const row = byKey.get(`${level}/${index}`);
      if (!row) throw new Error(`audit log is missing subtree ${level}/${index}`);
      return { level, index, hash: Buffer.from(row.hash, 'hex') };
    });
  }
}
