import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { createHmac, randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { SCOPES, type Scope } from '../../src/platform/auth/scopes.js';
import { registeredRoutes } from '../../src/platform/http/body-limits.js';
import { describeEachDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, idempotencyKey, RECIPIENT, shareRequest, workplacePost } from '../support/fixtures.js';
import { createApiKey, type RunningApp, startTestApp } from '../support/test-app.js';

/** The columns of MATRIX, in this order; the test fails if a scope is added or renamed. */
const COLUMNS = ['shares:write', 'shares:read', 'consents:write', 'consents:read', 'audit:read', 'subjects:erase'] as const;

/**
 * Every authenticated route, and what a key holding only that one scope gets. Changing a route's
 * scope, or adding a route, fails this test until the table says so.
 */
const MATRIX: Record<string, readonly [number, number, number, number, number, number]> = {
  //                                          shares:write shares:read consents:write consents:read audit:read subjects:erase
  'POST /v1/shares':                            [201,        403,        403,           403,          403,       403],
  'GET /v1/shares/:id':                         [403,        200,        403,           403,          403,       403],
  'GET /v1/sandbox/messages':                   [403,        200,        403,           403,          403,       403],
  'GET /v1/sandbox/media/:id':                  [403,        200,        403,           403,          403,       403],
  'POST /v1/consents':                          [403,        403,        201,           403,          403,       403],
  'GET /v1/subjects/:type/:id/consents':        [403,        403,        403,           200,          403,       403],
  'GET /v1/subjects/:type/:id/report':          [403,        403,        403,           403,          200,       403],
  'POST /v1/subjects/:type/:id/erase':          [403,        403,        403,           403,          403,       200],
  'GET /v1/audit/checkpoint':                   [403,        403,        403,           403,          200,       403],
  'GET /v1/audit/public-key':                   [403,        403,        403,           403,          200,       403],
  'GET /v1/audit/entries':                      [403,        403,        403,           403,          200,       403],
  'GET /v1/audit/export':                       [403,        403,        403,           403,          200,       403],
  'GET /v1/audit/proofs/inclusion':             [403,        403,        403,           403,          200,       403],
  'GET /v1/audit/proofs/consistency':           [403,        403,        403,           403,          200,       403],
};

/** Routes open without an API key: any key, a wrong one or none gets the same answer. */
const PUBLIC: Record<string, number> = {
  'GET /health': 200,
  'GET /ready': 200,
  'GET /v1/webhooks/whatsapp': 200,
  'POST /v1/webhooks/whatsapp': 200,
};

const VERIFY_TOKEN = 'matrix-verify-token';
const APP_SECRET = 'matrix-app-secret-0123456789';

interface Call {
  method: string;
  path: string;
  body?: string;
  headers?: Record<string, string>;
}

describeEachDatabase('authorization matrix', (dialect) => {
  let sluice: RunningApp;
  const keys = new Map<Scope, string>();
  let shareId: string;
  let mediaId: string;

  beforeAll(async () => {
    sluice = await startTestApp(dialect, { env: { WHATSAPP_VERIFY_TOKEN: VERIFY_TOKEN, WHATSAPP_APP_SECRET: APP_SECRET } });
    for (const scope of SCOPES) keys.set(scope, await createApiKey(sluice, [scope]));
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', RECIPIENT) });
    await sluice.request('POST', '/v1/consents', { body: consent('workplace', AUTHOR_ID) });
    const jpeg = await sharp({ create: { width: 16, height: 16, channels: 3, background: '#884422' } }).jpeg().toBuffer();
    const photo = { attachments: { data: [{ type: 'photo', media: { image: { src: `data:image/jpeg;base64,${jpeg.toString('base64')}` } } }] } };
    const shared = await sluice.request('POST', '/v1/shares', { body: shareRequest({ post: workplacePost(photo) }), headers: idempotencyKey() });
    expect(shared.json.status).toBe('accepted');
    shareId = shared.json.id;
    await sluice.drainOutbox();
    mediaId = (await sluice.request('GET', `/v1/sandbox/messages?waId=${RECIPIENT}`)).json[0].mediaId;
  });
  afterAll(async () => {
    await sluice?.close();
  });

  /** A request that the route answers with 2xx when the key may use it (a fresh one each time: some write). */
  const calls: Record<string, () => Call> = {
    'POST /v1/shares': () => ({ method: 'POST', path: '/v1/shares', body: JSON.stringify(shareRequest()), headers: idempotencyKey() }),
    'GET /v1/shares/:id': () => ({ method: 'GET', path: `/v1/shares/${shareId}` }),
    'GET /v1/sandbox/messages': () => ({ method: 'GET', path: `/v1/sandbox/messages?waId=${RECIPIENT}` }),
    'GET /v1/sandbox/media/:id': () => ({ method: 'GET', path: `/v1/sandbox/media/${mediaId}` }),
    'POST /v1/consents': () => ({ method: 'POST', path: '/v1/consents', body: JSON.stringify(consent('whatsapp', RECIPIENT)) }),
    'GET /v1/subjects/:type/:id/consents': () => ({ method: 'GET', path: `/v1/subjects/whatsapp/${RECIPIENT}/consents` }),
    'GET /v1/subjects/:type/:id/report': () => ({ method: 'GET', path: `/v1/subjects/workplace/${AUTHOR_ID}/report` }),
    // Someone who is not otherwise in the test: erasing them leaves the other rows' data alone.
    'POST /v1/subjects/:type/:id/erase': () => ({ method: 'POST', path: `/v1/subjects/whatsapp/3169${String(randomBytes(3).readUIntBE(0, 3) % 10_000_000).padStart(7, '0')}/erase` }),
    'GET /v1/audit/checkpoint': () => ({ method: 'GET', path: '/v1/audit/checkpoint' }),
    'GET /v1/audit/public-key': () => ({ method: 'GET', path: '/v1/audit/public-key' }),
    'GET /v1/audit/entries': () => ({ method: 'GET', path: '/v1/audit/entries?from=0' }),
    'GET /v1/audit/export': () => ({ method: 'GET', path: '/v1/audit/export' }),
    'GET /v1/audit/proofs/inclusion': () => ({ method: 'GET', path: '/v1/audit/proofs/inclusion?index=0&size=1' }),
    'GET /v1/audit/proofs/consistency': () => ({ method: 'GET', path: '/v1/audit/proofs/consistency?from=1&to=1' }),
    'GET /health': () => ({ method: 'GET', path: '/health' }),
    'GET /ready': () => ({ method: 'GET', path: '/ready' }),
    'GET /v1/webhooks/whatsapp': () => ({ method: 'GET', path: `/v1/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=42` }),
    'POST /v1/webhooks/whatsapp': () => {
      const body = JSON.stringify({ object: 'whatsapp_business_account', entry: [] });
      return { method: 'POST', path: '/v1/webhooks/whatsapp', body, headers: { 'x-hub-signature-256': `sha256=${createHmac('sha256', APP_SECRET).update(body).digest('hex')}` } };
    },
  };

  /** authorization: a key's secret, a literal header value, or null for none. */
  async function send(call: Call, authorization: string | null, method = call.method): Promise<number> {
    const response = await fetch(`${sluice.baseUrl}${call.path}`, {
      method,
      headers: {
        ...(call.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...(authorization !== null ? { authorization } : {}),
        ...call.headers,
      },
      body: call.body,
    });
    await response.arrayBuffer();
    return response.status;
  }
  const bearer = (scope: Scope) => `Bearer ${keys.get(scope)}`;

  it('has a row for every route the app registered, and a request for every row', () => {
    expect(COLUMNS).toEqual(SCOPES);
    const routes = registeredRoutes(sluice.app.getHttpAdapter().getInstance());
    const gets = new Set(routes.filter((r) => r.method === 'GET').map((r) => r.url));
    // Fastify adds a HEAD twin for each GET route; it is checked alongside its GET below.
    const registered = routes.filter((r) => !(r.method === 'HEAD' && gets.has(r.url))).map((r) => `${r.method} ${r.url}`);
    expect([...registered].sort()).toEqual([...Object.keys(MATRIX), ...Object.keys(PUBLIC)].sort());
    expect(Object.keys(calls).sort()).toEqual(registered.sort());
  });

  it('gives a key with one scope exactly what the table says, on GET and its HEAD twin', async () => {
    const got: Record<string, number[]> = {};
    const headGot: Record<string, number[]> = {};
    for (const route of Object.keys(MATRIX)) {
      got[route] = [];
      for (const scope of COLUMNS) got[route]!.push(await send(calls[route]!(), bearer(scope)));
      if (route.startsWith('GET ')) headGot[route] = await Promise.all(COLUMNS.map((scope) => send(calls[route]!(), bearer(scope), 'HEAD')));
    }
    expect(got).toEqual(MATRIX);
    expect(headGot).toEqual(Object.fromEntries(Object.entries(MATRIX).filter(([route]) => route.startsWith('GET '))));
  });

  it('answers 401 without a key or with an invalid one, on every authenticated route', async () => {
    const invalid = [null, `Bearer slk_${randomBytes(32).toString('base64url')}`, `Basic ${Buffer.from('a:b').toString('base64')}`, 'Bearer', `Bearer ${keys.get('audit:read')} extra`];
    const got: Record<string, number[]> = {};
    for (const route of Object.keys(MATRIX)) {
      got[route] = [];
      for (const authorization of invalid) got[route]!.push(await send(calls[route]!(), authorization));
      if (route.startsWith('GET ')) got[route]!.push(await send(calls[route]!(), null, 'HEAD'));
    }
    expect(got).toEqual(Object.fromEntries(Object.keys(MATRIX).map((route) => [route, Array(invalid.length + (route.startsWith('GET ') ? 1 : 0)).fill(401)])));
  });

  it('answers 403 to a key without the route\'s scope before reading the body, whatever the body', async () => {
    const post = (body: string | Uint8Array<ArrayBuffer>, contentType = 'application/json') =>
      fetch(`${sluice.baseUrl}/v1/shares`, { method: 'POST', headers: { authorization: bearer('shares:read'), 'content-type': contentType, ...idempotencyKey() }, body });
    const bodies: [string | Uint8Array<ArrayBuffer>, string][] = [
      ['{bad', 'application/json'],
      [JSON.stringify(shareRequest()), 'text/plain'],
      [new Uint8Array(9 * 1024 * 1024), 'application/json'],
      [`${'['.repeat(70)}${']'.repeat(70)}`, 'application/json'],
    ];
    const answers = await Promise.all(bodies.map(async ([body, contentType]) => {
      const response = await post(body, contentType);
      return [response.status, ((await response.json()) as { detail?: string }).detail];
    }));
    expect(answers).toEqual(Array(bodies.length).fill([403, 'This API key lacks the scope shares:write']));
  });

  it('names the challenge of every 401 (WWW-Authenticate) and takes the Bearer scheme in any case', async () => {
    const missing = await fetch(`${sluice.baseUrl}/v1/audit/checkpoint`);
    expect([missing.status, missing.headers.get('www-authenticate')]).toEqual([401, 'Bearer realm="sluice"']);
    const invalid = await fetch(`${sluice.baseUrl}/v1/audit/checkpoint`, { headers: { authorization: `Bearer slk_${randomBytes(32).toString('base64url')}` } });
    expect([invalid.status, invalid.headers.get('www-authenticate')]).toEqual([401, 'Bearer realm="sluice", error="invalid_token"']);
    const unsigned = await fetch(`${sluice.baseUrl}/v1/webhooks/whatsapp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect([unsigned.status, unsigned.headers.get('www-authenticate')]).toEqual([401, 'HMAC-SHA256 header="X-Hub-Signature-256"']);
    for (const scheme of ['bearer', 'BEARER', 'Bearer  ']) {
      expect(await send(calls['GET /v1/audit/checkpoint']!(), `${scheme} ${keys.get('audit:read')}`)).toBe(200);
    }
  });

  it('keeps the public routes open to everyone: no key, a wrong key, any scope', async () => {
    const got: Record<string, number[]> = {};
    for (const route of Object.keys(PUBLIC)) {
      got[route] = [];
      for (const authorization of [null, 'Bearer not-a-key', ...COLUMNS.map(bearer)]) got[route]!.push(await send(calls[route]!(), authorization));
    }
    expect(got).toEqual(Object.fromEntries(Object.entries(PUBLIC).map(([route, status]) => [route, Array(COLUMNS.length + 2).fill(status)])));
  });
});
