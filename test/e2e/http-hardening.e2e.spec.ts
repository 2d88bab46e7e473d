import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { DEFAULT_BODY_LIMIT, registeredRoutes, SHARE_BODY_LIMIT, WEBHOOK_BODY_LIMIT } from '../../src/platform/http/body-limits.js';
import { describeEachDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, idempotencyKey, RECIPIENT, shareRequest, workplacePost } from '../support/fixtures.js';
import { createApiKey, type RunningApp, startTestApp } from '../support/test-app.js';

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
}

/**
 * Sends a body in chunks without Content-Length (Transfer-Encoding: chunked), so the limit must
 * hold while the body streams in. Stops writing once the answer arrives: the server closes the
 * connection after a 413 rather than read the rest.
 */
function sendChunked(baseUrl: string, path: string, headers: Record<string, string>, chunk: Buffer, chunks: number): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    let answered = false;
    const req = httpRequest(`${baseUrl}${path}`, { method: 'POST', headers: { ...headers, 'transfer-encoding': 'chunked' } }, (res) => {
      answered = true;
      const parts: Buffer[] = [];
      res.on('data', (part: Buffer) => parts.push(part));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, text: Buffer.concat(parts).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    let sent = 0;
    const writeMore = () => {
      while (!answered && sent < chunks) {
        sent++;
        if (!req.write(chunk)) return void req.once('drain', writeMore);
      }
      if (!answered) req.end();
    };
    writeMore();
  });
}

describeEachDatabase('HTTP hardening', (dialect) => {
  describe('rate limits per API key', () => {
    let sluice: RunningApp;
    beforeAll(async () => {
      sluice = await startTestApp(dialect, { env: { RATE_LIMIT_PER_SECOND: '1', RATE_LIMIT_BURST: '3' } });
    });
    afterAll(async () => {
      await sluice?.close();
    });

    it('lets a burst through, then answers 429 problem+json with Retry-After in whole seconds, per key', async () => {
      const key = await createApiKey(sluice, ['consents:read']);
      const other = await createApiKey(sluice, ['consents:read']);
      const path = `/v1/subjects/whatsapp/${RECIPIENT}/consents`;
      // Until the first 429 (a slow machine may earn a token back on the way).
      const untilLimited = async (route: string, secret: string) => {
        const answers = [];
        do answers.push(await sluice.request('GET', route, { key: secret }));
        while (answers.at(-1)!.status !== 429 && answers.length < 10);
        return answers;
      };
      const answers = await untilLimited(path, key);
      expect(answers.slice(0, 3).map((a) => a.status)).toEqual([200, 200, 200]);
      const limited = answers.at(-1)!;
      expect(limited.status).toBe(429);
      expect(limited.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
      expect(limited.headers.get('retry-after')).toMatch(/^[1-9][0-9]*$/);
      expect(limited.json).toMatchObject({
        type: 'urn:sluice:problem:rate-limited',
        status: 429,
        retryAfter: Number(limited.headers.get('retry-after')),
        detail: expect.stringContaining('1 request(s) per second, in bursts of up to 3, on each sluice replica'),
      });
      // Another key has its own bucket, where a 403 costs a token like any answer; public routes have none.
      const forbidden = (await untilLimited('/v1/audit/checkpoint', other)).map((a) => a.status);
      expect([forbidden.slice(0, 3), forbidden.at(-1)]).toEqual([[403, 403, 403], 429]);
      for (let i = 0; i < 5; i++) expect((await sluice.request('GET', '/health', { key: null })).status).toBe(200);

      await new Promise((resolve) => setTimeout(resolve, Number(limited.headers.get('retry-after')) * 1000));
      expect((await sluice.request('GET', path, { key })).status).toBe(200);
    });

    /** Declares a body of `declared` bytes but sends only its first bytes: an answer proves the body was not waited for. */
    const beforeTheBody = (path: string, headers: Record<string, string>, declared: number) =>
      new Promise<{ status: number; contentType: string | undefined; json: Record<string, unknown> }>((resolve, reject) => {
        const req = httpRequest(`${sluice.baseUrl}${path}`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json', 'content-length': String(declared), ...idempotencyKey() } });
        req.on('response', (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
          res.on('end', () => resolve({ status: res.statusCode!, contentType: res.headers['content-type'], json: JSON.parse(text) as Record<string, unknown> }));
        });
        req.on('error', reject);
        req.write('{"purpose":');
      });

    it('refuses a missing or unknown key, and a key past its rate, before reading the body', async () => {
      const declared = SHARE_BODY_LIMIT - 1;
      expect(await beforeTheBody('/v1/shares', {}, declared)).toMatchObject({ status: 401, contentType: 'application/problem+json; charset=utf-8', json: { status: 401, detail: 'An API key is required: Authorization: Bearer <key>' } });
      expect(await beforeTheBody('/v1/shares', { authorization: 'Bearer not-a-key' }, declared)).toMatchObject({ status: 401, json: { detail: 'The API key is not valid' } });
      const key = await createApiKey(sluice, ['shares:write']);
      // The bucket is emptied (until a 429 proves it), then a request is refused with its body unsent.
      let status = 0;
      for (let i = 0; i < 10 && status !== 429; i++) status = (await sluice.request('POST', '/v1/shares', { key, body: {}, headers: idempotencyKey() })).status;
      expect(status).toBe(429);
      expect(await beforeTheBody('/v1/shares', { authorization: `Bearer ${key}` }, declared)).toMatchObject({ status: 429, contentType: 'application/problem+json; charset=utf-8', json: { status: 429 } });
    });

    it('refuses a signed webhook before reading its body while no app secret is configured', async () => {
      // This app has no WHATSAPP_APP_SECRET: nothing can match, so there is nothing to read.
      expect(await beforeTheBody('/v1/webhooks/whatsapp', { 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` }, WEBHOOK_BODY_LIMIT - 1)).toMatchObject({
        status: 401,
        json: { detail: 'X-Hub-Signature-256 is missing or does not match the body' },
      });
    });

    it('checks the key before counting: an unknown key gets 401, never 429', async () => {
      for (let i = 0; i < 6; i++) expect((await sluice.request('GET', '/v1/audit/checkpoint', { key: 'not-a-key' })).status).toBe(401);
    });
  });

  describe('requests Node answers before routing', () => {
    let sluice: RunningApp;
    beforeAll(async () => {
      sluice = await startTestApp(dialect, { env: { HTTP_REQUEST_TIMEOUT_MS: '1000' } });
    });
    afterAll(async () => {
      await sluice?.close();
    });

    it('answers 408 problem+json and closes the connection when a body stops arriving, within a second of HTTP_REQUEST_TIMEOUT_MS', async () => {
      const body = JSON.stringify(shareRequest());
      const started = Date.now();
      const answer = await new Promise<{ status: number; headers: Record<string, unknown>; json: unknown; socketClosed: boolean }>((resolve, reject) => {
        const req = httpRequest(`${sluice.baseUrl}/v1/shares`, {
          method: 'POST',
          headers: { authorization: `Bearer ${sluice.apiKey}`, 'content-type': 'application/json', 'content-length': String(body.length), ...idempotencyKey() },
        });
        req.on('response', (res) => {
          let text = '';
          res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
          // The server closes the connection after the answer (the test times out if it does not).
          const answered = () => resolve({ status: res.statusCode!, headers: res.headers, json: JSON.parse(text), socketClosed: true });
          res.on('end', () => (res.socket.destroyed ? answered() : res.socket.once('close', answered)));
        });
        req.on('error', reject);
        req.write(body.slice(0, 10));
      });
      expect(answer).toMatchObject({
        status: 408,
        headers: { 'content-type': 'application/problem+json', connection: 'close', 'x-content-type-options': 'nosniff' },
        json: { status: 408, title: 'request timeout', detail: 'The request did not arrive in full within HTTP_REQUEST_TIMEOUT_MS' },
        socketClosed: true,
      });
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      expect(Date.now() - started).toBeLessThan(5000);
    });

    /** Writes raw bytes and reads everything until the server closes the connection. */
    const raw = (bytes: string) =>
      new Promise<string>((resolve, reject) => {
        const socket = connect({ port: Number(new URL(sluice.baseUrl).port), host: '127.0.0.1' });
        let text = '';
        socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
        socket.write(bytes);
      });

    it.each([
      ['a malformed request line', 'GET /health HTTP/1.1 extra\r\n\r\n', 400, 'The request is not valid HTTP'],
      ['headers over the size limit', `GET /health HTTP/1.1\r\nhost: x\r\nx-padding: ${'a'.repeat(20_000)}\r\n\r\n`, 431, 'The request headers are too large'],
    ])('answers %s with problem+json and the security headers, then closes', async (_case, bytes, status, detail) => {
      const answer = await raw(bytes);
      const [head, body] = answer.split('\r\n\r\n');
      expect(head!.split('\r\n')[0]).toBe(`HTTP/1.1 ${status} ${status === 400 ? 'bad request' : 'request header fields too large'}`);
      expect(head).toContain('content-type: application/problem+json');
      expect(head).toContain('x-frame-options: DENY');
      expect(JSON.parse(body!)).toEqual({ type: 'about:blank', title: status === 400 ? 'bad request' : 'request header fields too large', status, detail });
    });

    it('answers a malformed request that follows an answered one on the same connection', async () => {
      // The second request is written once the first is answered: the connection has written an answer before.
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect({ port: Number(new URL(sluice.baseUrl).port), host: '127.0.0.1' });
        let text = '';
        socket.on('data', (chunk: Buffer) => {
          const first = text === '';
          text += chunk.toString('latin1');
          if (first) socket.write('GET /health HTTP/1.1 extra\r\n\r\n');
        });
        socket.on('close', () => resolve(text));
        socket.on('error', reject);
        socket.write('GET /health HTTP/1.1\r\nhost: x\r\n\r\n');
      });
      const answers = answer.split(/(?=HTTP\/1\.1 \d{3} )/);
      expect(answers.map((a) => a.split('\r\n')[0])).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 400 bad request']);
      expect(answers[1]).toContain('content-type: application/problem+json');
    });
  });

  describe('body limits, headers and CORS', () => {
    let sluice: RunningApp;
    beforeAll(async () => {
      sluice = await startTestApp(dialect, { env: { WHATSAPP_APP_SECRET: 'hardening-app-secret-0123456789' } });
    });
    afterAll(async () => {
      await sluice?.close();
    });

    it('gives each route its own body limit', () => {
      const limits = new Map(registeredRoutes(sluice.app.getHttpAdapter().getInstance()).map((r) => [`${r.method} ${r.url}`, r.bodyLimit]));
      expect(limits.get('POST /v1/shares')).toBe(SHARE_BODY_LIMIT);
      expect(limits.get('POST /v1/webhooks/whatsapp')).toBe(WEBHOOK_BODY_LIMIT);
      expect(limits.get('POST /v1/consents')).toBe(DEFAULT_BODY_LIMIT);
      expect(limits.get('POST /v1/subjects/:type/:id/erase')).toBe(DEFAULT_BODY_LIMIT);
      expect(DEFAULT_BODY_LIMIT).toBeLessThan(WEBHOOK_BODY_LIMIT);
    });

    const tooLarge = (limit: number) => ({
      type: 'urn:sluice:problem:body-too-large',
      status: 413,
      limit,
      detail: `The request body is larger than the ${limit} bytes (${limit >= 1 << 20 ? `${limit / (1 << 20)} MiB` : `${limit / 1024} KiB`}) this route accepts`,
    });

    it.each([
      ['POST /v1/consents', '/v1/consents', DEFAULT_BODY_LIMIT],
      ['POST /v1/subjects/:type/:id/erase', `/v1/subjects/whatsapp/${RECIPIENT}/erase`, DEFAULT_BODY_LIMIT],
      ['POST /v1/webhooks/whatsapp', '/v1/webhooks/whatsapp', WEBHOOK_BODY_LIMIT],
      ['POST /v1/shares', '/v1/shares', SHARE_BODY_LIMIT],
    ])('refuses a body over the limit of %s with 413 naming the limit, by Content-Length and chunked', async (_route, path, limit) => {
      const body = JSON.stringify({ padding: 'x'.repeat(limit) });
      // A signature of the right form (of other bytes): an unsigned webhook is refused before its body is read.
      const signature = { 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` };
      const declared = await sluice.request('POST', path, { body, headers: { ...idempotencyKey(), ...signature } });
      expect([declared.status, declared.headers.get('content-type')]).toEqual([413, 'application/problem+json; charset=utf-8']);
      expect(declared.json).toMatchObject(tooLarge(limit));

      const chunked = await sendChunked(sluice.baseUrl, path, { authorization: `Bearer ${sluice.apiKey}`, 'content-type': 'application/json', ...idempotencyKey(), ...signature }, Buffer.alloc(64 * 1024, 0x20), Math.ceil(limit / (64 * 1024)) + 2);
      expect([chunked.status, chunked.headers['content-type']]).toEqual([413, 'application/problem+json; charset=utf-8']);
      expect(JSON.parse(chunked.text)).toMatchObject(tooLarge(limit));
    });

    it('takes JSON bodies only, as sent: another type or a compressed body gets 415, and nothing is recorded', async () => {
      const body = consent('whatsapp', '31687222001');
      const consentsOf = async () => (await sluice.request('GET', '/v1/subjects/whatsapp/31687222001/consents')).json.current;
      const refusedHeaders: Record<string, string>[] = [{ 'content-type': 'text/plain' }, { 'content-type': 'application/x-www-form-urlencoded' }, { 'content-encoding': 'gzip' }, { 'content-encoding': 'br' }];
      for (const headers of refusedHeaders) {
        const refused = await sluice.request('POST', '/v1/consents', { body, headers });
        expect([headers, refused.status, refused.headers.get('content-type')]).toEqual([headers, 415, 'application/problem+json; charset=utf-8']);
        if (headers['content-type']) expect(refused.json.detail).toBe('Send the body as JSON: Content-Type application/json, in UTF-8');
      }
      expect(await consentsOf()).toEqual([]);
      expect((await sluice.request('POST', '/v1/consents', { body, headers: { 'content-type': 'application/json; charset=utf-8', 'content-encoding': 'identity' } })).status).toBe(201);
      // A request without a body is not refused for a coding it does not use.
      expect((await sluice.request('GET', '/v1/audit/checkpoint', { headers: { 'content-encoding': 'gzip' } })).status).toBe(200);
    });

    it('answers a body that is no JSON as every other invalid request, naming the body', async () => {
      for (const body of ['{"broken', '{"__proto__":{"x":1},"purpose":"a"}', '{"constructor":{"prototype":{}}}', '']) {
        const refused = await sluice.request('POST', '/v1/consents', { body, headers: { 'content-type': 'application/json' } });
        expect([body, refused.status, refused.json.type, (refused.json.errors as { path: string }[]).map((e) => e.path)]).toEqual([body, 400, 'urn:sluice:problem:invalid-request', ['(body)']]);
      }
    });

    it('still takes a body just under a limit (a consent with long evidence, a large share)', async () => {
      const evidence = { ...consent('whatsapp', RECIPIENT), evidence: { method: 'form', text: 'é'.repeat(2000) } };
      expect((await sluice.request('POST', '/v1/consents', { body: evidence })).status).toBe(201);
      const padded = shareRequest({ post: workplacePost({ padding: 'y'.repeat(SHARE_BODY_LIMIT - 4096) }) });
      expect((await sluice.request('POST', '/v1/shares', { body: padded, headers: idempotencyKey() })).status).toBe(201);
    });

    it('refuses too wide a share before validating it, and names at most 100 problems', async () => {
      const wide = (keys: number) => Object.fromEntries(Array.from({ length: keys }, (_, i) => [`k${i}`, 0]));
      const key = idempotencyKey();
      const cases: [unknown, { path: string; message: string }][] = [
        // class-transformer's copy is quadratic in an object's keys: these took seconds of the event loop.
        [shareRequest({ post: workplacePost(wide(100_000)) }), { path: 'post', message: 'must not have more than 1000 members' }],
        [shareRequest({ post: workplacePost({ from: { id: AUTHOR_ID, ...wide(50_000) } }) }), { path: 'post.from', message: 'must not have more than 1000 members' }],
        // One problem per item overflowed the stack building the answer: a 500.
        [shareRequest({ recipients: Array(130_000).fill(0) }), { path: 'recipients', message: 'must not have more than 1000 items' }],
      ];
      for (const [body, problem] of cases) {
        const answer = await sluice.request('POST', '/v1/shares', { body, headers: key });
        expect([answer.status, (answer.json as { errors: unknown[] }).errors]).toEqual([400, [problem]]);
      }
      const many = await sluice.request('POST', '/v1/shares', { body: shareRequest({ recipients: Array(900).fill(0) }), headers: key });
      const errors = (many.json as { errors: { path: string; message: string }[] }).errors;
      expect([many.status, errors.length]).toEqual([400, 101]);
      expect(errors.at(-1)!.message).toMatch(/^and \d+ more problem\(s\)$/);
      // Nothing was recorded under the key: a valid share takes it.
      expect((await sluice.request('POST', '/v1/shares', { body: shareRequest(), headers: key })).status).toBe(201);
    });

    it('refuses a large body nested too deep before parsing it, by Content-Length and chunked', async () => {
      const deep = '['.repeat(3 << 20) + ']'.repeat(3 << 20);
      const problem = { errors: [{ path: '(body)', message: 'must not nest deeper than 64 levels' }] };
      const declared = await sluice.request('POST', '/v1/shares', { body: deep, headers: idempotencyKey() });
      expect([declared.status, declared.json]).toEqual([400, expect.objectContaining(problem)]);
      const chunked = await sendChunked(sluice.baseUrl, '/v1/shares', { authorization: `Bearer ${sluice.apiKey}`, 'content-type': 'application/json', ...idempotencyKey() }, Buffer.from('['.repeat(64 * 1024)), 48);
      expect([chunked.status, JSON.parse(chunked.text)]).toEqual([400, expect.objectContaining(problem)]);
      // Brackets in strings are text: a large share of them is taken.
      const brackets = shareRequest({ post: workplacePost({ note: '[{'.repeat(100_000) }) });
      expect((await sluice.request('POST', '/v1/shares', { body: brackets, headers: idempotencyKey() })).status).toBe(201);
    });

    const expectSecurityHeaders = (headers: Headers) => {
      expect(headers.get('x-content-type-options')).toBe('nosniff');
      expect(headers.get('x-frame-options')).toBe('DENY');
      expect(headers.get('referrer-policy')).toBe('no-referrer');
      expect(headers.get('strict-transport-security')).toBe('max-age=31536000');
      expect(headers.get('content-security-policy')).toBe(
        "default-src 'none'; style-src 'sha256-KY6DeBFviUOMwTWg4+wAvjtt10gErFvT3837isluuKo='; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
      );
      expect(headers.get('cross-origin-resource-policy')).toBe('same-origin');
      expect(headers.get('cache-control')).toBe('no-store');
    };

    it('sends the security headers on JSON, HTML, errors and unknown routes', async () => {
      await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', RECIPIENT) });
      const html = await sluice.request('GET', `/v1/subjects/whatsapp/${RECIPIENT}/report?format=html`);
      expect([html.status, html.headers.get('content-type')]).toEqual([200, 'text/html; charset=utf-8']);
      for (const response of [
        html,
        await sluice.request('GET', `/v1/subjects/whatsapp/${RECIPIENT}/consents`),
        await sluice.request('GET', '/health', { key: null }),
        await sluice.request('GET', '/v1/audit/checkpoint', { key: null }),
        await sluice.request('POST', '/v1/consents', { body: '{"broken' }),
        await sluice.request('GET', '/no/such/route'),
        // Fastify answers these before any hook: a URL it cannot decode, a path parameter over its length limit.
        await sluice.request('GET', '/v1/shares/%E0%A4%A'),
        await sluice.request('GET', `/v1/shares/${'x'.repeat(150)}`),
        await sluice.request('POST', '/v1/consents', { body: JSON.stringify({ padding: 'x'.repeat(DEFAULT_BODY_LIMIT) }) }),
      ]) {
        expectSecurityHeaders(response.headers);
        if (response.status >= 400) expect(response.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
      }
    });

    it('answers a URL Fastify cannot route with problem+json', async () => {
      const badUrl = await sluice.request('GET', '/v1/shares/%E0%A4%A');
      expect(badUrl.json).toEqual({ type: 'about:blank', title: 'bad request', status: 400, detail: "'/v1/shares/%E0%A4%A' is not a valid url component" });
      const longParameter = await sluice.request('GET', `/v1/shares/${'x'.repeat(150)}`);
      expect(longParameter.json).toMatchObject({ title: 'uri too long', status: 414 });
    });

    it('keeps CORS closed by default: no Access-Control-Allow-Origin for any origin, preflights refused', async () => {
      const origin = 'https://intranet.example.com';
      const simple = await sluice.request('GET', '/health', { key: null, headers: { origin } });
      expect(simple.status).toBe(200);
      expect(simple.headers.get('access-control-allow-origin')).toBeNull();
      const preflight = await sluice.request('OPTIONS', '/v1/shares', {
        key: null,
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, idempotency-key' },
      });
      expect(preflight.status).toBe(404);
      expect([...preflight.headers.keys()].filter((h) => h.startsWith('access-control-'))).toEqual([]);
    });
  });

  describe('CORS with an allow-list and HSTS settings', () => {
    let sluice: RunningApp;
    const allowed = 'https://intranet.example.com';
    beforeAll(async () => {
      sluice = await startTestApp(dialect, { env: { CORS_ORIGINS: `${allowed}, http://localhost:8080`, HSTS_MAX_AGE: '600', HSTS_INCLUDE_SUBDOMAINS: 'true', RATE_LIMIT_PER_SECOND: '1', RATE_LIMIT_BURST: '2' } });
    });
    afterAll(async () => {
      await sluice?.close();
    });

    const preflight = (origin: string) =>
      sluice.request('OPTIONS', '/v1/shares', { key: null, headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type, idempotency-key' } });

    it('answers a preflight from a listed origin, and lets it read responses', async () => {
      const answer = await preflight(allowed);
      expect(answer.status).toBe(204);
      expect(answer.headers.get('access-control-allow-origin')).toBe(allowed);
      expect(answer.headers.get('access-control-allow-methods')).toBe('GET, HEAD, POST');
      expect(answer.headers.get('access-control-allow-headers')).toBe('authorization, content-type, idempotency-key');
      const read = await sluice.request('GET', `/v1/subjects/whatsapp/${RECIPIENT}/consents`, { headers: { origin: allowed } });
      expect(read.status).toBe(200);
      expect(read.headers.get('access-control-allow-origin')).toBe(allowed);
      expect(read.headers.get('vary')).toMatch(/origin/i);
      expect(read.headers.get('strict-transport-security')).toBe('max-age=600; includeSubDomains');
    });

    it('lets a listed origin read a 401 and a 429 with its Retry-After', async () => {
      const unauthorized = await sluice.request('POST', '/v1/shares', { key: 'not-a-key', body: {}, headers: { origin: allowed, ...idempotencyKey() } });
      expect([unauthorized.status, unauthorized.headers.get('access-control-allow-origin')]).toEqual([401, allowed]);
      const key = await createApiKey(sluice, ['shares:write']);
      let limited: Awaited<ReturnType<typeof sluice.request>> | undefined;
      for (let i = 0; i < 10 && limited?.status !== 429; i++) limited = await sluice.request('POST', '/v1/shares', { key, body: {}, headers: { origin: allowed, ...idempotencyKey() } });
      expect([limited!.status, limited!.headers.get('access-control-allow-origin')]).toEqual([429, allowed]);
      expect(limited!.headers.get('access-control-expose-headers')).toMatch(/retry-after/);
    });

    it('refuses every other origin', async () => {
      for (const origin of ['https://evil.example.com', 'https://intranet.example.com.evil.example', 'null', 'http://intranet.example.com']) {
        const answer = await preflight(origin);
        expect([origin, answer.status, answer.headers.get('access-control-allow-origin')]).toEqual([origin, 404, null]);
        const read = await sluice.request('GET', '/health', { key: null, headers: { origin } });
        expect(read.headers.get('access-control-allow-origin')).toBeNull();
      }
    });
  });
});
