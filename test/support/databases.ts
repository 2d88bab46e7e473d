import { describe } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { DatabaseConfig } from '../../src/platform/config/config.js';

/** Where throw-away PostgreSQL databases are created (a server with trust auth on loopback). */
export const POSTGRES_ADMIN_URL = process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  config: DatabaseConfig;
  /** Runs SQL as the database owner, behind the application's back. */
  adminQuery<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  drop(): Promise<void>;
}

export type Dialect = 'sqlite' | 'postgres';

/**
 * Runs a suite once per database. Without PostgreSQL a local run skips that half loudly; under
 * CI=true it never skips: the suite runs and fails on the connection error.
 */
export function describeEachDatabase(name: string, suite: (dialect: Dialect) => void): void {
  describe.each<Dialect>(['sqlite', 'postgres'])(`${name} [%s]`, (dialect) => {
    if (dialect === 'postgres' && process.env.CI !== 'true' && !postgresAvailableSync()) {
      process.stderr.write(`\n!! PostgreSQL at ${POSTGRES_ADMIN_URL} is not reachable: "${name}" [postgres] is skipped (it fails under CI=true)\n`);
      return;
    }
    suite(dialect);
  });
}

/** Decided before jest collects tests (describe bodies are synchronous): see global-setup.js. */
function postgresAvailableSync(): boolean {
  return process.env.SLUICE_TEST_POSTGRES === 'available';
}

export async function createTestDatabase(dialect: Dialect): Promise<TestDatabase> {
  if (dialect === 'sqlite') {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-test-'));
    const path = join(dir, 'sluice.db');
    const BetterSqlite3 = (await import('better-sqlite3')).default;
    return {
      config: { type: 'sqlite', path },
      async adminQuery<T>(sql: string, params: unknown[] = []) {
        const db = new BetterSqlite3(path);
        try {
          const statement = db.prepare(sql);
          return (statement.reader ? statement.all(...params) : (statement.run(...params), [])) as T[];
        } finally {
          db.close();
        }
      },
      async drop() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const name = `sluice_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL, connectionTimeoutMillis: 5000 });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    config: { type: 'postgres', url: url.toString(), poolSize: 10, connectTimeoutMs: 10_000 },
    async adminQuery<T>(sql: string, params: unknown[] = []) {
      const client = new pg.Client({ connectionString: url.toString() });
      await client.connect();
      try {
        return (await client.query(sql, params)).rows as T[];
      } finally {
        await client.end();
      }
    },
    async drop() {
      const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}
