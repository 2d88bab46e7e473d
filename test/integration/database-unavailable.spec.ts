import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { QueryFailedError } from 'typeorm';
import { isDatabaseUnavailable } from '../../src/platform/database/database-unavailable.js';
import { POSTGRES_ADMIN_URL } from '../support/databases.js';

/** The error a promise rejects with (the test fails if it resolves). */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a failure');
    },
    (error: unknown) => error,
  );
}

/** The error a synchronous call throws (undefined if it returns). */
function thrownBy(call: () => unknown): unknown {
  try {
    call();
    return undefined;
  } catch (error) {
    return error;
  }
}

/** Real driver errors, told apart: the database cannot serve now (503), or the statement is wrong (a fault). */
describe('isDatabaseUnavailable', () => {
  describe('PostgreSQL', () => {
    it('holds for a wait for a free pooled connection that runs out', async () => {
      const pool = new pg.Pool({ connectionString: POSTGRES_ADMIN_URL, max: 1, connectionTimeoutMillis: 100 });
      const held = await pool.connect();
      try {
        expect(isDatabaseUnavailable(await rejection(pool.connect()))).toBe(true);
        expect(isDatabaseUnavailable(await rejection(pool.query('SELECT 1')))).toBe(true);
      } finally {
        held.release();
        await pool.end();
      }
    });

    it('holds for a refused connection', async () => {
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const { port } = closed.address() as { port: number };
      await new Promise((resolve) => closed.close(resolve));
      const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${port}/postgres` });
      expect(isDatabaseUnavailable(await rejection(client.connect()))).toBe(true);
    });

    it('holds for a connection ended by the server (admin shutdown), wrapped by TypeORM', async () => {
      const victim = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await victim.connect();
      victim.on('error', () => undefined);
      const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await admin.connect();
      try {
        const [{ pid }] = (await victim.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows as [{ pid: number }];
        await admin.query('SELECT pg_terminate_backend($1)', [pid]);
        const error = await rejection(victim.query('SELECT 1'));
        expect(isDatabaseUnavailable(error)).toBe(true);
        expect(isDatabaseUnavailable(new QueryFailedError('SELECT 1', [], error as Error))).toBe(true);
      } finally {
        await admin.end();
        await victim.end().catch(() => undefined);
      }
    });

    it('does not hold for a wrong statement or a broken constraint', async () => {
      const client = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await client.connect();
      try {
        const syntax = await rejection(client.query('SELEC 1'));
        expect(isDatabaseUnavailable(syntax)).toBe(false);
        expect(isDatabaseUnavailable(new QueryFailedError('SELEC 1', [], syntax as Error))).toBe(false);
        await client.query('CREATE TEMP TABLE t (id int PRIMARY KEY)');
        await client.query('INSERT INTO t VALUES (1)');
        expect(isDatabaseUnavailable(await rejection(client.query('INSERT INTO t VALUES (1)')))).toBe(false);
      } finally {
        await client.end();
      }
    });
  });

  describe('SQLite', () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'sluice-unavailable-'));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('holds for a file another connection keeps locked past the busy timeout', () => {
      const path = join(dir, 'busy.db');
      const holder = new Database(path);
      holder.pragma('journal_mode = WAL');
      holder.exec('CREATE TABLE t (id INTEGER PRIMARY KEY)');
      const gateway = new Database(path);
      gateway.pragma('busy_timeout = 0');
      holder.exec('BEGIN IMMEDIATE');
      const error = thrownBy(() => gateway.prepare('INSERT INTO t VALUES (1)').run());
      holder.exec('ROLLBACK');
      holder.close();
      gateway.close();
      expect((error as { code?: unknown }).code).toMatch(/^SQLITE_BUSY/);
      expect(isDatabaseUnavailable(error)).toBe(true);
    });

    it('does not hold for a broken constraint', () => {
      const db = new Database(join(dir, 'constraint.db'));
      db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY); INSERT INTO t VALUES (1)');
      const error = thrownBy(() => db.prepare('INSERT INTO t VALUES (1)').run());
      db.close();
      expect((error as { code?: unknown }).code).toBe('SQLITE_CONSTRAINT_PRIMARYKEY');
      expect(isDatabaseUnavailable(error)).toBe(false);
    });
  });

  it('does not hold for errors that are not the database’s', () => {
    expect(isDatabaseUnavailable(new TypeError('x is undefined'))).toBe(false);
    expect(isDatabaseUnavailable(undefined)).toBe(false);
  });
});
