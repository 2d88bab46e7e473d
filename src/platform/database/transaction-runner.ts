import type { DataSource, EntityManager } from 'typeorm';

/**
 * Runs a unit of work in one database transaction. SQLite has a single connection in TypeORM, so
 * its transactions are queued here one after another instead of colliding on that connection;
 * PostgreSQL runs them concurrently on pooled connections.
 */
export class TransactionRunner {
  private sqliteQueue: Promise<unknown> = Promise.resolve();

  constructor(readonly dataSource: DataSource) {}

  get dialect(): 'sqlite' | 'postgres' {
    return this.dataSource.options.type === 'postgres' ? 'postgres' : 'sqlite';
  }

  run<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    if (this.dialect === 'postgres') return this.dataSource.transaction(work);
    const result = this.sqliteQueue.then(() => this.dataSource.transaction(work));
    this.sqliteQueue = result.catch(() => undefined);
    return result;
  }

  /**
   * Holds a named lock until the transaction ends, across replicas (PostgreSQL advisory lock on
   * the name's hash; SQLite transactions are one at a time already). For read-then-write steps
   * that must not interleave, e.g. two requests with one idempotency key.
   */
  async exclusive(manager: EntityManager, name: string): Promise<void> {
    if (this.dialect === 'postgres') await manager.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [name]);
  }
}
