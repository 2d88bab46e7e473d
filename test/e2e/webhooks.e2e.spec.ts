import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { createHmac, randomUUID } from 'node:crypto';
import pg from 'pg';
import sharp from 'sharp';
import { AuditSequencer } from '../../src/audit/audit-sequencer.js';
import { DeliveryWorker } from '../../src/delivery/delivery-worker.js';
import { CloudApiSimulator, type ReceivedMessage } from '../simulator/cloud-api-simulator.js';
import { describeEachDatabase } from '../support/databases.js';
import { eventually } from '../support/eventually.js';
import { AUTHOR_ID, consent, idempotencyKey, shareRequest, workplacePost } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

type Entry = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- audit entries are asserted on as JSON

describeEachDatabase('WhatsApp webhooks', (dialect) => {
  let simulator: CloudApiSimulator;
  let sluice: RunningApp;
  let nextContact = 0;
  let contact: string;

  beforeAll(async () => {
    simulator = await CloudApiSimulator.start();
    sluice = await startTestApp(dialect, { cloudApi: simulator, env: { WHATSAPP_SEND_RATE: '1000', DELIVERY_RETRY_BASE_MS: '20', DELIVERY_MAX_ATTEMPTS: '3', DELIVERY_ACCOUNT_PAUSE_MS: '20' } });
    await grant('workplace', AUTHOR_ID);
  });
  afterAll(async () => {
    await sluice?.close();
    await simulator?.close();
  });
  beforeEach(async () => {
    contact = `3164${dialect === 'sqlite' ? 1 : 2}${String(++nextContact).padStart(5, '0')}`;
    await grant('whatsapp', contact);
  });

  const webhookUrl = () => `${sluice.baseUrl}/v1/webhooks/whatsapp`;
  const grant = async (type: 'whatsapp' | 'workplace', id: string, purpose = 'frontline-updates', status: 'granted' | 'withdrawn' = 'granted') =>
    expect((await sluice.request('POST', '/v1/consents', { body: consent(type, id, status, purpose) })).status).toBe(201);
  const consentsOf = async (waId: string) => (await sluice.request('GET', `/v1/subjects/whatsapp/${waId}/consents`)).json as { current: { purpose: string; status: string }[]; history: { status: string; evidence: Record<string, unknown> }[] };
  const queueShare = async (waId: string) => {
    const response = await sluice.request('POST', '/v1/shares', { body: shareRequest({ post: workplacePost({ message: 'Shift starts at 7.', message_tags: [] }), recipients: [{ waId }] }), headers: idempotencyKey() });
    expect(response.json.status).toBe('accepted');
    return response.json.id as string;
  };
  const deliveryOf = async (shareId: string) => (await sluice.request('GET', `/v1/shares/${shareId}`)).json.recipients[0] as { delivery: string; deliveryError?: string };
  const entries = async (): Promise<Entry[]> => {
    await sluice.app.get(AuditSequencer).sequenceNow();
    return (await sluice.request('GET', '/v1/audit/entries')).text.split('\n').filter(Boolean).map((l) => JSON.parse(JSON.parse(l).entry) as Entry);
  };
  /** Everything a webhook could have written, read in one statement (the sequencer moves entries from the queue to the log meanwhile). */
  const footprint = async () =>
    (
      await sluice.database.adminQuery(
        `SELECT (SELECT count(*) FROM audit_entries) + (SELECT count(*) FROM audit_queue) AS audit,
                (SELECT count(*) FROM consent_events) AS consents,
                (SELECT count(*) FROM whatsapp_inbound_messages) AS inbound,
                (SELECT count(*) FROM whatsapp_contacts) AS contacts,
                (SELECT count(*) FROM outbox_messages WHERE state = 'cancelled') AS cancelled`,
      )
    )[0];
  /**
   * The contact granted frontline-updates and shift-alerts and had `queued` waiting: both are now
   * withdrawn by evidence `method`, and the message cancelled `via`, each audited (shift-alerts,
   * which no shipped policy names, as `(unlisted)`). Returns the log.
   */
  const expectEnded = async (queued: string, method: string, via: string): Promise<Entry[]> => {
    const consents = await consentsOf(contact);
    expect(consents.current.map((c) => [c.purpose, c.status])).toEqual([
      ['frontline-updates', 'withdrawn'],
      ['shift-alerts', 'withdrawn'],
    ]);
    expect(consents.history.at(-1)!.evidence).toMatchObject({ method });
    expect((await deliveryOf(queued)).delivery).toBe('cancelled');
    const log = await entries();
    const cancelled = log.filter((e) => e.kind === 'message.cancelled' && e.share === queued);
    expect(cancelled).toEqual([expect.objectContaining({ reason: 'recipient.consent_withdrawn', via })]);
    const withdrawn = log.filter((e) => e.kind === 'consent.withdrawn' && e.evidence.method === method && e.subject === cancelled[0]!.recipient);
    expect(withdrawn.map((e) => e.purpose).sort()).toEqual(['(unlisted)', 'frontline-updates']);
    return log;
  };
  /** Shares a message to the contact and has it sent, so status reports have something to be about. */
  const sentMessage = async (): Promise<{ shareId: string; message: ReceivedMessage }> => {
    await simulator.receiveText(contact, 'hi');
    const shareId = await queueShare(contact);
    await sluice.drainOutbox();
    expect((await deliveryOf(shareId)).delivery).toBe('sent');
    return { shareId, message: simulator.messagesTo(contact).at(-1)! };
  };

  describe('verification handshake', () => {
    const handshake = (query: string) => fetch(`${webhookUrl()}?${query}`);

    it('echoes the challenge to the holder of the verify token, without an API key', async () => {
      const response = await handshake(`hub.mode=subscribe&hub.verify_token=${encodeURIComponent(simulator.verifyToken)}&hub.challenge=1158201444`);
      expect(response.status).toBe(200);
      expect(await response.text()).toBe('1158201444');
    });

    it.each([
      ['a wrong token', 'hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1'],
      ['no token', 'hub.mode=subscribe&hub.challenge=1'],
      ['another mode', 'hub.mode=unsubscribe&hub.verify_token=TOKEN&hub.challenge=1'],
      ['no challenge', 'hub.mode=subscribe&hub.verify_token=TOKEN'],
    ])('refuses %s with 403', async (_label, query) => {
      expect((await handshake(query.replace('TOKEN', encodeURIComponent(simulator.verifyToken)))).status).toBe(403);
    });
  });

  describe('signatures', () => {
    const stop = () => JSON.stringify(simulator.notification({ messages: [{ from: contact, id: `wamid.forged${contact}`, timestamp: String(Math.floor(Date.now() / 1000)), type: 'text', text: { body: 'STOP' } }] }));
    const post = (body: string, signature?: string) =>
      fetch(webhookUrl(), { method: 'POST', headers: { 'content-type': 'application/json', ...(signature !== undefined ? { 'x-hub-signature-256': signature } : {}) }, body });

    it.each<[string, (body: string) => [string, string | undefined]]>([
      ['no signature', (body) => [body, undefined]],
      ['a signature under another secret', (body) => [body, `sha256=${createHmac('sha256', 'not-the-app-secret').update(body).digest('hex')}`]],
      ['a signature of other bytes', (body) => [body.replace('STOP', 'stop'), simulator.signature(body)]],
      ['a re-serialised body', (body) => [JSON.stringify(JSON.parse(body), null, 1), simulator.signature(body)]],
      ['a malformed signature', (body) => [body, 'sha256=zz']],
    ])('refuses a delivery with %s (401) and records nothing', async (_label, tamper) => {
      const before = await footprint();
      const [body, signature] = tamper(stop());
      const response = await post(body, signature);
      expect(response.status).toBe(401);
      expect(await footprint()).toEqual(before);
      expect((await consentsOf(contact)).current).toEqual([expect.objectContaining({ purpose: 'frontline-updates', status: 'granted' })]);
    });

    it.each<[string, string, Record<string, string>]>([
      ['a number beyond a double', '{"a":1e400}', { 'content-type': 'application/json' }],
      ['malformed JSON', '{"a":', { 'content-type': 'application/json' }],
      ['no content type', '{"a":1}', {}],
      ['a body over the limit', `{"a":"${'x'.repeat(4 * 1024 * 1024)}"}`, { 'content-type': 'application/json' }],
    ])('refuses an unsigned delivery of %s with 401, not for what it holds', async (_label, body, headers) => {
      const response = await fetch(webhookUrl(), { method: 'POST', headers, body });
      expect(response.status).toBe(401);
      expect(((await response.json()) as { detail: string }).detail).toBe('X-Hub-Signature-256 is missing or does not match the body');
    });

    it('refuses a delivery not signed by the app secret with 401 before it looks at the body, and a signed one that is not I-JSON with 400', async () => {
      const body = '{"object":"whatsapp_business_account","entry":[{"id":"1","value":1e400}]}';
      expect((await post(body, `sha256=${createHmac('sha256', 'not-the-app-secret').update(body).digest('hex')}`)).status).toBe(401);
      const signed = await post(body, simulator.signature(body));
      expect(signed.status).toBe(400);
      expect(((await signed.json()) as { errors: { path: string }[] }).errors).toEqual([expect.objectContaining({ path: 'entry.0.value' })]);
    });

    it('checks the signature against the bytes before any parser reads them: a wrongly signed body that is not JSON gets 401', async () => {
      // 3 MiB of nesting cost a third of a second of JSON.parse, for anyone, before the 401.
      const nested = '['.repeat(1_500_000) + ']'.repeat(1_500_000);
      for (const body of ['{"a":', nested]) {
        const wrong = await post(body, `sha256=${createHmac('sha256', 'not-the-app-secret').update(body).digest('hex')}`);
        expect([wrong.status, ((await wrong.json()) as { detail: string }).detail]).toEqual([401, 'X-Hub-Signature-256 is missing or does not match the body']);
      }
      const signed = await post('{"a":', simulator.signature('{"a":'));
      expect(signed.status).toBe(400);
    });

    it('takes a correctly signed delivery without an API key', async () => {
      const body = stop();
      expect((await post(body, simulator.signature(body))).status).toBe(200);
      expect((await consentsOf(contact)).current).toEqual([expect.objectContaining({ status: 'withdrawn' })]);
    });

    it('answers 200 to a signed delivery it does not understand, and records nothing', async () => {
      const before = await footprint();
      const body = JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: '1', changes: [{ field: 'account_update', value: {} }] }] });
      expect((await post(body, simulator.signature(body))).status).toBe(200);
      expect(await footprint()).toEqual(before);
    });
  });

  it('answers a STOP once its withdrawals are in the log: an access report asked for right after shows them', async () => {
    await simulator.receiveText(contact, 'STOP');
    const [queue] = await sluice.database.adminQuery<{ queued: number | string }>('SELECT count(*) AS queued FROM audit_queue');
    expect(Number(queue!.queued)).toBe(0);
    const report = (await sluice.request('GET', `/v1/subjects/whatsapp/${contact}/report`)).json as { consents: { status: string; evidence: string }[] };
    expect(report.consents.map((c) => [c.status, c.evidence])).toEqual([
      ['granted', 'form'],
      ['withdrawn', 'whatsapp-opt-out'],
    ]);
  });

  describe('erasure', () => {
    it("leaves no copy of WhatsApp's message ids, which hold the number in base64, in the log or the tables", async () => {
      const { message } = await sentMessage();
      await simulator.sendStatus(message, 'delivered');
      // Another message's copy failed with a retryable code: it waits to be sent again.
      const { message: failed } = await sentMessage();
      await simulator.sendStatus(failed, 'failed', { errorCode: 131056 });
      const inbound = await simulator.receiveText(contact, 'thanks');
      const base64Number = Buffer.from(contact, 'latin1').toString('base64').slice(0, 12);
      for (const id of [message.wamid, failed.wamid, inbound]) expect(id).toContain(base64Number);
      expect((await sluice.request('POST', `/v1/subjects/whatsapp/${contact}/erase`)).status).toBe(200);
      const tables = ['outbox_messages', 'whatsapp_inbound_messages', 'whatsapp_contacts', 'share_recipients', 'audit_entries', 'audit_queue'];
      for (const table of tables) {
        const rows = JSON.stringify(await sluice.database.adminQuery(`SELECT * FROM ${table}`));
        for (const text of [contact, message.wamid, failed.wamid, inbound, base64Number]) expect(rows).not.toContain(text);
      }
      // A status for the erased contact's message matches nothing any more.
      const before = await footprint();
      await simulator.sendStatus(message, 'read');
      expect(await footprint()).toEqual(before);
    });
  });

  describe('status reports', () => {
    it('records sent, delivered and read per recipient, and audits each step once', async () => {
      const { shareId, message } = await sentMessage();
      for (const status of ['delivered', 'read', 'read', 'delivered', 'sent'] as const) await simulator.sendStatus(message, status);
      expect((await deliveryOf(shareId)).delivery).toBe('read');
      const reported = (await entries()).filter((e) => e.kind === 'message.status' && e.share === shareId);
      expect(reported.map((e) => e.status)).toEqual(['delivered', 'read']);
      expect(reported[0]).toMatchObject({ whatsappMessage: expect.stringMatching(/^hd_/), recipient: expect.stringMatching(/^ps_/) });
      // WhatsApp's message id carries the number (base64): the log keeps only a keyed digest of it.
      expect(Buffer.from(message.wamid.slice('wamid.'.length), 'base64').toString('latin1')).toContain(contact);
      for (const text of [contact, message.wamid, Buffer.from(contact).toString('base64').slice(0, 12)]) expect(JSON.stringify(reported)).not.toContain(text);
    });

    it('never moves a read back, whatever order the reports come in', async () => {
      const { shareId, message } = await sentMessage();
      await simulator.sendStatus(message, 'read');
      await simulator.sendStatus(message, 'delivered');
      expect((await deliveryOf(shareId)).delivery).toBe('read');
    });

    it('records a failed delivery with its error code', async () => {
      const { shareId, message } = await sentMessage();
      await simulator.sendStatus(message, 'failed', { errorCode: 131026 });
      expect(await deliveryOf(shareId)).toMatchObject({ delivery: 'failed', deliveryError: 'whatsapp.131026' });
      expect((await entries()).filter((e) => e.kind === 'message.status' && e.share === shareId)).toEqual([expect.objectContaining({ status: 'failed', error: 'whatsapp.131026' })]);
    });

    /** Drains the outbox until the contact has received `count` copies (a retry waits out its backoff). */
    const copiesTo = (count: number) =>
      eventually(async () => {
        await sluice.drainOutbox();
        const copies = simulator.messagesTo(contact);
        return copies.length >= count ? copies : undefined;
      }, `copy ${count} to the contact`);

    it('sends a copy that failed with a retryable code again, and takes only the new copy\'s reports', async () => {
      const { shareId, message: first } = await sentMessage();
      await simulator.sendStatus(first, 'failed', { errorCode: 131056 });
      expect((await deliveryOf(shareId)).delivery).toBe('queued');
      const [, second] = await copiesTo(2);
      expect(second!.body).toEqual(first.body);
      // A late repeat about the replaced copy changes nothing.
      await simulator.sendStatus(first, 'failed', { errorCode: 131056 });
      await simulator.sendStatus(second!, 'delivered');
      expect(await deliveryOf(shareId)).toEqual(expect.objectContaining({ delivery: 'delivered' }));
      expect((await deliveryOf(shareId)).deliveryError).toBeUndefined();
      const log = (await entries()).filter((e) => e.share === shareId && e.kind.startsWith('message.'));
      expect(log.map((e) => [e.kind, e.status, e.final, e.attempt])).toEqual([
        ['message.sent', undefined, undefined, 1],
        ['message.status', 'failed', false, undefined],
        ['message.sent', undefined, undefined, 2],
        ['message.status', 'delivered', undefined, undefined],
      ]);
      expect(log[1]).toMatchObject({ error: 'whatsapp.131056', nextAttemptAt: expect.any(String) });
      // The second copy says it is one: the message was sent with the first (records of processing count it once).
      expect(log[0]).not.toHaveProperty('copy');
      expect(log[2]).toMatchObject({ copy: 2 });
      expect(simulator.messagesTo(contact)).toHaveLength(2);
    });

    it('ends a message whose copies keep failing with a retryable code once its attempts are spent', async () => {
      const { shareId } = await sentMessage();
      for (let copy = 1; copy <= 3; copy++) {
        const copies = await copiesTo(copy);
        await simulator.sendStatus(copies[copy - 1]!, 'failed', { errorCode: 130429 });
      }
      expect(await deliveryOf(shareId)).toMatchObject({ delivery: 'failed', deliveryError: 'whatsapp.130429' });
      await sluice.drainOutbox();
      expect(simulator.messagesTo(contact)).toHaveLength(3);
      const failed = (await entries()).filter((e) => e.share === shareId && e.kind === 'message.status');
      expect(failed.map((e) => e.final)).toEqual([false, false, undefined]);
    });

    it('queues a copy reported failed for the business account (a payment issue) again, attempts uncounted, however often', async () => {
      const { shareId } = await sentMessage();
      // More failures than the message has attempts (3): the account, not the message, is at fault.
      for (let copy = 1; copy <= 4; copy++) {
        const copies = await copiesTo(copy);
        await simulator.sendStatus(copies[copy - 1]!, 'failed', { errorCode: 131042 });
        expect((await deliveryOf(shareId)).delivery).toBe('queued');
      }
      const copies = await copiesTo(5);
      await simulator.sendStatus(copies[4]!, 'delivered');
      expect(await deliveryOf(shareId)).toEqual(expect.objectContaining({ delivery: 'delivered' }));
      const log = (await entries()).filter((e) => e.share === shareId && e.kind.startsWith('message.'));
      expect(log.filter((e) => e.kind === 'message.status' && e.status === 'failed')).toEqual(
        Array.from({ length: 4 }, () => expect.objectContaining({ error: 'whatsapp.131042', final: false, reason: 'delivery.account_problem', nextAttemptAt: expect.any(String) })),
      );
      expect(log.filter((e) => e.kind === 'message.sent').map((e) => e.attempt)).toEqual([1, 1, 1, 1, 1]);
    });

    it('stops sending when a status webhook reports the business account refused, and goes on once a probe reaches its recipient', async () => {
      const { message: first } = await sentMessage();
      const queued = [await queueShare(contact), await queueShare(contact), await queueShare(contact)];
      await simulator.sendStatus(first, 'failed', { errorCode: 131042 });
      // Paused: at most the one probe goes out, however many wait.
      await sluice.drainOutbox();
      expect(simulator.messagesTo(contact).length).toBeLessThanOrEqual(2);
      const probe = (await copiesTo(2))[1]!;
      // Its report ends the pause: the messages left go out in one pass, not one per pause.
      await simulator.sendStatus(probe, 'delivered');
      await sluice.drainOutbox();
      expect(simulator.messagesTo(contact).length).toBeGreaterThanOrEqual(4);
      expect(await copiesTo(5)).toHaveLength(5);
      for (const shareId of queued) expect(['sent', 'delivered']).toContain((await deliveryOf(shareId)).delivery);
    });

    it('ignores late reports about any copy it has replaced, not only the last', async () => {
      const { message: first } = await sentMessage();
      await simulator.sendStatus(first, 'failed', { errorCode: 131056 });
      const [, second] = await copiesTo(2);
      await simulator.sendStatus(second!, 'failed', { errorCode: 131056 });
      // WhatsApp repeats its first report: the first copy must not pass for the message sent.
      await simulator.sendStatus(first, 'sent');
      await simulator.sendStatus(first, 'failed', { errorCode: 131056 });
      const copies = await copiesTo(3);
      expect(copies.map((c) => c.wamid)).toEqual([first.wamid, second!.wamid, expect.any(String)]);
    });

    it('goes back to queued while a copy is sent again, so that a STOP then cancels it', async () => {
      const { shareId, message } = await sentMessage();
      await simulator.sendStatus(message, 'failed', { errorCode: 131000 });
      expect((await deliveryOf(shareId)).delivery).toBe('queued');
      await simulator.receiveText(contact, 'STOP');
      expect((await deliveryOf(shareId)).delivery).toBe('cancelled');
      await sluice.drainOutbox();
      expect(simulator.messagesTo(contact)).toHaveLength(1);
    });

    it('sends nothing again when another copy of the message has reached the recipient', async () => {
      // An attempt whose answer was lost left a copy at WhatsApp, which was delivered.
      const { shareId, message } = await sentMessage();
      await simulator.sendStatus({ ...message, wamid: `${message.wamid}0` }, 'delivered');
      await simulator.sendStatus(message, 'failed', { errorCode: 131056 });
      expect((await deliveryOf(shareId)).delivery).toBe('delivered');
      // Past any retry's backoff (10 to 20 ms for a first retry here).
      await new Promise((resolve) => setTimeout(resolve, 100));
      await sluice.drainOutbox();
      expect(simulator.messagesTo(contact)).toHaveLength(1);
    });

    it('leaves the failure of an older copy alone while the message waits to be sent again', async () => {
      // An attempt whose answer was lost left a copy at WhatsApp; the next attempt's copy failed and is replaced.
      const { shareId, message } = await sentMessage();
      await simulator.sendStatus(message, 'failed', { errorCode: 131056 });
      await simulator.sendStatus({ ...message, wamid: `${message.wamid}0` }, 'failed', { errorCode: 131056 });
      expect((await deliveryOf(shareId)).delivery).toBe('queued');
      expect(await copiesTo(2)).toHaveLength(2);
    });

    it('takes the failure of the copy being sent again while its answer is still on the way', async () => {
      const { shareId, message } = await sentMessage();
      await simulator.sendStatus(message, 'failed', { errorCode: 131056 });
      await new Promise((resolve) => setTimeout(resolve, 100)); // past the retry's backoff
      simulator.hold();
      const draining = sluice.drainOutbox();
      await eventually(() => (simulator.held > 0 ? true : undefined), 'the second copy to be sent');
      await simulator.sendStatus(simulator.messagesTo(contact)[1]!, 'failed', { errorCode: 131026 });
      simulator.release();
      await draining;
      expect(await deliveryOf(shareId)).toMatchObject({ delivery: 'failed', deliveryError: 'whatsapp.131026' });
    });

    /** Whether `count` connections to this suite's PostgreSQL database wait for a lock, as `condition` tells which. */
    const waitingFor = async (condition: string, count = 1) =>
      (await sluice.database.adminQuery<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND ${condition}`))[0]!.n >= count;

    /** Runs `during` while another connection holds the message's outbox row. */
    const holdingRow = async (wamid: string, during: (release: () => Promise<void>) => Promise<void>) => {
      const holder = new pg.Client({ connectionString: (sluice.database.config as { url: string }).url });
      await holder.connect();
      try {
        await holder.query('BEGIN');
        await holder.query('SELECT id FROM outbox_messages WHERE message_id = $1 FOR UPDATE', [wamid]);
        await during(async () => void (await holder.query('ROLLBACK')));
      } finally {
        await holder.end();
      }
    };

    if (dialect === 'postgres') it("cancels a message queued again while its author's erasure waits for it, rather than leave it queued with a cleared body", async () => {
      const { shareId, message } = await sentMessage();
      const holder = new pg.Client({ connectionString: (sluice.database.config as { url: string }).url });
      await holder.connect();
      let erasure: Promise<{ status: number }> | undefined;
      try {
        // As a status report does that queues the copy again, uncommitted.
        await holder.query('BEGIN');
        await holder.query(`UPDATE outbox_messages SET state = 'pending', message_id = NULL WHERE message_id = $1`, [message.wamid]);
        erasure = sluice.request('POST', `/v1/subjects/workplace/${AUTHOR_ID}/erase`);
        await eventually(async () => (await waitingFor('true')) || undefined, 'the erasure to wait for the row');
        await holder.query('COMMIT');
      } finally {
        await holder.end();
      }
      expect((await erasure!).status).toBe(200);
      await grant('workplace', AUTHOR_ID);
      const [row] = await sluice.database.adminQuery<{ state: string; payload: string }>('SELECT state, payload FROM outbox_messages WHERE share_id = $1', [shareId]);
      expect(row).toEqual({ state: 'cancelled', payload: '{"erased":true}' });
      expect((await entries()).filter((e) => e.kind === 'message.cancelled' && e.share === shareId)).toEqual([expect.objectContaining({ reason: 'subject.erased' })]);
      await sluice.drainOutbox();
      expect(simulator.messagesTo(contact)).toHaveLength(1);
    });

    if (dialect === 'postgres') it('weighs a failed report delivered twice at once one after the other: queued again once', async () => {
      const { shareId, message } = await sentMessage();
      await holdingRow(message.wamid, async (release) => {
        const body = simulator.statusNotification(message, 'failed', { errorCode: 131056 });
        const deliveries = [simulator.deliverWebhook(body), simulator.deliverWebhook(body)];
        await eventually(async () => (await waitingFor('true', 2)) || undefined, 'both deliveries to wait for the row');
        await release();
        await Promise.all(deliveries);
      });
      expect((await deliveryOf(shareId)).delivery).toBe('queued');
      expect((await entries()).filter((e) => e.kind === 'message.status' && e.share === shareId)).toEqual([expect.objectContaining({ status: 'failed', final: false })]);
    });

    if (dialect === 'postgres') it('makes an erasure wait for a failed report that queues the message again, then cancels it', async () => {
      const { shareId, message } = await sentMessage();
      let erasure: Promise<{ status: number }> | undefined;
      await holdingRow(message.wamid, async (release) => {
        const report = simulator.sendStatus(message, 'failed', { errorCode: 131056 });
        await eventually(async () => (await waitingFor('true')) || undefined, 'the report to wait for the row');
        let erasureAnswered = false;
        erasure = sluice.request('POST', `/v1/subjects/whatsapp/${contact}/erase`).finally(() => (erasureAnswered = true));
        await eventually(async () => erasureAnswered || (await waitingFor(`wait_event = 'advisory'`)) || undefined, 'the erasure to wait for the report');
        await release();
        await report;
      });
      expect((await erasure!).status).toBe(200);
      const p = dialect === 'postgres' ? '$1' : '?';
      expect(await sluice.database.adminQuery(`SELECT state FROM outbox_messages WHERE share_id = ${p}`, [shareId])).toEqual([{ state: 'cancelled' }]);
      expect((await entries()).filter((e) => e.kind === 'message.cancelled' && e.share === shareId)).toEqual([expect.objectContaining({ reason: 'subject.erased' })]);
    });

    it('leaves the failure of a copy older than the one sent last to that copy\'s own reports', async () => {
      const { shareId, message } = await sentMessage();
      await simulator.sendStatus({ ...message, wamid: `${message.wamid}0` }, 'failed', { errorCode: 131026 });
      expect((await deliveryOf(shareId)).delivery).toBe('sent');
      await simulator.sendStatus(message, 'delivered');
      expect((await deliveryOf(shareId)).delivery).toBe('delivered');
    });

    it('sends nothing again once an erasure of its author has cleared the message', async () => {
      const { shareId, message } = await sentMessage();
      expect((await sluice.request('POST', `/v1/subjects/workplace/${AUTHOR_ID}/erase`)).json.erased).toBe(true);
      await grant('workplace', AUTHOR_ID);
      await simulator.sendStatus(message, 'failed', { errorCode: 131056 });
      expect(await deliveryOf(shareId)).toMatchObject({ delivery: 'failed', deliveryError: 'whatsapp.131056' });
      await new Promise((resolve) => setTimeout(resolve, 100));
      await sluice.drainOutbox();
      expect(simulator.messagesTo(contact)).toHaveLength(1);
    });

    describe('a photo', () => {
      const mediaOf = (shareId: string) => sluice.database.adminQuery(`SELECT id FROM media_objects WHERE share_id = ${dialect === 'postgres' ? '$1' : '?'}`, [shareId]);
      /** Shares a photo to the contact and has it sent: its minimised copy stays for the hold (15 minutes by default). */
      const sentPhoto = async (): Promise<{ shareId: string; message: ReceivedMessage }> => {
        await simulator.receiveText(contact, 'hi');
        const jpeg = await sharp({ create: { width: 24, height: 16, channels: 3, background: '#3366cc' } }).jpeg().toBuffer();
        const photo = { message_tags: [], attachments: { data: [{ type: 'photo', media: { image: { src: `data:image/jpeg;base64,${jpeg.toString('base64')}` } } }] } };
        const response = await sluice.request('POST', '/v1/shares', { body: shareRequest({ post: workplacePost(photo), recipients: [{ waId: contact }] }), headers: idempotencyKey() });
        expect(response.json.status).toBe('accepted');
        await sluice.drainOutbox();
        expect((await deliveryOf(response.json.id)).delivery).toBe('sent');
        return { shareId: response.json.id, message: simulator.messagesTo(contact).at(-1)! };
      };

      it('is sent again after a retryable failure, and its copy released once delivered', async () => {
        const { shareId, message: first } = await sentPhoto();
        expect(await mediaOf(shareId)).toHaveLength(1);
        await simulator.sendStatus(first, 'failed', { errorCode: 131056 });
        expect((await deliveryOf(shareId)).delivery).toBe('queued');
        const [, second] = await copiesTo(2);
        expect(second!.type).toBe('image');
        expect(simulator.media.get((second!.body.image as { id: string }).id)?.mimeType).toBe('image/jpeg');
        expect(await mediaOf(shareId)).toHaveLength(1);
        await simulator.sendStatus(second!, 'delivered');
        expect((await deliveryOf(shareId)).delivery).toBe('delivered');
        expect(await mediaOf(shareId)).toEqual([]);
      });

      it('is kept on its last attempt, for a failure reported about the business account, and then sent again', async () => {
        const { shareId, message: first } = await sentPhoto();
        await simulator.sendStatus(first, 'failed', { errorCode: 131056 });
        const [, second] = await copiesTo(2);
        await simulator.sendStatus(second!, 'failed', { errorCode: 131056 });
        // The third copy is the last attempt (DELIVERY_MAX_ATTEMPTS 3): the photo still stays.
        const [, , third] = await copiesTo(3);
        expect(await mediaOf(shareId)).toHaveLength(1);
        await simulator.sendStatus(third!, 'failed', { errorCode: 131042 });
        expect((await deliveryOf(shareId)).delivery).toBe('queued');
        const fourth = (await copiesTo(4))[3]!;
        expect(fourth.type).toBe('image');
        await simulator.sendStatus(fourth, 'delivered');
        expect((await deliveryOf(shareId)).delivery).toBe('delivered');
      });

      it('is released when the hold runs out with no report, and a later failure then ends the message', async () => {
        const { shareId, message } = await sentPhoto();
        const worker = sluice.app.get(DeliveryWorker);
        await worker.releaseHeldMedia(new Date(Date.now() + 14 * 60_000));
        expect(await mediaOf(shareId)).toHaveLength(1);
        await worker.releaseHeldMedia(new Date(Date.now() + 15 * 60_000 + 1_000));
        expect(await mediaOf(shareId)).toEqual([]);
        await simulator.sendStatus(message, 'failed', { errorCode: 131056 });
        expect(await deliveryOf(shareId)).toMatchObject({ delivery: 'failed', deliveryError: 'whatsapp.131056' });
      });

      it('is released at once when its message fails for good', async () => {
        const { shareId, message } = await sentPhoto();
        await simulator.sendStatus(message, 'failed', { errorCode: 131026 });
        expect(await mediaOf(shareId)).toEqual([]);
      });
    });

    it('ignores reports about messages sluice did not send', async () => {
      const before = await footprint();
      await simulator.sendStatus({ wamid: 'wamid.someone-else', to: contact, type: 'text', body: {}, outboxId: undefined, receivedAt: 0 }, 'delivered');
      expect(await footprint()).toEqual(before);
    });
  });

  describe('accounts WhatsApp names by an older form of their number', () => {
    let nextAccount = 0;
    /** A Brazilian mobile as dialled today, and as WhatsApp names an account registered before the ninth digit. */
    const brazilianMobile = () => {
      const subscriber = `${dialect === 'sqlite' ? 7 : 8}${String(++nextAccount).padStart(7, '0')}`;
      return { number: `55119${subscriber}`, accountId: `5511${subscriber}` };
    };

    it('takes the window, status reports and a STOP from the old id as the same person', async () => {
      const { number, accountId } = brazilianMobile();
      simulator.registerAccount(number, accountId);
      await grant('whatsapp', number);
      await simulator.receiveText(accountId, 'hi');
      const shareId = await queueShare(number);
      await sluice.drainOutbox();
      const [message] = simulator.messagesTo(number);
      expect(message).toMatchObject({ type: 'text' });
      await simulator.sendStatus(message!, 'delivered');
      expect((await deliveryOf(shareId)).delivery).toBe('delivered');

      const queued = await queueShare(number);
      await simulator.receiveText(accountId, 'STOP');
      expect((await consentsOf(number)).current).toEqual([expect.objectContaining({ status: 'withdrawn' })]);
      expect((await deliveryOf(queued)).delivery).toBe('cancelled');
    });

    it('records a consent, a share and an erasure given under the old id under the number', async () => {
      const { number, accountId } = brazilianMobile();
      await grant('whatsapp', accountId);
      expect((await consentsOf(number)).current).toEqual([expect.objectContaining({ status: 'granted' })]);
      expect((await sluice.request('GET', `/v1/subjects/whatsapp/${accountId}/consents`)).json).toEqual(await consentsOf(number));

      const response = await sluice.request('POST', '/v1/shares', { body: shareRequest({ post: workplacePost({ message: 'Shift starts at 7.', message_tags: [] }), recipients: [{ waId: accountId }] }), headers: idempotencyKey() });
      expect(response.json.recipients).toEqual([expect.objectContaining({ waId: number, decision: 'allowed' })]);

      const duplicate = await sluice.request('POST', '/v1/shares', { body: shareRequest({ recipients: [{ waId: accountId }, { waId: number }] }), headers: idempotencyKey() });
      expect(duplicate.status).toBe(400);
      expect(JSON.stringify(duplicate.json)).toContain('recipients must not repeat a waId');

      expect((await sluice.request('POST', `/v1/subjects/whatsapp/${accountId}/erase`)).status).toBeLessThan(300);
      expect((await consentsOf(number)).current).toEqual([]);
    });

    it('reads a Mexican mobile with the old 1 after 52 as the number without it', async () => {
      const number = `5255${dialect === 'sqlite' ? 1 : 2}${String(++nextAccount).padStart(7, '0')}`;
      await grant('whatsapp', `521${number.slice(2)}`);
      expect((await consentsOf(number)).current).toEqual([expect.objectContaining({ status: 'granted' })]);
    });
  });

  describe('an Argentinian mobile given without the 9 that WhatsApp names it by', () => {
    let nextNumber = 0;
    const argentinianMobile = () => {
      const number = `11${dialect === 'sqlite' ? 3 : 4}${String(++nextNumber).padStart(7, '0')}`;
      return { given: `54${number}`, accountId: `549${number}` };
    };

    it('takes the window, status reports and a STOP under the 9 as the same person', async () => {
      const { given, accountId } = argentinianMobile();
      simulator.registerAccount(given, accountId);
      await grant('whatsapp', given);
      await simulator.receiveText(accountId, 'hi');
      const shareId = await queueShare(given);
      await sluice.drainOutbox();
      // Sent as a text: the window the contact opened under the 9 is theirs.
      expect(simulator.messagesTo(given)).toEqual([expect.objectContaining({ type: 'text' })]);
      await simulator.sendStatus(simulator.messagesTo(given)[0]!, 'delivered');
      expect((await deliveryOf(shareId)).delivery).toBe('delivered');

      const queued = await queueShare(given);
      await simulator.receiveText(accountId, 'STOP');
      expect((await consentsOf(given)).current).toEqual([expect.objectContaining({ status: 'withdrawn' })]);
      expect((await deliveryOf(queued)).delivery).toBe('cancelled');
      await sluice.drainOutbox();
      expect(simulator.messagesTo(given)).toHaveLength(1);
    });

    it('reports a share to both forms as one crossing, as the form asked for saw it', async () => {
      const { given, accountId } = argentinianMobile();
      await grant('whatsapp', given);
      const response = await sluice.request('POST', '/v1/shares', {
        body: shareRequest({ post: workplacePost({ message: 'Shift starts at 7.', message_tags: [] }), recipients: [{ waId: given }, { waId: accountId }] }),
        headers: idempotencyKey(),
      });
      expect(response.json.recipients.map((r: { decision: string }) => r.decision)).toEqual(['allowed', 'denied']);
      await sluice.app.get(AuditSequencer).sequenceNow();
      const crossingsOf = async (id: string) =>
        ((await sluice.request('GET', `/v1/subjects/whatsapp/${id}/report`)).json as { crossings: { share: string; roles: string[]; consent: string | null }[] }).crossings.filter((c) => c.share === response.json.id);
      expect(await crossingsOf(given)).toEqual([expect.objectContaining({ roles: ['recipient'], consent: 'granted' })]);
      expect(await crossingsOf(accountId)).toEqual([expect.objectContaining({ roles: ['recipient'], consent: expect.not.stringMatching(/^granted$/) })]);
    });

    it('reports and erases the person under either form', async () => {
      const { given, accountId } = argentinianMobile();
      simulator.registerAccount(given, accountId);
      await grant('whatsapp', given);
      await simulator.receiveText(accountId, 'STOP');
      await sluice.app.get(AuditSequencer).sequenceNow();
      const report = async (id: string) => (await sluice.request('GET', `/v1/subjects/whatsapp/${id}/report`)).json as { found: boolean; consents: { status: string; index: number }[] };
      // The grant under the given form, and the STOP's withdrawal under both.
      const asked = await report(accountId);
      expect(asked.found).toBe(true);
      expect(asked.consents.map((c) => c.status)).toEqual(['granted', 'withdrawn', 'withdrawn']);
      expect(asked.consents.map((c) => c.index)).toEqual([...asked.consents.map((c) => c.index)].sort((a, b) => a - b));
      expect(await report(given)).toMatchObject({ found: true, consents: asked.consents });

      const erasuresBefore = (await entries()).filter((e) => e.kind === 'subject.erased').length;
      const erased = await sluice.request('POST', `/v1/subjects/whatsapp/${accountId}/erase`);
      expect(erased.json).toMatchObject({ erased: true, audit: { index: expect.any(Number) } });
      for (const id of [given, accountId]) {
        expect(await report(id)).toMatchObject({ found: false, consents: [] });
        expect((await consentsOf(id)).current).toEqual([]);
      }
      // One per form that held something.
      expect((await entries()).filter((e) => e.kind === 'subject.erased').length - erasuresBefore).toBe(2);
    });
  });

  describe('contacts with a WhatsApp username, who may write without their number', () => {
    const p = (n: number) => (dialect === 'postgres' ? `$${n}` : '?');
    const userIdsOf = (waId: string) => sluice.database.adminQuery<{ user_id: string }>(`SELECT user_id FROM whatsapp_user_ids WHERE wa_id = ${p(1)}`, [waId]);

    it('takes a STOP by user id alone from a contact whose user id a status report named with their number', async () => {
      // They write by user id alone, which sluice cannot place yet; their window is opened by hand.
      simulator.withholdNumber(contact);
      await simulator.receiveText(contact, 'hi');
      await sluice.database.adminQuery(`INSERT INTO whatsapp_contacts (wa_id, last_inbound_at) VALUES (${p(1)}, ${p(2)})`, [contact, new Date().toISOString()]);
      const shareId = await queueShare(contact);
      await sluice.drainOutbox();
      expect(await userIdsOf(contact)).toEqual([]);
      await simulator.sendStatus(simulator.messagesTo(contact)[0]!, 'delivered');
      expect((await deliveryOf(shareId)).delivery).toBe('delivered');
      expect(await userIdsOf(contact)).toEqual([{ user_id: simulator.userIdOf(contact) }]);

      const queued = await queueShare(contact);
      await simulator.receiveText(contact, 'STOP');
      expect((await consentsOf(contact)).current).toEqual([expect.objectContaining({ status: 'withdrawn' })]);
      expect((await deliveryOf(queued)).delivery).toBe('cancelled');
    });

    it('takes a STOP by user id alone from a contact who wrote before with their number', async () => {
      await simulator.receiveText(contact, 'hi');
      simulator.withholdNumber(contact);
      const queued = await queueShare(contact);
      await simulator.receiveText(contact, 'Afmelden');
      expect((await consentsOf(contact)).current).toEqual([expect.objectContaining({ status: 'withdrawn' })]);
      expect((await deliveryOf(queued)).delivery).toBe('cancelled');
    });

    it('keeps what the newest event showed: a late webhook about an older one does not move a user id back', async () => {
      const userId = simulator.userIdOf(contact);
      const other = `3166${dialect === 'sqlite' ? 1 : 2}${String(++nextContact).padStart(5, '0')}`;
      const written = (from: string, at: Date) =>
        simulator.deliverWebhook(
          simulator.notification({ messages: [{ from, from_user_id: userId, id: `wamid.${randomUUID()}`, timestamp: String(Math.floor(at.getTime() / 1000)), type: 'text', text: { body: 'hi' } }] }),
        );
      await written(contact, new Date());
      await written(other, new Date(Date.now() - 3_600_000));
      expect(await userIdsOf(contact)).toEqual([{ user_id: userId }]);
      await written(other, new Date(Date.now() + 60_000));
      expect(await userIdsOf(contact)).toEqual([]);
      expect(await userIdsOf(other)).toEqual([{ user_id: userId }]);
      // A stamp ahead of sluice's clock is taken as now: it pins nothing past the retention sweep.
      await written(other, new Date('2100-01-01T00:00:00Z'));
      const [{ learned_at: learnedAt }] = await sluice.database.adminQuery<{ learned_at: string }>(`SELECT learned_at FROM whatsapp_user_ids WHERE user_id = ${p(1)}`, [userId]);
      expect(Date.parse(learnedAt)).toBeLessThanOrEqual(Date.now());
    });

    it('records nothing for a STOP by a user id it has never seen with a number, and forgets the user id on an erasure', async () => {
      await simulator.receiveText(contact, 'hi');
      expect(await userIdsOf(contact)).toHaveLength(1);
      expect((await sluice.request('POST', `/v1/subjects/whatsapp/${contact}/erase`)).json).toMatchObject({ erased: true });
      expect(await userIdsOf(contact)).toEqual([]);
      const [{ n: known }] = await sluice.database.adminQuery<{ n: number | string }>('SELECT COUNT(*) AS n FROM whatsapp_user_ids WHERE user_id = ' + p(1), [simulator.userIdOf(contact)]);
      expect(Number(known)).toBe(0);

      simulator.withholdNumber(contact);
      const before = await footprint();
      await simulator.receiveText(contact, 'STOP');
      const after = await footprint();
      // Seen (a repeat is ignored), and nothing else: no consent, no window, no entry.
      expect({ ...after, inbound: Number(after!.inbound) - 1 }).toEqual({ ...before, inbound: Number(before!.inbound) });
    });
  });

  describe('contacts who change their number or user id', () => {
    const p = (n: number) => (dialect === 'postgres' ? `$${n}` : '?');
    const userIdsOf = (waId: string) => sluice.database.adminQuery<{ user_id: string }>(`SELECT user_id FROM whatsapp_user_ids WHERE wa_id = ${p(1)} AND replaced = 0`, [waId]);
    const lastInboundOf = async (waId: string) =>
      (await sluice.database.adminQuery<{ last_inbound_at: string }>(`SELECT last_inbound_at FROM whatsapp_contacts WHERE wa_id = ${p(1)}`, [waId])).map((r) => Date.parse(r.last_inbound_at));
    const freshNumber = () => `3167${dialect === 'sqlite' ? 1 : 2}${String(++nextContact).padStart(5, '0')}`;

    it('ends the consent, queued messages, window and user id under the old number, and gives the new one nothing', async () => {
      await grant('whatsapp', contact, 'shift-alerts');
      await simulator.receiveText(contact, 'hi', { sentAt: new Date(Date.now() - 60_000) });
      const queued = await queueShare(contact);
      const moved = freshNumber();
      const changedAt = new Date(Date.now() - 1_000);
      await simulator.changeNumber(contact, moved, { sentAt: changedAt });

      const log = await expectEnded(queued, 'whatsapp-number-change', 'whatsapp_number_changed');

      // The old number's window closed as of the change; the new number has none until the contact writes from it.
      expect((await lastInboundOf(contact))[0]).toBeLessThanOrEqual(changedAt.getTime() - 24 * 3_600_000);
      expect(await lastInboundOf(moved)).toEqual([]);
      expect((await consentsOf(moved)).current).toEqual([]);
      expect(await userIdsOf(contact)).toEqual([]);
      expect(await userIdsOf(moved)).toEqual([{ user_id: simulator.userIdOf(moved) }]);

      await sluice.drainOutbox();
      expect(simulator.messagesTo(contact)).toEqual([]);
      // The notice's text (the contact's name and both numbers) is kept nowhere.
      expect(JSON.stringify(log)).not.toContain('changed from');
      expect(JSON.stringify(log)).not.toContain(moved);
    });

    it('handles a repeated delivery of the same notice once: a consent given again afterwards stands', async () => {
      const moved = freshNumber();
      const id = await simulator.changeNumber(contact, moved);
      await grant('whatsapp', contact);
      await simulator.changeNumber(contact, moved, { id });
      expect((await consentsOf(contact)).current).toEqual([expect.objectContaining({ status: 'granted' })]);
    });

    it('moves the number over to a new user id, by which the contact then opts out', async () => {
      await simulator.receiveText(contact, 'hi');
      simulator.withholdNumber(contact);
      const previous = simulator.userIdOf(contact);
      const next = await simulator.changeUserId(contact);
      expect(next).not.toBe(previous);
      expect(await userIdsOf(contact)).toEqual([{ user_id: next }]);
      const queued = await queueShare(contact);
      await simulator.receiveText(contact, 'STOP');
      expect((await consentsOf(contact)).current).toEqual([expect.objectContaining({ status: 'withdrawn' })]);
      expect((await deliveryOf(queued)).delivery).toBe('cancelled');
    });

    const notice = (messages: Record<string, unknown>[]) => simulator.deliverWebhook(simulator.notification({ messages }));
    const stamp = (at: Date) => String(Math.floor(at.getTime() / 1000));
    const storedUserId = async (userId: string) =>
      (await sluice.database.adminQuery<{ wa_id: string | null; replaced: number | string }>(`SELECT wa_id, replaced FROM whatsapp_user_ids WHERE user_id = ${p(1)}`, [userId])).map((r) => ({ waId: r.wa_id, replaced: Number(r.replaced) === 1 }));

    it('keeps a replaced user id replaced: a late message about an older event does not bring the old pair back', async () => {
      const previous = simulator.userIdOf(contact);
      await simulator.receiveText(contact, 'hi', { sentAt: new Date(Date.now() - 60_000) });
      await simulator.changeNumber(contact, freshNumber(), { sentAt: new Date(Date.now() - 10_000) });
      expect(await storedUserId(previous)).toEqual([{ waId: contact, replaced: true }]);
      // Written before the move, delivered after it.
      await simulator.deliverWebhook(
        simulator.notification({ messages: [{ from: contact, from_user_id: previous, id: `wamid.${randomUUID()}`, timestamp: stamp(new Date(Date.now() - 30_000)), type: 'text', text: { body: 'hi' } }] }),
      );
      expect(await storedUserId(previous)).toEqual([{ waId: contact, replaced: true }]);
      // Nothing takes the replaced user id for the old number: a STOP by it alone reaches nothing.
      simulator.withholdNumber(contact);
      await grant('whatsapp', contact);
      await simulator.receiveText(contact, 'STOP');
      expect((await consentsOf(contact)).current).toEqual([expect.objectContaining({ status: 'granted' })]);
      // An erasure of the old number takes the replaced user id with it.
      expect((await sluice.request('POST', `/v1/subjects/whatsapp/${contact}/erase`)).json).toMatchObject({ erased: true });
      expect(await storedUserId(previous)).toEqual([]);
    });

    it('takes a replacement over a pair seen in the same second, within one delivery and across two', async () => {
      const previous = simulator.userIdOf(contact);
      const at = stamp(new Date());
      const system = { body: 'User Simulated Contact changed from a to b', wa_id: freshNumber(), type: 'user_changed_number', previous_user_id: previous };
      await notice([
        { from: contact, id: `wamid.${randomUUID()}`, timestamp: at, type: 'system', system },
        { from: contact, from_user_id: previous, id: `wamid.${randomUUID()}`, timestamp: at, type: 'text', text: { body: 'hi' } },
      ]);
      expect(await storedUserId(previous)).toEqual([{ waId: contact, replaced: true }]);
      // And in a later delivery.
      await notice([{ from: contact, from_user_id: previous, id: `wamid.${randomUUID()}`, timestamp: at, type: 'text', text: { body: 'hi' } }]);
      expect(await storedUserId(previous)).toEqual([{ waId: contact, replaced: true }]);
    });

    it('records the new user id of a contact it cannot place, and changes nothing else', async () => {
      const [previous, next, moved] = [`NL.9${Date.now()}${nextContact}`, `NL.8${Date.now()}${nextContact}`, freshNumber()];
      const before = await footprint();
      const system = { body: 'User Simulated Contact changed from a to b', wa_id: moved, type: 'user_changed_number', user_id: next, previous_user_id: previous };
      await notice([{ from_user_id: previous, id: `wamid.${randomUUID()}`, timestamp: stamp(new Date()), type: 'system', system }]);
      const after = await footprint();
      expect({ ...after, inbound: Number(after!.inbound) - 1 }).toEqual({ ...before, inbound: Number(before!.inbound) });
      expect(await storedUserId(next)).toEqual([{ waId: moved, replaced: false }]);
      expect(await storedUserId(previous)).toEqual([{ waId: null, replaced: true }]);
    });

    it('drops every user id of the old number, also when the notice names none', async () => {
      await simulator.receiveText(contact, 'hi');
      expect(await userIdsOf(contact)).toHaveLength(1);
      const system = { body: 'User Simulated Contact changed from a to b', wa_id: freshNumber(), type: 'user_changed_number' };
      await notice([{ from: contact, id: `wamid.${randomUUID()}`, timestamp: stamp(new Date()), type: 'system', system }]);
      expect(await storedUserId(simulator.userIdOf(contact))).toEqual([{ waId: contact, replaced: true }]);
      expect((await consentsOf(contact)).current).toEqual([expect.objectContaining({ status: 'withdrawn' })]);
    });

    it('reads the rest of a delivery by the change: a STOP by the new user id right after it counts', async () => {
      await simulator.receiveText(contact, 'hi');
      const previous = simulator.userIdOf(contact);
      const next = `NL.${Date.now()}${nextContact}`;
      const queued = await queueShare(contact);
      const now = stamp(new Date());
      await notice([
        { id: `wamid.${randomUUID()}`, timestamp: now, type: 'system', system: { body: 'User Simulated Contact changed their user id', type: 'user_changed_user_id', user_id: next, previous_user_id: previous } },
        { from_user_id: next, id: `wamid.${randomUUID()}`, timestamp: now, type: 'text', text: { body: 'STOP' } },
      ]);
      expect((await consentsOf(contact)).current).toEqual([expect.objectContaining({ status: 'withdrawn' })]);
      expect((await deliveryOf(queued)).delivery).toBe('cancelled');
      expect(await userIdsOf(contact)).toEqual([{ user_id: next }]);
    });

    it('ends what is held under either form of an Argentinian mobile', async () => {
      const number = `11${dialect === 'sqlite' ? 5 : 6}${String(++nextContact).padStart(7, '0')}`;
      const [given, accountId] = [`54${number}`, `549${number}`];
      await grant('whatsapp', given);
      const queued = await queueShare(given);
      await simulator.changeNumber(accountId, freshNumber());
      expect((await consentsOf(given)).current).toEqual([expect.objectContaining({ status: 'withdrawn' })]);
      expect((await deliveryOf(queued)).delivery).toBe('cancelled');
    });

    it('takes any other system message as no message from the contact: it opens no window and changes nothing', async () => {
      const before = await footprint();
      await simulator.deliverWebhook(
        simulator.notification({
          messages: [{ from: contact, id: `wamid.${randomUUID()}`, timestamp: String(Math.floor(Date.now() / 1000)), type: 'system', system: { body: 'Security code changed', type: 'customer_identity_changed', identity: 'abc' } }],
        }),
      );
      const after = await footprint();
      expect({ ...after, inbound: Number(after!.inbound) - 1 }).toEqual({ ...before, inbound: Number(before!.inbound) });
      expect(await lastInboundOf(contact)).toEqual([]);
    });
  });

  describe('opt-out', () => {
    it.each(['STOP', 'stop', 'Afmelden', 'unsubscribe.'])('withdraws every purpose on %j, audits it and cancels the queued messages', async (text) => {
      await grant('whatsapp', contact, 'shift-alerts');
      const queued = await queueShare(contact);
      await simulator.receiveText(contact, text);

      await expectEnded(queued, 'whatsapp-opt-out', 'whatsapp_opt_out');

      await sluice.drainOutbox();
      expect(simulator.messagesTo(contact)).toEqual([]);
    });

    it('records a STOP from a contact who had consented to nothing, and it stands against a consent captured before it', async () => {
      const stranger = `3165${dialect === 'sqlite' ? 1 : 2}${String(++nextContact).padStart(5, '0')}`;
      const stoppedAt = new Date(Date.now() - 60_000);
      await simulator.receiveText(stranger, 'STOP', { sentAt: stoppedAt });
      expect((await consentsOf(stranger)).current.map((c) => [c.purpose, c.status])).toEqual([['frontline-updates', 'withdrawn']]);
      const withdrawn = (await entries()).filter((e) => e.kind === 'consent.withdrawn' && e.evidence.method === 'whatsapp-opt-out');
      expect(withdrawn.at(-1)).toMatchObject({ purpose: 'frontline-updates', subjectType: 'whatsapp' });
      const grantCapturedAt = async (capturedAt: Date) =>
        (await sluice.request('POST', '/v1/consents', { body: { ...consent('whatsapp', stranger), evidence: { method: 'form', text: 'notice v3', capturedAt: capturedAt.toISOString() } } })).json;
      // A form filled in before the STOP, recorded after it, does not undo it; one filled in afterwards does.
      expect(await grantCapturedAt(new Date(stoppedAt.getTime() - 60_000))).toMatchObject({ current: 'withdrawn' });
      expect(await grantCapturedAt(new Date())).toMatchObject({ current: 'granted' });
      // Withdrawn already: the same STOP delivered again records nothing more.
      const optOuts = async () => (await entries()).filter((e) => e.kind === 'consent.withdrawn' && e.evidence.method === 'whatsapp-opt-out').length;
      const id = await simulator.receiveText(contact, 'STOP');
      const after = await optOuts();
      await simulator.receiveText(contact, 'STOP', { id });
      expect(await optOuts()).toBe(after);
    });

    it('records a STOP after an earlier withdrawal, and it stands against a consent captured between the two', async () => {
      const contactHere = `3165${dialect === 'sqlite' ? 1 : 2}${String(++nextContact).padStart(5, '0')}`;
      const minutesAgo = (minutes: number) => new Date(Date.now() - minutes * 60_000).toISOString();
      const change = async (status: 'granted' | 'withdrawn', capturedAt: string) =>
        (await sluice.request('POST', '/v1/consents', { body: { ...consent('whatsapp', contactHere), status, evidence: { method: 'form', text: 'notice v3', capturedAt } } })).json;
      expect(await change('withdrawn', minutesAgo(50))).toMatchObject({ current: 'withdrawn' });
      await simulator.receiveText(contactHere, 'STOP', { sentAt: new Date(minutesAgo(17)) });
      expect((await consentsOf(contactHere)).history.map((event) => [event.status, event.evidence.method])).toEqual([
        ['withdrawn', 'form'],
        ['withdrawn', 'whatsapp-opt-out'],
      ]);
      // A form filled in after the first withdrawal but before the STOP does not undo the STOP.
      expect(await change('granted', minutesAgo(33))).toMatchObject({ current: 'withdrawn' });
      expect(await change('granted', minutesAgo(1))).toMatchObject({ current: 'granted' });
    });

    it('handles a repeated delivery of the same STOP once: a consent given again afterwards stands', async () => {
      const id = await simulator.receiveText(contact, 'STOP');
      await grant('whatsapp', contact);
      await simulator.receiveText(contact, 'STOP', { id });
      expect((await consentsOf(contact)).current).toEqual([expect.objectContaining({ status: 'granted' })]);
    });

    it('leaves consent alone on any other message, which only opens the 24-hour window', async () => {
      await simulator.receiveText(contact, 'please stop by the office at 9');
      expect((await consentsOf(contact)).current).toEqual([expect.objectContaining({ status: 'granted' })]);
      const shareId = await queueShare(contact);
      await sluice.drainOutbox();
      expect((await deliveryOf(shareId)).delivery).toBe('sent');
    });
  });
});
