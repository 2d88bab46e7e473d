import { Inject } from '@nestjs/common';
import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { DataSource } from 'typeorm';
import { SandboxMessageEntity } from '../infrastructure/delivery.entities.js';
import type { WhatsAppMessageRequest } from '../whatsapp-message.js';

export interface SandboxMessageView {
  id: string;
  waId: string;
  createdAt: string;
  mediaId: string | null;
  /** The exact request body the Cloud API would have received. */
  request: WhatsAppMessageRequest;
}

export class ListSandboxMessagesQuery extends Query<SandboxMessageView[]> {
  constructor(readonly waId: string) {
    super();
  }
}

@QueryHandler(ListSandboxMessagesQuery)
export class ListSandboxMessagesHandler implements IQueryHandler<ListSandboxMessagesQuery> {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  async execute({ waId }: ListSandboxMessagesQuery): Promise<SandboxMessageView[]> {
    const rows = await this.dataSource
      .getRepository(SandboxMessageEntity)
      .find({ where: { waId }, order: { createdAt: 'ASC', id: 'ASC' }, take: 1000 });
    return rows.map((r) => ({ id: r.id, waId: r.waId, createdAt: r.createdAt, mediaId: r.mediaId, request: r.body }));
  }
}
