import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { Inject } from '@nestjs/common';
import { TransactionRunner } from '../../platform/database/transaction-runner.js';
import { ConsentLedger, type ConsentChange } from '../consent-ledger.js';

export interface ConsentRecorded {
  id: string;
  subject: ConsentChange['subject'];
  purpose: string;
  status: ConsentChange['status'];
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
  ) {}

  async execute({ change }: RecordConsentCommand): Promise<ConsentRecorded> {
    const { eventId, audit } = await this.transactions.run((manager) => this.ledger.record(manager, change));
    return {
      id: eventId,
      subject: change.subject,
      purpose: change.purpose,
      status: change.status,
      audit: { entry: audit.id, index: audit.index },
    };
  }
}
