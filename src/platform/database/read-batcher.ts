import type { EntityManager } from 'typeorm';
import type { TransactionRunner } from './transaction-runner.js';

interface Waiting<K, V> {
  key: K;
  resolve: (value: V) => void;
  reject: (error: unknown) => void;
}

/**
 * Coalesces the reads that requests arriving together ask for (in one turn of the event loop)
 * into one query: under load, fifty concurrent shares make one round trip for their lookups
 * instead of fifty. Reads committed data only (TransactionRunner.read).
 */
export class ReadBatcher<K, V> {
  private waiting: Waiting<K, V>[] = [];

  constructor(
    private readonly transactions: TransactionRunner,
    /** Looks up every key at once; returns one value per key, in order. */
    private readonly load: (manager: EntityManager, keys: K[]) => Promise<V[]>,
    private readonly maxBatch = 200,
  ) {}

  get(key: K): Promise<V> {
    return new Promise<V>((resolve, reject) => {
      this.waiting.push({ key, resolve, reject });
      if (this.waiting.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (let i = 0; i < waiting.length; i += this.maxBatch) {
      const batch = waiting.slice(i, i + this.maxBatch);
      void this.transactions.read((manager) => this.load(manager, batch.map((w) => w.key))).then(
        (values) => batch.forEach((w, j) => w.resolve(values[j]!)),
        (error: unknown) => batch.forEach((w) => w.reject(error)),
      );
    }
  }
}
