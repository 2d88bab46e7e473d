import { Controller, Get, Header, Inject, NotFoundException, Query, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { Readable } from 'node:stream';
import { Between } from 'typeorm';
import { RequireScope } from '../platform/auth/auth.decorators.js';
import { type FieldProblem, InvalidRequestException } from '../platform/http/problem.js';
import { AuditLogService } from './audit-log.service.js';
import { AuditEntryEntity } from './infrastructure/audit.entities.js';
import { parseIndexParameter } from './proofs/query-numbers.js';
import { TransactionRunner } from '../platform/database/transaction-runner.js';

const ENTRIES_PAGE = 500;

@Controller('v1/audit')
export class AuditController {
  constructor(
    @Inject(AuditLogService) private readonly auditLog: AuditLogService,
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
  ) {}

  /** The latest signed checkpoint, a C2SP signed note. */
  @Get('checkpoint')
  @RequireScope('audit:read')
  @Header('content-type', 'text/plain; charset=utf-8')
  async checkpoint(): Promise<string> {
    const latest = await this.auditLog.latestCheckpoint();
    // A valid request that finds nothing yet (a log begins with the first policy.activated entry).
    if (!latest) throw new NotFoundException('The log has no signed checkpoint yet');
    return latest.note;
  }

  @Get('public-key')
  @RequireScope('audit:read')
  @Header('content-type', 'text/plain; charset=utf-8')
  publicKey(): string {
    return `${this.auditLog.publicVerifierKey()}\n`;
  }

  /** NDJSON of { index, entry } with entry the exact canonical text that was hashed. */
  @Get('entries')
  @RequireScope('audit:read')
  async entries(@Query('from') fromText: string | undefined, @Query('to') toText: string | undefined, @Res() reply: FastifyReply): Promise<void> {
    // Decimal digits only, as the proof and export routes read their indices: `from=` or
    // `from=1e2` is a mistake to name, not a number to guess.
    const problems: FieldProblem[] = [];
    const from = parseIndexParameter(fromText, 'from', problems) ?? 0;
    const to = parseIndexParameter(toText, 'to', problems);
    if (to !== undefined && to < from) problems.push({ path: 'to', message: 'to must not be below from' });
    if (problems.length > 0) throw new InvalidRequestException(problems);

    const size = (await this.auditLog.latestCheckpoint())?.treeSize ?? 0;
    const end = Math.min(to === undefined ? size : to + 1, size);
    const repo = this.transactions.reader.getRepository(AuditEntryEntity);
    // Streamed page by page, so memory stays flat however long the range.
    async function* pages(): AsyncGenerator<string> {
      for (let start = from; start < end; start += ENTRIES_PAGE) {
        const rows = await repo.find({
          select: { index: true, entry: true },
          where: { index: Between(start, Math.min(start + ENTRIES_PAGE, end) - 1) },
          order: { index: 'ASC' },
        });
        yield rows.map((row) => `${JSON.stringify({ index: row.index, entry: row.entry })}\n`).join('');
      }
    }
    void reply.header('content-type', 'application/x-ndjson').send(Readable.from(pages()));
  }
}
