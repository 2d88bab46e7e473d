import { Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import type { TransactionRunner } from './transaction-runner.js';

/** What one shared transaction wrote: a result per item, and what to do once it has committed. */
export interface GroupResults<O> {
  results: O[];
  committed?: () => void;
}

interface Waiting<I, O> {
  item: I;
  resolve: (result: O) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: units of work submitted while a transaction of their kind is under way wait for
 * it to end, then all go into the next transaction together — one commit (one fsync, one round of
 * statements) for a burst instead of one each. `submit` resolves only after the transaction that
 * holds the item has committed. If a shared transaction fails, nothing of it was written, and each
 * of its items is tried again alone in its own transaction: a failing item fails by itself and
 * never takes the others down with it.
 */
export class GroupCommit<I, O> {
  private readonly logger = new Logger('GroupCommit');
  private queue: Waiting<I, O>[] = [];
  private inFlight = 0;

  constructor(
    private readonly transactions: TransactionRunner,
    /** Writes the items in the given transaction; returns one result per item, in order. */
    private readonly work: (manager: EntityManager, items: I[]) => Promise<GroupResults<O>>,
    private readonly options: {
      maxBatch?: number;
      /** Transactions that may run at once (each with what had arrived when it began). */
      inFlight?: number;
    } = {},
  ) {}

  submit(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.queue.push({ item, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.inFlight >= (this.options.inFlight ?? 1)) return;
    this.inFlight++;
    // After the I/O callbacks of this turn: the requests that arrived together go together.
    setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    const batch = this.queue.splice(0, this.options.maxBatch ?? 100);
    try {
      if (batch.length > 0) await this.commit(batch);
    } finally {
      this.inFlight--;
      if (this.queue.length > 0) this.schedule();
    }
  }

  private async commit(batch: Waiting<I, O>[]): Promise<void> {
    let written: GroupResults<O>;
    try {
      written = await this.transactions.run((manager) => this.work(manager, batch.map((w) => w.item)));
    } catch (error) {
      if (batch.length === 1) {
        batch[0]!.reject(error);
        return;
      }
      this.logger.warn(`a transaction of ${batch.length} failed (${(error as Error).name}); each is tried again alone`);
      for (const waiting of batch) await this.commit([waiting]);
      return;
    }
    written.committed?.();
    batch.forEach((waiting, i) => waiting.resolve(written.results[i]!));
  }
}
