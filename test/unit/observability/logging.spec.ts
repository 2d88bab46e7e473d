import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { context, trace } from '@opentelemetry/api';
import { BasicTracerProvider } from '@opentelemetry/sdk-trace-base';
import Fastify from 'fastify';
import { Writable } from 'node:stream';
import { QueryFailedError } from 'typeorm';
import { fastifyLogging, instrumentRequests } from '../../../src/platform/observability/http-telemetry.js';
import { createLogger, NestPinoLogger, REDACTED } from '../../../src/platform/observability/logger.js';
import { TestContextManager } from './test-context-manager.js';

const PHONE = '31612345678';

/** Log lines written to memory, parsed. */
function capture(level: Parameters<typeof createLogger>[0] = 'verbose') {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createLogger(level, destination), lines };
}

describe('log redaction', () => {
  it('censors personal fields by path, as a second line of defence', () => {
    const { logger, lines } = capture();
    logger.info(
      {
        headers: { authorization: 'Bearer secret-api-key', 'content-type': 'application/json' },
        body: { post: { message: 'Bel 06-12345678' } },
        post: { from: { name: 'Anna de Vries' } },
        recipients: [{ waId: PHONE }],
        waId: PHONE,
        request: { phone: '+31 6 12345678', email: 'anna@example.nl', name: 'Anna de Vries', query: { waId: PHONE }, url: `/v1/subjects/whatsapp/${PHONE}/report` },
        shareId: 'shr_abc',
        reason: 'recipient.no_consent',
      },
      'something happened',
    );
    expect(lines[0]).toMatchObject({
      msg: 'something happened',
      headers: { authorization: REDACTED, 'content-type': 'application/json' },
      body: REDACTED,
      post: REDACTED,
      recipients: REDACTED,
      waId: REDACTED,
      request: { phone: REDACTED, email: REDACTED, name: REDACTED, query: REDACTED, url: REDACTED },
      shareId: 'shr_abc',
      reason: 'recipient.no_consent',
    });
    expect(JSON.stringify(lines)).not.toMatch(/12345678|Anna|secret-api-key|anna@/);
  });

  it('censors those fields at any depth, and logs an error under any key by its type only', () => {
    const { logger, lines } = capture();
    const failed = new QueryFailedError('INSERT INTO consents (subject_id) VALUES ($1)', [PHONE], Object.assign(new Error(`duplicate key (subject_id)=(${PHONE})`), { detail: `Key (subject_id)=(${PHONE}) already exists.`, code: '23505' }));
    logger.warn(
      {
        a: { b: { c: { waId: PHONE, shareId: 'shr_deep' } } },
        webhook: { entry: [{ changes: [{ value: { contacts: [{ profile: { name: 'Anna de Vries' }, wa_id: PHONE }] } }] }] },
        error: failed,
        nested: { cause: new TypeError(`bad ${PHONE}`) },
        entity: Object.assign(new (class ContactEntity {})(), { id: 'ct_1', waId: PHONE }),
        bytes: Buffer.from(PHONE),
        lookup: new Map([[PHONE, 1]]),
      },
      'something deep',
    );
    expect(lines[0]).toMatchObject({
      a: { b: { c: { waId: REDACTED, shareId: 'shr_deep' } } },
      webhook: { entry: [{ changes: [{ value: { contacts: REDACTED } }] }] },
      error: { type: 'QueryFailedError', code: '23505' },
      nested: { cause: { type: 'TypeError' } },
      entity: { id: 'ct_1', waId: REDACTED },
      bytes: `[${PHONE.length} bytes]`,
      lookup: '[Map of 1]',
    });
    expect(JSON.stringify(lines)).not.toMatch(/12345678|Anna|INSERT|51, ?54/);
  });

  it('logs an error by type, code and stack frames, never its message', () => {
    const { logger, lines } = capture();
    const error = Object.assign(new SyntaxError(`Unexpected token 'A', "{"name": Anna ${PHONE}"... is not valid JSON`), { statusCode: 400 });
    logger.error({ err: error }, 'request failed');
    new NestPinoLogger(logger).error(new TypeError(`cannot read ${PHONE}`), 'RequestShare');
    const failure = new RangeError(`no key for ${PHONE}`);
    new NestPinoLogger(logger).error(`sequencing pass failed: ${failure.name}`, failure.stack, 'AuditSequencer');
    expect(lines[0]).toMatchObject({ msg: 'request failed', err: { type: 'SyntaxError', statusCode: 400, stack: expect.stringMatching(/^\s+at /) } });
    expect(lines[1]).toMatchObject({ level: 'error', context: 'RequestShare', msg: 'TypeError', err: { type: 'TypeError' } });
    expect(lines[2]).toMatchObject({ level: 'error', context: 'AuditSequencer', msg: 'sequencing pass failed: RangeError', stack: expect.stringMatching(/^\s+at /) });
    expect(JSON.stringify(lines)).not.toContain(PHONE);
  });

  it("keeps LOG_LEVEL's meaning: log is info, verbose is trace, and Nest's logger name is the context", () => {
    const { logger, lines } = capture('log');
    const nest = new NestPinoLogger(logger);
    nest.verbose('hidden', 'Policies');
    nest.debug('hidden', 'Policies');
    nest.log('loaded 1 policy file(s)', 'Policies');
    nest.warn('lost the claim on out_1 during attempt 2', 'DeliveryWorker');
    expect(lines.map((l) => [l.level, l.context, l.msg])).toEqual([
      ['info', 'Policies', 'loaded 1 policy file(s)'],
      ['warn', 'DeliveryWorker', 'lost the claim on out_1 during attempt 2'],
    ]);
    expect(capture('verbose').logger.level).toBe('trace');
  });

  describe('inside a span', () => {
    const provider = new BasicTracerProvider();
    beforeAll(() => {
      context.setGlobalContextManager(new TestContextManager());
    });
    afterAll(() => {
      context.disable();
    });

    it('carries the trace and span ids on every line', () => {
      const { logger, lines } = capture();
      const span = provider.getTracer('test').startSpan('sluice.share.request');
      context.with(trace.setSpan(context.active(), span), () => logger.info('decided'));
      logger.info('outside');
      span.end();
      const { traceId, spanId } = span.spanContext();
      expect(lines[0]).toMatchObject({ msg: 'decided', trace_id: traceId, span_id: spanId, trace_flags: '01' });
      expect(lines[1]).not.toHaveProperty('trace_id');
    });
  });
});

describe('request logs and request ids', () => {
  it("writes one line per request with the route template, never the URL, its query or the caller's X-Request-Id", async () => {
    const { logger, lines } = capture('log');
    const fastify = Fastify({ ...fastifyLogging(logger) });
    let requestId: string;
    instrumentRequests(fastify);
    fastify.get('/v1/subjects/:type/:id/report', async (request) => {
      new NestPinoLogger(logger).log('building the report', 'SubjectReport');
      return { ok: (request.params as { id: string }).id.length > 0 };
    });
    try {
      // 32 hex digits, a phone number inside: the form such ids were once taken in.
      const reply = await fastify.inject({ method: 'GET', url: `/v1/subjects/whatsapp/${PHONE}/report?waId=%2B${PHONE}&email=anna%40example.nl`, headers: { 'x-request-id': `aaaaaaaaaaaaaaaaaaaaa${PHONE}`, authorization: 'Bearer secret-api-key' } });
      const missing = await fastify.inject({ method: 'GET', url: `/v1/nowhere/${PHONE}` });
      requestId = String(reply.headers['x-request-id']);
      expect(requestId).toMatch(/^req_/);
      expect(missing.headers['x-request-id']).toMatch(/^req_/);
    } finally {
      await fastify.close();
    }
    const completed = lines.filter((l) => l.msg === 'request completed');
    expect(completed).toEqual([
      expect.objectContaining({ reqId: requestId, method: 'GET', route: '/v1/subjects/:type/:id/report', statusCode: 200 }),
      expect.objectContaining({ method: 'GET', statusCode: 404 }),
    ]);
    expect(lines.find((l) => l.msg === 'building the report')).toMatchObject({ context: 'SubjectReport', reqId: requestId });
    expect(JSON.stringify(lines)).not.toMatch(/12345678|anna|secret-api-key|nowhere/);
  });
});
