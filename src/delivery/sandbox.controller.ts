import { Controller, Get, Inject, Query } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { SUBJECT_ID_PATTERNS } from '../consent/subject.js';
import { RequireScope } from '../platform/auth/auth.decorators.js';
import { InvalidRequestException } from '../platform/http/problem.js';
import { ListSandboxMessagesQuery, type SandboxMessageView } from './list-sandbox-messages/list-sandbox-messages.query.js';

@Controller('v1/sandbox')
export class SandboxController {
  constructor(@Inject(QueryBus) private readonly queries: QueryBus) {}

  @Get('messages')
  @RequireScope('shares:read')
  messages(@Query('waId') waId: string | undefined): Promise<SandboxMessageView[]> {
    if (typeof waId !== 'string' || !SUBJECT_ID_PATTERNS.whatsapp.test(waId)) {
      throw new InvalidRequestException([{ path: 'waId', message: 'query parameter waId is required: a phone number in international format, digits only' }]);
    }
    return this.queries.execute(new ListSandboxMessagesQuery(waId));
  }
}
