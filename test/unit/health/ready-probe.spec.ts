import { describe, expect, it, jest } from '@jest/globals';
import type { FastifyReply } from 'fastify';
import type { DataSource } from 'typeorm';
import { HealthController, READY_PROBE_REUSE_MS } from '../../../src/platform/health/health.controller.js';
import type { PolicyRegistry } from '../../../src/policy/policy-registry.js';
import type { TransactionRunner } from '../../../src/platform/database/transaction-runner.js';

describe('GET /ready', () => {
  const reply = { status: () => reply } as unknown as FastifyReply;
  const controller = (query: () => Promise<unknown>) =>
    new HealthController({ query } as unknown as DataSource, { bundle: { policies: [{}], hash: 'sha256:x' } } as unknown as PolicyRegistry, { durable: true } as unknown as TransactionRunner);

  it('asks the database once for every probe within a second, however many arrive', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'setImmediate'] });
    try {
      const query = jest.fn(() => Promise.resolve([{ '?column?': 1 }]));
      const health = controller(query);
      const answers = await Promise.all(Array.from({ length: 200 }, () => health.ready(reply)));
      expect(answers.every((a) => a.status === 'ready')).toBe(true);
      expect(query).toHaveBeenCalledTimes(1);
      jest.advanceTimersByTime(READY_PROBE_REUSE_MS);
      await health.ready(reply);
      expect(query).toHaveBeenCalledTimes(2);
    } finally {
      jest.useRealTimers();
    }
  });

  it('reports a database that does not answer as not ready', async () => {
    const health = controller(() => Promise.reject(new Error('connection refused')));
    expect(await health.ready(reply)).toMatchObject({ status: 'not_ready', checks: { database: false } });
  });
});
