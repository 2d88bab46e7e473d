import { Controller, Get, HttpCode, Inject, Param, Post, Query, Res } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import type { FastifyReply } from 'fastify';
import { parseSubject } from '../consent/consent.controller.js';
import { RequireScope } from '../platform/auth/auth.decorators.js';
import { InvalidRequestException } from '../platform/http/problem.js';
import { EraseSubjectCommand, type SubjectErased } from './erase-subject/erase-subject.command.js';
import { GetSubjectReportQuery } from './get-subject-report/get-subject-report.query.js';
import { renderSubjectReportHtml } from './get-subject-report/subject-report.html.js';

@Controller('v1/subjects')
export class SubjectsController {
  constructor(
    @Inject(CommandBus) private readonly commands: CommandBus,
    @Inject(QueryBus) private readonly queries: QueryBus,
  ) {}

  /** Subject access (Art. 15): JSON, or a readable page with `?format=html`. */
  @Get(':type/:id/report')
  @RequireScope('audit:read')
  async report(@Param('type') type: string, @Param('id') id: string, @Query('format') format: string | undefined, @Res() reply: FastifyReply): Promise<void> {
    if (format !== undefined && format !== 'json' && format !== 'html') {
      throw new InvalidRequestException([{ path: 'format', message: 'format must be json or html' }]);
    }
    const report = await this.queries.execute(new GetSubjectReportQuery(parseSubject(type, id)));
    if (format === 'html') void reply.header('content-type', 'text/html; charset=utf-8').send(renderSubjectReportHtml(report));
    else void reply.header('content-type', 'application/json; charset=utf-8').send(JSON.stringify(report));
  }

  /** Erasure (Art. 17) by crypto-shredding. */
  @Post(':type/:id/erase')
  @HttpCode(200)
  @RequireScope('subjects:erase')
  erase(@Param('type') type: string, @Param('id') id: string): Promise<SubjectErased> {
    return this.commands.execute(new EraseSubjectCommand(parseSubject(type, id)));
  }
}
