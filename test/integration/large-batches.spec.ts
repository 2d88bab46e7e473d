import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { SubjectKeyService } from '../../src/audit/subject-keys.service.js';
import { ConsentLedger } from '../../src/consent/consent-ledger.js';
import { TransactionRunner } from '../../src/platform/database/transaction-runner.js';
import { describeEachDatabase } from '../support/databases.js';
import { consent } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

const number = (i: number) => `3168${String(i).padStart(7, '0')}`;

/**
 * Lookups merged from many concurrent requests, or one group commit of many shares, can name more
 * people than one statement can bind: they are read in groups, never refused as a whole (which
 * would deny every share of the batch).
 */
describeEachDatabase('lookups over more subjects than one statement binds', (dialect) => {
  /** More subjects than the database binds as parameters of one statement (SQLite 32,766, PostgreSQL 65,535). */
  const MANY = dialect === 'sqlite' ? 33_000 : 66_000;
  let sluice: RunningApp;

  beforeAll(async () => {
    sluice = await startTestApp(dialect);
    for (const i of [5, MANY - 1]) expect((await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', number(i)) })).status).toBe(201);
  });
  afterAll(async () => {
    await sluice?.close();
  });

  it('reads the consent of every subject', async () => {
    const subjects = Array.from({ length: MANY }, (_, i) => ({ type: 'whatsapp' as const, id: number(i) }));
    const found = await sluice.app.get(ConsentLedger).lookup(subjects, 'frontline-updates');
    expect(found.size).toBe(MANY);
    expect([...found.values()].filter((status) => status === 'granted')).toHaveLength(2);
    expect(found.get(`whatsapp:${number(MANY - 1)}`)).toBe('granted');
  });

  it('reads, creates and touches the keys of every subject in one transaction', async () => {
    const subjects = Array.from({ length: MANY }, (_, i) => ({ type: 'whatsapp', id: number(i) }));
    const keys = sluice.app.get(SubjectKeyService);
    const transactions = sluice.app.get(TransactionRunner);
    const first = await transactions.run(async (manager) => (await keys.keysFor(manager, subjects, await keys.read(manager, subjects))).pseudonym(subjects.at(-1)!));
    await sluice.database.adminQuery(`UPDATE subject_keys SET last_used_at = '2020-01-01T00:00:00.000Z'`);
    const again = await transactions.run(async (manager) => (await keys.keysFor(manager, subjects)).pseudonym(subjects.at(-1)!));
    expect(again).toBe(first);
    const [{ stale }] = await sluice.database.adminQuery<{ stale: number | string }>(`SELECT COUNT(*) AS stale FROM subject_keys WHERE last_used_at < '2021-01-01'`);
    expect(Number(stale)).toBe(0);
  });
});
