import { Column, Entity, PrimaryColumn } from 'typeorm';
import { jsonText, nullableJsonText } from '../../platform/database/column-transformers.js';
import type { WhatsAppMessageRequest } from '../whatsapp-message.js';

/** Bytes as base64 text: the same column type on both dialects (at most a few MB per share). */
const base64Text = { to: (v: Buffer) => v.toString('base64'), from: (v: string) => Buffer.from(v, 'base64') };

export type OutboxState = 'pending' | 'claimed' | 'sent' | 'failed' | 'cancelled';

/** One message to one recipient, written in the share's transaction (transactional outbox). */
@Entity('outbox_messages')
export class OutboxMessageEntity {
  @PrimaryColumn({ type: 'varchar' }) id: string;
  @Column({ name: 'share_id', type: 'varchar' }) shareId: string;
  @Column({ name: 'wa_id', type: 'varchar' }) waId: string;
  /** The share's purpose. */
  @Column({ type: 'varchar' }) purpose: string;
  /** The purpose whose consent the recipient must still hold when it is sent (the policy's); null when the policy asks none. */
  @Column({ name: 'consent_purpose', type: 'varchar', nullable: true }) consentPurpose: string | null;
  /** The exact Cloud API request body to send. */
  @Column({ type: 'text', transformer: jsonText }) payload: WhatsAppMessageRequest;
  /** The policy's template, sent instead where the recipient's 24-hour service window is closed. */
  @Column({ name: 'fallback_payload', type: 'text', nullable: true, transformer: nullableJsonText }) fallbackPayload: WhatsAppMessageRequest | null;
  /** The share.decided entry that allowed this message: claimable only once it has a log index. */
  @Column({ name: 'decision_entry', type: 'varchar' }) decisionEntry: string;
  @Column({ type: 'varchar' }) state: OutboxState;
  /** Attempts started so far (each one is audited). */
  @Column({ type: 'integer' }) attempts: number;
  @Column({ name: 'claimed_by', type: 'varchar', nullable: true }) claimedBy: string | null;
  @Column({ name: 'claim_expires_at', type: 'varchar', nullable: true }) claimExpiresAt: string | null;
  /** A pending message waiting for its retry is not claimed before this time. */
  @Column({ name: 'not_before', type: 'varchar', nullable: true }) notBefore: string | null;
  /**
   * Set while an attempt is in flight and cleared when its outcome is recorded: found set on a
   * message a worker takes over, it means that attempt's outcome is unknown (the worker died).
   */
  @Column({ name: 'attempt_started_at', type: 'varchar', nullable: true }) attemptStartedAt: string | null;
  /** WhatsApp's message id (wamid), from the send response or from a status webhook. */
  @Column({ name: 'message_id', type: 'varchar', nullable: true }) messageId: string | null;
  /**
   * The wamids of copies WhatsApp reported failed with a retryable code and sluice sent again,
   * space-separated (see replacedCopies): later reports about them are about copies replaced.
   */
  @Column({ name: 'retried_message_ids', type: 'text', nullable: true }) retriedMessageIds: string | null;
  /** The consents the content rests on besides the recipient's (see contentConsentsOf); null when none. */
  @Column({ name: 'content_consents', type: 'text', nullable: true }) contentConsents: string | null;
  /** Why the message failed, as a stable code (e.g. whatsapp.131026, delivery.outside_service_window). */
  @Column({ name: 'error_code', type: 'varchar', nullable: true }) errorCode: string | null;
  @Column({ name: 'created_at', type: 'varchar' }) createdAt: string;
  @Column({ name: 'updated_at', type: 'varchar' }) updatedAt: string;
}

@Entity('sandbox_messages')
export class SandboxMessageEntity {
  /** A WhatsApp-style message id (wamid...). */
  @PrimaryColumn({ type: 'varchar' }) id: string;
  @Column({ name: 'wa_id', type: 'varchar' }) waId: string;
  @Column({ name: 'outbox_id', type: 'varchar' }) outboxId: string;
  /** The request body as the Cloud API would have received it: the message, and the outbox id it echoes in status webhooks. */
  @Column({ type: 'text', transformer: jsonText }) body: WhatsAppMessageRequest & { biz_opaque_callback_data?: string };
  @Column({ name: 'media_id', type: 'varchar', nullable: true }) mediaId: string | null;
  @Column({ name: 'created_at', type: 'varchar' }) createdAt: string;
}

/**
 * A minimised photo or video waiting to be sent: the bytes after metadata removal, never the
 * original. Kept only while a message that carries it can still be sent (see media-retention.ts).
 */
@Entity('media_objects')
export class MediaObjectEntity {
  /** `med_` + the first 32 hex digits of the sha256 of the bytes and the share id. */
  @PrimaryColumn({ type: 'varchar' }) id: string;
  @Column({ name: 'share_id', type: 'varchar' }) shareId: string;
  @Column({ type: 'varchar' }) sha256: string;
  @Column({ name: 'mime_type', type: 'varchar' }) mimeType: string;
  @Column({ type: 'integer' }) size: number;
  @Column({ type: 'text', transformer: base64Text }) bytes: Buffer;
  @Column({ name: 'created_at', type: 'varchar' }) createdAt: string;
}

/** What the sandbox transport "uploaded": the exact media bytes that would have reached WhatsApp. */
@Entity('sandbox_media')
export class SandboxMediaEntity {
  @PrimaryColumn({ type: 'varchar' }) id: string;
  @Column({ name: 'outbox_id', type: 'varchar' }) outboxId: string;
  @Column({ name: 'mime_type', type: 'varchar' }) mimeType: string;
  @Column({ type: 'text', transformer: base64Text }) bytes: Buffer;
  @Column({ name: 'created_at', type: 'varchar' }) createdAt: string;
}

/** The copies of a message sluice has replaced after WhatsApp reported them failed. */
export function replacedCopies(message: Pick<OutboxMessageEntity, 'retriedMessageIds'>): string[] {
  return message.retriedMessageIds?.split(' ') ?? [];
}
