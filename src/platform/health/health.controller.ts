import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { DataSource } from 'typeorm';
import { PolicyRegistry } from '../../policy/policy-registry.js';
import { PublicRoute } from '../auth/auth.decorators.js';
import { TransactionRunner } from '../database/transaction-runner.js';

@Controller()
export class HealthController {
  constructor(
    @Inject(DataSource) private readonly dataSource: DataSource,
    @Inject(PolicyRegistry) private readonly policies: PolicyRegistry,
    @Inject(TransactionRunner) private readonly transactions: TransactionRunner,
  ) {}

  /** Liveness: the process answers. */
  @Get('health')
  @PublicRoute()
  health(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Readiness: the database answers and can make commits durable, and a policy bundle is loaded. */
  @Get('ready')
  @PublicRoute()
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<Record<string, unknown>> {
    const database =
      this.transactions.durable &&
      (await this.dataSource.query('SELECT 1').then(
        () => true,
        () => false,
      ));
    const policies = this.policies.bundle.policies.length > 0;
    const ready = database && policies;
    void reply.status(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'not_ready', checks: { database, policies, bundle: this.policies.bundle.hash } };
  }
}
