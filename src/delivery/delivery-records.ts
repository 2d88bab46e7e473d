import { Inject, Injectable } from '@nestjs/common';
import { type EntityManager, In } from 'typeorm';
import type { AuditDraft } from '../audit/audit-log.service.js';
import { SubjectKeyService } from '../audit/subject-keys.service.js';
import { TransactionRunner } from '../platform/database/transaction-runner.js';
import { ShareRecipientEntity } from '../shares/infrastructure/share.entities.js';
import type { DeliveryState } from '../shares/share-document.js';
import { ADVANCES_FROM, type DeliveryReport } from './delivery-state.js';
import { MediaObjectEntity, type OutboxMessageEntity } from './infrastructure/delivery.entities.js';
import { OutboxRepository } from './outbox.repository.js';

/** Connections one batch may take from the PostgreSQL pool for its pseudonyms. */
const PSEUDONYM_LOOKUPS_IN_PARALLEL = 4;

type MessageRef = Pick<OutboxMessageEntity, 'id' | 'shareId' | 'waId' | 'decisionEntry'>;

/**
 * What the worker and the webhook commands write about a message, inside their own transaction:
 * the recipient's delivery state (only ever forward) and the audit entries, which name the
 * recipient by pseudonym and the message by ids, never by number or text.
 */
@Injectable()
export class DeliveryRecords {
  constructor(
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(SubjectKeyService) private readonly subjectKeys: SubjectKeyService,
    @Inject(OutboxRepository) private readonly outbox: OutboxRepository,
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
   * Recipients' pseudonyms, looked up while their messages are on the way, so that recording the
   * outcomes does not wait for one lookup after another. On PostgreSQL the lookups are spread
   * over a few transactions that run side by side (a subject's key may be written on use).
   */
  async pseudonymsOf(waIds: string[]): Promise<Map<string, string>> {
    const unique = [...new Set(waIds)];
    const groupSize = Math.ceil(unique.length / (this.transactions.dialect === 'postgres' ? PSEUDONYM_LOOKUPS_IN_PARALLEL : 1));
    const groups = Array.from({ length: Math.ceil(unique.length / groupSize) }, (_, i) => unique.slice(i * groupSize, (i + 1) * groupSize));
    const found = await Promise.all(
      groups.map((group) =>
        this.transactions.run(async (manager) => {
          const pairs: [string, string][] = [];
          for (const id of group) pairs.push([id, await this.subjectKeys.pseudonym(manager, { type: 'whatsapp', id })]);
          return pairs;
        }),
      ),
    );
    return new Map(found.flat());
  }

  async entry(manager: EntityManager, kind: AuditDraft['kind'], message: MessageRef, details: Record<string, unknown>, pseudonyms?: Map<string, string>): Promise<AuditDraft> {
    return {
      kind,
      body: {
        share: message.shareId,
        outbox: message.id,
        decision: message.decisionEntry,
        recipient: pseudonyms?.get(message.waId) ?? (await this.subjectKeys.pseudonym(manager, { type: 'whatsapp', id: message.waId })),
        ...details,
      },
    };
  }

  /** The minimised media are kept only until none of the share's messages can still be sent. */
  async releaseFinishedMedia(manager: EntityManager, shareIds: Iterable<string>): Promise<void> {
    for (const shareId of new Set(shareIds)) {
      if (!(await this.outbox.hasOpenMessages(manager, shareId))) await manager.getRepository(MediaObjectEntity).delete({ shareId });
    }
  }
}
