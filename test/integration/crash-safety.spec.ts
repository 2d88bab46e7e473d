import { afterEach, beforeAll, expect, it } from '@jest/globals';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudApiSimulator } from '../simulator/cloud-api-simulator.js';
import { createTestDatabase, describeEachDatabase, type TestDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, shareRequest, workplacePost } from '../support/fixtures.js';
import { gatewayEnv, startGatewayProcess } from '../support/gateway-process.js';
import { ensureBuilt } from '../support/build.js';
import { eventually } from '../support/eventually.js';

type Entry = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- audit entries are asserted on as JSON
interface OutboxRow {
  id: string;
  share_id: string;
  state: string;
  attempts: number;
  message_id: string | null;
}

/** A real SIGKILL needs a real process: the built server, started as an operator would. */
beforeAll(() => {
  ensureBuilt();
}, 120_000);

describeEachDatabase('crash safety: SIGKILL while messages are in flight', (dialect) => {
  const servers: ChildProcess[] = [];
  let simulator: CloudApiSimulator | undefined;
  let database: TestDatabase | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'sluice-data-'));

  afterEach(async () => {
    for (const server of servers) if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    await simulator?.close();
    await database?.drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('loses nothing, sends again only what it cannot know was sent, and audits every attempt', async () => {
    simulator = await CloudApiSimulator.start();
    database = await createTestDatabase(dialect);
    const apiKey = `test-${randomBytes(24).toString('hex')}`;
    // Margins wide enough for a busy machine: B's held attempts must not time out before the
    // kill (that would end them as unknown and send again before the crash), and their claims
    // must outlive the restart until the status webhooks have settled two of them (an expired
    // claim is taken and sent again). The other two are sent again once the claims expire.
    const env = gatewayEnv(database, dataDir, apiKey, {
      ...simulator.sluiceEnv(),
      DELIVERY_WORKER: 'on',
      DELIVERY_POLL_MS: '50',
      WHATSAPP_SEND_RATE: '1000',
      WHATSAPP_TIMEOUT_MS: '6000',
      DELIVERY_LEASE_MS: '15000',
      DELIVERY_RETRY_BASE_MS: '50',
    });
    const start = async () => {
      const started = await startGatewayProcess(env);
      servers.push(started.server);
      simulator!.webhookUrl = `${started.baseUrl}/v1/webhooks/whatsapp`;
      return started;
    };
    let sluice = await start();
    const call = async (method: string, path: string, body?: unknown) => {
      const response = await fetch(`${sluice.baseUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${apiKey}`, ...(body ? { 'content-type': 'application/json', 'idempotency-key': randomBytes(8).toString('hex') } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
      return response.json() as Promise<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any -- asserted on as JSON
    };
    const p = (n: number) => (dialect === 'postgres' ? `$${n}` : '?');
    const outbox = () => database!.adminQuery<OutboxRow>(`SELECT id, share_id, state, attempts, message_id FROM outbox_messages ORDER BY share_id, wa_id`);

    const contacts = Array.from({ length: 4 }, (_, i) => `3165000000${i}`);
    await call('POST', '/v1/consents', consent('workplace', AUTHOR_ID));
    for (const waId of contacts) {
      await call('POST', '/v1/consents', consent('whatsapp', waId));
      await simulator.receiveText(waId, 'hi');
    }
    const shareTo = async () => (await call('POST', '/v1/shares', shareRequest({ post: workplacePost({ message: 'Shift starts at 7.', message_tags: [] }), recipients: contacts.map((waId) => ({ waId })) }))).id as string;

    // A: sent and recorded before the crash.
    const settled = await shareTo();
    await eventually(async () => ((await outbox()).every((r) => r.state === 'sent') ? true : undefined), 'the first share to be sent');

    // B: WhatsApp takes the messages but its answers are held; C: decided while B is in flight.
    simulator.hold();
    const inFlight = await shareTo();
    await eventually(async () => (simulator!.held === contacts.length ? true : undefined), 'the second share to be in flight');
    const held = simulator.messages.slice(-contacts.length);
    const pending = await shareTo();

    sluice.server.kill('SIGKILL');
    await once(sluice.server, 'exit');
    simulator.release(); // those answers reach nobody: sluice never learns how B's attempts ended

    sluice = await start();
    // WhatsApp's status webhooks for two of B's messages reach the restarted gateway.
    const reported = held.slice(0, 2);
    for (const message of reported) await simulator.sendStatus(message, 'sent');

    const rows = await eventually(async () => {
      const all = await outbox();
      const queued = await database!.adminQuery<{ n: number | string }>('SELECT count(*) AS n FROM audit_queue');
      return all.every((r) => r.state === 'sent' || r.state === 'failed') && Number(queued[0]!.n) === 0 ? all : undefined;
    }, 'every message to end and its entries to be sequenced');
    const entries = (await database.adminQuery<{ entry: string }>(`SELECT entry FROM audit_entries WHERE kind LIKE ${p(1)} ORDER BY idx`, ['message.%'])).map((r) => JSON.parse(r.entry) as Entry);

    // Nothing lost: every allowed (share, recipient) ended, sent.
    expect(rows).toHaveLength(3 * contacts.length);
    expect(rows.every((r) => r.state === 'sent')).toBe(true);
    for (const shareId of [settled, inFlight, pending]) {
      expect((await call('GET', `/v1/shares/${shareId}`)).recipients.map((r: { delivery: string }) => r.delivery)).toEqual(contacts.map(() => 'sent'));
    }

    for (const row of rows) {
      const about = entries.filter((e) => e.outbox === row.id);
      const copies = simulator.messages.filter((m) => m.outboxId === row.id);
      // Exactly once in sluice's records: one final entry per message.
      expect(about.filter((e) => e.kind === 'message.sent' || (e.kind === 'message.failed' && e.final)).length).toBe(1);
      // Every attempt audited, each once.
      expect(about.filter((e) => e.attempt !== undefined).map((e) => e.attempt as number).sort((a, b) => a - b)).toEqual(Array.from({ length: row.attempts }, (_, i) => i + 1));
      // A second copy only ever follows an attempt whose outcome was unknown.
      expect(copies.length).toBeLessThanOrEqual(row.attempts);
      expect(about.filter((e) => e.delivered === 'unknown').length).toBeGreaterThanOrEqual(copies.length - 1);
      expect(copies.map((c) => c.wamid)).toContain(row.message_id);
    }

    const byShare = (shareId: string) => rows.filter((r) => r.share_id === shareId);
    const copiesOf = (row: OutboxRow) => simulator!.messages.filter((m) => m.outboxId === row.id).length;
    // Recorded before the crash, or never started: sent once.
    for (const row of [...byShare(settled), ...byShare(pending)]) {
      expect([row.attempts, copiesOf(row)]).toEqual([1, 1]);
    }
    // In flight at the crash: settled by a status webhook when one came (no second copy), else sent again.
    for (const row of byShare(inFlight)) {
      const about = entries.filter((e) => e.outbox === row.id);
      if (reported.some((m) => m.outboxId === row.id)) {
        expect([row.attempts, copiesOf(row)]).toEqual([1, 1]);
        expect(about.find((e) => e.kind === 'message.sent')).toMatchObject({ attempt: 1, confirmedBy: 'status_webhook' });
      } else {
        expect([row.attempts, copiesOf(row)]).toEqual([2, 2]);
        expect(about.find((e) => e.attempt === 1)).toMatchObject({ kind: 'message.failed', final: false, delivered: 'unknown', error: 'delivery.outcome_unknown' });
        expect(about.find((e) => e.attempt === 2)).toMatchObject({ kind: 'message.sent' });
      }
    }
  }, 90_000);
});
