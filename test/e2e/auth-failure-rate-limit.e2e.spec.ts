import { afterAll, afterEach, beforeAll, beforeEach, expect, it, jest } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { hashApiKey } from '../../src/platform/auth/api-key.service.js';
import { Sql } from '../../src/platform/database/sql.js';
import { SHARE_BODY_LIMIT } from '../../src/platform/http/body-limits.js';
import { describeEachDatabase } from '../support/databases.js';
import { createApiKey, type RunningApp, startTestApp } from '../support/test-app.js';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: Record<string, unknown>;
}

const unknownKey = () => `slk_${randomBytes(32).toString('base64url')}`;
// Every statement the app runs goes through Sql.rows: those that read the key table are counted.
const spyOnStatements = () => jest.spyOn(Sql.prototype, 'rows');

describeEachDatabase('failed authentications per client address', (dialect) => {
  let sluice: RunningApp;
  let statements: ReturnType<typeof spyOnStatements>;
  // Loopback has all of 127/8: each test client connects from an address of its own.
  const flooding = '127.0.0.2';
  const other = '127.0.0.3';

  beforeAll(async () => {
    sluice = await startTestApp(dialect, { env: { AUTH_FAILURE_BURST: '3', AUTH_FAILURES_PER_MINUTE: '1' } });
  });
  afterAll(async () => {
    await sluice?.close();
  });
  beforeEach(() => {
    statements = spyOnStatements();
  });
  afterEach(() => {
    statements.mockRestore();
  });
  const keyTableReads = () => statements.mock.calls.filter(([, text]) => text.includes('api_keys')).length;

  /**
   * A request from `localAddress`. With `declaredBody`, a POST that announces that many bytes
   * and sends only a few: an answer proves it came before the body was read.
   */
  const send = (localAddress: string, path: string, key: string | null, declaredBody?: number) =>
    new Promise<Answer>((resolve, reject) => {
      const headers: Record<string, string> = key === null ? {} : { authorization: `Bearer ${key}` };
      if (declaredBody !== undefined) Object.assign(headers, { 'content-type': 'application/json', 'content-length': String(declaredBody), 'idempotency-key': randomUUID() });
      const req = httpRequest(`${sluice.baseUrl}${path}`, { method: declaredBody === undefined ? 'GET' : 'POST', headers, localAddress, agent: false }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
        // Problems are JSON; a checkpoint is text.
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, json: res.headers['content-type']?.includes('json') ? (JSON.parse(text) as Record<string, unknown>) : {} }));
      });
      req.on('error', reject);
      if (declaredBody === undefined) req.end();
      else req.write('{"purpose":');
    });

  it('answers 429 problem+json with Retry-After after AUTH_FAILURE_BURST failures from an address, reading no key', async () => {
    for (let i = 0; i < 3; i++) expect((await send(flooding, '/v1/audit/checkpoint', unknownKey())).status).toBe(401);
    // The count sees the lookups: each failure made one.
    expect(keyTableReads()).toBe(3);

    const limited = await send(flooding, '/v1/audit/checkpoint', unknownKey());
    expect(limited.status).toBe(429);
    expect(limited.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    // One failure a minute comes back: the wait is up to a minute.
    const retryAfter = Number(limited.headers['retry-after']);
    expect(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60).toBe(true);
    expect(limited.json).toMatchObject({
      type: 'urn:sluice:problem:rate-limited',
      status: 429,
      retryAfter,
      detail: expect.stringContaining('Too many requests with an API key that is not valid came from this address: 1 per minute, in bursts of up to 3'),
    });
    // Refused as soon as the headers arrive: a body announced is not waited for.
    expect(await send(flooding, '/v1/shares', unknownKey(), SHARE_BODY_LIMIT - 1)).toMatchObject({ status: 429, json: { status: 429 } });
    for (let i = 0; i < 5; i++) expect((await send(flooding, '/v1/audit/checkpoint', unknownKey())).status).toBe(429);
    expect(keyTableReads()).toBe(3);
  });

  it('keeps valid keys working from that address, and other addresses unaffected', async () => {
    expect((await send(flooding, '/v1/audit/checkpoint', unknownKey())).status).toBe(429);
    // Keys this replica knows are stored (the bootstrap key, a key created here) are looked up as ever.
    expect((await send(flooding, '/v1/audit/checkpoint', sluice.apiKey)).status).toBe(200);
    const created = await createApiKey(sluice, ['audit:read']);
    expect((await send(flooding, '/v1/audit/checkpoint', created)).status).toBe(200);
    // The key's own limits still apply: its scopes.
    expect((await send(flooding, '/v1/shares/shr_x', created)).status).toBe(403);

    expect((await send(other, '/v1/audit/checkpoint', unknownKey())).status).toBe(401);
    expect((await send(other, '/v1/audit/checkpoint', sluice.apiKey)).status).toBe(200);
    expect((await send(flooding, '/v1/audit/checkpoint', unknownKey())).status).toBe(429);
  });

  it('knows a key stored behind its back (sluice keys create) once a lookup found it from an address with failures to spare', async () => {
    const secret = unknownKey();
    await sluice.database.adminQuery(
      `INSERT INTO api_keys (id, name, key_hash, scopes, created_at) VALUES (${dialect === 'sqlite' ? '?, ?, ?, ?, ?' : '$1, $2, $3, $4, $5'})`,
      [`key_${randomBytes(8).toString('hex')}`, 'elsewhere', hashApiKey(secret), 'audit:read', new Date().toISOString()],
    );
    // This replica loaded the stored keys less than a minute ago, so cannot tell it from a guess yet.
    expect((await send(flooding, '/v1/audit/checkpoint', secret)).status).toBe(429);
    expect((await send(other, '/v1/audit/checkpoint', secret)).status).toBe(200);
    expect((await send(flooding, '/v1/audit/checkpoint', secret)).status).toBe(200);
  });

  it('answers a missing key with 401, as before, and does not count it: it costs no lookup', async () => {
    const client = '127.0.0.4';
    for (let i = 0; i < 5; i++) expect((await send(client, '/v1/audit/checkpoint', null)).status).toBe(401);
    expect(keyTableReads()).toBe(0);
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push((await send(client, '/v1/audit/checkpoint', unknownKey())).status);
    expect(answers).toEqual([401, 401, 401, 429]);
  });
});
