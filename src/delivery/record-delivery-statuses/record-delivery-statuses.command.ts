import { Inject } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import type { EntityManager } from 'typeorm';
import { AuditLogService, type AuditDraft } from '../../audit/audit-log.service.js';
import { SubjectKeyService } from '../../audit/subject-keys.service.js';
import { whatsAppIdForms } from '../../consent/subject.js';
import { SLUICE_CONFIG, type SluiceConfig } from '../../platform/config/config.js';
import { TransactionRunner } from '../../platform/database/transaction-runner.js';
import { countReportedStatuses } from '../../platform/observability/metrics.js';
import { Traced } from '../../platform/observability/traced.js';
import { ACCOUNT_ERROR_CODES, RETRYABLE_ERROR_CODES } from '../cloud-api/cloud-api-errors.js';
import { AccountPause } from '../account-pause.js';
import { DeliveryRecords } from '../delivery-records.js';
import { MediaObjectEntity, type OutboxMessageEntity, replacedCopies } from '../infrastructure/delivery.entities.js';
import { OutboxRepository } from '../outbox.repository.js';
import { retryDelayMs } from '../retries.js';
import { ServiceWindows } from '../service-windows.js';
import { WhatsAppUserIds } from '../whatsapp-user-ids.js';
import type { StatusReport } from '../webhooks/whatsapp-notification.js';
import { isErasedRequest, mediaObjectOf } from '../whatsapp-message.js';

export interface DeliveryStatusesRecorded {
  /** Reports that moved a recipient's state (the others were repeats, stale, or about messages sluice did not send). */
  applied: number;
}

export class RecordDeliveryStatusesCommand extends Command<DeliveryStatusesRecorded> {
  constructor(readonly reports: StatusReport[]) {
    super();
  }
}

/**
 * WhatsApp's status reports (sent, delivered, read, failed) on sluice's messages, recorded per
 * recipient and audited when they move the state forward; repeated and out-of-order reports
 * change nothing. A report also proves that WhatsApp accepted the message, which settles an
 * attempt whose send response was lost. A copy that failed with a retryable code (a rate limit,
 * WhatsApp's own trouble) is queued again while attempts are left, with the usual backoff, and
 * the recipient goes back to `queued`; so is a text that failed outside the contact's window
 * (131047) where the policy names a template for that, which then goes instead. Reports about
 * replaced copies change nothing, and a failure of a copy older than the one sent last is left to
 * that one's reports.
 */
@CommandHandler(RecordDeliveryStatusesCommand)
export class RecordDeliveryStatusesHandler implements ICommandHandler<RecordDeliveryStatusesCommand> {
  constructor(
    @Inject(SLUICE_CONFIG) private readonly config: SluiceConfig,
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(OutboxRepository) private readonly outbox: OutboxRepository,
    @Inject(DeliveryRecords) private readonly records: DeliveryRecords,
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
    @Inject(SubjectKeyService) private readonly subjectKeys: SubjectKeyService,
    @Inject(ServiceWindows) private readonly windows: ServiceWindows,
    @Inject(WhatsAppUserIds) private readonly userIds: WhatsAppUserIds,
    @Inject(AccountPause) private readonly accountPause: AccountPause,
  ) {}

  @Traced('sluice.whatsapp.statuses', { result: (r: DeliveryStatusesRecorded) => ({ 'sluice.statuses.applied': r.applied }) })
  async execute({ reports }: RecordDeliveryStatusesCommand): Promise<DeliveryStatusesRecorded> {
    if (reports.length === 0) return { applied: 0 };
    const applied: Parameters<typeof countReportedStatuses>[0] = [];
    const recorded = await this.transactions.run(async (manager) => {
      applied.length = 0;
      const drafts: AuditDraft[] = [];
      // Shares with a photo or video whose message a report has moved on: once reached (or failed
      // for good), a copy no longer holds the media for sending again.
      const movedOn = new Set<string>();
      // A message queued again must not slip past an erasure of its recipient under way (PostgreSQL).
      await this.subjectKeys.holdAgainstErasure(manager, reports.flatMap((r) => whatsAppIdForms(r.recipient).map((id) => ({ type: 'whatsapp' as const, id }))));
      await this.outbox.lockReported(manager, reports);
      // The user id a report names beside the number of a message sluice sent (never after an erasure cleared it).
      const named: { userId: string; waId: string; at: Date }[] = [];
      for (const report of reports) {
        const message = await this.outbox.findReported(manager, report);
        if (message && report.recipientUserId) named.push({ userId: report.recipientUserId, waId: message.waId, at: report.reportedAt });
        if (!message || replacedCopies(message).includes(report.messageId)) continue;
        const error = report.status === 'failed' ? `whatsapp.${report.errorCode ?? 'unknown'}` : undefined;
        // The account's trouble, told by a webhook, pauses the worker; any other report about a probe's copy ends that.
        if (error && report.errorCode !== undefined && ACCOUNT_ERROR_CODES.has(report.errorCode)) this.accountPause.refused(error, 'status', report.reportedAt);
        else this.accountPause.reported(message.id, report.messageId);
        // A failure of a copy older than the one sent last (or, queued again and waiting, than the one to come) is left to that copy.
        if (error && (message.messageId !== null ? message.messageId !== report.messageId : waitsToBeSentAgain(message))) continue;
        let nextAttemptAt: string | undefined;
        let retry: { final?: false; reason?: string } = {};
        if (error && message.messageId === null && message.state === 'pending') {
          // A copy whose answer was lost (a timeout) failed, and the message already waits for its
          // next attempt: nothing changes, and that copy's id says nothing of the next one. (While
          // an attempt is under way its own copy's failure cannot be told from an older one's: the
          // message then ends failed, below.)
          nextAttemptAt = message.notBefore ?? undefined;
          retry = { final: false };
        } else {
          const again = error ? await this.sendAgain(manager, message, report) : undefined;
          nextAttemptAt = again?.notBefore;
          if (again) retry = { final: false, ...(again.accountProblem ? { reason: 'delivery.account_problem' } : {}) };
          else {
            if (message.messageId === null) await this.outbox.learnMessageId(manager, message.id, report.messageId);
            if (!(await this.records.advanceRecipient(manager, message, report.status))) continue;
            if (error) await this.outbox.recordError(manager, message.id, error);
            if (mediaObjectOf(message.payload) !== undefined) movedOn.add(message.shareId);
          }
        }
        applied.push({ status: report.status, ...(error ? { error } : {}), ...retry });
        drafts.push(
          await this.records.entry(manager, 'message.status', message, {
            status: report.status,
            whatsappMessage: report.messageId,
            reportedAt: report.reportedAt.toISOString(),
            ...(error ? { error } : {}),
            ...retry,
            ...(nextAttemptAt ? { nextAttemptAt } : {}),
          }),
        );
      }
      await this.records.releaseFinishedMedia(manager, movedOn);
      await this.userIds.learn(manager, named);
      await this.auditLog.append(manager, drafts);
      return { applied: drafts.length };
    });
    // Once committed: a report whose transaction failed is sent again by WhatsApp.
    countReportedStatuses(applied);
    return recorded;
  }

  /**
   * Queues the message again if the failed copy is the one sent last, the code is worth another
   * try, attempts are left, no copy has reached the recipient (delivered, read) and its photo or
   * video is still kept; returns when it may next go out. A code about the business account (a
   * payment issue, a locked account) is not the message's fault: it waits for the worker's pause
   * (AccountPause) to end, and the failed copy's attempt does not count, as when a send is refused so.
   */
  private async sendAgain(manager: EntityManager, message: OutboxMessageEntity, report: StatusReport): Promise<{ notBefore: string; accountProblem: boolean } | undefined> {
    if (report.errorCode === undefined) return undefined;
    const accountProblem = ACCOUNT_ERROR_CODES.has(report.errorCode);
    // Outside the contact's window after all (sluice saw it open): the policy's template may go instead.
    const windowClosed = report.errorCode === OUTSIDE_WINDOW_CODE && message.fallbackPayload !== null && message.payload.type !== 'template';
    if (!(RETRYABLE_ERROR_CODES.has(report.errorCode) || windowClosed || accountProblem)) return undefined;
    if (message.state !== 'sent' || message.messageId !== report.messageId || (!accountProblem && message.attempts >= this.config.deliveryMaxAttempts)) return undefined;
    // An erasure of someone its content named has cleared the request body.
    if (isErasedRequest(message.payload)) return undefined;
    if ((await this.records.recipientState(manager, message)) !== 'sent') return undefined;
    const media = mediaObjectOf(message.payload);
    if (media !== undefined && !(await manager.getRepository(MediaObjectEntity).existsBy({ id: media }))) return undefined;
    const notBefore = accountProblem ? this.accountPause.resumesAt : new Date(Date.now() + retryDelayMs(message.attempts, this.config.deliveryRetryBaseMs)).toISOString();
    if (!(await this.outbox.requeueFailedCopy(manager, { ...message, messageId: report.messageId }, notBefore, { uncounted: accountProblem }))) return undefined;
    // Under both forms of an Argentinian number, as an inbound message opens it (whatsAppIdForms).
    if (windowClosed) for (const form of whatsAppIdForms(message.waId)) await this.windows.closeAsOf(manager, form, report.reportedAt);
    await this.records.requeueRecipient(manager, message);
    return { notBefore, accountProblem };
  }
}

/** Re-engagement message: the contact's 24-hour customer service window was closed. */
const OUTSIDE_WINDOW_CODE = 131047;

/** Queued again after a failed copy, and no attempt under way: no report can be about its next copy yet. */
function waitsToBeSentAgain(message: OutboxMessageEntity): boolean {
  return replacedCopies(message).length > 0 && (message.state === 'pending' || message.attemptStartedAt === null);
}
