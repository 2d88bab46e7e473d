import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { createHmac } from 'node:crypto';
import { describeEachDatabase } from '../support/databases.js';
import { consent, idempotencyKey, RECIPIENT, shareRequest, workplacePost } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

/** Inputs the fuzz test (fuzz.e2e.spec.ts) found answered with 500, each now a clear 4xx. */
describeEachDatabase('hostile input the fuzzer found', (dialect) => {
  let sluice: RunningApp;
  const appSecret = 'regression-app-secret-0123456789';

  beforeAll(async () => {
    sluice = await startTestApp(dialect, { env: { WHATSAPP_APP_SECRET: appSecret } });
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', RECIPIENT) });
  });
  afterAll(async () => {
    await sluice?.close();
  });

  const share = (body: string) => sluice.request('POST', '/v1/shares', { body, headers: idempotencyKey() });
  const errors = (response: { json: { errors?: unknown } }) => response.json.errors;

  it('refuses a lone surrogate anywhere in a body, in a name as in a value (the audit log cannot hash it)', async () => {
    const text = JSON.stringify(shareRequest({ post: workplacePost({ extra: 'LONE_VALUE', LONE_KEY: 1 }) }))
      .replace('"LONE_VALUE"', '"a\\ud800b"')
      .replace('"LONE_KEY"', '"\\udc00"');
    const response = await share(text);
    expect(response.status).toBe(400);
    expect(errors(response)).toEqual([
      { path: 'post.extra', message: 'must not contain lone UTF-16 surrogates (\\ud800-\\udfff without their pair)' },
      { path: 'post.\udc00', message: 'the name must not contain lone UTF-16 surrogates' },
    ]);
    // A surrogate pair is a character like any other.
    expect((await share(JSON.stringify(shareRequest({ post: workplacePost({ extra: 'a\ud83d\ude42b' }) })))).status).toBe(201);
  });

  it('refuses a member name given twice in an object, naming each place, and records nothing', async () => {
    const headers = idempotencyKey();
    const text = JSON.stringify(shareRequest({ post: workplacePost({ message: 'FIRST', extra: { a: 1, b: 2 } }) }))
      .replace('"message":"FIRST"', '"message":"checked by a filter","message":"sent by sluice"')
      .replace('"b":2', '"\\u0061":2');
    const response = await sluice.request('POST', '/v1/shares', { body: text, headers });
    expect(response.status).toBe(400);
    const message = 'must not be given twice: the member names of a JSON object must be unique (RFC 7493)';
    expect(errors(response)).toEqual([
      { path: 'post.message', message },
      { path: 'post.extra.a', message },
    ]);
    // Nothing was recorded under the key: the same key takes a valid request as new.
    expect((await sluice.request('POST', '/v1/shares', { body: shareRequest(), headers })).status).toBe(201);
  });

  it('reads JSON as UTF-8 only: other bytes are 400, another charset 415', async () => {
    const valid = Buffer.from(JSON.stringify(shareRequest({ post: workplacePost({ message: 'MARK' }) })));
    const at = valid.indexOf('MARK');
    const invalid = Buffer.concat([valid.subarray(0, at), Buffer.from([0xff, 0xfe]), valid.subarray(at + 4)]);
    const response = await sluice.request('POST', '/v1/shares', { body: invalid, headers: idempotencyKey() });
    expect(response.status).toBe(400);
    expect(errors(response)).toEqual([{ path: '(body)', message: 'must be UTF-8 (RFC 8259): it holds bytes that are not' }]);

    const utf16 = await sluice.request('POST', '/v1/shares', { body: valid, headers: { ...idempotencyKey(), 'content-type': 'application/json; charset=utf-16' } });
    expect([utf16.status, utf16.json]).toEqual([415, expect.objectContaining({ detail: 'A JSON body must be UTF-8, not utf-16' })]);
    const utf8 = await sluice.request('POST', '/v1/shares', { body: valid, headers: { ...idempotencyKey(), 'content-type': 'application/json; charset="UTF-8"' } });
    expect(utf8.status).toBe(201);
  });

  it('names only the type of a value of the wrong type, not every rule about its length or range', async () => {
    const tags = [{ id: '100049999', name: 'Pieter Jansen', type: 'user', offset: 0, length: '13' }];
    const shared = await share(JSON.stringify(shareRequest({ post: workplacePost({ message_tags: tags }) })));
    expect(errors(shared)).toEqual([{ path: 'post.message_tags.0.length', message: 'length must be an integer number' }]);
    const noRecipients: Record<string, unknown> = shareRequest();
    delete noRecipients.recipients;
    expect(errors(await share(JSON.stringify(noRecipients)))).toEqual([{ path: 'recipients', message: 'recipients must be an array' }]);
    const evidence = { ...consent('whatsapp', RECIPIENT).evidence, capturedAt: 12345 };
    const recorded = await sluice.request('POST', '/v1/consents', { body: { ...consent('whatsapp', RECIPIENT), evidence } });
    expect(errors(recorded)).toEqual([{ path: 'evidence.capturedAt', message: 'capturedAt must be a string' }]);
  });

  it('refuses a number beyond the range of a double (1e400 parses to Infinity)', async () => {
    const response = await share(JSON.stringify(shareRequest({ post: workplacePost({ big: 'BIG' }) })).replace('"BIG"', '-1e400'));
    expect(response.status).toBe(400);
    expect(errors(response)).toEqual([{ path: 'post.big', message: 'must be a number within the range of a double (about ±1.8e308)' }]);
  });

  it('refuses a recipient or a message tag that is an array inside the array', async () => {
    const recipients = await share(JSON.stringify(shareRequest({ recipients: [[], { waId: RECIPIENT }] })));
    expect(recipients.status).toBe(400);
    expect(errors(recipients)).toEqual([{ path: 'recipients', message: 'each value in recipients must be an object' }]);
    const tags = await share(JSON.stringify(shareRequest({ post: workplacePost({ message_tags: [[]] }) })));
    expect(tags.status).toBe(400);
    expect(errors(tags)).toEqual([{ path: 'post.message_tags', message: 'each value in message_tags must be an object' }]);
  });

  it('refuses nesting deeper than 64 levels on every route instead of overflowing the stack', async () => {
    const deep = `${'['.repeat(7000)}${']'.repeat(7000)}`;
    const body = `{"subject":${deep},"purpose":"frontline-updates","status":"granted","evidence":{"method":"form"}}`;
    const consentAnswer = await sluice.request('POST', '/v1/consents', { body });
    expect(consentAnswer.status).toBe(400);
    expect(errors(consentAnswer)).toEqual([{ path: `subject${'.0'.repeat(63)}`, message: 'must not nest deeper than 64 levels' }]);
    const signature = `sha256=${createHmac('sha256', appSecret).update(deep).digest('hex')}`;
    const webhook = await sluice.request('POST', '/v1/webhooks/whatsapp', { body: deep, key: null, headers: { 'x-hub-signature-256': signature } });
    expect(webhook.status).toBe(400);
  });

  it('answers 404 for a share id that contains a NUL byte (PostgreSQL cannot compare it)', async () => {
    const response = await sluice.request('GET', '/v1/shares/shr_%00');
    expect([response.status, response.json.title]).toEqual([404, 'not found']);
  });
});
