import type { DataSource, EntityManager } from 'typeorm';

/**
 * Runs a unit of work in one database transaction. SQLite has a single connection in TypeORM, so
 * its transactions are queued here one after another instead of colliding on that connection;
 * PostgreSQL runs them concurrently on pooled connections.
 */
export class TransactionRunner {
  private sqliteQueue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly dataSource: DataSource,
    /** Where `read` reads: SQLite's read-only second connection, else the data source itself (PostgreSQL: its pool). */
    private readonly reader: DataSource = dataSource,
  ) {}

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
   * Reads outside any transaction. SQLite's writer connection is shared: a read on it can land
   * between the statements of an open transaction and see rows that may yet roll back, so with a
   * read-only connection (the server has one) SQLite reads there, the last commit in WAL mode;
   * PostgreSQL reads on any pooled connection.
   */
  read<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return work(this.reader.manager);
  }

  async close(): Promise<void> {
    if (this.reader !== this.dataSource && this.reader.isInitialized) await this.reader.destroy();
  }

  /**
   * Holds a named lock until the transaction ends, across replicas (PostgreSQL advisory lock on
   * the name's hash; SQLite transactions are one at a time already). For read-then-write steps
   * that must not interleave, e.g. two erasures of one subject.
   */
  async exclusive(manager: EntityManager, name: string): Promise<void> {
    if (this.dialect === 'postgres') await manager.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [name]);
  }
}
