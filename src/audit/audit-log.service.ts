import { Inject, Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { DataSource, type EntityManager } from 'typeorm';
import { KEY_MATERIAL, type KeyMaterial } from '../platform/crypto/key-material.js';
import { SLUICE_CONFIG, type SluiceConfig } from '../platform/config/config.js';
import { canonicalJson } from './domain/canonical-json.js';
import { signCheckpoint, verifierKey } from './domain/checkpoint.js';
import { appendLeaves, frontierCoordinates, leafHash, type SubtreeNode } from './domain/merkle.js';
import { AuditCheckpointEntity, AuditEntryEntity, AuditSubtreeEntity } from './infrastructure/audit.entities.js';

export type AuditEntryKind =
  | 'share.decided'
  | 'message.sent'
  | 'message.cancelled'
  | 'message.failed'
  | 'consent.granted'
  | 'consent.withdrawn'
  | 'policy.activated';

/** What a caller records. It must already be free of personal data: pseudonyms, digests, categories. */
export interface AuditDraft {
  kind: AuditEntryKind;
  body: Record<string, unknown>;
}

export interface AppendedEntry {
  id: string;
  index: number;
}

/** Any 64-bit number works: it only has to be the same for every replica. */
const LOG_LOCK_ID = 0x5_1c_e0_a0_d1;

@Injectable()
export class AuditLogService {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(KEY_MATERIAL) private readonly keys: KeyMaterial,
    @Inject(SLUICE_CONFIG) private readonly config: SluiceConfig,
  ) {}

  /**
   * Appends entries inside the caller's transaction: they get their indices, the tree its new
   * complete subtrees and a newly signed checkpoint, all committed (or not) with the caller's
   * own writes. Callers on SQLite are already serialised by the TransactionRunner; on PostgreSQL
   * a transaction-scoped advisory lock orders appenders across replicas.
   */
  async append(manager: EntityManager, drafts: AuditDraft[]): Promise<AppendedEntry[]> {
    if (drafts.length === 0) return [];
    await this.lock(manager);
    const size = await this.treeSize(manager);
    const frontier = await this.loadSubtrees(manager, frontierCoordinates(size));
    const now = new Date().toISOString();

    const entries: AuditEntryEntity[] = drafts.map((draft, offset) => {
      const index = size + offset;
      const id = `ent_${randomBytes(12).toString('base64url')}`;
      const text = canonicalJson({ ...draft.body, v: 1, kind: draft.kind, id, index, time: now });
      const entity = new AuditEntryEntity();
      Object.assign(entity, { index, id, kind: draft.kind, entry: text, createdAt: now });
      return entity;
    });
    const leaves = entries.map((e) => leafHash(Buffer.from(e.entry, 'utf8')));
    entries.forEach((e, i) => (e.leafHash = Buffer.from(leaves[i]!).toString('hex')));

    const appended = appendLeaves(size, frontier, leaves);
    const note = signCheckpoint({
      origin: this.config.auditLogOrigin,
      size: appended.size,
      root: appended.root,
      privateKey: this.keys.auditSigningKey,
    });

    await manager.insert(AuditEntryEntity, entries);
    await insertInChunks(manager, AuditSubtreeEntity, appended.newNodes.map((n) => ({
      level: n.level,
      index: n.index,
      hash: Buffer.from(n.hash).toString('hex'),
    })));
    await manager.insert(AuditCheckpointEntity, {
      treeSize: appended.size,
      rootHash: Buffer.from(appended.root).toString('hex'),
      note,
      createdAt: now,
    });
    return entries.map((e) => ({ id: e.id, index: e.index }));
  }

  /**
   * Takes the log's append lock until the caller's transaction ends (re-entrant), for callers that
   * must read and decide before appending. SQLite transactions are already one at a time.
   */
  async lock(manager: EntityManager): Promise<void> {
    if (this.dataSource.options.type === 'postgres') {
      await manager.query('SELECT pg_advisory_xact_lock($1)', [LOG_LOCK_ID]);
    }
  }

  async latestCheckpoint(manager: EntityManager = this.dataSource.manager): Promise<AuditCheckpointEntity | null> {
    return manager.getRepository(AuditCheckpointEntity).findOne({ where: {}, order: { treeSize: 'DESC' } });
  }

  /** The log's public key in the signed-note verifier key format. */
  publicVerifierKey(): string {
    return verifierKey(this.config.auditLogOrigin, this.keys.auditSigningKey);
  }

  private async treeSize(manager: EntityManager): Promise<number> {
    return (await this.latestCheckpoint(manager))?.treeSize ?? 0;
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
  for (let i = 0; i < rows.length; i += 200) {
    await manager.insert(target, rows.slice(i, i + 200) as never);
  }
}
