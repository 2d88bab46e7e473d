import { Column, Entity, PrimaryColumn, PrimaryGeneratedColumn } from 'typeorm';
import { bigintAsNumber } from '../../platform/database/column-transformers.js';

@Entity('audit_entries')
export class AuditEntryEntity {
  @PrimaryColumn({ name: 'idx', type: 'bigint', transformer: bigintAsNumber }) index: number;
  @Column({ type: 'varchar' }) id: string;
  @Column({ type: 'varchar' }) kind: string;
  /** The RFC 8785 canonical JSON text that was hashed into the leaf. */
  @Column({ type: 'text' }) entry: string;
  @Column({ name: 'leaf_hash', type: 'varchar' }) leafHash: string;
  @Column({ name: 'created_at', type: 'varchar' }) createdAt: string;
}

/** A complete subtree of the Merkle tree: the hash of leaves [idx * 2^level, (idx + 1) * 2^level). */
@Entity('audit_subtrees')
export class AuditSubtreeEntity {
  @PrimaryColumn({ type: 'integer' }) level: number;
  @PrimaryColumn({ name: 'idx', type: 'bigint', transformer: bigintAsNumber }) index: number;
  @Column({ type: 'varchar' }) hash: string;
}

@Entity('audit_checkpoints')
export class AuditCheckpointEntity {
  @PrimaryColumn({ name: 'tree_size', type: 'bigint', transformer: bigintAsNumber }) treeSize: number;
  @Column({ name: 'root_hash', type: 'varchar' }) rootHash: string;
  /** The C2SP signed note, exactly as served. */
  @Column({ type: 'text' }) note: string;
  @Column({ name: 'created_at', type: 'varchar' }) createdAt: string;
}

@Entity('subject_keys')
export class SubjectKeyEntity {
  /** HMAC of "type:id" under a key derived from the master key: finds the key without storing the id. */
  @PrimaryColumn({ type: 'varchar' }) lookup: string;
  @Column({ name: 'subject_type', type: 'varchar' }) subjectType: string;
  /** AES-256-GCM wrapped per-subject key (base64); null once destroyed. */
  @Column({ name: 'wrapped_key', type: 'text', nullable: true }) wrappedKey: string | null;
  @Column({ name: 'created_at', type: 'varchar' }) createdAt: string;
  @Column({ name: 'destroyed_at', type: 'varchar', nullable: true }) destroyedAt: string | null;
  /** Updated at most once a day: audit retention destroys keys unused for longer than it. */
  @Column({ name: 'last_used_at', type: 'varchar', nullable: true }) lastUsedAt: string | null;
}

/** An entry recorded in its writer's transaction, waiting for the sequencer to give it a log index. */
@Entity('audit_queue')
export class AuditQueueEntity {
  /** Queue order (bigserial/autoincrement); PostgreSQL returns it as a string. */
  @PrimaryGeneratedColumn('increment', { type: 'bigint' }) seq: string;
  @Column({ type: 'varchar' }) id: string;
  @Column({ type: 'varchar' }) kind: string;
  /** The canonical JSON of the caller's body; the sequencer adds v, kind, id, index and time. */
  @Column({ type: 'text' }) body: string;
  @Column({ name: 'queued_at', type: 'varchar' }) queuedAt: string;
}
