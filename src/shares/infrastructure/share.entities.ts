import { Column, Entity, PrimaryColumn } from 'typeorm';
import { jsonText } from '../../platform/database/column-transformers.js';
import type { DeliveryState, ShareDocument } from '../share-document.js';

@Entity('shares')
export class ShareEntity {
  @PrimaryColumn({ type: 'varchar' }) id: string;
  @Column({ name: 'api_key_id', type: 'varchar' }) apiKeyId: string;
  @Column({ name: 'idempotency_key', type: 'varchar' }) idempotencyKey: string;
  /** SHA-256 of the request body's canonical JSON: tells a replay from a conflicting reuse of the key. */
  @Column({ name: 'request_hash', type: 'varchar' }) requestHash: string;
  @Column({ type: 'varchar' }) status: string;
  @Column({ name: 'policy_name', type: 'varchar', nullable: true }) policyName: string | null;
  @Column({ name: 'bundle_hash', type: 'varchar' }) bundleHash: string;
  /** The decision document returned to the caller (and replayed on a repeated request). */
  @Column({ type: 'text', transformer: jsonText }) document: ShareDocument;
  /** The share.decided entry (its log index comes from the sequencer, after this row commits). */
  @Column({ name: 'audit_entry', type: 'varchar' }) auditEntry: string;
  @Column({ name: 'created_at', type: 'varchar' }) createdAt: string;
}

@Entity('share_recipients')
export class ShareRecipientEntity {
  @PrimaryColumn({ name: 'share_id', type: 'varchar' }) shareId: string;
  @PrimaryColumn({ name: 'wa_id', type: 'varchar' }) waId: string;
  @Column({ type: 'varchar' }) decision: 'allowed' | 'denied';
  @Column({ type: 'text', transformer: jsonText }) reasons: string[];
  @Column({ name: 'delivery_state', type: 'varchar', nullable: true }) deliveryState: DeliveryState | null;
  @Column({ name: 'delivery_updated_at', type: 'varchar', nullable: true }) deliveryUpdatedAt: string | null;
}
