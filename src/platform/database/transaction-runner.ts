import { ServiceUnavailableException } from '@nestjs/common';
import type BetterSqlite3 from 'better-sqlite3';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DataSource, EntityManager } from 'typeorm';
import { sqliteConnection } from './sql.js';
import type { WalCheckpointer } from './wal-checkpointer.js';
import type { WalSync } from './wal-sync.js';

/**
 * PostgreSQL aborts one of two transactions that wait for each other (deadlock_detected) and a
 * serializable one it cannot order (serialization_failure). Neither says anything about the
 * work: run again, it succeeds.
 */
const TRANSIENT_POSTGRES_ERRORS = new Set(['40P01', '40001']);
const POSTGRES_TRIES = 4;

function isTransient(error: unknown): boolean {
  const failed = error as { code?: unknown; driverError?: { code?: unknown } } | null;
  const code = failed?.code ?? failed?.driverError?.code;
  return typeof code === 'string' && TRANSIENT_POSTGRES_ERRORS.has(code);
}

/** Work asked of the database once it has begun to close: answered 503, as any request during shutdown. */
export class DatabaseClosingError extends ServiceUnavailableException {
  constructor() {
    super('the server is shutting down');
    this.name = 'DatabaseClosingError';
  }
}

/**
 * Runs a unit of work in one database transaction. SQLite has a single connection in TypeORM, so
 * its transactions are queued here one after another instead of colliding on that connection;
 * PostgreSQL runs them concurrently on pooled connections.
 */
export class TransactionRunner {
  private sqliteQueue: Promise<unknown> = Promise.resolve();
  /** Transactions and reads under way, waited for before the data sources close. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private closing = false;
  private writeMarks: BetterSqlite3.Statement | undefined;

  constructor(
    readonly dataSource: DataSource,
    /**
     * Where reads outside transactions go (`read`, and the read side's queries and streams):
     * SQLite's read-only second connection, which sees only what has committed, never the rows of
     * a transaction still open on the writer; else the data source itself (PostgreSQL: its pool).
     */
    readonly reader: DataSource = dataSource,
    /**
     * SQLite in the server: commits are synced to disk off the event loop (see WalSync). Without
     * it (the CLI, PostgreSQL) each COMMIT is durable when it returns.
     */
    private readonly walSync?: WalSync,
    /** SQLite in the server: WAL checkpoints run on a worker thread (see WalCheckpointer). */
    private readonly checkpointer?: WalCheckpointer,
  ) {
    checkpointer?.whenLogOutgrown((work) => this.betweenTransactions(work));
  }

  get dialect(): 'sqlite' | 'postgres' {
    return this.dataSource.options.type === 'postgres' ? 'postgres' : 'sqlite';
  }

  /**
   * Resolves once the transaction has committed durably, with what `work` returned. `work` may
   * run more than once: on PostgreSQL a transaction aborted as a deadlock is run again.
   */
  run<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.tracked(() => (this.dialect === 'postgres' ? this.runPostgres(work) : this.runSqlite(work)));
  }

  private runSqlite<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    const committed = this.sqliteQueue.then(() => this.commitSqlite(work));
    // The next transaction starts once this one has committed, while its sync is still under way.
    this.sqliteQueue = committed.catch(() => undefined);
    return committed.then(async ({ result, durable }) => {
      await durable;
      return result;
    });
  }

  /** Runs `work` on SQLite once no transaction is open; the next one waits until it has finished. */
  private betweenTransactions(work: () => Promise<unknown>): Promise<unknown> {
    const done = this.sqliteQueue.then(work);
    this.sqliteQueue = done.catch(() => undefined);
    return done;
  }

  /** False once commits can no longer be made durable (a failed WAL sync): the server is not ready. */
  get durable(): boolean {
    return !this.walSync?.failed;
  }

  /**
   * A promise that resolves once everything committed so far is durable, or undefined when it
   * already is. Whatever a reader saw may be a commit still being synced: answers wait for this.
   */
  untilDurable(): Promise<void> | undefined {
    return this.walSync?.pending() ? this.walSync.allCommitted() : undefined;
  }

  /**
   * Reads outside any transaction. SQLite's writer connection is shared: a read on it can land
   * between the statements of an open transaction and see rows that may yet roll back, so with a
   * read-only connection (the server has one) SQLite reads there, the last commit in WAL mode;
   * PostgreSQL reads on any pooled connection.
   */
  read<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.tracked(() => work(this.reader.manager));
  }

  /**
   * Refuses new work from now on (DatabaseClosingError), waits for every transaction and read
   * under way, and closes what the runner opened. The caller closes the data source after it.
   */
  async close(): Promise<void> {
    this.closing = true;
    while (this.inFlight.size > 0) await Promise.allSettled(this.inFlight);
    // The WAL checkpointer's work between transactions, queued while they ran.
    for (let queue = this.sqliteQueue; ; queue = this.sqliteQueue) {
      await queue;
      if (queue === this.sqliteQueue) break;
    }
    await this.checkpointer?.stop();
    await this.walSync?.close();
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

  private tracked<T>(work: () => Promise<T>): Promise<T> {
    if (this.closing) return Promise.reject(new DatabaseClosingError());
    const running = work();
    this.inFlight.add(running);
    void running.then(
      () => this.inFlight.delete(running),
      () => this.inFlight.delete(running),
    );
    return running;
  }

  private async runPostgres<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    for (let tries = 1; ; tries++) {
      try {
        return await this.dataSource.transaction(work);
      } catch (error) {
        if (tries >= POSTGRES_TRIES || !isTransient(error)) throw error;
        // Apart by a random few milliseconds, so that the two do not meet at the same point again.
        await sleep(tries * 10 + Math.random() * 20);
      }
    }
  }

  private async commitSqlite<T>(work: (manager: EntityManager) => Promise<T>): Promise<{ result: T; durable: Promise<void> | undefined }> {
    if (!this.walSync) return { result: await this.dataSource.transaction(work), durable: undefined };
    // The level can only change outside a transaction; statements run outside `run` (start-up,
    // the CLI) keep FULL.
    const connection = sqliteConnection(this.dataSource);
    this.writeMarks ??= connection.prepare('SELECT total_changes() AS changes, (SELECT schema_version FROM pragma_schema_version) AS schema');
    const before = this.writeMarks.get() as WriteMarks;
    connection.pragma('synchronous = NORMAL');
    let result: T;
    try {
      result = await this.dataSource.transaction(work);
    } finally {
      connection.pragma('synchronous = FULL');
    }
    const after = this.writeMarks.get() as WriteMarks;
    // A transaction that wrote nothing added nothing to the WAL: it starts no sync of its own (the
    // sequencer and the delivery worker poll in transactions that mostly find nothing to do), but
    // what it read may be a commit still being synced, so it still waits for those.
    const wrote = after.changes !== before.changes || after.schema !== before.schema;
    return { result, durable: wrote ? this.walSync.committed() : this.walSync.allCommitted() };
  }
}

/** What SQLite counts of the writer connection's writes: rows inserted, updated or deleted, and schema changes. */
interface WriteMarks {
  changes: number;
  schema: number;
}
