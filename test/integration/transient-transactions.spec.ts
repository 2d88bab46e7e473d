import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type { EntityManager } from 'typeorm';
import { TransactionRunner } from '../../src/platform/database/transaction-runner.js';
import { expectConsistentLog } from '../support/audit-log.js';
import { describeEachDatabase } from '../support/databases.js';
import { consent } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

/**
 * PostgreSQL aborts one of two transactions that wait for each other: a request whose
 * transaction it picks must not fail for it. The transaction is run again; any other failure is
 * not.
 */
describeEachDatabase('transactions aborted as deadlocks', (dialect) => {
  let sluice: RunningApp;
  let transactions: TransactionRunner;

  beforeAll(async () => {
    sluice = await startTestApp(dialect, { worker: 'off' });
    transactions = sluice.app.get(TransactionRunner);
    await sluice.database.adminQuery('CREATE TABLE deadlock_probe (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)');
    await sluice.database.adminQuery('INSERT INTO deadlock_probe (id, n) VALUES (1, 0), (2, 0)');
  });
  afterAll(async () => {
    await sluice?.close();
  });

  it('runs a transaction that failed for another reason once, and passes its error on', async () => {
    let runs = 0;
    const failing = transactions.run(async (manager) => {
      runs++;
      await manager.query('INSERT INTO deadlock_probe (id, n) VALUES (1, 0)');
    });
    await expect(failing).rejects.toThrow(/unique|duplicate/i);
    expect(runs).toBe(1);
  });

  it('gives up on a transaction aborted as a deadlock every time, after four runs on PostgreSQL', async () => {
    let runs = 0;
    const deadlocked = transactions.run(async () => {
      runs++;
      throw Object.assign(new Error('deadlock detected'), { code: '40P01' });
    });
    await expect(deadlocked).rejects.toThrow('deadlock detected');
    expect(runs).toBe(dialect === 'postgres' ? 4 : 1);
  });

  if (dialect === 'postgres') {
    it('runs the transaction PostgreSQL aborts in a real deadlock again: both commit, each once', async () => {
      let runs = 0;
      const locked: Record<number, () => void> = {};
      const holds = { 1: new Promise<void>((r) => (locked[1] = r)), 2: new Promise<void>((r) => (locked[2] = r)) };
      // Each locks one row, waits until the other has locked the other row, then wants that one.
      const crossing = (first: 1 | 2, second: 1 | 2) => async (manager: EntityManager) => {
        runs++;
        await manager.query('UPDATE deadlock_probe SET n = n + 1 WHERE id = $1', [first]);
        locked[first]!();
        await holds[second];
        await manager.query('UPDATE deadlock_probe SET n = n + 1 WHERE id = $1', [second]);
      };
      await Promise.all([transactions.run(crossing(1, 2)), transactions.run(crossing(2, 1))]);
      expect(runs).toBe(3);
      expect(await sluice.database.adminQuery('SELECT id, n FROM deadlock_probe ORDER BY id')).toEqual([
        { id: 1, n: 2 },
        { id: 2, n: 2 },
      ]);
    });

    it('answers a consent whose transaction is aborted as a deadlock once 201, recorded and audited once', async () => {
      await sluice.database.adminQuery('CREATE SEQUENCE deadlock_once');
      await sluice.database.adminQuery(
        `CREATE FUNCTION deadlock_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF nextval('deadlock_once') = 1 THEN RAISE EXCEPTION 'deadlock detected' USING ERRCODE = '40P01'; END IF; RETURN NEW; END $$`,
      );
      await sluice.database.adminQuery('CREATE TRIGGER deadlock_once BEFORE INSERT ON consent_events FOR EACH ROW EXECUTE FUNCTION deadlock_once()');
      try {
        const response = await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', '31611112222') });
        expect(response.status).toBe(201);
        expect(await sluice.database.adminQuery(`SELECT nextval('deadlock_once') AS n`)).toEqual([{ n: '3' }]);
        expect(await sluice.database.adminQuery('SELECT count(*)::int AS n FROM consent_events')).toEqual([{ n: 1 }]);
        const history = (await sluice.request('GET', '/v1/subjects/whatsapp/31611112222/consents')).json.history;
        expect(history).toHaveLength(1);
        await expectConsistentLog(sluice.database);
      } finally {
        await sluice.database.adminQuery('DROP TRIGGER deadlock_once ON consent_events');
      }
    });
  }
});
