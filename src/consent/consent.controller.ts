import { Body, Controller, Get, HttpCode, Inject, Param, Post } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { RequireScope } from '../platform/auth/auth.decorators.js';
import { InvalidRequestException } from '../platform/http/problem.js';
import { GetSubjectConsentsQuery, type SubjectConsents } from './get-subject-consents/get-subject-consents.query.js';
import { RecordConsentCommand, type ConsentRecorded } from './record-consent/record-consent.command.js';
import { RecordConsentDto } from './record-consent/record-consent.dto.js';
import { canonicalWhatsAppId, isSubjectType, SUBJECT_ID_PATTERNS, type SubjectRef } from './subject.js';

@Controller('v1')
export class ConsentController {
  constructor(
    @Inject(CommandBus) private readonly commands: CommandBus,
    @Inject(QueryBus) private readonly queries: QueryBus,
  ) {}

  @Post('consents')
  @HttpCode(201)
  @RequireScope('consents:write')
  record(@Body() dto: RecordConsentDto): Promise<ConsentRecorded> {
    return this.commands.execute(
      new RecordConsentCommand({
        subject: { type: dto.subject.type, id: dto.subject.id },
        purpose: dto.purpose,
        status: dto.status,
        evidence: { method: dto.evidence.method, text: dto.evidence.text, capturedAt: dto.evidence.capturedAt },
      }),
    );
  }

  @Get('subjects/:type/:id/consents')
  @RequireScope('consents:read')
  consents(@Param('type') type: string, @Param('id') id: string): Promise<SubjectConsents> {
    return this.queries.execute(new GetSubjectConsentsQuery(parseSubject(type, id)));
  }
}

export function parseSubject(type: string, id: string): SubjectRef {
  if (!isSubjectType(type)) {
    // Every problem named: an id no type of subject could have is one too.
    const anyType = Object.values(SUBJECT_ID_PATTERNS).some((pattern) => pattern.test(id));
    throw new InvalidRequestException([
      { path: 'type', message: 'type must be one of whatsapp, workplace' },
      ...(anyType ? [] : [{ path: 'id', message: 'id is not a valid whatsapp or workplace id' }]),
    ]);
  }
  if (!SUBJECT_ID_PATTERNS[type].test(id)) {
    throw new InvalidRequestException([{ path: 'id', message: `id is not a valid ${type} id` }]);
  }
  return { type, id: type === 'whatsapp' ? canonicalWhatsAppId(id) : id };
}
