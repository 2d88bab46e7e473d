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
}
