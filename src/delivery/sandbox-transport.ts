import { Inject, Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import { SandboxMessageEntity } from './infrastructure/delivery.entities.js';
import type { WhatsAppMessageRequest } from './whatsapp-message.js';
import type { SendContext, WhatsAppTransport } from './whatsapp-transport.js';

/**
 * Records each message exactly as the Cloud API would have received it instead of sending it,
 * so anyone can see what would cross (GET /v1/sandbox/messages).
 */
@Injectable()
export class SandboxTransport implements WhatsAppTransport {
  constructor(@Inject(DataSource) private readonly dataSource: DataSource) {}

  async send(request: WhatsAppMessageRequest, context: SendContext): Promise<{ messageId: string }> {
    const repo = this.dataSource.getRepository(SandboxMessageEntity);
    // A retry after an unknown outcome finds the first recording instead of making a second one.
    const earlier = await repo.findOneBy({ outboxId: context.outboxId });
    if (earlier) return { messageId: earlier.id };
    const messageId = `wamid.SANDBOX${randomBytes(18).toString('base64url')}`;
    await repo.insert({
      id: messageId,
      waId: request.to,
      outboxId: context.outboxId,
      body: request,
      mediaId: null,
      createdAt: new Date().toISOString(),
    });
    return { messageId };
  }
}
