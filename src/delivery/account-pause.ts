import { Inject, Injectable, Logger } from '@nestjs/common';
import { SLUICE_CONFIG, type SluiceConfig } from '../platform/config/config.js';

/**
 * Whether WhatsApp refuses the business account itself (an expired token, a blocked or unpaid
 * account): then every message would be refused alike until an operator puts it right, so the
 * delivery worker claims nothing for DELIVERY_ACCOUNT_PAUSE_MS, and after each pause sends one
 * message, the probe, before any more. A refusal at the send ends once the probe is taken or
 * refused for a reason of its own. A refusal reported by a status webhook (a payment issue, a
 * locked account) cannot be seen at the send: the probe then waits out another pause, and only
 * its own report of sent, delivered or read ends it. Per process: each replica finds out for itself.
 */
@Injectable()
export class AccountPause {
  private readonly logger = new Logger('DeliveryWorker');
  /** Until then nothing is claimed (epoch ms). */
  private until = 0;
  private probing = false;
  /** The refusal came by a status webhook: a probe's send proves nothing. */
  private awaitingReport = false;
  /** The outbox ids of the messages sent as probes since the first refusal. */
  private readonly probes = new Set<string>();

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

  /** WhatsApp refused the account (code only is logged), at a send or in a status webhook. */
  refused(code: string, via: 'send' | 'status'): void {
    this.probing = true;
    if (via === 'status') this.awaitingReport = true;
    if (this.isPaused()) return;
    this.until = Date.now() + this.config.deliveryAccountPauseMs;
    this.logger.error(`WhatsApp refused the business account (${code}): delivery pauses for ${this.config.deliveryAccountPauseMs} ms; messages wait, their attempts uncounted`);
  }

  /** The worker claimed this message while probing: it is the probe. */
  claimed(outboxId: string): void {
    if (this.probing) this.probes.add(outboxId);
  }

  /** WhatsApp answered the send of a message other than for the account (took it, or refused it for its own reason). */
  answered(outboxId: string): void {
    if (!this.probing || !this.probes.has(outboxId)) return;
    if (!this.awaitingReport) return this.resume();
    // Its status report will tell; until then, or for another pause, nothing more goes out.
    this.until = Math.max(this.until, Date.now() + this.config.deliveryAccountPauseMs);
  }

  /** A status webhook reported the message sent, delivered or read. */
  reached(outboxId: string): void {
    if (this.probing && this.probes.has(outboxId)) this.resume();
  }

  private resume(): void {
    this.probing = false;
    this.awaitingReport = false;
    this.probes.clear();
    this.until = 0;
  }
}
