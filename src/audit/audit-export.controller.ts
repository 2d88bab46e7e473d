import { Controller, Get, Inject, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { Readable } from 'node:stream';
import { RequireScope } from '../platform/auth/auth.decorators.js';
import { type FieldProblem, InvalidRequestException } from '../platform/http/problem.js';
import { AuditLogService } from './audit-log.service.js';
import { AuditExporter } from './export/audit-exporter.js';
import { parseIndexParameter } from './proofs/query-numbers.js';
import type { BundleFormat } from './verifier/bundle-format.js';
import { TransactionRunner } from '../platform/database/transaction-runner.js';

const CONTENT_TYPES: Record<BundleFormat, string> = {
  ndjson: 'application/x-ndjson',
  csv: 'text/csv; charset=utf-8; header=present',
};

/** The DPO's export: a bundle to verify offline with `npx sluice audit verify` (docs/audit-export.md). */
@Controller('v1/audit')
export class AuditExportController {
  constructor(
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
  ) {}

  @Get('export')
  @RequireScope('audit:read')
  async export(
    @Query('since') sinceText: unknown,
    @Query('until') untilText: unknown,
    @Query('format') formatText: unknown,
    @Query('consistencyFrom') consistencyFromText: unknown,
    @Res() reply: FastifyReply,
  ): Promise<void> {
    const problems: FieldProblem[] = [];
    const since = parseIndexParameter(sinceText, 'since', problems);
    const until = parseIndexParameter(untilText, 'until', problems);
    const consistencyFrom = parseIndexParameter(consistencyFromText, 'consistencyFrom', problems);
    const format = formatText ?? 'ndjson';
    if (format !== 'ndjson' && format !== 'csv') problems.push({ path: 'format', message: 'format must be ndjson or csv' });
    if (problems.length > 0) throw new InvalidRequestException(problems);

    const exporter = new AuditExporter(this.transactions.reader.manager, this.auditLog.publicVerifierKey());
    const prepared = await exporter.prepare({ since, until, format: format as BundleFormat, consistencyFrom });
    if ('problems' in prepared) throw new InvalidRequestException(prepared.problems);
    const { header } = prepared.plan;
    void reply
      .header('content-type', CONTENT_TYPES[prepared.plan.format])
      .header('content-disposition', `attachment; filename="sluice-audit-${header.since}-${header.until}.${prepared.plan.format}"`)
      .send(Readable.from(exporter.stream(prepared.plan)));
  }
}
