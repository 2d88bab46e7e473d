import { Controller, Get, Inject, NotFoundException, Param, Query, StreamableFile } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { canonicalWhatsAppId, SUBJECT_ID_PATTERNS } from '../consent/subject.js';
import { RequireScope } from '../platform/auth/auth.decorators.js';
import { InvalidRequestException } from '../platform/http/problem.js';
import { SandboxMediaEntity } from './infrastructure/delivery.entities.js';
import { ListSandboxMessagesQuery, type SandboxMessageView } from './list-sandbox-messages/list-sandbox-messages.query.js';
import { TransactionRunner } from '../platform/database/transaction-runner.js';

@Controller('v1/sandbox')
export class SandboxController {
  constructor(
    @Inject(QueryBus) private readonly queries: QueryBus,
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
  ) {}

  @Get('messages')
  @RequireScope('shares:read')
  messages(@Query('waId') waId: string | undefined): Promise<SandboxMessageView[]> {
    if (typeof waId !== 'string' || !SUBJECT_ID_PATTERNS.whatsapp.test(waId)) {
      throw new InvalidRequestException([{ path: 'waId', message: 'query parameter waId is required: a phone number in international format, digits only' }]);
    }
    return this.queries.execute(new ListSandboxMessagesQuery(canonicalWhatsAppId(waId)));
  }

  /** The exact bytes of a photo or video the sandbox would have uploaded to WhatsApp. */
  @Get('media/:id')
  @RequireScope('shares:read')
  async media(@Param('id') id: string): Promise<StreamableFile> {
    const media = /^sbxmedia_[0-9a-f]{24}$/.test(id) ? await this.transactions.reader.getRepository(SandboxMediaEntity).findOneBy({ id }) : null;
    if (!media) throw new NotFoundException('No such sandbox media');
    return new StreamableFile(media.bytes, { type: media.mimeType, length: media.bytes.length });
  }
}
