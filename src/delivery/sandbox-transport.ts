import { Inject, Injectable } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { TransactionRunner } from '../platform/database/transaction-runner.js';
import { SandboxMediaEntity, SandboxMessageEntity } from './infrastructure/delivery.entities.js';
import type { WhatsAppMessageRequest } from './whatsapp-message.js';
import type { SendContext, SendOutcome, WhatsAppTransport } from './whatsapp-transport.js';

/**
 * Records each message exactly as the Cloud API would have received it instead of sending it,
 * so anyone can see what would cross (GET /v1/sandbox/messages). Media are "uploaded" as the
 * Cloud API would take them: the recorded request names the uploaded copy's id.
 */
@Injectable()
export class SandboxTransport implements WhatsAppTransport {
  readonly reachesWhatsApp = false;

  constructor(@Inject(TransactionRunner) private readonly transactions: TransactionRunner) {}

  async send(request: WhatsAppMessageRequest, context: SendContext): Promise<SendOutcome> {
    // A retry after an unknown outcome finds the first recording instead of making a second one
    // (or being withheld: that copy went out). The last check runs outside the transaction, whose
    // connection it would otherwise hold while waiting for another from the same pool.
    const recorded = await this.transactions.read((manager) => manager.getRepository(SandboxMessageEntity).findOneBy({ outboxId: context.outboxId }));
    if (recorded) return { ok: true, messageId: recorded.id };
    const withheld = await context.withholdReason?.();
    if (withheld !== undefined) return { ok: false, withheld };
    return this.transactions.run(async (manager) => {
      const earlier = await manager.getRepository(SandboxMessageEntity).findOneBy({ outboxId: context.outboxId });
      if (earlier) return { ok: true, messageId: earlier.id };
      const { body, mediaId } = await this.upload(manager, request, context);
      const messageId = `wamid.SANDBOX${randomBytes(18).toString('base64url')}`;
      // As the Cloud API client sends it: with the outbox id WhatsApp echoes in status webhooks.
      const sent = { ...body, biz_opaque_callback_data: context.outboxId };
      await manager.getRepository(SandboxMessageEntity).insert({ id: messageId, waId: request.to, outboxId: context.outboxId, body: sent, mediaId, createdAt: new Date().toISOString() });
      return { ok: true, messageId };
    });
  }

  private async upload(manager: EntityManager, request: WhatsAppMessageRequest, context: SendContext): Promise<{ body: WhatsAppMessageRequest; mediaId: string | null }> {
    if (request.type !== 'image' && request.type !== 'video') return { body: request, mediaId: null };
    if (!context.media) throw new Error('a media message without its media');
    const id = `sbxmedia_${randomBytes(12).toString('hex')}`;
    await manager.getRepository(SandboxMediaEntity).insert({ id, outboxId: context.outboxId, mimeType: context.media.mimeType, bytes: context.media.bytes, createdAt: new Date().toISOString() });
    const body: WhatsAppMessageRequest =
      request.type === 'image' ? { ...request, image: { ...request.image, id } } : { ...request, video: { ...request.video, id } };
    return { body, mediaId: id };
  }
}
