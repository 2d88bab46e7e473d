import { type BeforeApplicationShutdown, Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { type EntityManager, In } from 'typeorm';
import { AuditLogService, type AuditDraft } from '../audit/audit-log.service.js';
import { ConsentLedger, consentKey, type ConsentLookup } from '../consent/consent-ledger.js';
import type { SubjectRef } from '../consent/subject.js';
import { SLUICE_CONFIG, type SluiceConfig } from '../platform/config/config.js';
import { TransactionRunner } from '../platform/database/transaction-runner.js';
import { countDeliveryOutcomes, type DeliveryOutcome } from '../platform/observability/metrics.js';
import { OutsideTrace, Traced } from '../platform/observability/traced.js';
import { AccountPause } from './account-pause.js';
import { DeliveryRecords, type RecipientKeys } from './delivery-records.js';
import { MediaObjectEntity, OutboxMessageEntity, replacedCopies } from './infrastructure/delivery.entities.js';
import { OutboxRepository, type Settlement } from './outbox.repository.js';
import type { SendSlot } from './send-pacer.js';
import { ServiceWindows } from './service-windows.js';
import { retryDelayMs } from './retries.js';
import { isErasedRequest, mediaObjectOf, type WhatsAppMessageRequest } from './whatsapp-message.js';
import { WHATSAPP_TRANSPORT, type SendContext, type SendOutcome, type WhatsAppTransport } from './whatsapp-transport.js';
import { shutdownSteps } from '../platform/shutdown/shutdown-steps.js';
import { parseContentConsents } from './content-consents.js';

const MAX_BATCH = 200;
const BATCHES_IN_FLIGHT = 2;
/** Time to record an attempt's outcome after its last request ended: a claim covers it too. */
const RECORDING_MARGIN_MS = 1000;
/** How long an outcome may wait for others to share its transaction (one commit, one fsync). */
const RECORDING_LINGER_MS = 10;
/**
 * Writes of outcomes tried before they are given up: an outcome not written leaves its message to
 * be sent again once the claim lapses. The waits (100 + 200 ms) fit in RECORDING_MARGIN_MS.
 */
const RECORDING_TRIES = 3;
const RECORDING_RETRY_MS = 100;
/** How often a pass also releases the media whose hold after sending has run out. */
const MEDIA_SWEEP_EVERY_MS = 60_000;

type MessageKind = 'message.sent' | 'message.failed' | 'message.cancelled';

/** How a message leaves this worker's hands, with the audit entries that say so. */
interface Ending {
  message: OutboxMessageEntity;
  settlement: Settlement;
  entries: { kind: MessageKind; details: Record<string, unknown> }[];
}

interface StartedBatch {
  claimed: number;
  /** Outcomes recorded in the claiming transaction (endings, attempts a dead worker left unknown): counted once it has committed. */
  outcomes?: DeliveryOutcome[];
  started: OutboxMessageEntity[];
  /** Past this moment (performance.now()) an attempt may not start: its claim would not outlive it. */
  latestStart: number;
}

interface AttemptResult {
  message: OutboxMessageEntity;
  outcome: SendOutcome;
}

/**
 * Drains the outbox. Per batch, one transaction claims messages, re-checks consent (a
 * withdrawal wins over a queued message) and the 24-hour window, records what a crashed worker
 * left unknown, and marks the attempts started; then the messages go out concurrently within the
 * send rate, and their outcomes are recorded, with their audit entries, as they come back. A
 * crash between the start and the record of an attempt leaves its outcome unknown: the next
 * worker records it so and sends again (at-least-once toward WhatsApp), unless a status webhook
 * proved meanwhile that WhatsApp accepted it.
 */
@Injectable()
export class DeliveryWorker implements OnApplicationBootstrap, BeforeApplicationShutdown, OnApplicationShutdown {
  private readonly logger = new Logger('DeliveryWorker');
  private readonly workerId = `wrk_${randomBytes(6).toString('hex')}`;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private wakeRequested = false;
  private stopped = false;
  private nextMediaSweep = 0;
  constructor(
    @Inject(SLUICE_CONFIG) private readonly config: SluiceConfig,
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(OutboxRepository) private readonly outbox: OutboxRepository,
    @Inject(ConsentLedger) private readonly consents: ConsentLedger,
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
    @Inject(DeliveryRecords) private readonly records: DeliveryRecords,
    @Inject(ServiceWindows) private readonly windows: ServiceWindows,
    @Inject(WHATSAPP_TRANSPORT) private readonly transport: WhatsAppTransport,
    @Inject(AccountPause) private readonly accountPause: AccountPause,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.deliveryWorkerEnabled) return;
    this.schedule(0);
  }

  /**
   * At the signal, before the HTTP server closes (which waits for the requests in flight): from
   * here on nothing more is claimed, though decisions still being made wake the worker.
   */
  beforeApplicationShutdown(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** The batches in flight finish sending and record their outcomes. */
  async onApplicationShutdown(): Promise<void> {
    this.beforeApplicationShutdown();
    await shutdownSteps.run('delivery worker: sends in flight', () => this.running);
  }

  /** Asks for a pass soon (after a share committed) instead of at the next poll. */
  @OutsideTrace()
  wake(): void {
    if (!this.config.deliveryWorkerEnabled || this.stopped) return;
    if (this.running) {
      this.wakeRequested = true;
      return;
    }
    this.schedule(0);
  }

  /**
   * Delivers everything claimable now; returns how many rows it handled. Tests call it directly.
   * The next batch is claimed while the previous one is still sending and being recorded (two at
   * most), so the database and WhatsApp are busy at the same time.
   */
  async drain(): Promise<number> {
    let handled = 0;
    let failure: unknown;
    const sending: Promise<void>[] = [];
    try {
      // Once shutting down, the batches in flight finish and nothing more is claimed: no claim
      // outlives the process. While WhatsApp refuses the business account, nothing is claimed.
      while (!this.stopped && !this.accountPause.isPaused()) {
        const batch = await this.transactions.run((m) => this.claimAndBegin(m));
        countDeliveryOutcomes(batch.outcomes ?? []);
        if (batch.claimed === 0) break;
        for (const message of batch.started) this.accountPause.claimed(message.id);
        handled += batch.claimed;
        sending.push(this.send(batch).catch((error: unknown) => void (failure ??= error)));
        if (this.accountPause.batchLimit() !== undefined) await Promise.all(sending.splice(0));
        else if (sending.length >= BATCHES_IN_FLIGHT) await sending.shift();
      }
      if (Date.now() >= this.nextMediaSweep) {
        this.nextMediaSweep = Date.now() + MEDIA_SWEEP_EVERY_MS;
        await this.releaseHeldMedia();
      }
    } finally {
      await Promise.all(sending);
    }
    if (failure !== undefined) throw failure;
    return handled;
  }

  /**
   * Deletes the minimised media kept after sending (MEDIA_HOLD_AFTER_SEND_MS) for a copy that
   * WhatsApp might report failed, once that hold has run out with no such report.
   */
  async releaseHeldMedia(now = new Date()): Promise<void> {
    await this.transactions.run((manager) => this.records.releaseFinishedMedia(manager, undefined, now));
  }

  /** A paced batch spans at most about a second of the send rate, so its claims stay short. */
  private batchSize(): number {
    const limit = this.accountPause.batchLimit();
    if (limit !== undefined) return limit;
    const cloudApi = this.config.whatsapp.cloudApi;
    return this.transport.pacer && cloudApi ? Math.min(MAX_BATCH, cloudApi.sendRate) : MAX_BATCH;
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

  private async claimAndBegin(manager: EntityManager): Promise<StartedBatch> {
    const claimed = await this.outbox.claim(manager, this.workerId, this.batchSize(), this.config.deliveryLeaseMs);
    if (claimed.length === 0) return { claimed: 0, started: [], latestStart: 0 };
    const consent = await this.consentOf(manager, claimed);
    const openWindows = this.transport.reachesWhatsApp
      ? await this.windows.openAmong(manager, claimed.filter((m) => needsServiceWindow(m.payload)).map((m) => m.waId), new Date())
      : undefined;
    const drafts: AuditDraft[] = [];
    const endings: Ending[] = [];
    const ready: OutboxMessageEntity[] = [];
    const outcomes: DeliveryOutcome[] = [];
    for (const message of claimed) {
      if (isErasedRequest(message.payload)) {
        // An erasure cleared its body: there is nothing left to send (it cancels such messages itself; this is the last guard).
        endings.push({ message, settlement: { state: 'cancelled' }, entries: [{ kind: 'message.cancelled', details: { reason: 'subject.erased' } }] });
        continue;
      }
      if (message.messageId !== null) {
        // A status webhook has shown that WhatsApp accepted an earlier attempt's copy, whose
        // outcome sluice had not heard (an unfinished attempt: this one) or counted as unknown.
        const attempt = message.attemptStartedAt !== null ? { attempt: message.attempts } : {};
        const details = { ...attempt, whatsappMessage: message.messageId, confirmedBy: 'status_webhook' };
        endings.push({ message, settlement: { state: 'sent', messageId: message.messageId }, entries: [{ kind: 'message.sent', details }] });
        continue;
      }
      if (message.attemptStartedAt !== null) {
        // The worker of the previous attempt died or lost its claim before recording the outcome.
        const unknown = { attempt: message.attempts, delivered: 'unknown', error: 'delivery.outcome_unknown' };
        if (message.attempts >= this.config.deliveryMaxAttempts) {
          const details = { ...unknown, final: true, reason: 'delivery.attempts_exhausted' };
          endings.push({ message, settlement: { state: 'failed', errorCode: 'delivery.outcome_unknown' }, entries: [{ kind: 'message.failed', details }] });
          continue;
        }
        drafts.push(await this.records.entry(manager, 'message.failed', message, { ...unknown, final: false }));
        outcomes.push({ kind: 'message.failed', details: { ...unknown, final: false } });
      }
      const status = message.consentPurpose === null ? 'granted' : consent.get(`${message.consentPurpose}|${consentKey({ type: 'whatsapp', id: message.waId })}`);
      const contentWithheld = contentConsentMissing(message, consent);
      if (status !== 'granted') {
        const reason = status === 'withdrawn' ? 'recipient.consent_withdrawn' : 'recipient.no_consent';
        endings.push({ message, settlement: { state: 'cancelled' }, entries: [{ kind: 'message.cancelled', details: { reason } }] });
      } else if (contentWithheld) {
        endings.push({ message, settlement: { state: 'cancelled' }, entries: [{ kind: 'message.cancelled', details: { reason: contentWithheld } }] });
      } else if (openWindows && needsServiceWindow(message.payload) && !openWindows.has(message.waId) && message.fallbackPayload) {
        // Outside the window only a template may open a conversation: the policy's, decided with the text.
        ready.push({ ...message, payload: message.fallbackPayload });
      } else if (openWindows && needsServiceWindow(message.payload) && !openWindows.has(message.waId)) {
        // WhatsApp would refuse it (131047) and the policy names no template for it. See docs/delivery.md.
        const error = 'delivery.outside_service_window';
        endings.push({ message, settlement: { state: 'failed', errorCode: error }, entries: [{ kind: 'message.failed', details: { final: true, delivered: 'no', error } }] });
      } else {
        ready.push(message);
      }
    }
    const ended = await this.end(manager, endings);
    drafts.push(...ended.drafts);
    outcomes.push(...ended.outcomes);
    const startedAt = new Date();
    const startedIds = await this.outbox.startAttempts(manager, this.workerId, ready.map((m) => m.id), startedAt.toISOString(), new Date(startedAt.getTime() + this.config.deliveryLeaseMs).toISOString());
    await this.auditLog.append(manager, drafts);
    const requestsMs = this.config.whatsapp.cloudApi ? 2 * this.config.whatsapp.cloudApi.timeoutMs : 0;
    return {
      claimed: claimed.length,
      outcomes,
      started: ready.filter((m) => startedIds.has(m.id)).map((m) => ({ ...m, attempts: m.attempts + 1, attemptStartedAt: startedAt.toISOString() })),
      latestStart: performance.now() + this.config.deliveryLeaseMs - requestsMs - RECORDING_MARGIN_MS,
    };
  }

  /** Sends a started batch concurrently, each message in its send slot, recording outcomes as they come. */
  private async send({ started, latestStart }: StartedBatch): Promise<void> {
    if (started.length === 0) return;
    const slots = this.transport.pacer ? await this.transport.pacer.reserve(started.length) : undefined;
    const media = new Map<string, Promise<MediaObjectEntity | null>>();
    const readKeys = () => {
      const read = this.records.keysOf(started.map((m) => m.waId));
      // Awaited by the first write; until then a failed lookup must not count as unhandled.
      read.catch(() => undefined);
      return read;
    };
    let keys = readKeys();
    const recorder = new OutcomeRecorder(started.length, async (results) => {
      const known = await keys.catch((error: unknown) => {
        keys = readKeys(); // for the next try
        throw error;
      });
      countDeliveryOutcomes(await this.transactions.run((m) => this.recordOutcomes(m, results, known)));
    });
    await Promise.all(
      started.map(async (message, i) => {
        const slot = slots ? { ...slots[i]!, latestStart } : undefined;
        recorder.add({ message, outcome: await this.attempt(message, slot, media) });
      }),
    );
    await recorder.settled();
  }

  /** The consents the messages rest on, by `purpose|subject`: their recipients' and their content's (the author's, tagged people's). */
  private async consentOf(manager: EntityManager | undefined, messages: OutboxMessageEntity[]): Promise<Map<string, ConsentLookup>> {
    const asked = new Map<string, SubjectRef[]>();
    const ask = (purpose: string, subject: SubjectRef) => asked.set(purpose, [...(asked.get(purpose) ?? []), subject]);
    for (const message of messages) {
      // A message whose policy asks no recipient consent (another lawful basis) needs none now either.
      if (message.consentPurpose !== null) ask(message.consentPurpose, { type: 'whatsapp', id: message.waId });
      for (const { subject, purpose } of parseContentConsents(message.contentConsents)) ask(purpose, subject);
    }
    const result = new Map<string, ConsentLookup>();
    for (const [purpose, subjects] of asked) {
      for (const [key, status] of await this.consents.lookup(subjects, purpose, manager)) result.set(`${purpose}|${key}`, status);
    }
    return result;
  }

  @Traced('sluice.delivery.attempt', {
    attributes: (message: OutboxMessageEntity) => ({ 'sluice.outbox.id': message.id, 'sluice.share.id': message.shareId, 'sluice.delivery.attempt': message.attempts }),
    result: (outcome: SendOutcome) => ({ 'sluice.delivery.code': outcome.ok ? 'ok' : 'withheld' in outcome ? outcome.withheld : outcome.failure.code }),
  })
  private async attempt(message: OutboxMessageEntity, slot: SendSlot | undefined, media: Map<string, Promise<MediaObjectEntity | null>>): Promise<SendOutcome> {
    try {
      let context: SendContext = { outboxId: message.id, ...(slot ? { slot } : {}), withholdReason: () => this.withholdReason(message) };
      const mediaObjectId = mediaObjectOf(message.payload);
      if (mediaObjectId !== undefined) {
        // One read serves every recipient of the share in this batch.
        if (!media.has(mediaObjectId)) media.set(mediaObjectId, this.transactions.dataSource.getRepository(MediaObjectEntity).findOneBy({ id: mediaObjectId }));
        const object = await media.get(mediaObjectId)!;
        if (!object) return { ok: false, failure: { code: 'delivery.media_missing', retryable: false, delivered: 'no' } };
        context = { ...context, media: { objectId: object.id, bytes: object.bytes, mimeType: object.mimeType } };
      }
      return await this.transport.send(message.payload, context);
    } catch (error) {
      this.logger.error(`attempt ${message.attempts} of ${message.id} failed inside sluice: ${(error as Error).name}`);
      return { ok: false, failure: { code: 'delivery.internal_error', retryable: true, delivered: 'unknown' } };
    }
  }

  /**
   * Checked once more as the message is about to go (it may wait seconds for its slot and upload
   * after its claim): that this worker still holds it (an erasure of the recipient, or a worker
   * that took the lapsed claim over, ends that), and the recipient's consent, since an opt-out
   * (STOP) meanwhile finds the message under way and leaves it to this check.
   */
  private async withholdReason(message: OutboxMessageEntity): Promise<string | undefined> {
    const held = await this.transactions.read((manager) =>
      manager.getRepository(OutboxMessageEntity).exists({ where: { id: message.id, state: 'claimed', claimedBy: this.workerId } }),
    );
    if (!held) return 'delivery.claim_lost';
    const consent = await this.consentOf(undefined, [message]);
    const status = message.consentPurpose === null ? 'granted' : consent.get(`${message.consentPurpose}|${consentKey({ type: 'whatsapp', id: message.waId })}`);
    if (status !== 'granted') return status === 'withdrawn' ? 'recipient.consent_withdrawn' : 'recipient.no_consent';
    return contentConsentMissing(message, consent);
  }

  /** Records the attempts' outcomes; returns those that took, to be counted once committed. */
  private async recordOutcomes(manager: EntityManager, results: AttemptResult[], keys: RecipientKeys): Promise<DeliveryOutcome[]> {
    // A status webhook may meanwhile have brought the message id of an earlier attempt's copy.
    const knownIds = new Map(
      (await manager.getRepository(OutboxMessageEntity).find({ select: { id: true, messageId: true }, where: { id: In(results.map((r) => r.message.id)) } })).map((r) => [r.id, r.messageId]),
    );
    // WhatsApp took a message, or refused it for reasons of its own: if it was a probe, the account may be in order.
    for (const { message, outcome } of results) {
      if (outcome.ok || ('failure' in outcome && outcome.failure.code.startsWith('whatsapp.') && !outcome.failure.accountProblem)) this.accountPause.answered(message.id, outcome.ok ? outcome.messageId : undefined);
    }
    const endings = results.map(({ message, outcome }): Ending => {
      const attempt = message.attempts;
      if (outcome.ok) {
        return { message, settlement: { state: 'sent', messageId: outcome.messageId }, entries: [{ kind: 'message.sent', details: { attempt, whatsappMessage: outcome.messageId } }] };
      }
      if ('withheld' in outcome) {
        const earlierCopy = knownIds.get(message.id);
        // An earlier attempt's copy got through after all (a status webhook said so): it is out.
        if (earlierCopy) return { message, settlement: { state: 'sent', messageId: earlierCopy }, entries: [{ kind: 'message.sent', details: { attempt, whatsappMessage: earlierCopy, confirmedBy: 'status_webhook' } }] };
        return { message, settlement: { state: 'cancelled' }, entries: [{ kind: 'message.cancelled', details: { attempt, reason: outcome.withheld } }] };
      }
      const { failure } = outcome;
      const details = {
        attempt,
        delivered: failure.delivered,
        error: failure.code,
        ...(failure.subcode !== undefined ? { errorSubcode: failure.subcode } : {}),
        ...(failure.fbtraceId ? { fbtrace: failure.fbtraceId } : {}),
      };
      const earlierCopy = knownIds.get(message.id);
      if (earlierCopy) {
        // No answer (or an error) to this attempt, but a status webhook showed that a copy got
        // through (this attempt's or an earlier one's; they all carry the outbox id): the message is out.
        return {
          message,
          settlement: { state: 'sent', messageId: earlierCopy },
          entries: [
            { kind: 'message.failed', details: { ...details, final: false } },
            { kind: 'message.sent', details: { whatsappMessage: earlierCopy, confirmedBy: 'status_webhook' } },
          ],
        };
      }
      if (failure.accountProblem) {
        // Not this message's fault: it waits for the account to be put right, its attempt uncounted.
        this.accountPause.refused(failure.code, 'send');
        const nextAttemptAt = this.accountPause.resumesAt;
        return { message, settlement: { state: 'pending', notBefore: nextAttemptAt, uncounted: true }, entries: [{ kind: 'message.failed', details: { ...details, final: false, reason: 'delivery.account_problem', nextAttemptAt } }] };
      }
      if (!failure.retryable || attempt >= this.config.deliveryMaxAttempts) {
        const reason = failure.retryable ? { reason: 'delivery.attempts_exhausted' } : {};
        return { message, settlement: { state: 'failed', errorCode: failure.code }, entries: [{ kind: 'message.failed', details: { ...details, final: true, ...reason } }] };
      }
      const nextAttemptAt = new Date(Date.now() + retryDelayMs(attempt, this.config.deliveryRetryBaseMs)).toISOString();
      return { message, settlement: { state: 'pending', notBefore: nextAttemptAt }, entries: [{ kind: 'message.failed', details: { ...details, final: false, nextAttemptAt } }] };
    });
    const ended = await this.end(manager, endings, keys);
    await this.auditLog.append(manager, ended.drafts);
    return ended.outcomes;
  }

  /**
   * Ends this worker's claims (set-based), moves the recipients' states and returns the audit
   * entries and outcomes of the endings that took: a claim lost to another worker is left to it,
   * and that worker records this attempt as unknown.
   */
  private async end(manager: EntityManager, endings: Ending[], keys?: RecipientKeys): Promise<{ drafts: AuditDraft[]; outcomes: DeliveryOutcome[] }> {
    if (endings.length === 0) return { drafts: [], outcomes: [] };
    const settled = await this.outbox.settleAll(manager, this.workerId, endings.map((e) => ({ id: e.message.id, settlement: e.settlement })));
    const taken = endings.filter((e) => settled.has(e.message.id));
    for (const lost of endings.filter((e) => !settled.has(e.message.id))) this.logger.warn(`lost the claim on ${lost.message.id} during attempt ${lost.message.attempts}`);
    for (const state of ['sent', 'failed', 'cancelled'] as const) {
      await this.records.advanceRecipients(manager, taken.filter((e) => e.settlement.state === state).map((e) => e.message), state);
    }
    await this.records.releaseFinishedMedia(manager, taken.filter((e) => mediaObjectOf(e.message.payload) !== undefined).map((e) => e.message.shareId));
    const drafts: AuditDraft[] = [];
    for (const { message, entries } of taken) {
      // A copy sent again after WhatsApp reported the one before failed says which it is: the message was sent with the first.
      const replaced = replacedCopies(message).length;
      for (const { kind, details } of entries) drafts.push(await this.records.entry(manager, kind, message, kind === 'message.sent' && replaced > 0 ? { ...details, copy: replaced + 1 } : details, keys));
    }
    return { drafts, outcomes: taken.flatMap((e) => e.entries) };
  }
}

/** Template messages may open a conversation; everything else needs the contact's 24-hour window. */
function needsServiceWindow(payload: WhatsAppMessageRequest): boolean {
  return payload.type !== 'template';
}


/**
 * Records a batch's outcomes as they come back, several per transaction (group commit): an
 * outcome waits at most RECORDING_LINGER_MS for others, or for none once the batch is complete,
 * so a slow request does not hold back the others' records and a burst costs few commits.
 */
class OutcomeRecorder {
  private readonly queue: AttemptResult[] = [];
  private writing = false;
  private timer: NodeJS.Timeout | undefined;
  private failure: unknown;
  private resolveDone!: () => void;
  private readonly done = new Promise<void>((resolve) => (this.resolveDone = resolve));

  constructor(
    private outstanding: number,
    private readonly write: (results: AttemptResult[]) => Promise<void>,
  ) {}

  add(result: AttemptResult): void {
    this.queue.push(result);
    this.outstanding--;
    this.schedule();
  }

  /** Resolves once every outcome is written; rejects if a write failed (those attempts stay unknown until taken over). */
  async settled(): Promise<void> {
    await this.done;
    if (this.failure !== undefined) throw this.failure;
  }

  private schedule(): void {
    if (this.writing) return;
    if (this.queue.length === 0) {
      if (this.outstanding === 0) this.resolveDone();
      return;
    }
    if (this.outstanding === 0) {
      clearTimeout(this.timer);
      this.timer = undefined;
      void this.writeQueued();
    } else {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        if (!this.writing) void this.writeQueued();
      }, RECORDING_LINGER_MS);
    }
  }

  private async writeQueued(): Promise<void> {
    this.writing = true;
    const results = this.queue.splice(0);
    for (let tried = 1; ; tried++) {
      try {
        await this.write(results);
        break;
      } catch (error) {
        if (tried === RECORDING_TRIES) {
          this.failure ??= error;
          break;
        }
        await sleep(RECORDING_RETRY_MS * tried);
      }
    }
    this.writing = false;
    this.schedule();
  }
}

/**
 * Why a message must not go because someone whose data crosses in it (its author, a tagged person)
 * no longer consents: withdrawn since the share was decided, or gone (an erasure); else undefined.
 */
function contentConsentMissing(message: OutboxMessageEntity, consent: ReadonlyMap<string, ConsentLookup>): string | undefined {
  for (const { subject, purpose } of parseContentConsents(message.contentConsents)) {
    const status = consent.get(`${purpose}|${consentKey(subject)}`);
    if (status !== 'granted') return status === 'withdrawn' ? 'subject.consent_withdrawn' : 'subject.no_consent';
  }
  return undefined;
}
