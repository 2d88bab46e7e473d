import { describe, expect, it } from '@jest/globals';
import type { FastifyReply } from 'fastify';
import { Readable } from 'node:stream';
import { contentLengthOf, readBodyWithin } from '../../../src/platform/http/read-body.js';

describe('readBodyWithin', () => {
  const reply = { header: () => reply } as unknown as FastifyReply;

  it('reads the whole body, or refuses it with 413 once over the limit', async () => {
    expect((await readBodyWithin(Readable.from([Buffer.from('{"a":'), Buffer.from('1}')]), 100, 7, reply)).toString()).toBe('{"a":1}');
    await expect(readBodyWithin(Readable.from([Buffer.alloc(60), Buffer.alloc(60)]), 100, NaN, reply)).rejects.toMatchObject({ code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 });
    await expect(readBodyWithin(Readable.from([]), 100, 101, reply)).rejects.toMatchObject({ code: 'FST_ERR_CTP_BODY_TOO_LARGE' });
  });

  it('answers a body the client broke off with 400, not as a server fault, and without its message', async () => {
    const aborted = new Readable({ read() {} });
    aborted.push(Buffer.from('{"post":'));
    setImmediate(() => aborted.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' })));
    await expect(readBodyWithin(aborted, 100, NaN, reply)).rejects.toMatchObject({ statusCode: 400, message: 'The request body did not arrive in full' });
  });

  it('reads a body only where one is announced or chunked', () => {
    expect([contentLengthOf({}), contentLengthOf({ 'content-length': '12' }), contentLengthOf({ 'transfer-encoding': 'chunked' })]).toEqual([undefined, 12, 'chunked']);
  });
});
