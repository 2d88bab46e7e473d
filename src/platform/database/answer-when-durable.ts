import type { FastifyInstance } from 'fastify';
import type { TransactionRunner } from './transaction-runner.js';

/** The health probes show no data, and must still answer after a failed sync (readiness says so). */
const PROBES = new Set(['/health', '/ready']);

/**
 * Holds the answers to reads until what they may show is on disk. A SQLite commit is visible to
 * readers before its sync has finished (WalSync): without this, a read could answer with a share,
 * a consent or a signed checkpoint that a power cut then takes back — and a checkpoint shown and
 * then lost would let the log fork. The writing routes answer once their own transaction is
 * durable, which covers everything committed before it; where one answers from an earlier
 * commit instead (an idempotent replay) it waits itself. Costs nothing when no sync is under way;
 * after a failed sync, reads fail (500) like writes.
 */
export function answerReadsWhenDurable(fastify: FastifyInstance, transactions: TransactionRunner): void {
  fastify.addHook('onSend', (request, _reply, payload, done) => {
    const reads = (request.method === 'GET' || request.method === 'HEAD') && !PROBES.has(request.routeOptions.url ?? '');
    const durable = reads ? transactions.untilDurable() : undefined;
    if (!durable) return done(null, payload);
    durable.then(
      () => done(null, payload),
      (error: Error) => done(error),
    );
  });
}
