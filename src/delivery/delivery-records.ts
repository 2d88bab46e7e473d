import { Inject, Injectable } from '@nestjs/common';
import { type EntityManager, In } from 'typeorm';
import type { AuditDraft } from '../audit/audit-log.service.js';
import { SubjectKeyService } from '../audit/subject-keys.service.js';
import { SLUICE_CONFIG, type SluiceConfig } from '../platform/config/config.js';
import { TransactionRunner } from '../platform/database/transaction-runner.js';
import { ShareRecipientEntity } from '../shares/infrastructure/share.entities.js';
import type { DeliveryState } from '../shares/share-document.js';
import { ADVANCES_FROM, type DeliveryReport } from './delivery-state.js';
import type { OutboxMessageEntity } from './infrastructure/delivery.entities.js';
import { releaseFinishedMedia } from './media-retention.js';

/** Connections one batch may take from the PostgreSQL pool for its recipients' keys. */
const KEY_READS_IN_PARALLEL = 4;

type MessageRef = Pick<OutboxMessageEntity, 'id' | 'shareId' | 'waId' | 'decisionEntry'>;

/** Pseudonyms and digests under recipients' keys (by WhatsApp number), for the audit entries about their messages. */
export interface RecipientKeys {
  pseudonym(waId: string): string;
  digest(waId: string, value: string): string;
}

const recipient = (waId: string) => ({ type: 'whatsapp', id: waId });

/**
 * What the worker and the webhook commands write about a message, inside their own transaction:
 * the recipient's delivery state (forward only, but for a message queued again after WhatsApp
 * reported its copy failed with a retryable code) and the audit entries, which name the
 * recipient by pseudonym and the message by ids and digests, never by number or text.
 */
@Injectable()
export class DeliveryRecords {
  constructor(
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(SubjectKeyService) private readonly subjectKeys: SubjectKeyService,
    @Inject(SLUICE_CONFIG) private readonly config: SluiceConfig,
  ) {}

  /** Moves the recipient's state forward; returns the new state, or undefined when the report changes nothing. */
  async advanceRecipient(manager: EntityManager, message: MessageRef, report: DeliveryReport): Promise<DeliveryState | undefined> {
    // One guarded UPDATE: concurrent reports each see the state the other left.
    const { affected } = await manager
      .getRepository(ShareRecipientEntity)
      .update(
        { shareId: message.shareId, waId: message.waId, deliveryState: In([...ADVANCES_FROM[report]]) },
        { deliveryState: report, deliveryUpdatedAt: new Date().toISOString() },
      );
    return affected === 1 ? report : undefined;
  }

  /** The recipient's delivery state now. */
  async recipientState(manager: EntityManager, message: MessageRef): Promise<DeliveryState | null | undefined> {
    return (await manager.getRepository(ShareRecipientEntity).findOneBy({ shareId: message.shareId, waId: message.waId }))?.deliveryState;
  }

  /** Back to `queued` from `sent`: the message is queued again after its copy failed. */
  async requeueRecipient(manager: EntityManager, message: MessageRef): Promise<void> {
    await manager
      .getRepository(ShareRecipientEntity)
      .update({ shareId: message.shareId, waId: message.waId, deliveryState: 'sent' }, { deliveryState: 'queued', deliveryUpdatedAt: new Date().toISOString() });
  }

  /** Moves many recipients' states forward by one report (their outcomes from one batch). */
  async advanceRecipients(manager: EntityManager, messages: MessageRef[], report: DeliveryReport): Promise<void> {
    const byShare = new Map<string, string[]>();
    for (const m of messages) byShare.set(m.shareId, [...(byShare.get(m.shareId) ?? []), m.waId]);
    const now = new Date().toISOString();
    for (const [shareId, waIds] of byShare) {
      await manager
        .getRepository(ShareRecipientEntity)
        .update({ shareId, waId: In(waIds), deliveryState: In([...ADVANCES_FROM[report]]) }, { deliveryState: report, deliveryUpdatedAt: now });
    }
  }

  /**
   * The recipients' keys, read while their messages are on the way, so that recording the
   * outcomes does not wait for one lookup after another. On PostgreSQL the reads are spread over
   * a few transactions that run side by side (a subject's key may be written on use).
   */
  async keysOf(waIds: string[]): Promise<RecipientKeys> {
    const unique = [...new Set(waIds)];
    const groupSize = Math.ceil(unique.length / (this.transactions.dialect === 'postgres' ? KEY_READS_IN_PARALLEL : 1));
    const groups = Array.from({ length: Math.ceil(unique.length / groupSize) }, (_, i) => unique.slice(i * groupSize, (i + 1) * groupSize));
    const rings = await Promise.all(groups.map((group) => this.transactions.run((manager) => this.subjectKeys.keysFor(manager, group.map(recipient)))));
    const ringOf = new Map(groups.flatMap((group, i) => group.map((waId) => [waId, rings[i]!] as const)));
    return {
      pseudonym: (waId) => ringOf.get(waId)!.pseudonym(recipient(waId)),
      digest: (waId, value) => ringOf.get(waId)!.digest(recipient(waId), value),
    };
  }

  /**
   * An audit entry about a message. WhatsApp's message id is kept only as a digest under the
   * recipient's key: a real one (wamid.HBgL...) carries the recipient's number, base64-encoded.
   */
  async entry(manager: EntityManager, kind: AuditDraft['kind'], message: MessageRef, details: Record<string, unknown>, keys?: RecipientKeys): Promise<AuditDraft> {
    const ring = keys ?? (await this.keysIn(manager, message.waId));
    const { whatsappMessage, ...rest } = details;
    return {
      kind,
      body: {
        share: message.shareId,
        outbox: message.id,
        decision: message.decisionEntry,
        recipient: ring.pseudonym(message.waId),
        ...rest,
        ...(typeof whatsappMessage === 'string' ? { whatsappMessage: ring.digest(message.waId, whatsappMessage) } : {}),
      },
    };
  }

  private async keysIn(manager: EntityManager, waId: string): Promise<RecipientKeys> {
    const ring = await this.subjectKeys.keysFor(manager, [recipient(waId)]);
    return { pseudonym: (id) => ring.pseudonym(recipient(id)), digest: (id, value) => ring.digest(recipient(id), value) };
  }

  /**
   * The minimised media are kept only until none of the share's messages can still be sent, be it
   * for the first time or again after WhatsApp reported a copy failed (see media-retention.ts).
   * Without `shareIds`, of every share: the media whose hold after sending has run out.
   */
  async releaseFinishedMedia(manager: EntityManager, shareIds?: Iterable<string>, now = new Date()): Promise<void> {
    await releaseFinishedMedia(manager, { holdAfterSendMs: this.config.mediaHoldAfterSendMs }, now, shareIds);
  }
}
