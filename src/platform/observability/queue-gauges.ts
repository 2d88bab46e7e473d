import { Inject, Injectable, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { type BatchObservableCallback, metrics, type Observable } from '@opentelemetry/api';
import { TransactionRunner } from '../database/transaction-runner.js';
import { METER_NAME } from './metrics.js';

/**
 * The backlogs, observed when the metric reader collects (never when metrics are off): messages
 * waiting in the outbox, entries waiting for the audit sequencer, and the age of the oldest of
 * those (the sequencer's lag). Plain SQL on the outbox and audit queue tables, by name, because
 * platform/ may not import the bounded contexts that own them.
 */
@Injectable()
export class QueueGauges implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly meter = metrics.getMeter(METER_NAME);
  private readonly observables: Observable[];
  private readonly observe: BatchObservableCallback;

  constructor(@Inject(TransactionRunner) transactions: TransactionRunner) {
    // Counted as committed (the SQLite reader), never with an open transaction's rows.
    const dataSource = transactions.reader;
    const outbox = this.meter.createObservableGauge('sluice.outbox.messages', { description: 'Outbox messages not yet delivered, by state (pending, claimed)', unit: '{message}' });
    const queue = this.meter.createObservableGauge('sluice.audit.queue.depth', { description: 'Audit entries queued and not yet sequenced into the log', unit: '{entry}' });
    const lag = this.meter.createObservableGauge('sluice.audit.sequencer.lag', { description: 'Age of the oldest audit entry not yet sequenced (0 when none waits)', unit: 's' });
    this.observables = [outbox, queue, lag];
    this.observe = async (result) => {
      const states = await dataSource.query<{ state: string; n: number | string }[]>(
        `SELECT state, COUNT(*) AS n FROM outbox_messages WHERE state IN ('pending', 'claimed') GROUP BY state`,
      );
      for (const state of ['pending', 'claimed']) {
        result.observe(outbox, Number(states.find((row) => row.state === state)?.n ?? 0), { 'sluice.outbox.state': state });
      }
      const [waiting] = await dataSource.query<{ n: number | string; oldest: string | null }[]>('SELECT COUNT(*) AS n, MIN(queued_at) AS oldest FROM audit_queue');
      result.observe(queue, Number(waiting?.n ?? 0));
      result.observe(lag, waiting?.oldest ? Math.max(0, (Date.now() - Date.parse(waiting.oldest)) / 1000) : 0);
    };
  }

  onApplicationBootstrap(): void {
    this.meter.addBatchObservableCallback(this.observe, this.observables);
  }

  /** Before the database closes (application shutdown), so a last collection does not query it. */
  onModuleDestroy(): void {
    this.meter.removeBatchObservableCallback(this.observe, this.observables);
  }
}
