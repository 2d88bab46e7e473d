import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { DataSource } from 'typeorm';
import { PolicyRegistry } from '../../policy/policy-registry.js';
import { PublicRoute } from '../auth/auth.decorators.js';
import { TransactionRunner } from '../database/transaction-runner.js';

/** How long a readiness probe's answer from the database is reused: anyone may call /ready, as often as they like. */
export const READY_PROBE_REUSE_MS = 1000;

@Controller()
export class HealthController {
  private probe: { startedAt: number; answered: Promise<boolean> } | undefined;

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
    const database = this.transactions.durable && (await this.databaseAnswers());
    const policies = this.policies.bundle.policies.length > 0;
    const ready = database && policies;
    void reply.status(ready ? 200 : 503);
    return { status: ready ? 'ready' : 'not_ready', checks: { database, policies, bundle: this.policies.bundle.hash } };
  }

  /** Whether the database answers: one query for every caller within READY_PROBE_REUSE_MS, so that a flood of probes cannot take the pool. */
  private databaseAnswers(): Promise<boolean> {
    const now = performance.now();
    if (!this.probe || now - this.probe.startedAt >= READY_PROBE_REUSE_MS) {
      this.probe = {
        startedAt: now,
        answered: this.dataSource.query('SELECT 1').then(
          () => true,
          () => false,
        ),
      };
    }
    return this.probe.answered;
  }
}
