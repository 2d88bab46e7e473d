import { afterAll, beforeAll, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { DataSource } from 'typeorm';
import { verifyBundle } from '../../src/audit/verifier/bundle-verifier.js';
import { describeEachDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, idempotencyKey, RECIPIENT, shareRequest, TAGGED_ID } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

/**
 * A database that cannot serve for a while (every pooled PostgreSQL connection taken, SQLite's
 * file locked by another process) is not a fault of sluice: the request is answered 503 with
 * Retry-After, nothing of it is written, and the same request succeeds once the database serves.
 */
describeEachDatabase('A database that cannot serve', (dialect) => {
  let sluice: RunningApp;

  beforeAll(async () => {
    // PostgreSQL: one pooled connection, waited for at most 300 ms.
    sluice = await startTestApp(dialect, { env: dialect === 'postgres' ? { DATABASE_POOL_SIZE: '1', DATABASE_CONNECT_TIMEOUT_MS: '300' } : {} });
    for (const [type, id] of [['whatsapp', RECIPIENT], ['workplace', AUTHOR_ID], ['workplace', TAGGED_ID]] as const) {
      expect((await sluice.request('POST', '/v1/consents', { body: consent(type, id) })).status).toBe(201);
    }
  });
  afterAll(async () => {
    await sluice?.close();
  });

  /** Takes the database away from the gateway until the returned function is called. */
  async function holdDatabase(): Promise<() => Promise<void>> {
    if (sluice.config.database.type === 'postgres') {
      // The pool's only connection, held in an open transaction.
      const runner = sluice.app.get(DataSource).createQueryRunner();
      await runner.connect();
      await runner.startTransaction();
      return async () => {
        await runner.rollbackTransaction();
        await runner.release();
      };
    }
    // Another process's write transaction: SQLite's busy timeout runs out on the gateway's write.
    const other = new Database(sluice.config.database.path);
    other.exec('BEGIN IMMEDIATE');
    return async () => {
      other.exec('ROLLBACK');
      other.close();
    };
  }

  const count = async (sql: string) => Number((await sluice.database.adminQuery<{ n: number | string }>(sql))[0]!.n);

  it(
    'answers 503 with Retry-After, writes nothing, and takes the same share once the database serves again',
    async () => {
      const body = shareRequest();
      const key = idempotencyKey();
      const tables = ['shares', 'share_recipients', 'outbox_messages', 'audit_queue', 'audit_entries'];
      const rows = async () => Promise.all(tables.map((table) => count(`SELECT COUNT(*) AS n FROM ${table}`)));
      const before = await rows();

      const release = await holdDatabase();
      let refused;
      try {
        refused = await sluice.request('POST', '/v1/shares', { body, headers: key });
      } finally {
        await release();
      }
      expect([refused.status, refused.headers.get('retry-after')]).toEqual([503, '2']);
      expect(refused.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(refused.json).toMatchObject({ type: 'urn:sluice:problem:database-unavailable', status: 503, retryAfter: 2 });

      expect(await rows()).toEqual(before);

      const retried = await sluice.request('POST', '/v1/shares', { body, headers: key });
      expect([retried.status, retried.json.status]).toEqual([201, 'accepted']);
      const bundle = await sluice.request('GET', '/v1/audit/export');
      const publicKey = (await sluice.request('GET', '/v1/audit/public-key')).text.trim();
      const report = await verifyBundle(Buffer.from(bundle.text, 'utf8'), { publicKey });
      expect([report.ok, report.failure]).toEqual([true, null]);
    },
    30_000,
  );
});
