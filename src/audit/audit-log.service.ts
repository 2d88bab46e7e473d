import { Inject, Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { DataSource, type EntityManager, In } from 'typeorm';
import { KEY_MATERIAL, type KeyMaterial } from '../platform/crypto/key-material.js';
import { SLUICE_CONFIG, type SluiceConfig } from '../platform/config/config.js';
import { canonicalJson } from './domain/canonical-json.js';
import { verifierKey } from './domain/checkpoint.js';
import { AuditCheckpointEntity, AuditEntryEntity, AuditQueueEntity } from './infrastructure/audit.entities.js';

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
}

/** Keys the sequencer adds to every entry; a caller's body must not carry them. */
const ENVELOPE_KEYS = ['v', 'kind', 'id', 'index', 'time'];

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
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(KEY_MATERIAL) private readonly keys: KeyMaterial,
    @Inject(SLUICE_CONFIG) private readonly config: SluiceConfig,
  ) {}

  /** Queues entries inside the caller's transaction; they are in the log once sequenced. */
  async append(manager: EntityManager, drafts: AuditDraft[]): Promise<QueuedEntry[]> {
    if (drafts.length === 0) return [];
    for (const draft of drafts) {
      const clash = ENVELOPE_KEYS.find((key) => Object.hasOwn(draft.body, key));
      if (clash) throw new Error(`an audit entry body may not set ${clash}`);
    }
    const now = new Date().toISOString();
    const rows = drafts.map((draft) => ({
      id: `ent_${randomBytes(12).toString('base64url')}`,
      kind: draft.kind,
      // Canonical now, so the entry text is fixed at the moment the change is recorded.
      body: canonicalJson(draft.body),
      queuedAt: now,
    }));
    await manager.insert(AuditQueueEntity, rows);
    return rows.map((r) => ({ id: r.id }));
  }

  /** The log indices of entries, once sequenced; undefined for those not (yet) in the log. */
  async indicesOf(ids: string[], manager: EntityManager = this.dataSource.manager): Promise<Map<string, number>> {
    if (ids.length === 0) return new Map();
    const rows = await manager.getRepository(AuditEntryEntity).find({ select: { id: true, index: true }, where: { id: In(ids) } });
    return new Map(rows.map((r) => [r.id, r.index]));
  }

  async latestCheckpoint(manager: EntityManager = this.dataSource.manager): Promise<AuditCheckpointEntity | null> {
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
