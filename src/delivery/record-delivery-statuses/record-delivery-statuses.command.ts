import { Inject } from '@nestjs/common';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { AuditLogService, type AuditDraft } from '../../audit/audit-log.service.js';
import { TransactionRunner } from '../../platform/database/transaction-runner.js';
import { countReportedStatuses } from '../../platform/observability/metrics.js';
import { Traced } from '../../platform/observability/traced.js';
import { DeliveryRecords } from '../delivery-records.js';
import { OutboxRepository } from '../outbox.repository.js';
import type { StatusReport } from '../webhooks/whatsapp-notification.js';

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
 * attempt whose send response was lost.
 */
@CommandHandler(RecordDeliveryStatusesCommand)
export class RecordDeliveryStatusesHandler implements ICommandHandler<RecordDeliveryStatusesCommand> {
  constructor(
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(OutboxRepository) private readonly outbox: OutboxRepository,
    @Inject(DeliveryRecords) private readonly records: DeliveryRecords,
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
  ) {}

  @Traced('sluice.whatsapp.statuses', { result: (r: DeliveryStatusesRecorded) => ({ 'sluice.statuses.applied': r.applied }) })
  async execute({ reports }: RecordDeliveryStatusesCommand): Promise<DeliveryStatusesRecorded> {
    if (reports.length === 0) return { applied: 0 };
    const applied: Parameters<typeof countReportedStatuses>[0] = [];
    const recorded = await this.transactions.run(async (manager) => {
      applied.length = 0;
      const drafts: AuditDraft[] = [];
      for (const report of reports) {
        const message = await this.outbox.findReported(manager, report);
        if (!message) continue;
        if (message.messageId === null) await this.outbox.learnMessageId(manager, message.id, report.messageId);
        if (!(await this.records.advanceRecipient(manager, message, report.status))) continue;
        const error = report.status === 'failed' ? `whatsapp.${report.errorCode ?? 'unknown'}` : undefined;
        if (error) await this.outbox.recordError(manager, message.id, error);
        applied.push({ status: report.status, ...(error ? { error } : {}) });
        drafts.push(
          await this.records.entry(manager, 'message.status', message, {
            status: report.status,
            whatsappMessage: report.messageId,
            reportedAt: report.reportedAt.toISOString(),
            ...(error ? { error } : {}),
          }),
        );
      }
      await this.auditLog.append(manager, drafts);
      return { applied: drafts.length };
    });
    // Once committed: a report whose transaction failed is sent again by WhatsApp.
    countReportedStatuses(applied);
    return recorded;
  }
}
