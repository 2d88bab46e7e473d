import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import { KEY_MATERIAL, type KeyMaterial } from '../platform/crypto/key-material.js';
import { SLUICE_CONFIG, type SluiceConfig } from '../platform/config/config.js';
import { TransactionRunner } from '../platform/database/transaction-runner.js';
import { AuditLogService } from './audit-log.service.js';
import { canonicalJson } from './domain/canonical-json.js';
import { signCheckpoint } from './domain/checkpoint.js';
import { appendLeaves, frontierCoordinates, leafHash, type SubtreeNode } from './domain/merkle.js';
import { AuditCheckpointEntity, AuditEntryEntity, AuditQueueEntity, AuditSubtreeEntity } from './infrastructure/audit.entities.js';

/** Any 64-bit number works: it only has to be the same for every replica. */
const SEQUENCER_LOCK_ID = 0x5_1c_e0_a0_d1;
const BATCH = 500;

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
    await this.chain;
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

  /** Waits until the entries have their log index (another replica may be the one sequencing). */
  async awaitIndices(ids: string[], timeoutMs = 15_000): Promise<Map<string, number>> {
    const deadline = Date.now() + timeoutMs;
    let pause = 2;
    for (;;) {
      await this.sequenceNow();
      const found = await this.auditLog.indicesOf(ids);
      if (found.size === ids.length) return found;
      if (Date.now() > deadline) throw new AuditSequencingTimeout();
      await new Promise((resolve) => setTimeout(resolve, pause));
      pause = Math.min(pause * 2, 50);
    }
  }

  /** One batch in one transaction; returns how many entries it integrated (0 if another replica holds the lock). */
  private async integrateBatch(): Promise<number> {
    const integrated = await this.transactions.run(async (manager) => {
      if (this.transactions.dialect === 'postgres') {
        const [row] = (await manager.query('SELECT pg_try_advisory_xact_lock($1) AS locked', [SEQUENCER_LOCK_ID])) as { locked: boolean }[];
        if (!row?.locked) return 0;
      }
      const queued = await manager.getRepository(AuditQueueEntity).find({ order: { seq: 'ASC' }, take: BATCH });
      if (queued.length === 0) return 0;
      await this.integrate(manager, queued);
      return queued.length;
    });
    if (integrated > 0) this.auditLog.notifySequenced();
    return integrated;
  }

  private async integrate(manager: EntityManager, queued: AuditQueueEntity[]): Promise<void> {
    const size = (await this.auditLog.latestCheckpoint(manager))?.treeSize ?? 0;
    const frontier = await this.loadSubtrees(manager, frontierCoordinates(size));
    const now = new Date().toISOString();

    const entries: AuditEntryEntity[] = queued.map((row, offset) => {
      const index = size + offset;
      const body = JSON.parse(row.body) as Record<string, unknown>;
      const text = canonicalJson({ ...body, v: 1, kind: row.kind, id: row.id, index, time: row.queuedAt });
      const entity = new AuditEntryEntity();
      Object.assign(entity, { index, id: row.id, kind: row.kind, entry: text, leafHash: Buffer.from(leafHash(Buffer.from(text, 'utf8'))).toString('hex'), createdAt: now });
      return entity;
    });
    const appended = appendLeaves(
      size,
      frontier,
      entries.map((e) => Buffer.from(e.leafHash, 'hex')),
    );
    const note = signCheckpoint({ origin: this.config.auditLogOrigin, size: appended.size, root: appended.root, privateKey: this.keys.auditSigningKey });

    await insertInChunks(manager, AuditEntryEntity, entries);
    await insertInChunks(
      manager,
      AuditSubtreeEntity,
      appended.newNodes.map((n) => ({ level: n.level, index: n.index, hash: Buffer.from(n.hash).toString('hex') })),
    );
    await manager.insert(AuditCheckpointEntity, { treeSize: appended.size, rootHash: Buffer.from(appended.root).toString('hex'), note, createdAt: now });
    for (let i = 0; i < queued.length; i += 200) {
      await manager.getRepository(AuditQueueEntity).delete(queued.slice(i, i + 200).map((q) => q.seq));
    }
  }

  private async loadSubtrees(manager: EntityManager, coordinates: { level: number; index: number }[]): Promise<SubtreeNode[]> {
    if (coordinates.length === 0) return [];
    const rows = await manager.getRepository(AuditSubtreeEntity).find({ where: coordinates });
    const byKey = new Map(rows.map((r) => [`${r.level}/${r.index}`, r]));
    return coordinates.map(({ level, index }) => {
      const row = byKey.get(`${level}/${index}`);
      if (!row) throw new Error(`audit log is missing subtree ${level}/${index}`);
      return { level, index, hash: Buffer.from(row.hash, 'hex') };
    });
  }
}

/** Keeps multi-row inserts under SQLite's bound-parameter limit. */
async function insertInChunks<T extends object>(manager: EntityManager, target: new () => T, rows: Partial<T>[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 100) {
    await manager.insert(target, rows.slice(i, i + 100) as never);
  }
}
