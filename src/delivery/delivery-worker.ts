import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { In } from 'typeorm';
import { AuditLogService } from '../audit/audit-log.service.js';
import { SubjectKeyService } from '../audit/subject-keys.service.js';
import { ConsentLedger, consentKey } from '../consent/consent-ledger.js';
import { SLUICE_CONFIG, type SluiceConfig } from '../platform/config/config.js';
import { TransactionRunner } from '../platform/database/transaction-runner.js';
import { ShareRecipientEntity } from '../shares/infrastructure/share.entities.js';
import type { DeliveryState } from '../shares/share-document.js';
import { MediaObjectEntity, OutboxMessageEntity, type OutboxState } from './infrastructure/delivery.entities.js';
import { OutboxRepository } from './outbox.repository.js';
import { WHATSAPP_TRANSPORT, type WhatsAppTransport } from './whatsapp-transport.js';

const BATCH = 50;
const LEASE_MS = 30_000;
const MAX_ATTEMPTS = 5;

/**
 * Drains the outbox: claims rows, re-checks consent just before sending (a withdrawal wins over
 * a queued message), sends through the configured transport and records the outcome with its
 * audit entry in one transaction.
 */
@Injectable()
export class DeliveryWorker implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('DeliveryWorker');
  private readonly workerId = `wrk_${randomBytes(6).toString('hex')}`;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private wakeRequested = false;
  private stopped = false;

  constructor(
    @Inject(SLUICE_CONFIG) private readonly config: SluiceConfig,
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(OutboxRepository) private readonly outbox: OutboxRepository,
    @Inject(ConsentLedger) private readonly consents: ConsentLedger,
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
    @Inject(SubjectKeyService) private readonly subjectKeys: SubjectKeyService,
    @Inject(WHATSAPP_TRANSPORT) private readonly transport: WhatsAppTransport,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.deliveryWorkerEnabled) return;
    this.schedule(0);
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.running;
  }

  /** Asks for a pass soon (after a share committed) instead of at the next poll. */
  wake(): void {
    if (!this.config.deliveryWorkerEnabled || this.stopped) return;
    if (this.running) {
      this.wakeRequested = true;
      return;
    }
    this.schedule(0);
  }

  /** Delivers everything claimable now; returns how many rows it handled. Tests call it directly. */
  async drain(): Promise<number> {
    let handled = 0;
    for (;;) {
      const claimed = await this.transactions.run((m) => this.outbox.claim(m, this.workerId, BATCH, LEASE_MS));
      if (claimed.length === 0) return handled;
      for (const message of claimed) await this.deliver(message);
      handled += claimed.length;
    }
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.running = this.drain()
        .then(() => undefined)
        .catch((error: Error) => this.logger.error(`delivery pass failed: ${error.name}`))
        .finally(() => {
          this.running = undefined;
          const again = this.wakeRequested;
          this.wakeRequested = false;
          this.schedule(again ? 0 : this.config.deliveryPollMs);
        });
    }, delayMs);
  }

  private async deliver(message: OutboxMessageEntity): Promise<void> {
    const recipient = { type: 'whatsapp' as const, id: message.waId };
    const consent = (await this.consents.lookup([recipient], message.purpose)).get(consentKey(recipient));
    if (consent !== 'granted') {
      await this.finish(message, 'cancelled', 'cancelled', 'message.cancelled', { reason: consent === 'withdrawn' ? 'recipient.consent_withdrawn' : 'recipient.no_consent' });
      return;
    }
    let messageId: string;
    try {
      const media = await this.mediaFor(message);
      ({ messageId } = await this.transport.send(message.payload, { outboxId: message.id, ...(media ? { media } : {}) }));
    } catch (error) {
      if (message.attempts >= MAX_ATTEMPTS) {
        await this.finish(message, 'failed', 'failed', 'message.failed', { reason: 'delivery.attempts_exhausted', attempts: message.attempts });
      } else {
        await this.release(message);
      }
      this.logger.warn(`send attempt ${message.attempts} for ${message.id} failed: ${(error as Error).name}`);
      return;
    }
    await this.finish(message, 'sent', 'sent', 'message.sent', { messageId, attempts: message.attempts });
  }

  private async finish(
    message: OutboxMessageEntity,
    state: OutboxState,
    delivery: DeliveryState,
    kind: 'message.sent' | 'message.cancelled' | 'message.failed',
    details: Record<string, unknown>,
  ): Promise<void> {
    await this.transactions.run(async (manager) => {
      const now = new Date().toISOString();
      // Only the worker that still holds the claim records the outcome: one entry per attempt's end.
      const { affected } = await manager
        .getRepository(OutboxMessageEntity)
        .update({ id: message.id, state: 'claimed', claimedBy: this.workerId }, { state, claimedBy: null, claimExpiresAt: null, updatedAt: now });
      if (affected !== 1) return;
      await manager
        .getRepository(ShareRecipientEntity)
        .update({ shareId: message.shareId, waId: message.waId }, { deliveryState: delivery, deliveryUpdatedAt: now });
      // The minimised media are kept only until the share's last message is out.
      const open = await manager.getRepository(OutboxMessageEntity).countBy({ shareId: message.shareId, state: In(['pending', 'claimed']) });
      if (open === 0) await manager.getRepository(MediaObjectEntity).delete({ shareId: message.shareId });
      await this.auditLog.append(manager, [
        {
          kind,
          body: {
            share: message.shareId,
            outbox: message.id,
            decision: message.decisionEntry,
            recipient: await this.subjectKeys.pseudonym(manager, { type: 'whatsapp', id: message.waId }),
            ...details,
          },
        },
      ]);
    });
  }

  private async mediaFor(message: OutboxMessageEntity): Promise<{ bytes: Buffer; mimeType: string } | undefined> {
    const { payload } = message;
    const id = payload.type === 'image' ? payload.image.id : payload.type === 'video' ? payload.video.id : undefined;
    if (id === undefined) return undefined;
    const media = await this.transactions.dataSource.getRepository(MediaObjectEntity).findOneBy({ id });
    if (!media) throw new Error('the media of a queued message is gone');
    return { bytes: media.bytes, mimeType: media.mimeType };
  }

  /** Back to pending with a later lease so the next attempt waits a little (bounded backoff). */
  private async release(message: OutboxMessageEntity): Promise<void> {
    const retryAt = new Date(Date.now() + Math.min(60_000, 500 * 2 ** message.attempts)).toISOString();
    await this.transactions.run((manager) =>
      manager.getRepository(OutboxMessageEntity).update({ id: message.id, claimedBy: this.workerId }, { claimExpiresAt: retryAt, updatedAt: new Date().toISOString() }),
    );
  }
}
