import { afterAll, beforeAll, expect, it } from '@jest/globals';
import pg from 'pg';
import sharp from 'sharp';
import { InMemoryMerkleLog, leafHash, rootAt } from '../../src/audit/domain/merkle.js';
import { AuditSequencer } from '../../src/audit/audit-sequencer.js';
import { SubjectKeyDestroyed, SubjectKeyService } from '../../src/audit/subject-keys.service.js';
import { TransactionRunner } from '../../src/platform/database/transaction-runner.js';
import { ApiKeyService } from '../../src/platform/auth/api-key.service.js';
import { AuditRetentionService } from '../../src/subjects/audit-retention.service.js';
import { describeEachDatabase } from '../support/databases.js';
import { eventually } from '../support/eventually.js';
import { AUTHOR_ID, consent, idempotencyKey, OTHER_RECIPIENT, RECIPIENT, shareRequest, TAGGED_ID, workplacePost } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

describeEachDatabase('subject access and erasure', (dialect) => {
  let sluice: RunningApp;
  let shareId: string;
  const message = 'Pieter Jansen opened the warehouse, call 06-12345678';

  beforeAll(async () => {
    sluice = await startTestApp(dialect);
    for (const [type, id] of [['whatsapp', RECIPIENT], ['whatsapp', OTHER_RECIPIENT], ['workplace', AUTHOR_ID]] as const) {
      await sluice.request('POST', '/v1/consents', { body: consent(type, id) });
    }
    const share = await sluice.request('POST', '/v1/shares', {
      body: shareRequest({ post: workplacePost({ message }), recipients: [{ waId: RECIPIENT }, { waId: OTHER_RECIPIENT }] }),
      headers: idempotencyKey(),
    });
    shareId = share.json.id;
    await sluice.drainOutbox();
    // Delivery outcomes are sequenced in the background; the report reads the log as it is.
    await sluice.app.get(AuditSequencer).sequenceNow();
  });
  afterAll(async () => {
    await sluice?.close();
  });

  const report = async (type: string, id: string) => (await sluice.request('GET', `/v1/subjects/${type}/${id}/report`)).json;
  const logText = async () => (await sluice.request('GET', '/v1/audit/entries')).text;
  /** The entries served hash to the root of the latest checkpoint, which covers all of them. */
  const verifyLog = async (text: string) => {
    const lines = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { index: number; entry: string });
    const log = new InMemoryMerkleLog();
    log.append(lines.map((l) => leafHash(Buffer.from(l.entry, 'utf8'))));
    const checkpoint = (await sluice.request('GET', '/v1/audit/checkpoint')).text.split('\n');
    expect(Number(checkpoint[1])).toBe(lines.length);
    expect(Buffer.from(rootAt(lines.length, log.lookup)).toString('base64')).toBe(checkpoint[2]);
  };

  it('shows the author every crossing of their data, what crossed and the exact text', async () => {
    const mine = await report('workplace', AUTHOR_ID);
    expect(mine.found).toBe(true);
    expect(mine.consents).toEqual([expect.objectContaining({ status: 'granted', purpose: 'frontline-updates', evidence: 'form' })]);
    expect(mine.crossings).toHaveLength(1);
    expect(mine.crossings[0]).toMatchObject({
      share: shareId,
      roles: ['author', 'shared it'],
      policy: { name: 'frontline-updates' },
      lawfulBasis: 'consent',
      status: 'accepted',
      consent: 'granted',
      expired: false,
      recipients: { allowed: 2, total: 2 },
      message: 'Anna de Vries:\n[person] opened the warehouse, call [phone]',
    });
    expect(mine.crossings[0].crossed).toEqual([
      { path: 'message', category: 'user.content', transform: 'redact-pii', aboutYou: false },
      { path: 'from.name', category: 'user.name', transform: 'none', aboutYou: true },
    ]);
    expect(mine.crossings[0].redactions).toEqual([
      { path: 'message', recogniser: 'mention', count: 1 },
      { path: 'message', recogniser: 'phone', count: 1 },
    ]);
  });

  it('shows a recipient the messages sent to them, and a tagged person their part without the text', async () => {
    const recipient = await report('whatsapp', RECIPIENT);
    expect(recipient.crossings).toEqual([expect.objectContaining({ share: shareId, roles: ['recipient'], consent: 'granted', message: null })]);
    expect(recipient.deliveries).toEqual([expect.objectContaining({ share: shareId, outcome: 'sent' })]);
    const tagged = await report('workplace', TAGGED_ID);
    expect(tagged.crossings).toEqual([expect.objectContaining({ roles: ['mentioned'], consent: 'none', message: null })]);
    const never = '31687000077';
    await sluice.request('POST', '/v1/shares', { body: shareRequest({ recipients: [{ waId: never }] }), headers: idempotencyKey() });
    expect((await report('whatsapp', never)).crossings).toEqual([expect.objectContaining({ roles: ['recipient'], consent: 'none', status: 'denied' })]);
  });

  it('renders a readable page with every value escaped', async () => {
    const page = await sluice.request('GET', `/v1/subjects/workplace/${AUTHOR_ID}/report?format=html`);
    expect(page.headers.get('content-type')).toContain('text/html');
    expect(page.headers.get('cache-control')).toBe('no-store');
    expect(page.text).toContain('What sluice recorded about you');
    expect(page.text).toContain('[person] opened the warehouse, call [phone]');
    expect(page.text).toContain('<td>from.name</td><td>user.name</td><td>none</td><td>yes</td>');
  });

  it('finds nothing for someone sluice never saw, without creating a key for them', async () => {
    expect(await report('whatsapp', '31699999999')).toMatchObject({ found: false, crossings: [], consents: [] });
    expect(await report('whatsapp', '31699999999')).toMatchObject({ found: false });
  });

  it('refuses a Workplace id with leading zeros everywhere: it would be another string for the same person', async () => {
    const padded = `000${AUTHOR_ID}`;
    const granted = await sluice.request('POST', '/v1/consents', { body: consent('workplace', padded) });
    expect([granted.status, granted.json.errors]).toEqual([400, [{ path: 'subject.id', message: 'id must be a numeric Workplace id, without leading zeros' }]]);
    for (const [method, suffix] of [['GET', 'report'], ['GET', 'consents'], ['POST', 'erase']] as const) {
      expect((await sluice.request(method, `/v1/subjects/workplace/${padded}/${suffix}`)).status).toBe(400);
    }
    const shared = await sluice.request('POST', '/v1/shares', { body: shareRequest({ sharedBy: { workplaceUserId: padded } }), headers: idempotencyKey() });
    expect([shared.status, shared.json.errors]).toEqual([400, [{ path: 'sharedBy.workplaceUserId', message: 'workplaceUserId must be a numeric Workplace id, without leading zeros' }]]);
  });

  it('needs subjects:erase to erase and audit:read to read a report', async () => {
    const { secret } = await sluice.app.get(ApiKeyService).create('reader', ['audit:read', 'shares:read']);
    expect((await sluice.request('POST', `/v1/subjects/whatsapp/${RECIPIENT}/erase`, { key: secret })).status).toBe(403);
    expect((await sluice.request('GET', `/v1/subjects/whatsapp/${RECIPIENT}/report`, { key: secret })).status).toBe(200);
    expect((await sluice.request('GET', `/v1/subjects/email/x/report`)).status).toBe(400);
    // Every problem of the path named, for each route under it.
    for (const [method, suffix] of [['GET', 'report'], ['GET', 'consents'], ['POST', 'erase']] as const) {
      const response = await sluice.request(method, `/v1/subjects/foo/not-an-id/${suffix}`);
      expect([suffix, response.status, (response.json.errors as { path: string }[]).map((e) => e.path)]).toEqual([suffix, 400, ['type', 'id']]);
    }
  });

  it('erases a recipient: the report finds nothing, nothing links them, and the log still verifies', async () => {
    const before = await logText();
    const erased = await sluice.request('POST', `/v1/subjects/whatsapp/${RECIPIENT}/erase`);
    expect(erased.status).toBe(200);
    expect(erased.json).toMatchObject({ erased: true, audit: { entry: expect.stringMatching(/^ent_/), index: expect.any(Number) } });

    expect(await report('whatsapp', RECIPIENT)).toMatchObject({ found: false, consents: [], crossings: [], deliveries: [] });
    expect((await sluice.request('GET', `/v1/subjects/whatsapp/${RECIPIENT}/consents`)).json).toMatchObject({ current: [], history: [] });
    expect((await sluice.request('GET', `/v1/sandbox/messages?waId=${RECIPIENT}`)).json).toEqual([]);
    const share = (await sluice.request('GET', `/v1/shares/${shareId}`)).json;
    expect(JSON.stringify(share)).not.toContain(RECIPIENT);
    expect(share.recipients.map((r: { waId: string }) => r.waId)).toEqual([expect.stringMatching(/^erased-/), OTHER_RECIPIENT]);
    const tables = ['share_recipients', 'outbox_messages', 'consent_states', 'consent_events', 'shares', 'sandbox_messages', 'whatsapp_contacts'];
    for (const table of tables) {
      const rows = await sluice.database.adminQuery(`SELECT * FROM ${table}`);
      expect(JSON.stringify(rows)).not.toContain(RECIPIENT);
    }

    // The log is unchanged up to the erasure, which it records without personal data.
    const after = await logText();
    expect(after.startsWith(before)).toBe(true);
    const lines = after.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { index: number; entry: string });
    const erasure = JSON.parse(lines.at(-1)!.entry);
    expect(erasure).toMatchObject({ kind: 'subject.erased', subjectType: 'whatsapp', subject: expect.stringMatching(/^ps_/), cleared: { shares: 1, messages: 1 } });
    expect(after).not.toContain(RECIPIENT);
    await verifyLog(after);

    // The other recipient is untouched; erasing again finds nothing to erase.
    expect((await report('whatsapp', OTHER_RECIPIENT)).deliveries).toHaveLength(1);
    expect((await sluice.request('POST', `/v1/subjects/whatsapp/${RECIPIENT}/erase`)).json).toEqual({ erased: false, audit: null });
  });

  it('erases an author: their crossings and sealed text can no longer be read, and a new share starts afresh', async () => {
    // What was sent names them: the message bodies kept would tie the share's entries to them again.
    const clearText = async () => JSON.stringify([await sluice.database.adminQuery('SELECT * FROM outbox_messages'), await sluice.database.adminQuery('SELECT * FROM sandbox_messages')]);
    expect(await clearText()).toContain('Anna de Vries');
    // So do the consents their messages rest on, kept to be checked again before each send.
    expect(await clearText()).toContain(AUTHOR_ID);
    const erased = (await sluice.request('POST', `/v1/subjects/workplace/${AUTHOR_ID}/erase`)).json;
    expect(erased.erased).toBe(true);
    expect(await report('workplace', AUTHOR_ID)).toMatchObject({ found: false, crossings: [] });
    for (const text of ['Anna de Vries', 'opened the warehouse', AUTHOR_ID]) expect(await clearText()).not.toContain(text);
    expect((await sluice.request('GET', `/v1/sandbox/messages?waId=${OTHER_RECIPIENT}`)).json).toEqual([expect.objectContaining({ request: { erased: true } })]);
    await sluice.app.get(AuditSequencer).sequenceNow();
    const erasure = (await logText()).split('\n').filter(Boolean).map((line) => JSON.parse(JSON.parse(line).entry) as Record<string, unknown>).find((e) => e.id === erased.audit.entry);
    // Their two shares (the denied one above has no messages), and both messages of the first: the
    // one to the recipient erased earlier had lost its number already.
    expect(erasure).toMatchObject({ kind: 'subject.erased', subjectType: 'workplace', cleared: { shares: 2, messages: 2 } });

    // They consent again and share again: only what follows the erasure is theirs now.
    await sluice.request('POST', '/v1/consents', { body: consent('workplace', AUTHOR_ID) });
    await sluice.request('POST', '/v1/shares', { body: shareRequest({ post: workplacePost({ message: 'Second post' }), recipients: [{ waId: OTHER_RECIPIENT }] }), headers: idempotencyKey() });
    const fresh = await report('workplace', AUTHOR_ID);
    expect(fresh.crossings).toHaveLength(1);
    expect(fresh.crossings[0].message).toBe('Anna de Vries:\nSecond post');
    expect(fresh.consents).toHaveLength(1);
  });

  it('erases a person tagged in a queued share: its message is cancelled, with its final entry, and its content and photo go', async () => {
    const tagged = '100041112223';
    const waId = '31687000013';
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId) });
    await sluice.request('POST', '/v1/consents', { body: consent('workplace', tagged) });
    const jpeg = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#804040' } }).jpeg().toBuffer();
    const post = workplacePost({
      message: 'Marieke Bos opened the canteen',
      message_tags: [{ id: tagged, name: 'Marieke Bos', type: 'user', offset: 0, length: 11 }],
      attachments: { data: [{ type: 'photo', media: { image: { src: `data:image/jpeg;base64,${jpeg.toString('base64')}` } } }] },
    });
    const share = await sluice.request('POST', '/v1/shares', { body: shareRequest({ post, recipients: [{ waId }] }), headers: idempotencyKey() });
    expect(share.json.status).toBe('accepted');
    const p = dialect === 'postgres' ? '$1' : '?';
    const outbox = () => sluice.database.adminQuery<{ state: string; payload: string }>(`SELECT state, payload FROM outbox_messages WHERE share_id = ${p}`, [share.json.id]);
    expect((await outbox())[0]!.payload).toContain('opened the canteen');

    const erased = (await sluice.request('POST', `/v1/subjects/workplace/${tagged}/erase`)).json;
    expect(erased.erased).toBe(true);
    expect(await outbox()).toEqual([{ state: 'cancelled', payload: '{"erased":true}' }]);
    expect(await sluice.database.adminQuery(`SELECT id FROM media_objects WHERE share_id = ${p}`, [share.json.id])).toEqual([]);
    expect((await sluice.request('GET', `/v1/shares/${share.json.id}`)).json.recipients).toEqual([expect.objectContaining({ waId, delivery: 'cancelled' })]);
    await sluice.app.get(AuditSequencer).sequenceNow();
    const entries = (await logText()).split('\n').filter(Boolean).map((line) => JSON.parse(JSON.parse(line).entry) as Record<string, unknown>);
    const recipient = (await report('whatsapp', waId)).deliveries as { share: string; outcome: string; detail: string }[];
    expect(recipient).toEqual([expect.objectContaining({ share: share.json.id, outcome: 'cancelled', detail: 'subject.erased' })]);
    expect(entries.find((e) => e.id === erased.audit.entry)).toMatchObject({ subjectType: 'workplace', cleared: { shares: 1, messages: 1 } });
    // Nothing is sent: the worker finds the message cancelled.
    await sluice.drainOutbox();
    expect((await sluice.request('GET', `/v1/sandbox/messages?waId=${waId}`)).json).toEqual([]);
  });

  it('never sends a message whose body an erasure cleared, should one still be queued', async () => {
    const waId = '31687000015';
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId) });
    const share = await sluice.request('POST', '/v1/shares', { body: shareRequest({ recipients: [{ waId }] }), headers: idempotencyKey() });
    const p = dialect === 'postgres' ? '$1' : '?';
    await sluice.database.adminQuery(`UPDATE outbox_messages SET payload = '{"erased":true}' WHERE share_id = ${p}`, [share.json.id]);
    await sluice.drainOutbox();
    expect(await sluice.database.adminQuery(`SELECT state FROM outbox_messages WHERE share_id = ${p}`, [share.json.id])).toEqual([{ state: 'cancelled' }]);
    expect((await sluice.request('GET', `/v1/sandbox/messages?waId=${waId}`)).json).toEqual([]);
    await sluice.app.get(AuditSequencer).sequenceNow();
    expect((await report('whatsapp', waId)).deliveries).toEqual([expect.objectContaining({ share: share.json.id, outcome: 'cancelled', detail: 'subject.erased' })]);
  });

  it('erases a recipient whose message is still queued: it is cancelled, with its final entry, and its media go', async () => {
    const waId = '31687000011';
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId) });
    const jpeg = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#808080' } }).jpeg().toBuffer();
    const photo = { attachments: { data: [{ type: 'photo', media: { image: { src: `data:image/jpeg;base64,${jpeg.toString('base64')}` } } }] } };
    const share = await sluice.request('POST', '/v1/shares', { body: shareRequest({ post: workplacePost(photo), recipients: [{ waId }] }), headers: idempotencyKey() });
    expect(share.json.status).toBe('accepted');
    const mediaOfShare = () => sluice.database.adminQuery(`SELECT id FROM media_objects WHERE share_id = ${dialect === 'postgres' ? '$1' : '?'}`, [share.json.id]);
    expect(await mediaOfShare()).toHaveLength(1);
    const erased = (await sluice.request('POST', `/v1/subjects/whatsapp/${waId}/erase`)).json;
    expect(erased.erased).toBe(true);
    expect((await sluice.request('GET', `/v1/shares/${share.json.id}`)).json.recipients).toEqual([expect.objectContaining({ waId: expect.stringMatching(/^erased-/), delivery: 'cancelled' })]);
    const entries = (await logText()).split('\n').filter(Boolean).map((line) => JSON.parse(JSON.parse(line).entry) as Record<string, unknown>);
    const erasure = entries.find((e) => e.id === erased.audit.entry)!;
    const cancelled = entries.filter((e) => e.kind === 'message.cancelled' && e.share === share.json.id);
    expect(cancelled).toEqual([expect.objectContaining({ reason: 'subject.erased', recipient: erasure.subject })]);
    expect(cancelled[0]).not.toHaveProperty('attempt');
    expect(await mediaOfShare()).toEqual([]);
    await sluice.drainOutbox();
    expect(JSON.stringify(await sluice.database.adminQuery('SELECT * FROM sandbox_messages'))).not.toContain(waId);
  });

  it('erases a recipient whose photo was sent: the copy kept in case it must be sent again goes', async () => {
    const waId = '31687000012';
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId) });
    const jpeg = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#408040' } }).jpeg().toBuffer();
    const photo = { attachments: { data: [{ type: 'photo', media: { image: { src: `data:image/jpeg;base64,${jpeg.toString('base64')}` } } }] } };
    const share = await sluice.request('POST', '/v1/shares', { body: shareRequest({ post: workplacePost(photo), recipients: [{ waId }] }), headers: idempotencyKey() });
    await sluice.drainOutbox();
    expect((await sluice.request('GET', `/v1/shares/${share.json.id}`)).json.recipients).toEqual([expect.objectContaining({ delivery: 'sent' })]);
    const mediaOfShare = () => sluice.database.adminQuery(`SELECT id FROM media_objects WHERE share_id = ${dialect === 'postgres' ? '$1' : '?'}`, [share.json.id]);
    expect(await mediaOfShare()).toHaveLength(1);
    expect((await sluice.request('POST', `/v1/subjects/whatsapp/${waId}/erase`)).json.erased).toBe(true);
    expect(await mediaOfShare()).toEqual([]);
  });

  it('destroys the keys of people not processed within the retention period, and says so in the log', async () => {
    const retention = sluice.app.get(AuditRetentionService);
    expect(await retention.sweep(new Date())).toMatchObject({ status: 'swept', destroyed: {} });
    expect((await report('whatsapp', OTHER_RECIPIENT)).found).toBe(true);

    // The recipient withdraws; three years on, past frontline-updates' P2Y, nobody has been processed since.
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', OTHER_RECIPIENT, 'withdrawn') });
    // They wrote to the business once (their 24-hour window).
    await sluice.database.adminQuery(`INSERT INTO whatsapp_contacts (wa_id, last_inbound_at) VALUES (${dialect === 'postgres' ? '$1, $2' : '?, ?'})`, [OTHER_RECIPIENT, new Date().toISOString()]);
    // And WhatsApp named their user id with their number.
    await sluice.database.adminQuery(`INSERT INTO whatsapp_user_ids (user_id, wa_id, learned_at) VALUES (${dialect === 'postgres' ? '$1, $2, $3' : '?, ?, ?'})`, ['NL.4711', OTHER_RECIPIENT, new Date().toISOString()]);
    const later = new Date(Date.now() + 3 * 365 * 86_400_000);
    const swept = await retention.sweep(later);
    expect(swept).toMatchObject({ status: 'swept', destroyed: { whatsapp: expect.any(Number), workplace: expect.any(Number) } });
    for (const [type, id] of [['whatsapp', OTHER_RECIPIENT], ['workplace', TAGGED_ID]]) {
      expect(await report(type!, id!)).toMatchObject({ found: false, crossings: [] });
    }
    // What is left of the withdrawn consent named the number next to the entry with its pseudonym.
    expect(JSON.stringify(await sluice.database.adminQuery('SELECT * FROM consent_states'))).not.toContain(OTHER_RECIPIENT);
    // The author's consent stands and is relied on: its proof stays readable, and so their key.
    const author = await report('workplace', AUTHOR_ID);
    expect(author.found).toBe(true);
    const consents = (await sluice.request('GET', `/v1/subjects/workplace/${AUTHOR_ID}/consents`)).json;
    expect(consents.current).toEqual([expect.objectContaining({ status: 'granted' })]);
    expect(consents.history).toEqual([expect.objectContaining({ status: 'granted', evidence: expect.objectContaining({ method: 'form', text: 'notice v3' }) })]);
    const lines = (await logText()).split('\n').filter(Boolean);
    expect(JSON.parse(JSON.parse(lines.at(-1)!).entry)).toMatchObject({ kind: 'subject.erased', reason: 'retention', keys: swept.status === 'swept' ? swept.destroyed : {} });

    // The operational copies older than the retention went too: they held the number and the
    // texts in the clear. The log keeps what happened, and still verifies.
    expect(swept).toMatchObject({ purged: { shares: expect.any(Number) } });
    expect(swept.status === 'swept' && swept.purged.shares).toBeGreaterThanOrEqual(1);
    expect(swept).toMatchObject({ purged: { contacts: 1 } });
    for (const table of ['share_recipients', 'outbox_messages', 'shares', 'sandbox_messages', 'whatsapp_contacts', 'whatsapp_user_ids']) {
      expect([table, JSON.stringify(await sluice.database.adminQuery(`SELECT * FROM ${table}`))]).not.toEqual([table, expect.stringContaining(OTHER_RECIPIENT)]);
    }
    expect((await sluice.request('GET', `/v1/shares/${shareId}`)).status).toBe(404);
    expect((await logText()).split('\n').filter(Boolean).length).toBe(lines.length);
    await verifyLog(await logText());
    // Nothing of theirs is left to erase.
    expect((await sluice.request('POST', `/v1/subjects/whatsapp/${OTHER_RECIPIENT}/erase`)).json).toEqual({ erased: false, audit: null });
  });

  it('erases someone whose key a retention sweep destroyed: the clear copies of their number go too', async () => {
    // Their key unused past the retention, their share still recent (a message to them waits): the sweep destroys the key and keeps the share.
    const waId = '31687000014';
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId) });
    const share = await sluice.request('POST', '/v1/shares', { body: shareRequest({ post: workplacePost({ message: 'Canteen closed' }), recipients: [{ waId }] }), headers: idempotencyKey() });
    expect(share.json.status).toBe('accepted');
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId, 'withdrawn') });
    await sluice.database.adminQuery(`UPDATE subject_keys SET last_used_at = '2020-01-01T00:00:00.000Z' WHERE destroyed_at IS NULL`);
    const swept = await sluice.app.get(AuditRetentionService).sweep();
    expect(swept).toMatchObject({ status: 'swept', destroyed: { whatsapp: expect.any(Number) } });
    expect((await report('whatsapp', waId)).found).toBe(false);
    expect(JSON.stringify(await sluice.database.adminQuery('SELECT * FROM share_recipients'))).toContain(waId);

    const erased = await sluice.request('POST', `/v1/subjects/whatsapp/${waId}/erase`);
    expect(erased.json).toMatchObject({ erased: true, audit: { entry: expect.stringMatching(/^ent_/), index: expect.any(Number) } });
    for (const table of ['share_recipients', 'outbox_messages', 'consent_states', 'shares', 'sandbox_messages', 'whatsapp_contacts']) {
      expect(JSON.stringify(await sluice.database.adminQuery(`SELECT * FROM ${table}`))).not.toContain(waId);
    }
    const entries = (await logText()).split('\n').filter(Boolean);
    expect(JSON.parse(JSON.parse(entries.at(-1)!).entry)).toMatchObject({ kind: 'subject.erased', subjectType: 'whatsapp', subject: expect.stringMatching(/^ps_/), cleared: { shares: 1, messages: 1 } });
    expect((await sluice.request('POST', `/v1/subjects/whatsapp/${waId}/erase`)).json).toEqual({ erased: false, audit: null });
  });

  it('sweeps once it starts, not only a day later: a server restarted daily still honours retention', async () => {
    const waId = '31687000009';
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId, 'withdrawn') });
    expect((await report('whatsapp', waId)).found).toBe(true);
    await sluice.database.adminQuery(`UPDATE subject_keys SET last_used_at = '2020-01-01T00:00:00.000Z' WHERE destroyed_at IS NULL`);
    sluice = await sluice.restart();
    await eventually(async () => ((await report('whatsapp', waId)).found === false ? true : undefined), 'the sweep at start to destroy the stale key');
    // Its entry is sequenced in the background after the key is gone.
    const last = await eventually(async () => {
      const entry = JSON.parse(JSON.parse((await logText()).split('\n').filter(Boolean).at(-1)!).entry) as { kind: string };
      return entry.kind === 'subject.erased' ? entry : undefined;
    }, 'the sweep to be in the log');
    expect(last).toMatchObject({ kind: 'subject.erased', reason: 'retention', keys: { whatsapp: 1 } });
  });

  // SQLite runs one transaction at a time: a sweep can only come before or after another's.
  if (dialect === 'postgres') it('never uses a key a retention sweep destroyed after a transaction read it', async () => {
    const keys = sluice.app.get(SubjectKeyService);
    const transactions = sluice.app.get(TransactionRunner);
    const subject = { type: 'whatsapp', id: '31689000001' };
    await transactions.run(async (manager) => void (await keys.keysFor(manager, [subject])));
    await sluice.database.adminQuery(`UPDATE subject_keys SET last_used_at = '2020-01-01T00:00:00.000Z' WHERE destroyed_at IS NULL`);
    const used = transactions.run(async (manager) => {
      const read = await keys.read(manager, [subject]);
      expect(await sluice.app.get(AuditRetentionService).sweep()).toMatchObject({ status: 'swept', destroyed: { whatsapp: 1 } });
      return (await keys.keysFor(manager, [subject], read)).pseudonym(subject);
    });
    await expect(used).rejects.toThrow(SubjectKeyDestroyed);
    // Tried again, it reads afresh: the person gets a new key.
    expect(await transactions.run(async (manager) => (await keys.keysFor(manager, [subject])).pseudonym(subject))).toMatch(/^ps_/);
  });

  // SQLite runs one transaction at a time: a report cannot queue a message in the middle of a purge batch.
  if (dialect === 'postgres') it('keeps a share past the retention whose message a failure report queues again while the purge takes it', async () => {
    const waId = '31687000016';
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId) });
    const share = await sluice.request('POST', '/v1/shares', { body: shareRequest({ post: workplacePost({ message: 'Dock 4 reopened' }), recipients: [{ waId }] }), headers: idempotencyKey() });
    await sluice.drainOutbox();
    const outbox = () => sluice.database.adminQuery<{ state: string }>('SELECT state FROM outbox_messages WHERE share_id = $1', [share.json.id]);
    expect(await outbox()).toEqual([{ state: 'sent' }]);
    // Another connection holds the message's row, as a status report about to queue it again does.
    const reporter = new pg.Client({ connectionString: (sluice.config.database as { url: string }).url });
    await reporter.connect();
    try {
      await reporter.query('BEGIN');
      await reporter.query('SELECT id FROM outbox_messages WHERE share_id = $1 FOR UPDATE', [share.json.id]);
      const swept = sluice.app.get(AuditRetentionService).sweep(new Date(Date.now() + 3 * 365 * 86_400_000));
      // The purge has read the share as old and finished, and now waits for this connection's row lock.
      const purgeWaits = async () =>
        Number((await reporter.query('SELECT count(*) AS n FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))', [(reporter as unknown as { processID: number }).processID])).rows[0].n) > 0;
      await eventually(async () => ((await purgeWaits()) ? true : undefined), 'the purge to wait for the message row');
      await reporter.query("UPDATE outbox_messages SET state = 'pending' WHERE share_id = $1", [share.json.id]);
      await reporter.query('COMMIT');
      expect(await swept).toMatchObject({ status: 'swept' });
    } finally {
      await reporter.end();
    }
    // The message queued again, and the share it belongs to, are still there to be sent and read.
    expect(await outbox()).toEqual([{ state: 'pending' }]);
    expect((await sluice.request('GET', `/v1/shares/${share.json.id}`)).json.recipients).toEqual([expect.objectContaining({ waId })]);
  });

  it('leaves each share of an erased recipient a placeholder of its own: the rows left do not link their shares', async () => {
    const contact = '31687000123';
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', contact) });
    const shares: string[] = [];
    for (const recipients of [[{ waId: contact }], [{ waId: contact }, { waId: OTHER_RECIPIENT }], [{ waId: contact }]]) {
      shares.push((await sluice.request('POST', '/v1/shares', { body: shareRequest({ recipients }), headers: idempotencyKey() })).json.id);
    }
    await sluice.drainOutbox();
    expect((await sluice.request('POST', `/v1/subjects/whatsapp/${contact}/erase`)).json.erased).toBe(true);

    const placeholders = new Map<string, string>();
    for (const id of shares) {
      const recipients = (await sluice.request('GET', `/v1/shares/${id}`)).json.recipients as { waId: string; delivery: string }[];
      const erased = recipients.filter((r) => r.waId.startsWith('erased-'));
      // Within a share the placeholder is the same in its document, its recipient and its message.
      expect(erased).toEqual([expect.objectContaining({ delivery: 'sent' })]);
      const [message] = await sluice.database.adminQuery<{ wa_id: string }>(`SELECT wa_id FROM outbox_messages WHERE share_id = ${dialect === 'postgres' ? '$1' : '?'} AND wa_id LIKE 'erased-%'`, [id]);
      expect(message?.wa_id).toBe(erased[0]!.waId);
      placeholders.set(id, erased[0]!.waId);
    }
    expect(new Set(placeholders.values()).size).toBe(shares.length);
  });

  it('shows a tagged person who consented that their name crossed in the message', async () => {
    const tagged = '100049999042';
    const recipient = '31687000042';
    await sluice.request('POST', '/v1/consents', { body: consent('workplace', tagged) });
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', recipient) });
    const tags = [{ id: tagged, name: 'Pieter Jansen', type: 'user', offset: 0, length: 13 }];
    const share = await sluice.request('POST', '/v1/shares', { body: shareRequest({ post: workplacePost({ message: 'Pieter Jansen opened it', message_tags: tags }), recipients: [{ waId: recipient }] }), headers: idempotencyKey() });
    expect(share.json.status).toBe('accepted');
    const theirs = await report('workplace', tagged);
    expect(theirs.crossings).toEqual([expect.objectContaining({ share: share.json.id, roles: ['mentioned'], consent: 'granted', message: null, yourData: ['user.name'] })]);
    expect(theirs.crossings[0].crossed).toContainEqual({ path: 'message', category: 'user.content', transform: 'redact-pii', aboutYou: true });
    expect((await report('whatsapp', recipient)).crossings).toEqual([expect.objectContaining({ share: share.json.id, roles: ['recipient'], yourData: ['user.contact.phone_number'] })]);
    expect((await sluice.request('GET', `/v1/subjects/workplace/${tagged}/report?format=html`)).text).toContain('Your data that crossed: <code>user.name</code>.');
    // Without their consent their name is cut: the message carries nothing of them.
    const unconsenting = '100049999043';
    const cutTags = [{ id: unconsenting, name: 'Pieter Jansen', type: 'user', offset: 0, length: 13 }];
    await sluice.request('POST', '/v1/shares', { body: shareRequest({ post: workplacePost({ message: 'Pieter Jansen opened it', message_tags: cutTags }), recipients: [{ waId: recipient }] }), headers: idempotencyKey() });
    const cut = await report('workplace', unconsenting);
    expect(cut.crossings[0].crossed).toContainEqual({ path: 'message', category: 'user.content', transform: 'redact-pii', aboutYou: false });
    expect(cut.crossings[0].yourData).toEqual([]);
  });

  it('tells the people of a share that no recipient was allowed that nothing of theirs crossed', async () => {
    const tagged = '100049999044';
    await sluice.request('POST', '/v1/consents', { body: consent('workplace', tagged) });
    const tags = [{ id: tagged, name: 'Pieter Jansen', type: 'user', offset: 0, length: 13 }];
    // OTHER_RECIPIENT withdrew and was erased above: the share is denied for want of consent, and nothing is sent.
    const share = await sluice.request('POST', '/v1/shares', { body: shareRequest({ post: workplacePost({ message: 'Pieter Jansen opened it', message_tags: tags }), recipients: [{ waId: OTHER_RECIPIENT }] }), headers: idempotencyKey() });
    expect([share.json.status, share.json.reasons]).toEqual(['denied', ['recipient.no_consent']]);
    for (const [type, id] of [['workplace', tagged], ['workplace', AUTHOR_ID]] as const) {
      const crossing = (await report(type, id)).crossings.find((c: { share: string }) => c.share === share.json.id);
      expect(crossing).toEqual(expect.objectContaining({ status: 'denied', reasons: ['recipient.no_consent'], crossed: [], yourData: [], redactions: [], message: null, recipients: { allowed: 0, total: 1 } }));
    }
  });
  it('keeps a key last recorded as used on the cutoff day: its use is recorded once a day, and may have come after the cutoff', async () => {
    const contact = { type: 'whatsapp' as const, id: '31687000321' };
    const keys = sluice.app.get(SubjectKeyService);
    const transactions = sluice.app.get(TransactionRunner);
    const mark = dialect === 'postgres' ? '$1' : '?';
    // Everyone else's keys in use long after: only this one is weighed.
    await sluice.database.adminQuery(`UPDATE subject_keys SET last_used_at = ${mark}`, ['2099-01-01T00:00:00.000Z']);
    await transactions.run(async (manager) => keys.keysFor(manager, [contact]));
    await sluice.database.adminQuery(`UPDATE subject_keys SET last_used_at = ${mark} WHERE last_used_at <> '2099-01-01T00:00:00.000Z'`, ['2030-01-10T09:00:00.000Z']);
    const sameDay = await transactions.run(async (manager) => keys.destroyUnusedSince(manager, new Date('2030-01-10T12:00:00.000Z')));
    expect([sameDay.counts, sameDay.destroyed(contact)]).toEqual([{}, false]);
    const dayAfter = await transactions.run(async (manager) => keys.destroyUnusedSince(manager, new Date('2030-01-11T00:00:00.000Z')));
    expect([dayAfter.counts, dayAfter.destroyed(contact)]).toEqual([{ whatsapp: 1 }, true]);
  });
});
