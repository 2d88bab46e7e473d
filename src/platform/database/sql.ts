import type BetterSqlite3 from 'better-sqlite3';
import type pg from 'pg';
import type { DataSource, EntityManager } from 'typeorm';

export type SqlDialect = 'sqlite' | 'postgres';

/**
 * Values per IN list: far below what either database binds in one statement (SQLite 32,766
 * parameters, PostgreSQL 65,535), however many lists the requests of one batch bring together.
 */
export const IN_LIST_MAX = 1000;

/** The items in consecutive groups of at most `size`. */
export function inGroupsOf<T>(items: readonly T[], size = IN_LIST_MAX): T[][] {
  const groups: T[][] = [];
  for (let i = 0; i < items.length; i += size) groups.push(items.slice(i, i + size));
  return groups;
}

/** Prepared statements per SQLite connection; texts with a varying number of parameters come and go. */
const statements = new WeakMap<BetterSqlite3.Database, Map<string, BetterSqlite3.Statement>>();
const STATEMENTS_KEPT = 500;

/** The one better-sqlite3 connection of a SQLite data source (TypeORM's drivers expose it as `databaseConnection`). */
export function sqliteConnection(dataSource: DataSource): BetterSqlite3.Database {
  return (dataSource.driver as unknown as { databaseConnection: BetterSqlite3.Database }).databaseConnection;
}

/**
 * Plain SQL for the hot paths (a share, the audit sequencer). TypeORM's find and query builders
 * spend around 100 µs assembling each statement, more than SQLite takes to run it, and its query
 * runner adds its own layers to every round trip. Here SQLite runs a cached prepared statement
 * directly on its one connection (the transaction's: TypeORM began it there), synchronously;
 * PostgreSQL sends the text on the transaction's client, or on the pool outside a transaction.
 * Parameters are `$1, $2, ...` on PostgreSQL and `?` on SQLite.
 *
 * Statements run in the order their methods are called, whether or not the caller waits in
 * between: SQLite runs each before its method returns, and on PostgreSQL each method sends its
 * statement after exactly one wait (for the transaction's client), so calls made one after another
 * reach the client in that order. See `pipelined` for steps that need not wait for each other.
 */
export class Sql {
  private constructor(
    readonly dialect: SqlDialect,
    private readonly sqlite: BetterSqlite3.Database | undefined,
  ) {}

  static of(manager: EntityManager): Sql {
    if (manager.dataSource.options.type === 'postgres') return new Sql('postgres', undefined);
    return new Sql('sqlite', sqliteConnection(manager.dataSource));
  }

  /**
   * Runs steps of one transaction that do not need each other's results, in the order given.
   * On PostgreSQL each starts without waiting for the one before, so that their statements go out
   * together in one round trip (the connections are pipelined, see createDataSource); a step
   * must therefore be calls of this class's methods, which keep their order (a TypeORM call
   * waits more often and could overtake). On SQLite one after another, so that a failure stops the
   * rest, as some errors end SQLite's transaction and what ran after them would run outside it.
   * Settles only once every started step has: a step still running after another failed would
   * send its next statement on a connection its failed transaction had given back to the pool.
   */
  async pipelined<T extends readonly unknown[]>(...steps: { [K in keyof T]: () => Promise<T[K]> }): Promise<T> {
    if (this.sqlite) {
      const results: unknown[] = [];
      for (const step of steps) results.push(await step());
      return results as unknown as T;
    }
    const started = steps.map((step) => {
      try {
        return step();
      } catch (error) {
        return Promise.reject(error);
      }
    });
    const settled = await Promise.allSettled(started);
    const failed = settled.find((outcome): outcome is PromiseRejectedResult => outcome.status === 'rejected');
    if (failed) throw failed.reason;
    return settled.map((outcome) => (outcome as PromiseFulfilledResult<unknown>).value) as unknown as T;
  }

  /** `count` parameters starting at number `first`, comma-separated. */
  params(count: number, first = 1): string {
    if (this.dialect === 'sqlite') return count === 0 ? '' : `?${', ?'.repeat(count - 1)}`;
    return Array.from({ length: count }, (_, i) => `$${first + i}`).join(', ');
  }

  /** The rows a statement yields (a SELECT, or RETURNING). */
  async rows<T>(manager: EntityManager, text: string, params: readonly unknown[] = []): Promise<T[]> {
    if (this.sqlite) return this.prepared(text).all(...params) as T[];
    return (await this.postgres(manager, text, params)).rows as T[];
  }

  /** Runs a statement that yields no rows. */
  async execute(manager: EntityManager, text: string, params: readonly unknown[] = []): Promise<void> {
    if (this.sqlite) this.prepared(text).run(...params);
    else await this.postgres(manager, text, params);
  }

  /**
   * Inserts rows (values in `columns` order): one statement per row on SQLite (in process, no
   * round trips to save), multi-row statements on PostgreSQL. With `conflict`, rows whose key is
   * taken are skipped (ON CONFLICT DO NOTHING) and the inserted ones are returned as `returning`
   * selects, if given; PostgreSQL waits for a concurrent transaction holding the same key to end.
   */
  async insert(
    manager: EntityManager,
    table: string,
    columns: readonly string[],
    rows: readonly unknown[][],
    conflict?: { on: readonly string[]; returning?: readonly string[] },
  ): Promise<Record<string, unknown>[]> {
    const returning = conflict?.returning ? ` RETURNING ${conflict.returning.join(', ')}` : '';
    const tail = conflict ? ` ON CONFLICT (${conflict.on.join(', ')}) DO NOTHING${returning}` : '';
    const head = `INSERT INTO ${table} (${columns.join(', ')}) VALUES `;
    if (this.sqlite) {
      const returned: Record<string, unknown>[] = [];
      const statement = this.prepared(`${head}(${this.params(columns.length)})${tail}`);
      for (const row of rows) {
        if (returning) returned.push(...(statement.all(...row) as Record<string, unknown>[]));
        else statement.run(...row);
      }
      return returned;
    }
    // PostgreSQL takes at most 65535 parameters per statement.
    const perStatement = Math.max(1, Math.floor(60_000 / columns.length));
    const chunks: (() => Promise<Record<string, unknown>[]>)[] = [];
    for (let i = 0; i < rows.length; i += perStatement) {
      const chunk = rows.slice(i, i + perStatement);
      const values = chunk.map((_, r) => `(${this.params(columns.length, r * columns.length + 1)})`).join(', ');
      chunks.push(() => this.rows<Record<string, unknown>>(manager, `${head}${values}${tail}`, chunk.flat()));
    }
    return (await this.pipelined(...chunks)).flat();
  }

  /**
   * Inserts into several tables, in the order given: on PostgreSQL in one statement (each insert
   * but the last a data-modifying WITH clause; a foreign key to a row of an earlier clause holds,
   * since they all run before the statement's constraints are checked), one round trip instead of
   * one per table; on SQLite one after another. Tables without rows are left out.
   */
  async insertAll(manager: EntityManager, inserts: readonly { table: string; columns: readonly string[]; rows: readonly unknown[][] }[]): Promise<void> {
    const present = inserts.filter((insert) => insert.rows.length > 0);
    const parameters = present.reduce((sum, insert) => sum + insert.rows.length * insert.columns.length, 0);
    if (this.sqlite || present.length < 2 || parameters > 60_000) {
      await this.pipelined(...present.map(({ table, columns, rows }) => () => this.insert(manager, table, columns, rows)));
      return;
    }
    const values: unknown[] = [];
    const statements = present.map(({ table, columns, rows }) => {
      const tuples = rows.map((row) => {
        const tuple = `(${this.params(columns.length, values.length + 1)})`;
        values.push(...row);
        return tuple;
      });
      return `INSERT INTO ${table} (${columns.join(', ')}) VALUES ${tuples.join(', ')}`;
    });
    const last = statements.pop()!;
    await this.postgres(manager, `WITH ${statements.map((statement, i) => `inserted_${i} AS (${statement})`).join(', ')} ${last}`, values);
  }

  /**
   * Runs statements without parameters in order and returns the rows of each: on PostgreSQL as
   * one round trip (a simple query of several statements, each with its own snapshot), on SQLite
   * one after another.
   */
  async batch(manager: EntityManager, texts: readonly string[]): Promise<Record<string, unknown>[][]> {
    if (this.sqlite) return texts.map((text) => this.sqliteRows(text));
    const result = (await this.postgres(manager, texts.join(';\n'), [])) as pg.QueryResult | pg.QueryResult[];
    return (Array.isArray(result) ? result : [result]).map((r) => r.rows as Record<string, unknown>[]);
  }

  private sqliteRows(text: string): Record<string, unknown>[] {
    const statement = this.prepared(text);
    if (statement.reader) return statement.all() as Record<string, unknown>[];
    statement.run();
    return [];
  }

  private async postgres(manager: EntityManager, text: string, params: readonly unknown[]): Promise<pg.QueryResult> {
    // A transaction's manager holds its query runner, connected since TypeORM sent BEGIN on it;
    // TypeORM's PostgreSQL driver keeps its pool as `master`.
    const client: pg.ClientBase | pg.Pool = manager.queryRunner
      ? ((await manager.queryRunner.connect()) as pg.ClientBase)
      : (manager.dataSource.driver as unknown as { master: pg.Pool }).master;
    return client.query(text, params as unknown[]);
  }

  private prepared(text: string): BetterSqlite3.Statement {
    const connection = this.sqlite!;
    let cache = statements.get(connection);
    if (!cache) statements.set(connection, (cache = new Map()));
    let statement = cache.get(text);
    if (!statement) {
      statement = connection.prepare(text);
      cache.set(text, statement);
      if (cache.size > STATEMENTS_KEPT) cache.delete(cache.keys().next().value!);
    }
    return statement;
  }
}
