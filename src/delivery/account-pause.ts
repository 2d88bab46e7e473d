import { Inject, Injectable, Logger } from '@nestjs/common';
import { SLUICE_CONFIG, type SluiceConfig } from '../platform/config/config.js';

/** Probes remembered while a refusal lasts: a report about an older one is rare and costs a pause at most. */
const PROBES_KEPT = 20;

/**
 * Whether WhatsApp refuses the business account itself (an expired token, a blocked or unpaid
 * account): then every message would be refused alike until an operator puts it right, so the
 * delivery worker claims nothing for DELIVERY_ACCOUNT_PAUSE_MS, and after each pause sends one
 * message, the probe, before any more. A refusal at the send ends once the probe is taken or
 * refused for a reason of its own. A refusal reported by a status webhook (a payment issue, a
 * locked account) cannot be seen at the send: a probe taken at the send then waits out another
 * pause, and only a report about that very copy that is not the account's refusal ends it. Per
 * process: each replica learns of a refusal from its own sends and the webhooks it receives.
 */
@Injectable()
export class AccountPause {
  private readonly logger = new Logger('DeliveryWorker');
  /** Until then nothing is claimed (epoch ms). */
  private until = 0;
  private probing = false;
  /** The refusal came by a status webhook: a probe's send proves nothing. */
  private awaitingReport = false;
  /** The probes sent since the refusal: outbox id to the WhatsApp message id of the copy taken, once known. */
  private readonly probes = new Map<string, string | undefined>();
  /** When the last refusal ended (epoch ms): a late report of an older refusal does not start another. */
  private resumedAt = 0;

  constructor(@Inject(SLUICE_CONFIG) private readonly config: SluiceConfig) {}

  /** When a message refused for the account may next go out (ISO 8601). */
  get resumesAt(): string {
    return new Date(Math.max(this.until, Date.now())).toISOString();
  }

  isPaused(now = Date.now()): boolean {
    return now < this.until;
  }

  /** How many messages the next claim may take: one while probing. */
  batchLimit(): number | undefined {
    return this.probing ? 1 : undefined;
  }

  /**
   * WhatsApp refused the account (code only is logged), at a send or in a status webhook;
   * `reportedAt`: when a webhook says it happened.
   */
  refused(code: string, via: 'send' | 'status', reportedAt?: Date): void {
    // WhatsApp stamps whole seconds: a refusal in the second of the resume is taken as new.
    if (reportedAt !== undefined && reportedAt.getTime() < Math.floor(this.resumedAt / 1000) * 1000) return;
    this.probing = true;
    if (via === 'status') this.awaitingReport = true;
    if (this.isPaused()) return;
    this.until = Date.now() + this.config.deliveryAccountPauseMs;
    this.logger.error(`WhatsApp refused the business account (${code}): delivery pauses for ${this.config.deliveryAccountPauseMs} ms; messages wait, their attempts uncounted`);
  }

  /** The worker claimed this message while probing: it is a probe. */
  claimed(outboxId: string): void {
    if (!this.probing) return;
    this.probes.set(outboxId, undefined);
    if (this.probes.size > PROBES_KEPT) this.probes.delete(this.probes.keys().next().value!);
  }

  /**
   * WhatsApp answered the send of a message other than for the account: took it (`messageId`, its
   * copy's id) or refused it for a reason of its own.
   */
  answered(outboxId: string, messageId?: string): void {
    if (!this.probing || !this.probes.has(outboxId)) return;
    if (!this.awaitingReport) return this.resume();
    // The report about this copy will tell; until then, or for another pause, nothing more goes out.
    if (messageId !== undefined) this.probes.set(outboxId, messageId);
    this.until = Math.max(this.until, Date.now() + this.config.deliveryAccountPauseMs);
  }

  /** A status webhook reported the copy `messageId` of the message sent, delivered, read, or failed for a reason other than the account. */
  reported(outboxId: string, messageId: string): void {
    if (this.probing && this.probes.get(outboxId) === messageId) this.resume();
  }

  private resume(): void {
    this.probing = false;
    this.awaitingReport = false;
    this.probes.clear();
    this.until = 0;
    this.resumedAt = Date.now();
  }
}
