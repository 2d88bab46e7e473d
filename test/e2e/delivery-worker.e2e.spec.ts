import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { AuditSequencer } from '../../src/audit/audit-sequencer.js';
import { describeEachDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, idempotencyKey, RECIPIENT, shareRequest, TAGGED_ID } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';
import { eventually } from '../support/eventually.js';

async function grantAll(sluice: RunningApp, waIds: string[]): Promise<void> {
  for (const waId of waIds) expect((await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId) })).status).toBe(201);
  for (const id of [AUTHOR_ID, TAGGED_ID]) expect((await sluice.request('POST', '/v1/consents', { body: consent('workplace', id) })).status).toBe(201);
}

describeEachDatabase('delivery worker running in the gateway', (dialect) => {
  let sluice: RunningApp;

  beforeAll(async () => {
    sluice = await startTestApp(dialect, { worker: 'on' });
    await grantAll(sluice, [RECIPIENT]);
  });
  afterAll(async () => {
    await sluice?.close();
  });

  it('delivers an accepted share by itself and records the message as sent', async () => {
    const accepted = await sluice.request('POST', '/v1/shares', { body: shareRequest(), headers: idempotencyKey() });
    expect(accepted.status).toBe(201);
    const shareId = accepted.json.id as string;

    const sent = await eventually(async () => {
      const share = (await sluice.request('GET', `/v1/shares/${shareId}`)).json;
      return share.recipients[0].delivery === 'sent' ? share : undefined;
    }, 'the worker to deliver the share');
    expect(sent.recipients).toEqual([expect.objectContaining({ waId: RECIPIENT, decision: 'allowed', delivery: 'sent' })]);

    const messages = (await sluice.request('GET', `/v1/sandbox/messages?waId=${RECIPIENT}`)).json as { request: { to: string; biz_opaque_callback_data: string } }[];
    expect(messages).toHaveLength(1);
    expect(messages[0]!.request.to).toBe(RECIPIENT);
    // As the Cloud API receives it from sluice: with the outbox id its status webhooks echo.
    const [outbox] = await sluice.database.adminQuery<{ id: string }>(`SELECT id FROM outbox_messages WHERE share_id = ${dialect === 'postgres' ? '$1' : '?'}`, [shareId]);
    expect(messages[0]!.request.biz_opaque_callback_data).toBe(outbox!.id);
    await sluice.app.get(AuditSequencer).sequenceNow();
    const sentEntries = await sluice.database.adminQuery<{ n: string | number }>(`SELECT count(*) AS n FROM audit_entries WHERE kind = 'message.sent'`);
    expect(Number(sentEntries[0]!.n)).toBe(1);
  });

  it("lists a contact's latest 1,000 sandbox messages, oldest first", async () => {
    const waId = '31687000051';
    const p = (n: number) => (dialect === 'postgres' ? `$${n}` : '?');
    for (let i = 0; i < 1001; i++) {
      const at = new Date(Date.UTC(2026, 0, 1, 0, 0, 0, i)).toISOString();
      await sluice.database.adminQuery(`INSERT INTO sandbox_messages (id, wa_id, outbox_id, body, media_id, created_at) VALUES (${p(1)}, ${p(2)}, ${p(3)}, ${p(4)}, NULL, ${p(5)})`, [
        `wamid.SANDBOXlisted${String(i).padStart(4, '0')}`,
        waId,
        `out_listed${String(i).padStart(4, '0')}`,
        '{}',
        at,
      ]);
    }
    const listed = (await sluice.request('GET', `/v1/sandbox/messages?waId=${waId}`)).json as { id: string }[];
    expect(listed).toHaveLength(1000);
    expect([listed[0]!.id, listed.at(-1)!.id]).toEqual(['wamid.SANDBOXlisted0001', 'wamid.SANDBOXlisted1000']);
  });
});

/**
 * Several replicas on one PostgreSQL database drain the same outbox at the same moment: FOR UPDATE
 * SKIP LOCKED and the claim lease must hand each row to exactly one of them.
 */
describe('replicas draining one outbox [postgres]', () => {
  const run = process.env.CI === 'true' || process.env.SLUICE_TEST_POSTGRES === 'available' ? it : it.skip;
  const replicas: RunningApp[] = [];
  afterEach(async () => {
    // Replicas first: the first one owns (and drops) the database.
    for (const replica of replicas.reverse()) await replica.close();
    replicas.length = 0;
  });

  run('sends every queued message exactly once', async () => {
    const first = await startTestApp('postgres');
    replicas.push(first);
    replicas.push(await first.startReplica(), await first.startReplica());
    const waIds = Array.from({ length: 10 }, (_, i) => `3161000${String(i).padStart(4, '0')}`);
    await grantAll(first, waIds);
    const shares = 8;
    for (let i = 0; i < shares; i++) {
      const response = await first.request('POST', '/v1/shares', { body: shareRequest({ recipients: waIds.map((waId) => ({ waId })) }), headers: idempotencyKey() });
      expect(response.status).toBe(201);
    }
    const expected = shares * waIds.length;

    const handled = await Promise.all(replicas.map((replica) => replica.drainOutbox()));
    expect(handled.reduce((a, b) => a + b, 0)).toBe(expected);
    // The outcomes are queued in the log; wait until a sequencer (any replica's) has them all.
    const deadline = Date.now() + 15_000;
    while (Number((await first.database.adminQuery<{ n: string }>(`SELECT count(*) AS n FROM audit_queue`))[0]!.n) > 0) {
      if (Date.now() > deadline) throw new Error('the audit queue did not drain');
      await first.app.get(AuditSequencer).sequenceNow();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }

    const outcomes = await first.database.adminQuery<{ outbox: string; n: string }>(
      `SELECT entry::json->>'outbox' AS outbox, count(*) AS n FROM audit_entries WHERE kind = 'message.sent' GROUP BY 1`,
    );
    expect(outcomes).toHaveLength(expected);
    expect(outcomes.every((row) => Number(row.n) === 1)).toBe(true);
    const sandbox = await first.database.adminQuery<{ n: string; outboxes: string }>(`SELECT count(*) AS n, count(DISTINCT outbox_id) AS outboxes FROM sandbox_messages`);
    expect(sandbox[0]).toEqual({ n: String(expected), outboxes: String(expected) });
    const states = await first.database.adminQuery<{ state: string; n: string }>(`SELECT state, count(*) AS n FROM outbox_messages GROUP BY state`);
    expect(states).toEqual([{ state: 'sent', n: String(expected) }]);
  });
});
