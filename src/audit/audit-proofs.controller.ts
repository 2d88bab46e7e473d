import { Controller, Get, Inject, Query } from '@nestjs/common';
import { RequireScope } from '../platform/auth/auth.decorators.js';
import { type FieldProblem, InvalidRequestException } from '../platform/http/problem.js';
import { AuditTreeReader, type ConsistencyProofView, type InclusionProofView } from './proofs/audit-tree-reader.js';
import { parseIndexParameter } from './proofs/query-numbers.js';
import { TransactionRunner } from '../platform/database/transaction-runner.js';

/**
 * RFC 9162 proofs over the log, served from the stored complete subtrees; hashes in standard
 * base64. Sizes go up to the latest signed checkpoint's; any size below it works, whether or not
 * a checkpoint was signed at that size.
 */
@Controller('v1/audit/proofs')
export class AuditProofsController {
  constructor(@Inject(TransactionRunner) private readonly transactions: TransactionRunner) {}

  @Get('inclusion')
  @RequireScope('audit:read')
  async inclusion(@Query('index') indexText: unknown, @Query('size') sizeText: unknown): Promise<InclusionProofView> {
    const problems: FieldProblem[] = [];
    const index = parseIndexParameter(indexText, 'index', problems, true);
    const size = parseIndexParameter(sizeText, 'size', problems, true);
    const tree = new AuditTreeReader(this.transactions.reader.manager);
    const current = (await tree.latestCheckpoint())?.size ?? 0;
    if (size !== undefined) {
      if (size === 0) problems.push({ path: 'size', message: 'size must be at least 1: an empty tree includes nothing' });
      else if (size > current) problems.push({ path: 'size', message: `size ${size} is above the current tree size ${current}` });
    }
    if (index !== undefined && size !== undefined && index >= size) problems.push({ path: 'index', message: `index must be below size (${size})` });
    if (problems.length > 0) throw new InvalidRequestException(problems);
    return tree.inclusion(index!, size!);
  }

  @Get('consistency')
  @RequireScope('audit:read')
  async consistency(@Query('from') fromText: unknown, @Query('to') toText: unknown): Promise<ConsistencyProofView> {
    const problems: FieldProblem[] = [];
    const from = parseIndexParameter(fromText, 'from', problems, true);
    const to = parseIndexParameter(toText, 'to', problems, true);
    const tree = new AuditTreeReader(this.transactions.reader.manager);
    const current = (await tree.latestCheckpoint())?.size ?? 0;
    if (from === 0) problems.push({ path: 'from', message: 'from must be at least 1: there is no consistency proof from an empty tree' });
    else if (from !== undefined && from > current) problems.push({ path: 'from', message: `from ${from} is above the current tree size ${current}` });
    if (to !== undefined && to > current) problems.push({ path: 'to', message: `to ${to} is above the current tree size ${current}` });
    if (from !== undefined && to !== undefined && to < from) problems.push({ path: 'to', message: `to must not be below from (${from})` });
    if (problems.length > 0) throw new InvalidRequestException(problems);
    return tree.consistency(from!, to!);
  }
}

