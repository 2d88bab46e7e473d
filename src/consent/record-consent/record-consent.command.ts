import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { Inject } from '@nestjs/common';
import { AuditSequencer } from '../../audit/audit-sequencer.js';
import { TransactionRunner } from '../../platform/database/transaction-runner.js';
import { Traced } from '../../platform/observability/traced.js';
import { ConsentLedger, type ConsentChange } from '../consent-ledger.js';

export interface ConsentRecorded {
  id: string;
  subject: ConsentChange['subject'];
  purpose: string;
  status: ConsentChange['status'];
  /** The purpose's state after this change: other than `status` when a change captured later was recorded before. */
  current: ConsentChange['status'];
  audit: { entry: string; index: number };
}

export class RecordConsentCommand extends Command<ConsentRecorded> {
  constructor(readonly change: ConsentChange) {
    super();
  }
}

@CommandHandler(RecordConsentCommand)
export class RecordConsentHandler implements ICommandHandler<RecordConsentCommand> {
  constructor(
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(ConsentLedger) private readonly ledger: ConsentLedger,
    @Inject(AuditSequencer) private readonly sequencer: AuditSequencer,
  ) {}

  @Traced('sluice.consent.record', { attributes: ({ change }: RecordConsentCommand) => ({ 'sluice.subject.type': change.subject.type, 'sluice.consent.status': change.status }) })
  async execute({ change }: RecordConsentCommand): Promise<ConsentRecorded> {
    const { eventId, audit, current } = await this.transactions.run((manager) => this.ledger.record(manager, change));
    // The answer names the change's place in the log, so it waits for the sequencer.
    const index = (await this.sequencer.awaitIndices([audit.id])).get(audit.id)!;
    return {
      id: eventId,
      subject: change.subject,
      purpose: change.purpose,
      status: change.status,
      current,
      audit: { entry: audit.id, index },
    };
  }
}
