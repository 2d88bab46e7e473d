import { afterAll, beforeAll, expect, it } from '@jest/globals';
import pg from 'pg';
import { DataSource } from 'typeorm';
import { OutboxRepository } from '../../src/delivery/outbox.repository.js';
import { TransactionRunner } from '../../src/platform/database/transaction-runner.js';
import { describeEachDatabase } from '../support/databases.js';
import { eventually } from '../support/eventually.js';
import { AUTHOR_ID, consent, idempotencyKey, OTHER_RECIPIENT, RECIPIENT, shareRequest } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

const WORKER = 'lock-order-test';

/**
 * The worker settles a batch of claims with one statement per kind of outcome. Status reports
 * lock the rows they are about in id order (OutboxRepository.lockReported); if settling locked
 * them by outcome instead, a report and a settlement could each hold a row the other waits for,
 * and PostgreSQL would break the deadlock only after deadlock_timeout by failing one of them.
 */
describeEachDatabase('settling claimed messages', (dialect) => {
  let sluice: RunningApp;

  beforeAll(async () => {
    sluice = await startTestApp(dialect);
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', RECIPIENT) });
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', OTHER_RECIPIENT) });
    await sluice.request('POST', '/v1/consents', { body: consent('workplace', AUTHOR_ID) });
  });
  afterAll(async () => {
    await sluice?.close();
  });

  /** Two messages claimed by WORKER, ids in ascending order. */
  async function twoClaimedMessages(): Promise<[string, string]> {
    const share = await sluice.request('POST', '/v1/shares', { body: shareRequest({ recipients: [{ waId: RECIPIENT }, { waId: OTHER_RECIPIENT }] }), headers: idempotencyKey() });
    expect(share.status).toBe(201);
    const outbox = sluice.app.get(OutboxRepository);
    const claimed = await sluice.app.get(TransactionRunner).run((manager) => outbox.claim(manager, WORKER, 10, 60_000));
    const ids = claimed.filter((m) => m.shareId === share.json.id).map((m) => m.id).sort();
    expect(ids).toHaveLength(2);
    return [ids[0]!, ids[1]!];
  }

  function settle(first: string, second: string): Promise<Set<string>> {
    const outbox = sluice.app.get(OutboxRepository);
    // The later id is settled by the kind of outcome written first (sent before failed).
    return sluice.app.get(TransactionRunner).run((manager) =>
      outbox.settleAll(manager, WORKER, [
        { id: second, settlement: { state: 'sent', messageId: 'wamid.lock-order' } },
        { id: first, settlement: { state: 'failed', errorCode: '131026' } },
      ]),
    );
  }

  it('settles each claim with its own outcome', async () => {
    const [first, second] = await twoClaimedMessages();
    expect(await settle(first, second)).toEqual(new Set([first, second]));
    const p = dialect === 'postgres' ? (i: number) => `$${i}` : () => '?';
    const rows = await sluice.database.adminQuery<{ id: string; state: string; claimed_by: string | null }>(`SELECT id, state, claimed_by FROM outbox_messages WHERE id IN (${p(1)}, ${p(2)}) ORDER BY id`, [first, second]);
    expect(rows).toEqual([
      { id: first, state: 'failed', claimed_by: null },
      { id: second, state: 'sent', claimed_by: null },
    ]);
  });

  // SQLite runs one write transaction at a time: no row locks to take in any order.
  (dialect === 'postgres' ? it : it.skip)('locks the rows it settles in id order, as status reports do', async () => {
    const [first, second] = await twoClaimedMessages();
    const report = new pg.Client({ connectionString: (sluice.database.config as { url: string }).url });
    await report.connect();
    try {
      // A status report's transaction holds the first row...
      await report.query('BEGIN');
      await report.query('SELECT id FROM outbox_messages WHERE id = $1 FOR UPDATE', [first]);
      const settling = settle(first, second);
      // ...while the settlement waits for it,
      const pool = (sluice.app.get(DataSource).driver as unknown as { master: pg.Pool }).master;
      await eventually(async () => {
        const waiting = await pool.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%outbox_messages%' AND datname = current_database()`);
        return waiting.rows[0].n === 1 ? true : undefined;
      }, 'the settlement to wait for the row the report holds');
      // ...and then wants the second: free, as the settlement has not taken it out of order.
      await report.query('SELECT id FROM outbox_messages WHERE id = $1 FOR UPDATE NOWAIT', [second]);
      await report.query('COMMIT');
      expect(await settling).toEqual(new Set([first, second]));
    } finally {
      await report.query('ROLLBACK').catch(() => undefined);
      await report.end();
    }
  });
});
