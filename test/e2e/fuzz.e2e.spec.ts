import { afterAll, beforeAll, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { createHmac, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import sharp from 'sharp';
import { verifyBundle } from '../../src/audit/verifier/bundle-verifier.js';
import { registeredRoutes } from '../../src/platform/http/body-limits.js';
import { describeEachDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, idempotencyKey, OTHER_RECIPIENT, RECIPIENT, TAGGED_ID, workplacePost } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

/**
 * Hostile input at every route the app registered: random and malformed JSON (wrong types, huge
 * and unrepresentable numbers, deep nesting, prototype keys, lone surrogates and NUL, empty and
 * huge strings), text that is no JSON, odd content types, path parameters and query strings.
 * Known routes start from a valid request and break parts of it, so the input gets past the
 * first check; unknown ones get generic noise. Every answer must be 2xx or a 4xx problem+json;
 * afterwards the process must still answer, the audit log must verify offline, and the database
 * must hold nothing half written.
 */

const APP_SECRET = 'fuzz-app-secret-0123456789abcdef';
const VERIFY_TOKEN = 'fuzz-verify-token';
/** Runs per route; the share route, which does the most with its input, gets more. */
const RUNS: Record<string, number> = { 'POST /v1/shares': 250, 'POST /v1/consents': 60, 'POST /v1/webhooks/whatsapp': 100 };
const DEFAULT_RUNS = 20;

// ---- JSON text, built as text so that it can hold what JSON.stringify never writes ----

/** Any UTF-16 code unit, lone surrogates and control characters included. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));
const oddString = fc.oneof(
  fc.string({ unit: codeUnit, maxLength: 24 }),
  fc.string({ unit: 'grapheme', maxLength: 24 }),
  fc.constantFrom('', ' ', '\u0000', '\ud800', 'a\udc00b', '\u202eevil', '🙂🙂', 'ǅ', '__proto__', 'constructor', 'toString', '1e400', 'NaN', 'null', '<script>alert(1)</script>', "' OR 1=1 --"),
  fc.constantFrom(20_000, 200_000).map((n) => 'x'.repeat(n)),
);
const stringText = oddString.map((s) => JSON.stringify(s));
const numberText = fc.oneof(
  fc.constantFrom('0', '-0', '1', '-1', '0.5', '1e400', '-1e400', '1e-400', '9007199254740993', '123456789012345678901234567890', '1.7976931348623157e308', '5e-324', '1E2', '-0.0e-0'),
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
);
const keyText = fc.oneof(
  { weight: 2, arbitrary: fc.constantFrom('"__proto__"', '"constructor"', '"prototype"', '"hasOwnProperty"', '"toJSON"', '"id"', '"post"', '"from"', '""', '"\\u0000"', '"\\ud800"') },
  { weight: 3, arbitrary: stringText },
);
const deepText = fc.tuple(fc.constantFrom(33, 200, 3000, 100_000), fc.boolean()).map(([n, arrays]) => (arrays ? `${'['.repeat(n)}${']'.repeat(n)}` : `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`));
const { json: jsonText } = fc.letrec<{ json: string }>((tie) => ({
  json: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom('null', 'true', 'false'),
    numberText,
    stringText,
    fc.array(tie('json'), { maxLength: 4 }).map((items) => `[${items.join(',')}]`),
    fc.array(fc.tuple(keyText, tie('json')), { maxLength: 4 }).map((members) => `{${members.map(([k, v]) => `${k}:${v}`).join(',')}}`),
  ),
}));
const hostileJson = fc.oneof({ weight: 6, arbitrary: jsonText }, { weight: 1, arbitrary: deepText });
const notJson = fc.oneof(
  fc.constantFrom('', ' ', '{', '}', '{"a":', "{'a':1}", '{"a":1,}', '[1,]', 'NaN', 'undefined', '\ufeff{}', '{"a":1}{"b":2}', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', '01', '"\\x41"'),
  jsonText.map((t) => t.slice(0, Math.max(0, t.length - 1))),
  fc.string({ maxLength: 40 }),
);

/** A real photo: a share that keeps it stores its minimised copy (media_objects) for delivery. */
const PHOTO = (await sharp({ create: { width: 16, height: 12, channels: 3, background: '#c0ffee' } }).jpeg().withExif({ IFD0: { Make: 'FuzzCam' } }).toBuffer()).toString('base64');

// ---- Requests ----

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  /** Text (sent as UTF-8) or raw bytes. */
  body?: string | Buffer;
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every path into a JSON value (the root included), to pick where to break it. */
function pathsOf(value: Json, prefix: (string | number)[] = []): (string | number)[][] {
  const here = [prefix];
  if (Array.isArray(value)) return [...here, ...value.flatMap((item, i) => pathsOf(item, [...prefix, i]))];
  if (value !== null && typeof value === 'object') return [...here, ...Object.entries(value).flatMap(([k, v]) => pathsOf(v, [...prefix, k]))];
  return here;
}

const MARK = (n: number) => `\u0007fuzz${n}\u0007`;
const markText = (n: number) => JSON.stringify(MARK(n));

interface Mutation {
  /** replace: any hostile JSON; retype: a value of the same JSON type (so more requests get past validation); add-key; delete. */
  kind: 'replace' | 'retype' | 'add-key' | 'delete';
  at: number;
  text: string;
  string: string;
  number: string;
  key: string;
}
const mutation: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom('replace', 'retype', 'retype', 'add-key', 'delete'),
  at: fc.nat(),
  text: hostileJson,
  string: stringText,
  number: numberText,
  key: keyText,
});

/**
 * A valid body broken in a few places: values replaced by hostile JSON text, keys added (prototype
 * keys and odd strings), members deleted. The hostile parts go in as text through markers, so the
 * result can hold what JSON.stringify would refuse or rewrite.
 */
function breakBody(base: Json, mutations: Mutation[]): string {
  const copy = structuredClone(base) as Json;
  const swaps: [string, string][] = [];
  mutations.forEach((m, n) => {
    const paths = pathsOf(copy);
    const path = paths[m.at % paths.length]!;
    if (path.length === 0) {
      if (m.kind === 'replace') {
        swaps.length = 0;
        swaps.push(['', m.text]);
      }
      return;
    }
    const parent = path.slice(0, -1).reduce<Json>((node, key) => (node as Record<string, Json>)[key as string]!, copy) as Record<string | number, Json>;
    const last = path.at(-1)!;
    const current = parent[last];
    if (m.kind === 'retype') {
      if (typeof current !== 'string' && typeof current !== 'number') return;
      parent[last] = MARK(n);
      swaps.push([markText(n), typeof current === 'string' ? m.string : m.number]);
    } else if (m.kind === 'delete') {
      if (Array.isArray(parent)) parent.splice(last as number, 1);
      else delete parent[last];
    } else if (m.kind === 'add-key' && parent !== null && typeof parent === 'object' && !Array.isArray(parent)) {
      parent[MARK(n + 100)] = MARK(n);
      swaps.push([markText(n + 100), m.key], [markText(n), m.text]);
    } else {
      parent[last] = MARK(n);
      swaps.push([markText(n), m.text]);
    }
  });
  if (swaps.length === 1 && swaps[0]![0] === '') return swaps[0]![1];
  let text = JSON.stringify(copy);
  for (const [marker, replacement] of swaps) text = text.replace(marker, () => replacement);
  return text;
}

const contentType = fc.oneof(
  { weight: 8, arbitrary: fc.constant('application/json') },
  { weight: 3, arbitrary: fc.constantFrom('application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json; charset=latin1', 'application/json;;', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/vnd.api+json', '', '*/*', 'application/json\u00a0') },
);
const pathSegment = fc.oneof(
  fc.constantFrom('%00', 'a%00b', '..', '%2e%2e', '%2F', '%5C', '%', '%zz', '%E0%A4%A', '%C0%AF', '%ED%A0%80', '%F0%9F%99%82', '%20', '%0A', 'x'.repeat(99), 'x'.repeat(120), '0', '-1', '31612345678', '100041234567890', 'shr_AAAAAAAAAAAAAAAA', 'sbxmedia_000000000000000000000000', 'whatsapp', 'workplace', '__proto__', 'constructor'),
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }).map(encodeURIComponent),
);
/** Percent-encodes the UTF-8 bytes of any string (lone surrogates become U+FFFD, as a browser sends them). */
const encodeAny = (s: string) => [...Buffer.from(s, 'utf8')].map((b) => `%${b.toString(16).padStart(2, '0')}`).join('');
const queryValue = fc.oneof(
  fc.constantFrom('0', '1', '2', '-1', '1e3', '0x10', '1.5', '9007199254740993', '99999999999999999999', '', 'NaN', 'Infinity', 'ndjson', 'csv', 'html', 'json', 'subscribe', VERIFY_TOKEN, RECIPIENT, '%00', '%ED%A0%80', '%', '%zz').map((v) => (v.startsWith('%') ? v : encodeURIComponent(v))),
  oddString.filter((s) => s.length < 1000).map(encodeAny),
);
const queryKey = (known: string[]) => fc.oneof(fc.constantFrom(...known, '__proto__', 'constructor', 'hasOwnProperty', '', '[]', 'a[b]'), fc.string({ maxLength: 10 }).map(encodeURIComponent));
/** Query strings with the route's own parameters, others, repeats (which Fastify turns into arrays) and no value at all. */
const queryString = (known: string[], base: string) =>
  fc
    .tuple(fc.boolean(), fc.array(fc.tuple(queryKey(known), fc.option(queryValue, { nil: undefined })), { maxLength: 4 }))
    .map(([withBase, pairs]) => [...(withBase && base ? [base] : []), ...pairs.map(([k, v]) => (v === undefined ? k : `${k}=${v}`))])
    .map((parts) => (parts.length ? `?${parts.join('&')}` : ''));

/** Each route's query parameters, and a valid query to start from half of the time. */
const QUERIES: Record<string, [string[], string]> = {
  'GET /v1/audit/entries': [['from', 'to'], 'from=0&to=3'],
  'GET /v1/audit/export': [['since', 'until', 'format', 'consistencyFrom'], 'since=0&format=csv&consistencyFrom=1'],
  'GET /v1/audit/proofs/inclusion': [['index', 'size'], 'index=0&size=2'],
  'GET /v1/audit/proofs/consistency': [['from', 'to'], 'from=1&to=2'],
  'GET /v1/subjects/:type/:id/report': [['format'], 'format=html'],
  'GET /v1/sandbox/messages': [['waId'], `waId=${RECIPIENT}`],
  'GET /v1/webhooks/whatsapp': [['hub.mode', 'hub.verify_token', 'hub.challenge'], `hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=1158201444`],
};

const shareBase: Json = {
  purpose: 'frontline-updates',
  sharedBy: { workplaceUserId: AUTHOR_ID },
  post: {
    ...(workplacePost() as Record<string, Json>),
    message: 'Call Pieter Jansen on +31 6 12345678 or pieter@example.com',
    attachments: { data: [{ type: 'photo', media: { image: { src: `data:image/jpeg;base64,${PHOTO}` } } }] },
  },
  recipients: [{ waId: RECIPIENT }, { waId: OTHER_RECIPIENT }],
};
const webhookBase: Json = {
  object: 'whatsapp_business_account',
  entry: [
    {
      id: '1',
      changes: [
        {
          field: 'messages',
          value: {
            messaging_product: 'whatsapp',
            metadata: { display_phone_number: '15550000000', phone_number_id: '106540352242922' },
            statuses: [{ id: 'wamid.fuzz', status: 'delivered', timestamp: '1763629964', recipient_id: RECIPIENT, biz_opaque_callback_data: 'out_fuzz' }],
            messages: [{ from: '31699900001', id: 'wamid.in.fuzz', timestamp: '1763629964', type: 'text', text: { body: 'STOP' } }],
          },
        },
      ],
    },
  ],
};
const BODIES: Record<string, Json> = {
  'POST /v1/shares': shareBase,
  'POST /v1/consents': consent('whatsapp', '31699900002') as unknown as Json,
  'POST /v1/webhooks/whatsapp': webhookBase,
};

/** The request's body: a broken valid one where the route has one, else hostile JSON, text that is no JSON, raw bytes or nothing. */
function bodyFor(route: string): fc.Arbitrary<string | Buffer | undefined> {
  const base = BODIES[route];
  return fc.oneof(
    ...(base !== undefined ? [{ weight: 6, arbitrary: fc.array(mutation, { minLength: 1, maxLength: 3 }).map((ms) => breakBody(base, ms)) }] : []),
    { weight: 2, arbitrary: hostileJson },
    { weight: 1, arbitrary: notJson },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)) },
    { weight: base !== undefined ? 1 : 3, arbitrary: fc.constant(undefined) },
  );
}

function requestFor(route: string, apiKey: string): fc.Arbitrary<FuzzRequest> {
  const [routeMethod, template] = route.split(' ') as [string, string];
  const segments = template.split('/').map((s) => (s.startsWith(':') ? pathSegment : fc.constant(s)));
  return fc
    .record({
      // Now and then a method the route does not have.
      method: fc.oneof({ weight: 12, arbitrary: fc.constant(routeMethod) }, { weight: 1, arbitrary: fc.constantFrom('PUT', 'DELETE', 'PATCH', 'OPTIONS', 'GET', 'POST') }),
      segments: fc.tuple(...segments),
      query: queryString(...(QUERIES[route] ?? [[], ''])),
      body: routeMethod === 'GET' ? fc.option(bodyFor(route), { freq: 4, nil: undefined }) : bodyFor(route),
      contentType,
      idempotencyKey: fc.oneof(
        { weight: 6, arbitrary: fc.constant('fresh') },
        { weight: 1, arbitrary: fc.constantFrom('reused-fuzz-key', '', ' ', 'x'.repeat(300), '\t', 'a b') },
      ),
      signature: fc.oneof({ weight: 8, arbitrary: fc.constant('valid') }, { weight: 1, arbitrary: fc.constantFrom('none', 'sha256=00', 'sha256=' + 'g'.repeat(64)) }),
      authorization: fc.oneof({ weight: 12, arbitrary: fc.constant('key') }, { weight: 1, arbitrary: fc.constantFrom('none', 'Bearer wrong', 'Basic eDp5') }),
    })
    .map((r) => {
      const body = r.body;
      const headers: Record<string, string> = {};
      if (r.authorization === 'key') headers.authorization = `Bearer ${apiKey}`;
      else if (r.authorization !== 'none') headers.authorization = r.authorization;
      if (body !== undefined && r.contentType !== '') headers['content-type'] = r.contentType;
      if (r.idempotencyKey !== '') headers['idempotency-key'] = r.idempotencyKey === 'fresh' ? randomUUID() : r.idempotencyKey;
      if (route === 'POST /v1/webhooks/whatsapp' && r.signature !== 'none') {
        headers['x-hub-signature-256'] = r.signature === 'valid' ? `sha256=${createHmac('sha256', APP_SECRET).update(body ?? Buffer.alloc(0)).digest('hex')}` : r.signature;
      }
      return { method: r.method, path: `${r.segments.join('/')}${r.query}`, headers, body };
    });
}

describeEachDatabase('hostile input at every route', (dialect) => {
  let sluice: RunningApp;
  let publicKey: string;

  beforeAll(async () => {
    sluice = await startTestApp(dialect, { env: { WHATSAPP_APP_SECRET: APP_SECRET, WHATSAPP_VERIFY_TOKEN: VERIFY_TOKEN } });
    for (const [type, id] of [['whatsapp', RECIPIENT], ['workplace', AUTHOR_ID], ['workplace', TAGGED_ID]] as const) {
      await sluice.request('POST', '/v1/consents', { body: consent(type, id) });
    }
    publicKey = (await sluice.request('GET', '/v1/audit/public-key')).text.trim();
  });
  afterAll(async () => {
    await sluice?.close();
  });

  /** Over node:http rather than fetch: a GET may carry a body, and the path goes out exactly as written. */
  function send(request: FuzzRequest): Promise<{ status: number; contentType: string | undefined; text: string }> {
    return new Promise((resolve, reject) => {
      // Node sends a GET's body without Content-Length unless told: the server would read it as a second request.
      const headers = request.body === undefined ? request.headers : { ...request.headers, 'content-length': String(Buffer.byteLength(request.body)) };
      const req = httpRequest(`${sluice.baseUrl}${request.path}`, { method: request.method, headers, timeout: 20_000, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode!, contentType: res.headers['content-type'], text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      });
      req.on('timeout', () => req.destroy(new Error(`no answer to ${request.method} ${request.path}`)));
      req.on('error', reject);
      req.end(request.body);
    });
  }

  it(
    'answers every route with 2xx or a 4xx problem+json, never a 5xx',
    async () => {
      const routes = registeredRoutes(sluice.app.getHttpAdapter().getInstance());
      const gets = new Set(routes.filter((r) => r.method === 'GET').map((r) => r.url));
      const targets = routes.filter((r) => !(r.method === 'HEAD' && gets.has(r.url))).map((r) => `${r.method} ${r.url}`);
      expect(targets.length).toBeGreaterThanOrEqual(18);
      for (const route of targets) {
        await fc.assert(
          fc.asyncProperty(requestFor(route, sluice.apiKey), async (request) => {
            const answer = await send(request);
            const summary = `${route}: ${request.method} ${request.path.slice(0, 200)} -> ${answer.status} ${answer.text.slice(0, 300)}`;
            expect([summary, answer.status < 500]).toEqual([summary, true]);
            expect([summary, answer.text.includes('internal.fail_closed')]).toEqual([summary, false]);
            if (answer.status >= 400) {
              expect([summary, answer.contentType]).toEqual([summary, 'application/problem+json; charset=utf-8']);
              expect(JSON.parse(answer.text)).toMatchObject({ status: answer.status });
            }
          }),
          { numRuns: RUNS[route] ?? DEFAULT_RUNS },
        );
      }
    },
    300_000,
  );

  it('leaves the process answering, the audit log verifying offline, and nothing half written', async () => {
    expect((await sluice.request('GET', '/health', { key: null })).status).toBe(200);
    expect((await sluice.request('GET', '/ready', { key: null })).status).toBe(200);

    // The fuzz may have erased the fixture subjects (their ids are among its path segments), which
    // deletes every stored photo of theirs. One share made afresh after it keeps the photo checks
    // below about something, whatever the fuzz did.
    for (const [type, id] of [['whatsapp', RECIPIENT], ['workplace', AUTHOR_ID], ['workplace', TAGGED_ID]] as const) {
      expect((await sluice.request('POST', '/v1/consents', { body: consent(type, id) })).status).toBe(201);
    }
    const afterFuzz = await sluice.request('POST', '/v1/shares', { body: { ...(shareBase as Record<string, Json>), recipients: [{ waId: RECIPIENT }] }, headers: idempotencyKey() });
    expect([afterFuzz.status, afterFuzz.json.status]).toEqual([201, 'accepted']);

    // Entries nobody waited for (delivery outcomes, webhook effects) are integrated by the poll.
    const deadline = Date.now() + 15_000;
    while ((await sluice.database.adminQuery<{ n: number | string }>('SELECT COUNT(*) AS n FROM audit_queue'))[0]!.n != 0) {
      if (Date.now() > deadline) throw new Error('the audit queue did not drain');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const bundle = await sluice.request('GET', '/v1/audit/export');
    expect(bundle.status).toBe(200);
    const report = await verifyBundle(Buffer.from(bundle.text, 'utf8'), { publicKey });
    expect([report.ok, report.failure]).toEqual([true, null]);

    const q = <T>(sql: string) => sluice.database.adminQuery<T>(sql);
    const entries = await q<{ id: string; kind: string; entry: string }>('SELECT id, kind, entry FROM audit_entries');
    const entryIds = new Set(entries.map((e) => e.id));
    const shares = await q<{ id: string; audit_entry: string; document: string }>('SELECT id, audit_entry, document FROM shares');
    expect(shares.length).toBeGreaterThan(0);
    // Every share has its share.decided entry, and every share.decided entry its share.
    expect(shares.filter((s) => !entryIds.has(s.audit_entry)).map((s) => s.id)).toEqual([]);
    const decided = entries.filter((e) => e.kind === 'share.decided').map((e) => (JSON.parse(e.entry) as { share: string }).share);
    expect(decided.sort()).toEqual(shares.map((s) => s.id).sort());

    // Every share's recipients are rows, and every outbox row is an allowed recipient of a recorded share.
    const recipients = await q<{ share_id: string; wa_id: string; decision: string }>('SELECT share_id, wa_id, decision FROM share_recipients');
    const recipientRows = new Map(recipients.map((r) => [`${r.share_id} ${r.wa_id}`, r.decision]));
    for (const share of shares) {
      const document = JSON.parse(share.document) as { recipients: { waId: string; decision: string }[] };
      expect(document.recipients.map((r) => [share.id, r.waId, recipientRows.get(`${share.id} ${r.waId}`)])).toEqual(document.recipients.map((r) => [share.id, r.waId, r.decision]));
    }
    expect(recipients.length).toBe(shares.reduce((n, s) => n + (JSON.parse(s.document) as { recipients: unknown[] }).recipients.length, 0));
    const auditOf = new Map(shares.map((s) => [s.id, s.audit_entry]));
    const outbox = await q<{ id: string; share_id: string; wa_id: string; decision_entry: string }>('SELECT id, share_id, wa_id, decision_entry FROM outbox_messages');
    expect(outbox.filter((m) => recipientRows.get(`${m.share_id} ${m.wa_id}`) !== 'allowed' || auditOf.get(m.share_id) !== m.decision_entry).map((m) => m.id)).toEqual([]);

    // Every stored photo belongs to a recorded share whose decision let it cross, and to one of its outbox rows.
    const media = await q<{ id: string; share_id: string }>('SELECT id, share_id FROM media_objects');
    const documents = new Map(shares.map((s) => [s.id, JSON.parse(s.document) as { status: string }]));
    expect(media.filter((m) => !['accepted', 'partially_accepted'].includes(documents.get(m.share_id)?.status ?? 'none')).map((m) => m.id)).toEqual([]);
    const outboxShares = new Set(outbox.map((m) => m.share_id));
    expect(media.filter((m) => !outboxShares.has(m.share_id)).map((m) => m.id)).toEqual([]);
    expect(media.map((m) => m.share_id)).toContain(afterFuzz.json.id);

    // Every consent event has its audit entry.
    const consents = await q<{ id: string; audit_entry: string }>('SELECT id, audit_entry FROM consent_events');
    expect(consents.filter((c) => !entryIds.has(c.audit_entry)).map((c) => c.id)).toEqual([]);
  });
});
