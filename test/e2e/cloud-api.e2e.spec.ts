import { afterAll, beforeAll, beforeEach, expect, it } from '@jest/globals';
import exifr from 'exifr';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { AuditSequencer } from '../../src/audit/audit-sequencer.js';
import { CloudApiSimulator } from '../simulator/cloud-api-simulator.js';
import { collectMetrics } from '../support/metric-reader.js';
import { describeEachDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, idempotencyKey, shareRequest, TAGGED_ID, workplacePost } from '../support/fixtures.js';
import { type RunningApp, SHIPPED_POLICIES, startTestApp } from '../support/test-app.js';
import { eventually } from '../support/eventually.js';

const SEND_RATE = 20;
const MAX_ATTEMPTS = 4;

/** A policy that delivers as a template: what may start a conversation outside the 24-hour window. */
const TEMPLATE_POLICY = `apiVersion: sluice.policy/v1
name: shift-alerts
purpose: shift-alerts
lawfulBasis: consent
source: workplace.post
destination: whatsapp
recipients:
  consent: { purpose: shift-alerts }
fields:
  - path: message
    category: user.content
    transform: redact-pii
freeText:
  recognisers: [email, phone]
  action: mask
delivery:
  type: template
  name: frontline_update
  language: en
  parameters:
    - text: "{message}"
      fallback: a new update
`;

/** A text policy that names the template to send where the 24-hour window is closed. */
const TEXT_WITH_TEMPLATE_POLICY = `apiVersion: sluice.policy/v1
name: shift-news
purpose: shift-news
lawfulBasis: consent
source: workplace.post
destination: whatsapp
recipients:
  consent: { purpose: shift-news }
fields:
  - path: message
    category: user.content
    transform: redact-pii
freeText:
  recognisers: [email, phone]
  action: mask
delivery:
  type: text
  template: "{message}"
  outsideWindow:
    name: frontline_update
    language: en
    parameters:
      - text: "{message}"
        fallback: a new update
`;

const { registered: meterRegistered, collect } = collectMetrics();

/** The delivery outcomes counted so far, as `source outcome code`. */
async function deliveryOutcomes(): Promise<Record<string, number>> {
  const counted: Record<string, number> = {};
  for (const scope of (await collect()).resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      if (metric.descriptor.name !== 'sluice.delivery.outcomes') continue;
      for (const { attributes, value } of metric.dataPoints) {
        counted[`${String(attributes['sluice.delivery.source'])} ${String(attributes['sluice.delivery.outcome'])} ${String(attributes['sluice.delivery.code'])}`] = value as number;
      }
    }
  }
  return counted;
}

type Entry = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- audit entries are asserted on as JSON

describeEachDatabase('delivery through the Cloud API (simulator)', (dialect) => {
  let simulator: CloudApiSimulator;
  let sluice: RunningApp;
  let policies: string;
  let nextContact = 0;
  /** A fresh WhatsApp contact per test, with consent for both purposes. */
  let contact: string;

  beforeAll(async () => {
    policies = mkdtempSync(join(tmpdir(), 'sluice-policies-'));
    copyFileSync(join(SHIPPED_POLICIES, 'frontline-updates.policy.yaml'), join(policies, 'frontline-updates.policy.yaml'));
    writeFileSync(join(policies, 'shift-alerts.policy.yaml'), TEMPLATE_POLICY);
    writeFileSync(join(policies, 'shift-news.policy.yaml'), TEXT_WITH_TEMPLATE_POLICY);
    simulator = await CloudApiSimulator.start();
    sluice = await startTestApp(dialect, {
      cloudApi: simulator,
      env: {
        POLICIES_DIR: policies,
        WHATSAPP_SEND_RATE: String(SEND_RATE),
        WHATSAPP_TIMEOUT_MS: '1000',
        DELIVERY_LEASE_MS: '5000',
        DELIVERY_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
        DELIVERY_RETRY_BASE_MS: '20',
        DELIVERY_ACCOUNT_PAUSE_MS: '50',
      },
    });
    for (const id of [AUTHOR_ID, TAGGED_ID]) await grant('workplace', id);
  });
  afterAll(async () => {
    await sluice?.close();
    await simulator?.close();
    rmSync(policies, { recursive: true, force: true });
  });
  beforeEach(async () => {
    simulator.clearFaults();
    simulator.autoStatuses = [];
    contact = `3162${dialect === 'sqlite' ? 1 : 2}${String(++nextContact).padStart(5, '0')}`;
    await grant('whatsapp', contact);
    await grant('whatsapp', contact, 'shift-alerts');
  });

  const grant = async (type: 'whatsapp' | 'workplace', id: string, purpose = 'frontline-updates', status: 'granted' | 'withdrawn' = 'granted') =>
    expect((await sluice.request('POST', '/v1/consents', { body: consent(type, id, status, purpose) })).status).toBe(201);
  const share = async (body: Record<string, unknown>) => {
    const response = await sluice.request('POST', '/v1/shares', { body, headers: idempotencyKey() });
    expect(response.status).toBe(201);
    return response.json as { id: string; status: string };
  };
  const shareTo = (...waIds: string[]) => share(shareRequest({ post: workplacePost({ message: 'Shift starts at 7.', message_tags: [] }), recipients: waIds.map((waId) => ({ waId })) }));
  const recipientsOf = async (shareId: string) => (await sluice.request('GET', `/v1/shares/${shareId}`)).json.recipients as { waId: string; delivery: string; deliveryError?: string }[];
  const outboxOf = (shareId: string) =>
    sluice.database.adminQuery<{ id: string; wa_id: string; state: string; attempts: number; message_id: string | null; error_code: string | null }>(
      `SELECT id, wa_id, state, attempts, message_id, error_code FROM outbox_messages WHERE share_id = ${dialect === 'postgres' ? '$1' : '?'} ORDER BY wa_id`,
      [shareId],
    );
  const entriesAbout = async (outboxId: string): Promise<Entry[]> => {
    await sluice.app.get(AuditSequencer).sequenceNow();
    const lines = (await sluice.request('GET', '/v1/audit/entries')).text.split('\n').filter(Boolean);
    return lines.map((l) => JSON.parse(JSON.parse(l).entry) as Entry).filter((e) => e.outbox === outboxId);
  };
  /** Drains until the share's messages have ended (retries wait for their backoff in between). */
  const deliver = (shareId: string) =>
    eventually(async () => {
      await sluice.drainOutbox();
      const rows = await outboxOf(shareId);
      return rows.every((r) => ['sent', 'failed', 'cancelled'].includes(r.state)) ? rows : undefined;
    }, `share ${shareId} to be delivered`);

  it('counts every delivery outcome by code: retries, sends, final errors, and what status webhooks report', async () => {
    expect(meterRegistered).toBe(true);
    const before = await deliveryOutcomes();
    await simulator.receiveText(contact, 'hi');
    simulator.inject({ kind: 'error', httpStatus: 500, code: 131000 }, { endpoint: 'messages' });
    const retried = await deliver((await shareTo(contact)).id);
    expect(retried[0]).toMatchObject({ state: 'sent', attempts: 2 });
    simulator.inject({ kind: 'error', httpStatus: 400, code: 131026, message: 'Message undeliverable' }, { endpoint: 'messages' });
    expect((await deliver((await shareTo(contact)).id))[0]).toMatchObject({ state: 'failed' });
    expect((await deliver((await shareTo(contact)).id))[0]).toMatchObject({ state: 'sent' });
    // An attempt a dead worker started and never finished: its outcome is unknown, and it is sent again.
    const orphaned = (await shareTo(contact)).id;
    await sluice.database.adminQuery(`UPDATE outbox_messages SET attempts = 1, attempt_started_at = '2026-01-01T00:00:00.000Z' WHERE share_id = ${dialect === 'postgres' ? '$1' : '?'}`, [orphaned]);
    expect((await deliver(orphaned))[0]).toMatchObject({ state: 'sent', attempts: 2 });
    const [first, second, third] = simulator.messagesTo(contact);
    await simulator.sendStatus(first!, 'delivered');
    await simulator.sendStatus(second!, 'failed', { errorCode: 131050 });
    // A copy that failed with a retryable code is sent again: a retry, not a failure.
    await simulator.sendStatus(third!, 'failed', { errorCode: 131056 });
    // A repeated report, or one behind the state already reached, changes nothing and is not counted.
    await simulator.sendStatus(first!, 'delivered');
    await simulator.sendStatus(first!, 'failed', { errorCode: 131050 });

    const after = await deliveryOutcomes();
    const added = Object.fromEntries(Object.entries(after).map(([key, value]) => [key, value - (before[key] ?? 0)]).filter(([, value]) => value !== 0));
    expect(added).toEqual({
      'worker retry whatsapp.131000': 1,
      'worker retry delivery.outcome_unknown': 1,
      'worker sent ok': 3,
      'worker failed whatsapp.131026': 1,
      'status_webhook delivered ok': 1,
      'status_webhook failed whatsapp.131050': 1,
      'status_webhook retry whatsapp.131056': 1,
    });
    // The failed copy's message goes out again, leaving nothing queued for the tests after.
    expect((await deliver(orphaned))[0]).toMatchObject({ state: 'sent', attempts: 3 });
  });

  it('counts an outcome only once its transaction has committed', async () => {
    await simulator.receiveText(contact, 'hi');
    const { id } = await shareTo(contact);
    const before = await deliveryOutcomes();
    // The send succeeds; recording its outcome fails (the recipient's state cannot move).
    if (dialect === 'sqlite') {
      await sluice.database.adminQuery("CREATE TRIGGER outcome_probe BEFORE UPDATE ON share_recipients BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
    } else {
      await sluice.database.adminQuery("CREATE FUNCTION outcome_probe() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$");
      await sluice.database.adminQuery('CREATE TRIGGER outcome_probe BEFORE UPDATE ON share_recipients FOR EACH ROW EXECUTE FUNCTION outcome_probe()');
    }
    try {
      await expect(sluice.drainOutbox()).rejects.toThrow();
    } finally {
      await sluice.database.adminQuery(dialect === 'sqlite' ? 'DROP TRIGGER outcome_probe' : 'DROP TRIGGER outcome_probe ON share_recipients');
      if (dialect === 'postgres') await sluice.database.adminQuery('DROP FUNCTION outcome_probe()');
    }
    expect(simulator.messagesTo(contact)).toHaveLength(1);
    expect((await outboxOf(id))[0]!.state).toBe('claimed');
    expect(await deliveryOutcomes()).toEqual(before);
    // Not left for a later test's drain to take over once its claim expires.
    await sluice.database.adminQuery(
      `UPDATE outbox_messages SET state = 'sent', claimed_by = NULL, claim_expires_at = NULL, attempt_started_at = NULL WHERE share_id = ${dialect === 'postgres' ? '$1' : '?'}`,
      [id],
    );
  });

  it('sends a text message within the window and records WhatsApp\'s message id per recipient', async () => {
    await simulator.receiveText(contact, 'Hi, I would like the updates');
    const { id } = await shareTo(contact);
    const [row] = await deliver(id);
    const [message] = simulator.messagesTo(contact);
    expect(message!.body).toEqual({
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: contact,
      type: 'text',
      text: { preview_url: false, body: 'Anna de Vries:\nShift starts at 7.' },
      biz_opaque_callback_data: row!.id,
    });
    expect(row).toMatchObject({ state: 'sent', attempts: 1, message_id: message!.wamid });
    expect(await recipientsOf(id)).toEqual([expect.objectContaining({ waId: contact, delivery: 'sent' })]);
    expect(await entriesAbout(row!.id)).toEqual([expect.objectContaining({ kind: 'message.sent', attempt: 1, whatsappMessage: expect.stringMatching(/^hd_/), share: id })]);
    expect(JSON.stringify(await entriesAbout(row!.id))).not.toContain(message!.wamid);
  });

  /**
   * Shares a photo to the contact and starts a drain whose upload the simulator holds 800 ms;
   * resolves once the message is claimed, its consent checked and its attempt begun.
   */
  async function photoUnderWay(): Promise<{ id: string; draining: Promise<number> }> {
    await simulator.receiveText(contact, 'hi');
    const jpeg = await sharp({ create: { width: 32, height: 24, channels: 3, background: { r: 200, g: 20, b: 90 } } }).jpeg().toBuffer();
    const { id } = await share(
      shareRequest({
        post: workplacePost({ message: 'Rota', message_tags: [], attachments: { data: [{ type: 'photo', media: { image: { src: `data:image/jpeg;base64,${jpeg.toString('base64')}` } } }] } }),
        recipients: [{ waId: contact }],
      }),
    );
    simulator.inject({ kind: 'delay', ms: 800 }, { endpoint: 'media' });
    const draining = sluice.drainOutbox();
    await eventually(async () => {
      const [row] = await sluice.database.adminQuery<{ attempt_started_at: string | null }>(`SELECT attempt_started_at FROM outbox_messages WHERE share_id = ${dialect === 'postgres' ? '$1' : '?'}`, [id]);
      return row?.attempt_started_at ?? undefined;
    }, 'the message to be under way');
    return { id, draining };
  }

  it('withholds a message whose recipient opted out while it waited for its upload and send slot', async () => {
    const { id, draining } = await photoUnderWay();
    // The opt-out finds the message under way and leaves it to the worker's last check.
    await simulator.receiveText(contact, 'STOP');
    await draining;
    const [row] = await deliver(id);
    expect(row!.state).toBe('cancelled');
    expect(simulator.messagesTo(contact)).toEqual([]);
    expect(await entriesAbout(row!.id)).toEqual([expect.objectContaining({ kind: 'message.cancelled', reason: 'recipient.consent_withdrawn', attempt: 1 })]);
  });

  it('withholds a message whose author withdrew consent while it waited for its upload and send slot: it carries their name', async () => {
    const { id, draining } = await photoUnderWay();
    try {
      await grant('workplace', AUTHOR_ID, 'frontline-updates', 'withdrawn');
      await draining;
      const [row] = await deliver(id);
      expect(row!.state).toBe('cancelled');
      expect(simulator.messagesTo(contact)).toEqual([]);
      expect(await entriesAbout(row!.id)).toEqual([expect.objectContaining({ kind: 'message.cancelled', reason: 'subject.consent_withdrawn', attempt: 1 })]);
    } finally {
      await grant('workplace', AUTHOR_ID);
    }
  });

  it('does not send a message whose claim another worker took over while it waited for its upload', async () => {
    const { id, draining } = await photoUnderWay();
    const p = dialect === 'postgres' ? '$1' : '?';
    // As when this worker's claim lapsed and another took the message over (or an erasure ended it).
    await sluice.database.adminQuery(`UPDATE outbox_messages SET claimed_by = 'another-worker' WHERE share_id = ${p}`, [id]);
    await draining;
    expect(simulator.messagesTo(contact)).toEqual([]);
    expect(await sluice.database.adminQuery(`SELECT state, claimed_by FROM outbox_messages WHERE share_id = ${p}`, [id])).toEqual([{ state: 'claimed', claimed_by: 'another-worker' }]);
    // The other worker is made up: its claim would lapse and a later test's drain send the message.
    await sluice.database.adminQuery(`UPDATE outbox_messages SET state = 'cancelled', claimed_by = NULL WHERE share_id = ${p}`, [id]);
  });

  it('uploads the minimised photo and sends the image by the returned media id', async () => {
    await simulator.receiveText(contact, 'hi');
    const jpeg = await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: 10, g: 200, b: 90 } } })
      .jpeg()
      .withExif({ IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '52/1 5/1 24/1', GPSLongitudeRef: 'E', GPSLongitude: '5/1 7/1 12/1' } })
      .toBuffer();
    const { id } = await share(
      shareRequest({
        post: workplacePost({ message: 'New rota', message_tags: [], attachments: { data: [{ type: 'photo', media: { image: { src: `data:image/jpeg;base64,${jpeg.toString('base64')}` } } }] } }),
        recipients: [{ waId: contact }],
      }),
    );
    expect((await deliver(id))[0]!.state).toBe('sent');
    const [message] = simulator.messagesTo(contact);
    const image = message!.body.image as { id: string; caption: string };
    expect(image.caption).toBe('Anna de Vries:\nNew rota');
    const uploaded = simulator.media.get(image.id)!;
    expect(uploaded.mimeType).toBe('image/jpeg');
    expect(await exifr.gps(uploaded.bytes)).toBeUndefined();
    // Sent, the minimised copy is kept should WhatsApp report this copy failed; delivered, it goes.
    const kept = () => sluice.database.adminQuery(`SELECT id FROM media_objects WHERE share_id = ${dialect === 'postgres' ? '$1' : '?'}`, [id]);
    expect(await kept()).toHaveLength(1);
    await simulator.sendStatus(message!, 'delivered');
    expect(await kept()).toEqual([]);
  });

  it('retries 429 bursts and 500s with backoff, auditing every attempt, and then sends', async () => {
    await simulator.receiveText(contact, 'hi');
    simulator.inject({ kind: 'error', httpStatus: 429, code: 130429, message: 'Rate limit hit' }, { times: 2, endpoint: 'messages' });
    simulator.inject({ kind: 'error', httpStatus: 500, code: 131000 }, { endpoint: 'messages' });
    const { id } = await shareTo(contact);
    const [row] = await deliver(id);
    expect(row).toMatchObject({ state: 'sent', attempts: 4 });
    expect(simulator.messagesTo(contact)).toHaveLength(1);
    const entries = await entriesAbout(row!.id);
    expect(entries.map((e) => [e.kind, e.attempt, e.final, e.error])).toEqual([
      ['message.failed', 1, false, 'whatsapp.130429'],
      ['message.failed', 2, false, 'whatsapp.130429'],
      ['message.failed', 3, false, 'whatsapp.131000'],
      ['message.sent', 4, undefined, undefined],
    ]);
    // Each retry lies at least half of 20 ms x 2^(attempt - 1) after its failed request reached
    // WhatsApp (the simulator, on this process's clock): the delay itself, without the polls.
    const failedAt = simulator.requests.filter((r) => r.endpoint === 'messages' && r.status >= 400).slice(-3).map((r) => performance.timeOrigin + r.receivedAt);
    const nextAttempts = entries.slice(0, 3).map((e) => Date.parse(e.nextAttemptAt));
    for (const [i, next] of nextAttempts.entries()) expect(next - failedAt[i]!).toBeGreaterThanOrEqual(20 * 2 ** i * 0.5 - 1);
  });

  it('ends a final error at once as failed, with its code', async () => {
    await simulator.receiveText(contact, 'hi');
    simulator.inject({ kind: 'error', httpStatus: 400, code: 131026, message: 'Message undeliverable' }, { endpoint: 'messages' });
    const { id } = await shareTo(contact);
    const [row] = await deliver(id);
    expect(row).toMatchObject({ state: 'failed', attempts: 1, error_code: 'whatsapp.131026' });
    expect(await recipientsOf(id)).toEqual([expect.objectContaining({ delivery: 'failed', deliveryError: 'whatsapp.131026' })]);
    expect(await entriesAbout(row!.id)).toEqual([expect.objectContaining({ kind: 'message.failed', attempt: 1, final: true, delivered: 'no', error: 'whatsapp.131026', fbtrace: expect.any(String) })]);
  });

  it('gives up after the last attempt of retryable errors', async () => {
    await simulator.receiveText(contact, 'hi');
    simulator.inject({ kind: 'error', httpStatus: 503, rawBody: '<html>upstream unavailable</html>' }, { times: MAX_ATTEMPTS, endpoint: 'messages' });
    const { id } = await shareTo(contact);
    const [row] = await deliver(id);
    expect(row).toMatchObject({ state: 'failed', attempts: MAX_ATTEMPTS, error_code: 'http.503' });
    const entries = await entriesAbout(row!.id);
    expect(entries).toHaveLength(MAX_ATTEMPTS);
    expect(entries.at(-1)).toMatchObject({ kind: 'message.failed', final: true, reason: 'delivery.attempts_exhausted', attempt: MAX_ATTEMPTS });
  });

  it('keeps messages waiting, attempts uncounted, while WhatsApp refuses the business account (an expired token)', async () => {
    await simulator.receiveText(contact, 'hi');
    // Refused more times than a message has attempts: the token is renewed only then.
    simulator.inject({ kind: 'error', httpStatus: 401, code: 190, message: 'Error validating access token: Session has expired' }, { times: MAX_ATTEMPTS + 1, endpoint: 'messages' });
    const { id } = await shareTo(contact);
    const [row] = await deliver(id);
    expect(row).toMatchObject({ state: 'sent', attempts: 1, error_code: null });
    expect(simulator.messagesTo(contact)).toHaveLength(1);
    const entries = await entriesAbout(row!.id);
    expect(entries.map((e) => [e.kind, e.error ?? null, e.final ?? null, e.reason ?? null])).toEqual([
      ...Array.from({ length: MAX_ATTEMPTS + 1 }, () => ['message.failed', 'whatsapp.190', false, 'delivery.account_problem']),
      ['message.sent', null, null, null],
    ]);
    expect(entries.every((e) => e.attempt === 1)).toBe(true);
  });

  it('after a pause for the business account, sends one message at a time until WhatsApp takes one', async () => {
    const contacts = [contact];
    for (let i = 0; i < 4; i++) {
      contacts.push(`3162${dialect === 'sqlite' ? 1 : 2}${String(++nextContact).padStart(5, '0')}`);
      await grant('whatsapp', contacts.at(-1)!);
    }
    for (const waId of contacts) await simulator.receiveText(waId, 'hi');
    simulator.inject({ kind: 'error', httpStatus: 401, code: 190, message: 'Error validating access token: Session has expired' }, { times: 1000, endpoint: 'messages' });
    const refusals = () => simulator.requests.filter((r) => r.endpoint === 'messages' && r.errorCode === 190).length;
    const before = refusals();
    const { id } = await shareTo(...contacts);
    // The first batch goes out whole and is refused whole; then the pause (50 ms).
    await sluice.drainOutbox();
    expect(refusals() - before).toBe(contacts.length);
    // Each pass after a pause tries one message, however many wait.
    for (const pass of [1, 2, 3]) {
      await new Promise((resolve) => setTimeout(resolve, 60));
      await sluice.drainOutbox();
      expect(refusals() - before).toBe(contacts.length + pass);
    }
    simulator.clearFaults();
    await new Promise((resolve) => setTimeout(resolve, 60));
    const rows = await deliver(id);
    expect(rows.map((r) => [r.state, r.attempts])).toEqual(contacts.map(() => ['sent', 1]));
    for (const waId of contacts) expect(simulator.messagesTo(waId)).toHaveLength(1);
  });

  it('sends again after a timeout, whose outcome is unknown (at-least-once), and audits both attempts', async () => {
    await simulator.receiveText(contact, 'hi');
    simulator.inject({ kind: 'hang', accept: true }, { endpoint: 'messages' });
    const { id } = await shareTo(contact);
    const [row] = await deliver(id);
    expect(row).toMatchObject({ state: 'sent', attempts: 2 });
    const copies = simulator.messagesTo(contact);
    expect(copies).toHaveLength(2);
    expect(row!.message_id).toBe(copies[1]!.wamid);
    expect((await entriesAbout(row!.id)).map((e) => [e.kind, e.attempt, e.delivered ?? null, e.error ?? null])).toEqual([
      ['message.failed', 1, 'unknown', 'transport.timeout'],
      ['message.sent', 2, null, null],
    ]);
  });

  it('sends again when WhatsApp reports failed the copy of an attempt whose answer was lost, rather than take it as sent', async () => {
    await simulator.receiveText(contact, 'hi');
    simulator.inject({ kind: 'hang', accept: true }, { endpoint: 'messages' });
    const { id } = await shareTo(contact);
    const p = dialect === 'postgres' ? '$1' : '?';
    // The first attempt times out; the message waits for its next one.
    await sluice.drainOutbox();
    await sluice.database.adminQuery(`UPDATE outbox_messages SET not_before = '2999-01-01T00:00:00.000Z' WHERE share_id = ${p} AND state = 'pending'`, [id]);
    expect((await outboxOf(id))[0]).toMatchObject({ state: 'pending', attempts: 1, message_id: null });
    // WhatsApp had taken that copy, and now reports it failed.
    const [lost] = simulator.messagesTo(contact);
    await simulator.sendStatus(lost!, 'failed', { errorCode: 131000 });
    expect((await outboxOf(id))[0]).toMatchObject({ state: 'pending', message_id: null });
    await sluice.database.adminQuery(`UPDATE outbox_messages SET not_before = NULL WHERE share_id = ${p}`, [id]);
    const [row] = await deliver(id);
    const copies = simulator.messagesTo(contact);
    expect(copies).toHaveLength(2);
    expect(row).toMatchObject({ state: 'sent', attempts: 2, message_id: copies[1]!.wamid });
    expect((await entriesAbout(row!.id)).map((e) => [e.kind, e.error ?? e.confirmedBy ?? null, e.final ?? null])).toEqual([
      ['message.failed', 'transport.timeout', false],
      ['message.status', 'whatsapp.131000', false],
      ['message.sent', null, null],
    ]);
  });

  it('does not send again when a status webhook proves that an unanswered attempt was accepted', async () => {
    await simulator.receiveText(contact, 'hi');
    simulator.autoStatuses = ['sent'];
    simulator.inject({ kind: 'hang', accept: true }, { endpoint: 'messages' });
    const { id } = await shareTo(contact);
    const [row] = await deliver(id);
    const [copy, ...others] = simulator.messagesTo(contact);
    expect(others).toEqual([]);
    expect(row).toMatchObject({ state: 'sent', attempts: 1, message_id: copy!.wamid });
    expect((await entriesAbout(row!.id)).map((e) => [e.kind, e.confirmedBy ?? e.error ?? e.status])).toEqual([
      ['message.status', 'sent'],
      ['message.failed', 'transport.timeout'],
      ['message.sent', 'status_webhook'],
    ]);
  });

  it('fails a text message to a contact outside the 24-hour window without calling WhatsApp', async () => {
    // Another prefix: never the contact of this or any other test.
    const stale = contact.replace(/^3162/, '3163');
    await grant('whatsapp', stale);
    await simulator.receiveText(stale, 'hi', { sentAt: new Date(Date.now() - 25 * 60 * 60 * 1000) });
    const requestsBefore = simulator.requests.length;
    const { id } = await shareTo(contact, stale);
    const rows = await deliver(id);
    expect(rows.map((r) => [r.state, r.error_code])).toEqual([
      ['failed', 'delivery.outside_service_window'],
      ['failed', 'delivery.outside_service_window'],
    ]);
    expect(simulator.requests.length).toBe(requestsBefore);
    expect(await recipientsOf(id)).toEqual(rows.map(() => expect.objectContaining({ delivery: 'failed', deliveryError: 'delivery.outside_service_window' })));
    expect(await entriesAbout(rows[0]!.id)).toEqual([expect.objectContaining({ kind: 'message.failed', final: true, delivered: 'no', error: 'delivery.outside_service_window' })]);
  });

  it('sends the policy\'s template to a contact who never wrote', async () => {
    const { id, status } = await share(shareRequest({ purpose: 'shift-alerts', post: workplacePost({ message: 'Shift starts at 7.' }), recipients: [{ waId: contact }] }));
    expect(status).toBe('accepted');
    expect((await deliver(id))[0]!.state).toBe('sent');
    expect(simulator.messagesTo(contact)[0]!.body).toMatchObject({
      type: 'template',
      template: { name: 'frontline_update', language: { code: 'en' }, components: [{ type: 'body', parameters: [{ type: 'text', text: 'Shift starts at 7.' }] }] },
    });
  });

  it("sends the policy's template instead when WhatsApp reports the text failed outside the window (131047), and ends a text with no template", async () => {
    await grant('whatsapp', contact, 'shift-news');
    await simulator.receiveText(contact, 'hi');
    const { id } = await share(shareRequest({ purpose: 'shift-news', post: workplacePost({ message: 'Shift starts at 7.', message_tags: [] }), recipients: [{ waId: contact }] }));
    await deliver(id);
    const [text] = simulator.messagesTo(contact);
    expect(text!.body).toMatchObject({ type: 'text' });
    // sluice saw the window open; WhatsApp says it was not.
    await simulator.sendStatus(text!, 'failed', { errorCode: 131047 });
    const [row] = await deliver(id);
    const copies = simulator.messagesTo(contact);
    expect(copies.map((c) => (c.body as { type: string }).type)).toEqual(['text', 'template']);
    expect(row).toMatchObject({ state: 'sent', attempts: 2, message_id: copies[1]!.wamid });
    // The window stays closed for the next message too, until the contact writes again.
    const next = await share(shareRequest({ purpose: 'shift-news', post: workplacePost({ message: 'Shift ends at 3.', message_tags: [] }), recipients: [{ waId: contact }] }));
    await deliver(next.id);
    expect((simulator.messagesTo(contact).at(-1)!.body as { type: string }).type).toBe('template');

    // Under a policy with no template for it, such a failure ends the message.
    await simulator.receiveText(contact, 'hi again');
    const plain = await shareTo(contact);
    const [sent] = await deliver(plain.id);
    const copy = simulator.messagesTo(contact).find((m) => m.wamid === sent!.message_id)!;
    await simulator.sendStatus(copy, 'failed', { errorCode: 131047 });
    expect((await outboxOf(plain.id))[0]).toMatchObject({ state: 'sent', error_code: 'whatsapp.131047' });
    expect(await recipientsOf(plain.id)).toEqual([expect.objectContaining({ delivery: 'failed' })]);
  });

  it('sends a text policy\'s template where the window is closed, and the text where it is open', async () => {
    const wrote = contact.replace(/^3162/, '3164');
    for (const waId of [contact, wrote]) await grant('whatsapp', waId, 'shift-news');
    await simulator.receiveText(wrote, 'hi');
    const { id, status } = await share(shareRequest({ purpose: 'shift-news', post: workplacePost({ message: 'Shift starts at 7, call 06-12345678.' }), recipients: [{ waId: contact }, { waId: wrote }] }));
    expect(status).toBe('accepted');
    expect((await deliver(id)).map((r) => r.state)).toEqual(['sent', 'sent']);
    expect(simulator.messagesTo(contact).map((m) => m.body)).toEqual([
      expect.objectContaining({
        type: 'template',
        template: { name: 'frontline_update', language: { code: 'en' }, components: [{ type: 'body', parameters: [{ type: 'text', text: 'Shift starts at 7, call [phone].' }] }] },
      }),
    ]);
    expect(simulator.messagesTo(wrote).map((m) => m.body)).toEqual([expect.objectContaining({ type: 'text', text: expect.objectContaining({ body: 'Shift starts at 7, call [phone].' }) })]);
    const decided = (await sluice.request('GET', '/v1/audit/entries')).text.split('\n').filter(Boolean).map((l) => JSON.parse(JSON.parse(l).entry) as Entry).find((e) => e.share === id);
    expect(decided).toMatchObject({ kind: 'share.decided', outsideWindow: { template: 'frontline_update', digest: expect.stringMatching(/^hd_/) } });
  });

  it('cancels a queued message whose consent is withdrawn while WhatsApp holds the answer to an earlier one', async () => {
    const other = contact.replace(/^3162/, '3165');
    await grant('whatsapp', other);
    for (const waId of [contact, other]) await simulator.receiveText(waId, 'hi');
    simulator.hold();
    const first = await shareTo(contact);
    const draining = sluice.drainOutbox();
    await eventually(async () => (simulator.held === 1 ? true : undefined), 'the first message to be held');
    const second = await shareTo(other);
    await grant('whatsapp', other, 'frontline-updates', 'withdrawn');
    // The next pass takes the second message while WhatsApp still holds the first one's answer.
    expect(await sluice.drainOutbox()).toBe(1);
    expect(simulator.held).toBe(1);
    simulator.release();
    await draining;

    expect((await recipientsOf(first.id))[0]!.delivery).toBe('sent');
    expect((await recipientsOf(second.id))[0]!.delivery).toBe('cancelled');
    expect(simulator.messagesTo(other)).toEqual([]);
    const [row] = await outboxOf(second.id);
    expect(row).toMatchObject({ state: 'cancelled', attempts: 0 });
    expect(await entriesAbout(row!.id)).toEqual([expect.objectContaining({ kind: 'message.cancelled', reason: 'recipient.consent_withdrawn' })]);
  });

  it(`keeps the phone number's send rate (${SEND_RATE}/s)${dialect === 'postgres' ? ' across two replicas draining at once' : ''}`, async () => {
    const waIds = Array.from({ length: 45 }, (_, i) => `3163${dialect === 'sqlite' ? 1 : 2}${String(i).padStart(5, '0')}`);
    for (const waId of waIds) {
      await grant('whatsapp', waId);
      await simulator.receiveText(waId, 'hi');
    }
    const first = simulator.messages.length;
    const { id } = await shareTo(...waIds);
    const replica = dialect === 'postgres' ? await sluice.startReplica() : undefined;
    try {
      await Promise.all([sluice.drainOutbox(), replica?.drainOutbox()]);
    } finally {
      await replica?.close();
    }
    // A slot past a claim's end is given up and retried (delivery.send_slot_lost): two replicas'
    // batches reserve about 2.3 s of the shared schedule, a claim here lasts 5 s less the requests' time.
    const rows = await deliver(id);
    expect(rows.every((r) => r.state === 'sent')).toBe(true);
    const arrivals = simulator.messages.slice(first).map((m) => m.receivedAt);
    expect(arrivals).toHaveLength(waIds.length);
    // Any SEND_RATE + 1 consecutive requests start over a second apart; arrivals add loopback and event-loop jitter (50 ms allowed).
    for (let i = 0; i + SEND_RATE < arrivals.length; i++) expect(arrivals[i + SEND_RATE]! - arrivals[i]!).toBeGreaterThan(950);
  });
});
