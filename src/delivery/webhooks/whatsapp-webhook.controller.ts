import { Controller, ForbiddenException, Get, HttpCode, Inject, Logger, Post, Query, Req, Res } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { createHash, timingSafeEqual } from 'node:crypto';
import { PublicRoute, SignedRoute } from '../../platform/auth/auth.decorators.js';
import { jsonBodyProblems } from '../../platform/http/json-body.js';
import { InvalidRequestException } from '../../platform/http/problem.js';
import { SLUICE_CONFIG, type SluiceConfig } from '../../platform/config/config.js';
import { BodyLimit, WEBHOOK_BODY_LIMIT } from '../../platform/http/body-limits.js';
import { ReceiveInboundMessagesCommand } from '../receive-inbound-messages/receive-inbound-messages.command.js';
import { RecordDeliveryStatusesCommand } from '../record-delivery-statuses/record-delivery-statuses.command.js';
import { SIGNATURE_FORM } from './webhook-signature.js';
import { readNotification } from './whatsapp-notification.js';

/**
 * WhatsApp's webhook (the Meta app's "messages" field). No API key: Meta cannot send one. The
 * handshake proves the verify token; every delivery must carry X-Hub-Signature-256 over its exact
 * bytes, or it is refused with 401 before anything is read or recorded.
 */
@Controller('v1/webhooks/whatsapp')
export class WhatsAppWebhookController {
  private readonly logger = new Logger('WhatsAppWebhook');

  constructor(
    @Inject(SLUICE_CONFIG) private readonly config: SluiceConfig,
    @Inject(CommandBus) private readonly commands: CommandBus,
  ) {}

  @Get()
  @PublicRoute()
  verify(
    @Query('hub.mode') mode: unknown,
    @Query('hub.verify_token') token: unknown,
    @Query('hub.challenge') challenge: unknown,
    @Res({ passthrough: true }) reply: FastifyReply,
  ): string {
    const expected = this.config.whatsapp.verifyToken;
    if (
      expected === undefined ||
      mode !== 'subscribe' ||
      typeof token !== 'string' ||
      !sameSecret(token, expected) ||
      typeof challenge !== 'string' ||
      !/^[\x21-\x7e]{1,256}$/.test(challenge)
    ) {
      throw new ForbiddenException('The webhook verification handshake failed');
    }
    void reply.header('content-type', 'text/plain; charset=utf-8');
    return challenge;
  }

  @Post()
  @SignedRoute('X-Hub-Signature-256', SIGNATURE_FORM, 'whatsapp')
  @HttpCode(200)
  @BodyLimit(WEBHOOK_BODY_LIMIT)
  async receive(@Req() request: FastifyRequest): Promise<void> {
    // The signature was checked against the bytes before they were parsed (authenticateBeforeBody,
    // through @SignedRoute): an unsigned body is refused for that, whatever it holds.
    const problems = jsonBodyProblems(request.body);
    if (problems.length > 0) throw new InvalidRequestException(problems);
    const notification = readNotification(request.body, this.config.whatsapp.cloudApi?.phoneNumberId);
    if (notification.skipped > 0) this.logger.warn(`left out ${notification.skipped} webhook item(s) not shaped as documented`);
    // Inbound first: an opt-out cancels queued messages before any status of this delivery is read.
    await this.commands.execute(new ReceiveInboundMessagesCommand(notification.messages));
    await this.commands.execute(new RecordDeliveryStatusesCommand(notification.statuses));
  }
}

/** Compares two secrets in constant time whatever their lengths (digests first). */
function sameSecret(given: string, expected: string): boolean {
  const digest = (text: string) => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(given), digest(expected));
}
