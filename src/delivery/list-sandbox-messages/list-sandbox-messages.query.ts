import { Inject } from '@nestjs/common';
import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { SandboxMessageEntity } from '../infrastructure/delivery.entities.js';
import type { WhatsAppMessageRequest } from '../whatsapp-message.js';
import { TransactionRunner } from '../../platform/database/transaction-runner.js';

export interface SandboxMessageView {
  id: string;
  waId: string;
  createdAt: string;
  mediaId: string | null;
  /** The exact request body the Cloud API would have received. */
  request: WhatsAppMessageRequest;
}

/** How many of a contact's messages the sandbox lists: the latest. */
export const SANDBOX_MESSAGES_LISTED = 1000;

export class ListSandboxMessagesQuery extends Query<SandboxMessageView[]> {
  constructor(readonly waId: string) {
    super();
  }
}

@QueryHandler(ListSandboxMessagesQuery)
export class ListSandboxMessagesHandler implements IQueryHandler<ListSandboxMessagesQuery> {
  constructor(@Inject(TransactionRunner) private readonly transactions: TransactionRunner) {}

  async execute({ waId }: ListSandboxMessagesQuery): Promise<SandboxMessageView[]> {
    // The latest ones, oldest first: a contact with a long history still sees what was sent last.
    const rows = await this.transactions.reader
      .getRepository(SandboxMessageEntity)
      .find({ where: { waId }, order: { createdAt: 'DESC', id: 'DESC' }, take: SANDBOX_MESSAGES_LISTED });
    return rows.reverse().map((r) => ({ id: r.id, waId: r.waId, createdAt: r.createdAt, mediaId: r.mediaId, request: r.body }));
  }
}
