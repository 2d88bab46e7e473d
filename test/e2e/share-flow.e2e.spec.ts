import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createHash } from 'node:crypto';
import pg from 'pg';
import { AuditSequencer, SEQUENCER_LOCK_ID } from '../../src/audit/audit-sequencer.js';
import { canonicalJson } from '../../src/audit/domain/canonical-json.js';
import { ConsentLedger } from '../../src/consent/consent-ledger.js';
import { ApiKeyService } from '../../src/platform/auth/api-key.service.js';
import { describeEachDatabase } from '../support/databases.js';
import { eventually } from '../support/eventually.js';
import { AUTHOR_ID, consent, idempotencyKey, OTHER_RECIPIENT, RECIPIENT, shareRequest, TAGGED_ID, workplacePost } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

describeEachDatabase('share flow over HTTP', (dialect) => {
  let sluice: RunningApp;

  beforeAll(async () => {
    sluice = await startTestApp(dialect);
  });
  afterAll(async () => {
    await sluice?.close();
  });

  const share = (body: unknown, headers: Record<string, string> = idempotencyKey()) =>
    sluice.request('POST', '/v1/shares', { body, headers });
  const grant = (type: 'whatsapp' | 'workplace', id: string, status: 'granted' | 'withdrawn' = 'granted') =>
    sluice.request('POST', '/v1/consents', { body: consent(type, id, status) });
  const sandbox = async (waId: string) => (await sluice.request('GET', `/v1/sandbox/messages?waId=${waId}`)).json as { request: { to: string; text: { body: string } } }[];

  describe('health', () => {
    it('answers liveness and readiness without a key', async () => {
      expect((await sluice.request('GET', '/health', { key: null })).json).toEqual({ status: 'ok' });
      const ready = await sluice.request('GET', '/ready', { key: null });
      expect(ready.status).toBe(200);
      expect(ready.json.checks).toMatchObject({ database: true, policies: true });
    });
  });

  describe('authentication and scopes', () => {
    it('refuses a request without a key with 401 problem+json', async () => {
      const response = await sluice.request('POST', '/v1/shares', { body: shareRequest(), headers: idempotencyKey(), key: null });
      expect(response.status).toBe(401);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
    });

    it('refuses an unknown key with 401', async () => {
      const response = await sluice.request('GET', '/v1/shares/shr_x', { key: 'slk_not-a-key' });
      expect(response.status).toBe(401);
    });

    it('refuses a key without the route scope with 403, and lets the scope through', async () => {
      const { secret } = await sluice.app.get(ApiKeyService).create('reader', ['shares:read']);
      const write = await sluice.request('POST', '/v1/shares', { body: shareRequest(), headers: idempotencyKey(), key: secret });
      expect(write.status).toBe(403);
      expect(write.json.detail).toContain('shares:write');
      const read = await sluice.request('GET', '/v1/shares/shr_unknown', { key: secret });
      expect(read.status).toBe(404);
      const audit = await sluice.request('GET', '/v1/audit/checkpoint', { key: secret });
      expect(audit.status).toBe(403);
    });
  });

  describe('malformed requests', () => {
    it('takes a post whose unknown fields are named like Object.prototype members, and never sends them', async () => {
      const waId = '31600000077';
      await grant('whatsapp', waId);
      const raw = `{"purpose":"frontline-updates","sharedBy":{"workplaceUserId":"${AUTHOR_ID}"},"recipients":[{"waId":"${waId}"}],
        "post":{"id":"1_77","message":"Hello","from":{"id":"${AUTHOR_ID}","name":"Anna de Vries","constructor":"proto-marker-1"},
        "constructor":"proto-marker-2","prototype":{"constructor":"proto-marker-3"},"x":{"prototype":"proto-marker-4"},
        "attachments":{"data":[{"type":"share","constructor":"proto-marker-5"}]}}}`;
      const response = await share(raw);
      expect(response.json.errors).toBeUndefined();
      expect(response.status).toBe(201);
      expect(response.json.crossing.dropped).toEqual(expect.arrayContaining([{ path: 'constructor', reason: 'not_allow_listed' }, { path: 'prototype', reason: 'not_allow_listed' }]));
      await sluice.drainOutbox();
      const sent = JSON.stringify((await sandbox(waId)).at(-1));
      expect(sent).not.toContain('proto-marker');
    });

    it('sends to a Brazilian mobile given in its old form as today\'s number, and lists it under either form', async () => {
      const [number, oldForm] = dialect === 'sqlite' ? ['5511987650001', '551187650001'] : ['5511987650002', '551187650002'];
      await grant('whatsapp', oldForm);
      const response = await share(shareRequest({ recipients: [{ waId: oldForm }] }));
      expect(response.json.recipients).toEqual([expect.objectContaining({ waId: number, decision: 'allowed' })]);
      await sluice.drainOutbox();
      const sent = await sandbox(number);
      expect(sent.map((m) => m.request.to)).toEqual([number]);
      expect(await sandbox(oldForm)).toEqual(sent);
    });

    it('refuses prototype poisoning with a 400 problem', async () => {
      const response = await share(`{"purpose":"frontline-updates","__proto__":{"polluted":true}}`);
      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    });

    it('names a prototype-member key in a strict body as a problem instead of failing', async () => {
      const response = await sluice.request('POST', '/v1/consents', {
        body: '{"subject":{"type":"whatsapp","id":"31612345678"},"purpose":"frontline-updates","status":"granted","evidence":{"method":"form","constructor":"x"}}',
      });
      expect(response.status).toBe(400);
      expect(response.json.errors).toEqual([expect.objectContaining({ path: 'evidence.constructor' })]);
    });

    it('lists every problem of a bad request in one 400', async () => {
      const response = await sluice.request('POST', '/v1/shares', {
        body: { purpose: 'Frontline Updates!', sharedBy: {}, post: { id: 'x', from: { id: 'abc' }, message_tags: [{ offset: -1 }] }, recipients: [{ waId: '+31 6 1234' }], extra: 1 },
      });
      expect(response.status).toBe(400);
      expect(response.headers.get('content-type')).toContain('application/problem+json');
      const paths = (response.json.errors as { path: string }[]).map((e) => e.path);
      expect(paths).toEqual(
        expect.arrayContaining([
          'Idempotency-Key',
          'purpose',
          'sharedBy.workplaceUserId',
          'recipients.0.waId',
          'extra',
          'post.id',
          'post.from.id',
          'post.message_tags.0.offset',
          'post.message_tags.0.id',
          'post.message_tags.0.name',
        ]),
      );
    });

    it.each([
      ['invalid JSON', '{"purpose": '],
      ['a JSON array', '[]'],
      ['a JSON string', '"share"'],
      ['no recipients', JSON.stringify(shareRequest({ recipients: [] }))],
      ['repeated recipients', JSON.stringify(shareRequest({ recipients: [{ waId: RECIPIENT }, { waId: RECIPIENT }] }))],
      ['a post that is not an object', JSON.stringify(shareRequest({ post: 'hello' }))],
      ['a non-string message', JSON.stringify(shareRequest({ post: workplacePost({ message: 42 }) }))],
      ['too many recipients', JSON.stringify(shareRequest({ recipients: Array.from({ length: 300 }, (_, i) => ({ waId: `3161${String(i).padStart(7, '0')}` })) }))],
      ['absurd nesting', JSON.stringify(shareRequest({ post: workplacePost({ deep: JSON.parse('['.repeat(200) + ']'.repeat(200)) }) }))],
    ])('answers %s with 400, never 500', async (_label, body) => {
      const response = await sluice.request('POST', '/v1/shares', { body, headers: idempotencyKey() });
      expect(response.status).toBe(400);
      expect(response.json.status).toBe(400);
    });

    it('answers a body over the size limit with 413', async () => {
      const response = await share(shareRequest({ post: workplacePost({ message: 'x'.repeat(9 * 1024 * 1024) }) }));
      expect(response.status).toBe(413);
    });

    it('writes nothing for a rejected request', async () => {
      // Settle what earlier tests left for the background sequencer first.
      await sluice.app.get(AuditSequencer).sequenceNow();
      const before = (await sluice.request('GET', '/v1/audit/entries')).text;
      await sluice.request('POST', '/v1/shares', { body: shareRequest({ recipients: [] }), headers: idempotencyKey() });
      expect((await sluice.request('GET', '/v1/audit/entries')).text).toBe(before);
    });
  });

  describe('decisions', () => {
    it('denies a purpose no policy names (default deny) and sends nothing', async () => {
      const response = await share(shareRequest({ purpose: 'marketing', recipients: [{ waId: '31600000001' }] }));
      expect(response.status).toBe(201);
      expect(response.json.status).toBe('denied');
      expect(response.json.reasons).toContain('policy.none_matches');
      expect(response.json.recipients[0].decision).toBe('denied');
      await sluice.drainOutbox();
      expect(await sandbox('31600000001')).toEqual([]);
    });

    it('denies the share, and records that denial, when the consent store fails (fail closed)', async () => {
      await grant('whatsapp', RECIPIENT);
      await grant('workplace', AUTHOR_ID);
      const lookup = jest.spyOn(sluice.app.get(ConsentLedger), 'lookup').mockRejectedValue(new Error('consent store unavailable'));
      let response: Awaited<ReturnType<typeof share>>;
      try {
        response = await share(shareRequest());
      } finally {
        lookup.mockRestore();
      }
      expect(response.status).toBe(201);
      expect(response.json).toMatchObject({ status: 'denied', reasons: ['internal.fail_closed'], recipients: [{ waId: RECIPIENT, decision: 'denied', reasons: ['internal.fail_closed'] }] });
      const entries = (await sluice.request('GET', '/v1/audit/entries')).text.split('\n').filter(Boolean).map((l) => JSON.parse(JSON.parse(l).entry));
      expect(entries.find((e) => e.share === response.json.id)).toMatchObject({ kind: 'share.decided', status: 'denied', reasons: ['internal.fail_closed'], index: response.json.audit.index, content: null });
      const p = dialect === 'postgres' ? '$1' : '?';
      expect(await sluice.database.adminQuery(`SELECT id FROM outbox_messages WHERE share_id = ${p}`, [response.json.id])).toEqual([]);
    });

    it('denies a recipient without consent', async () => {
      const response = await share(shareRequest({ recipients: [{ waId: '31600000002' }] }));
      expect(response.status).toBe(201);
      expect(response.json.status).toBe('denied');
      expect(response.json.recipients).toEqual([{ waId: '31600000002', decision: 'denied', reasons: ['recipient.no_consent'] }]);
      expect(response.json.audit.index).toEqual(expect.any(Number));
    });

    it('allows a consented recipient and sends only what the policy lets cross', async () => {
      expect((await grant('whatsapp', RECIPIENT)).status).toBe(201);
      expect((await grant('workplace', AUTHOR_ID)).status).toBe(201);
      const response = await share(shareRequest());
      expect(response.status).toBe(201);
      expect(response.json).toMatchObject({
        id: expect.stringMatching(/^shr_/),
        status: 'accepted',
        policy: { name: 'frontline-updates', bundle: expect.stringMatching(/^sha256:[0-9a-f]{64}$/) },
        recipients: [{ waId: RECIPIENT, decision: 'allowed', reasons: [] }],
        audit: { entry: expect.stringMatching(/^ent_/), index: expect.any(Number) },
      });
      const dropped = (response.json.crossing.dropped as { path: string }[]).map((d) => d.path);
      expect(dropped).toEqual(expect.arrayContaining(['place', 'permalink_url', 'from.id']));
      expect(response.json.crossing.redactions).toEqual(expect.arrayContaining([expect.objectContaining({ path: 'message', count: 1 })]));

      expect(await sluice.drainOutbox()).toBe(1);
      const messages = await sandbox(RECIPIENT);
      expect(messages).toHaveLength(1);
      const request = messages[0]!.request;
      expect(request).toMatchObject({ messaging_product: 'whatsapp', recipient_type: 'individual', to: RECIPIENT, type: 'text' });
      expect(request.text.body).toContain('Anna de Vries');
      expect(request.text.body).toContain('[person] opened the new warehouse in Utrecht today!');
      for (const secret of ['Pieter Jansen', 'Warehouse Utrecht-Noord', 'permalink', AUTHOR_ID, TAGGED_ID, '52.09']) {
        expect(JSON.stringify(request)).not.toContain(secret);
      }

      const state = await sluice.request('GET', `/v1/shares/${response.json.id}`);
      expect(state.json.recipients[0].delivery).toBe('sent');
    });

    it('drops the author name without the author consent', async () => {
      await grant('workplace', AUTHOR_ID, 'withdrawn');
      const response = await share(shareRequest({ post: workplacePost({ message: 'Shift starts at 7.' , message_tags: [] }) }));
      expect(response.json.status).toBe('accepted');
      expect(response.json.crossing.dropped).toEqual(expect.arrayContaining([{ path: 'from.name', reason: 'subject.no_consent' }]));
      await sluice.drainOutbox();
      const last = (await sandbox(RECIPIENT)).at(-1)!;
      expect(last.request.text.body).toContain('Shift starts at 7.');
      expect(last.request.text.body).not.toContain('Anna');
      await grant('workplace', AUTHOR_ID, 'granted');
    });

    it('keeps the name of a tagged person who consented', async () => {
      await grant('workplace', TAGGED_ID);
      const response = await share(shareRequest());
      expect(response.json.crossing.redactions).toEqual([]);
      await sluice.drainOutbox();
      expect((await sandbox(RECIPIENT)).at(-1)!.request.text.body).toContain('Pieter Jansen opened');
      await grant('workplace', TAGGED_ID, 'withdrawn');
    });

    it('partially accepts a share when only some recipients consented', async () => {
      await grant('whatsapp', OTHER_RECIPIENT, 'withdrawn');
      const response = await share(shareRequest({ recipients: [{ waId: RECIPIENT }, { waId: OTHER_RECIPIENT }] }));
      expect(response.json.status).toBe('partially_accepted');
      expect(response.json.recipients).toEqual([
        { waId: RECIPIENT, decision: 'allowed', reasons: [] },
        { waId: OTHER_RECIPIENT, decision: 'denied', reasons: ['recipient.consent_withdrawn'] },
      ]);
      await sluice.drainOutbox();
      expect(await sandbox(OTHER_RECIPIENT)).toEqual([]);
    });

    it('cancels a queued message when consent is withdrawn before the send', async () => {
      const waId = '31600000003';
      await grant('whatsapp', waId);
      const response = await share(shareRequest({ recipients: [{ waId }] }));
      expect(response.json.status).toBe('accepted');
      await grant('whatsapp', waId, 'withdrawn');
      await sluice.drainOutbox();
      expect(await sandbox(waId)).toEqual([]);
      expect((await sluice.request('GET', `/v1/shares/${response.json.id}`)).json.recipients[0].delivery).toBe('cancelled');
    });
  });

  describe('idempotency', () => {
    it('replays the first result for the same key and body, and refuses another body with 409', async () => {
      const headers = idempotencyKey();
      const first = await share(shareRequest(), headers);
      expect(first.status).toBe(201);
      const again = await share(shareRequest(), headers);
      expect(again.status).toBe(200);
      expect(again.json).toEqual(first.json);
      const conflict = await share(shareRequest({ purpose: 'other-purpose' }), headers);
      expect(conflict.status).toBe(409);
      expect(conflict.headers.get('content-type')).toContain('application/problem+json');
      await sluice.drainOutbox();
      const sent = (await sandbox(RECIPIENT)).filter((m) => m.request.text.body.includes('warehouse'));
      const entries = (await sluice.request('GET', '/v1/audit/entries')).text.split('\n').filter(Boolean).map((l) => JSON.parse(JSON.parse(l).entry));
      expect(entries.filter((e) => e.kind === 'share.decided' && e.share === first.json.id)).toHaveLength(1);
      expect(sent.length).toBeGreaterThan(0);
    });

    it('keeps a keyed digest of the request body, and still replays a share stored with the plain one', async () => {
      const headers = idempotencyKey();
      const body = shareRequest();
      const first = await share(body, headers);
      const plain = createHash('sha256').update(canonicalJson(body)).digest('hex');
      const mark = dialect === 'postgres' ? '$1' : '?';
      const [row] = await sluice.database.adminQuery<{ request_hash: string }>(`SELECT request_hash FROM shares WHERE id = ${mark}`, [first.json.id]);
      // Whoever holds the exact body cannot confirm it was shared by hashing it.
      expect(row!.request_hash).toMatch(/^[0-9a-f]{64}$/);
      expect(row!.request_hash).not.toBe(plain);
      // A share stored before digests were keyed.
      await sluice.database.adminQuery(`UPDATE shares SET request_hash = ${mark} WHERE id = ${dialect === 'postgres' ? '$2' : '?'}`, [plain, first.json.id]);
      expect((await share(body, headers)).status).toBe(200);
      expect((await share(shareRequest({ purpose: 'other-purpose' }), headers)).status).toBe(409);
    });

    it('answers a replay while the consent store fails, without using the failed lookup', async () => {
      await grant('whatsapp', RECIPIENT);
      const headers = idempotencyKey();
      const first = await share(shareRequest(), headers);
      expect(first.status).toBe(201);
      const lookup = jest.spyOn(sluice.app.get(ConsentLedger), 'lookup').mockRejectedValue(new Error('consent store unavailable'));
      try {
        const again = await share(shareRequest(), headers);
        expect(again.status).toBe(200);
        expect(again.json).toEqual(first.json);
        expect(lookup).toHaveBeenCalled();
      } finally {
        lookup.mockRestore();
      }
    });

    if (dialect === 'postgres') it('gives a replay the log index of the first answer, also while its entry waits in the queue', async () => {
      // Another replica holds the sequencer lock: the share's entry is queued, and its first answer waits for the index.
      const holder = new pg.Client({ connectionString: (sluice.config.database as { url: string }).url });
      await holder.connect();
      try {
        await holder.query('SELECT pg_advisory_lock($1)', [SEQUENCER_LOCK_ID]);
        const headers = idempotencyKey();
        const first = share(shareRequest(), headers);
        await eventually(async () => ((await sluice.database.adminQuery('SELECT id FROM audit_queue')).length > 0 ? true : undefined), 'the entry to be queued');
        const replay = share(shareRequest(), headers);
        const waited = await Promise.race([replay.then(() => 'answered'), new Promise((resolve) => setTimeout(() => resolve('waiting'), 300))]);
        expect(waited).toBe('waiting');
        await holder.query('SELECT pg_advisory_unlock($1)', [SEQUENCER_LOCK_ID]);
        const [answered, replayed] = await Promise.all([first, replay]);
        expect([answered.status, replayed.status]).toEqual([201, 200]);
        expect(replayed.json.audit).toEqual(answered.json.audit);
        expect(answered.json.audit.index).toEqual(expect.any(Number));
      } finally {
        await holder.end();
      }
    });

    it('decides concurrent requests with one key once', async () => {
      const headers = idempotencyKey();
      const responses = await Promise.all(Array.from({ length: 5 }, () => share(shareRequest(), headers)));
      expect(new Set(responses.map((r) => r.json.id)).size).toBe(1);
      expect(responses.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 201]);
    });
  });

  describe('audit log', () => {
    it('serves entries whose hashes rebuild the signed checkpoint root', async () => {
      const checkpoint = await sluice.request('GET', '/v1/audit/checkpoint');
      expect(checkpoint.status).toBe(200);
      const [origin, sizeText, rootB64] = checkpoint.text.split('\n');
      expect(origin).toBe('sluice.local/audit');
      const lines = (await sluice.request('GET', '/v1/audit/entries')).text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { index: number; entry: string });
      expect(lines.map((l) => l.index)).toEqual(lines.map((_, i) => i));
      expect(lines).toHaveLength(Number(sizeText));
      expect(merkleRoot(lines.map((l) => Buffer.from(l.entry, 'utf8'))).toString('base64')).toBe(rootB64);
      const kinds = new Set(lines.map((l) => JSON.parse(l.entry).kind));
      for (const kind of ['policy.activated', 'consent.granted', 'consent.withdrawn', 'share.decided', 'message.sent', 'message.cancelled']) {
        expect(kinds).toContain(kind);
      }
    });

    it('records the crossing manifest: fields with category, transform and subject pseudonym, drops with reasons, redaction counts', async () => {
      await grant('whatsapp', RECIPIENT);
      await grant('workplace', AUTHOR_ID);
      const post = workplacePost({ message: 'Pieter Jansen: bel 06-12345678 of mail p.jansen@example.nl' });
      const response = await share(shareRequest({ post }));
      const entries = (await sluice.request('GET', '/v1/audit/entries')).text.split('\n').filter(Boolean).map((l) => JSON.parse(JSON.parse(l).entry));
      const entry = entries.find((e) => e.share === response.json.id);
      const author = entry.subjects.find((s: { role: string }) => s.role === 'author').subject as string;
      expect(author).toMatch(/^ps_/);
      expect(entry.crossing.fields).toEqual([
        { path: 'message', category: 'user.content', transform: 'redact-pii' },
        { path: 'from.name', category: 'user.name', transform: 'none', subject: author },
      ]);
      expect(entry.crossing.dropped).toEqual(
        expect.arrayContaining([
          { path: 'place', reason: 'policy.drop' },
          { path: 'from.id', reason: 'policy.drop' },
          { path: 'permalink_url', reason: 'not_allow_listed' },
        ]),
      );
      expect(entry.crossing.redactions).toEqual([
        // The name twice: at the tag, and inside the address (then masked whole as an address).
        { path: 'message', recogniser: 'mention', count: 2 },
        { path: 'message', recogniser: 'email', count: 1 },
        { path: 'message', recogniser: 'phone', count: 1 },
      ]);
      expect(JSON.stringify(entry)).not.toMatch(/12345678|jansen@|Pieter/);
    });

    it('names a dropped field in the audit entry only by names a Workplace post or the policy has', async () => {
      await grant('whatsapp', RECIPIENT);
      const post = workplacePost({ NL91ABNA0417164300: 1, annelies_vermeulen: { x: 1 }, status_type: 'mobile_status_update' });
      const response = await share(shareRequest({ post }));
      // The caller is answered with the names it sent.
      expect(response.json.crossing.dropped).toEqual(expect.arrayContaining([{ path: 'NL91ABNA0417164300', reason: 'not_allow_listed' }, { path: 'annelies_vermeulen', reason: 'not_allow_listed' }]));
      const entries = (await sluice.request('GET', '/v1/audit/entries')).text.split('\n').filter(Boolean).map((l) => JSON.parse(l).entry as string);
      const entry = JSON.parse(entries.find((e) => e.includes(response.json.id))!);
      expect(entry.crossing.dropped.filter((d: { path: string }) => d.path === '(unnamed)')).toHaveLength(2);
      expect(entry.crossing.dropped).toEqual(expect.arrayContaining([{ path: 'status_type', reason: 'not_allow_listed' }, { path: 'permalink_url', reason: 'not_allow_listed' }]));
      expect(JSON.stringify(entry)).not.toMatch(/NL91|annelies/i);
    });

    it('holds no plain personal data', async () => {
      const log = (await sluice.request('GET', '/v1/audit/entries')).text;
      for (const value of [RECIPIENT, OTHER_RECIPIENT, AUTHOR_ID, TAGGED_ID, 'Anna', 'Pieter', 'warehouse', 'Utrecht', '1234567890_987654321', 'notice v3']) {
        expect(log).not.toContain(value);
      }
    });

    it('sends a message only for a decision already in the log', async () => {
      const entries = (await sluice.request('GET', '/v1/audit/entries')).text.split('\n').filter(Boolean).map((l) => JSON.parse(JSON.parse(l).entry));
      const decided = new Map(entries.filter((e) => e.kind === 'share.decided').map((e) => [e.share, e]));
      const sent = entries.filter((e) => e.kind === 'message.sent');
      expect(sent.length).toBeGreaterThan(0);
      for (const s of sent) {
        const decision = decided.get(s.share);
        expect(decision.id).toBe(s.decision);
        expect(decision.index).toBeLessThan(s.index);
      }
    });
  });

  describe('consent API', () => {
    it('shows the current state per purpose and the full history', async () => {
      const waId = '31600000009';
      await grant('whatsapp', waId);
      await grant('whatsapp', waId, 'withdrawn');
      const response = await sluice.request('GET', `/v1/subjects/whatsapp/${waId}/consents`);
      expect(response.status).toBe(200);
      expect(response.json.current).toEqual([expect.objectContaining({ purpose: 'frontline-updates', status: 'withdrawn' })]);
      expect(response.json.history.map((h: { status: string }) => h.status)).toEqual(['granted', 'withdrawn']);
      expect(response.json.history[0].evidence).toEqual({ method: 'form', text: 'notice v3', capturedAt: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/) });
    });

    it('keeps the state of the change captured last: an older grant recorded after a withdrawal goes into the history only', async () => {
      const waId = '31600000019';
      const capturedAt = (hoursAgo: number) => new Date(Date.now() - hoursAgo * 3_600_000).toISOString();
      const record = (status: 'granted' | 'withdrawn', hoursAgo: number) =>
        sluice.request('POST', '/v1/consents', { body: { ...consent('whatsapp', waId, status), evidence: { method: 'form', capturedAt: capturedAt(hoursAgo) } } });
      expect((await record('withdrawn', 1)).json).toMatchObject({ status: 'withdrawn', current: 'withdrawn' });
      const late = await record('granted', 2);
      expect([late.status, late.json.status, late.json.current]).toEqual([201, 'granted', 'withdrawn']);
      const consents = (await sluice.request('GET', `/v1/subjects/whatsapp/${waId}/consents`)).json;
      expect(consents.current).toEqual([expect.objectContaining({ purpose: 'frontline-updates', status: 'withdrawn' })]);
      expect(consents.history.map((h: { status: string }) => h.status)).toEqual(['withdrawn', 'granted']);
      const share = await sluice.request('POST', '/v1/shares', { body: shareRequest({ recipients: [{ waId }] }), headers: idempotencyKey() });
      expect(share.json.recipients).toEqual([{ waId, decision: 'denied', reasons: ['recipient.consent_withdrawn'] }]);
      expect((await record('granted', 0)).json).toMatchObject({ status: 'granted', current: 'granted' });
      // A withdrawal applies whenever it was captured; the state keeps the latest capture time, so
      // an old grant imported after an old withdrawal still does not undo the newest withdrawal.
      expect((await record('withdrawn', 3)).json).toMatchObject({ status: 'withdrawn', current: 'withdrawn' });
      expect((await record('granted', 1)).json).toMatchObject({ status: 'granted', current: 'withdrawn' });
      expect((await record('granted', 0)).json).toMatchObject({ status: 'granted', current: 'granted' });
    });

    it('refuses a capture time without its zone, without a time, or in the future', async () => {
      for (const capturedAt of ['2026-11-20T09:00:00', '2026-11-20', new Date(Date.now() + 3_600_000).toISOString()]) {
        const response = await sluice.request('POST', '/v1/consents', { body: { ...consent('whatsapp', '31600000029'), evidence: { method: 'form', capturedAt } } });
        expect([capturedAt, response.status, (response.json.errors as { path: string }[]).map((e) => e.path)]).toEqual([capturedAt, 400, ['evidence.capturedAt']]);
      }
      // A leap second does not parse: that is the one problem, not a time in the future.
      const leap = await sluice.request('POST', '/v1/consents', { body: { ...consent('whatsapp', '31600000029'), evidence: { method: 'form', capturedAt: '2016-12-31T23:59:60Z' } } });
      expect((leap.json.errors as { message: string }[]).map((e) => e.message)).not.toContainEqual(expect.stringContaining('future'));
      expect(leap.json.errors).toHaveLength(1);
    });

    it("refuses sluice's own evidence methods from an integration: a STOP and a number change are the contact's and WhatsApp's", async () => {
      for (const method of ['whatsapp-opt-out', 'whatsapp-number-change']) {
        const response = await sluice.request('POST', '/v1/consents', { body: { ...consent('whatsapp', '31600000031', 'withdrawn'), evidence: { method, text: 'notice v3' } } });
        expect([method, response.status, response.json.errors]).toEqual([
          method,
          400,
          [{ path: 'evidence.method', message: `evidence.method ${method} is recorded by sluice itself (a contact's STOP, WhatsApp's notice of a new number); name how you captured this one, e.g. form or in-app` }],
        ]);
      }
      expect((await sluice.request('GET', '/v1/subjects/whatsapp/31600000031/consents')).json.history).toEqual([]);
      const optIn = await sluice.request('POST', '/v1/consents', { body: { ...consent('whatsapp', '31600000031'), evidence: { method: 'whatsapp-opt-in', text: 'replied YES' } } });
      expect(optIn.status).toBe(201);
    });

    it('rejects a malformed consent with every problem', async () => {
      const response = await sluice.request('POST', '/v1/consents', { body: { subject: { type: 'email', id: 'x' }, purpose: '', status: 'maybe' } });
      expect(response.status).toBe(400);
      const paths = (response.json.errors as { path: string }[]).map((e) => e.path);
      expect(paths).toEqual(expect.arrayContaining(['subject.type', 'subject.id', 'purpose', 'status', 'evidence']));
    });
  });
});

/** RFC 6962 MTH written out independently of src/, as the test's own ground truth. */
function merkleRoot(leaves: Buffer[]): Buffer {
  const sha = (...parts: Buffer[]) => createHash('sha256').update(Buffer.concat(parts)).digest();
  const mth = (items: Buffer[]): Buffer => {
    if (items.length === 0) return sha();
    if (items.length === 1) return sha(Buffer.from([0]), items[0]!);
    let k = 1;
    while (k * 2 < items.length) k *= 2;
    return sha(Buffer.from([1]), mth(items.slice(0, k)), mth(items.slice(k)));
  };
  return mth(leaves);
}
