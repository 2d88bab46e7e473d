import { describe, expect, it } from '@jest/globals';
import { defaultTextMapGetter, defaultTextMapSetter, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { isDroppedAttribute, SanitisingSpanExporter, TraceParentOnlyPropagator } from '../../../src/platform/observability/span-sanitiser.js';
import { telemetryExport } from '../../../src/platform/observability/telemetry-settings.js';

const PHONE = '31612345678';

/** Spans as the HTTP, undici and pg instrumentations make them, through the exporter sluice wraps around its OTLP exporter. */
function exported(record: (tracer: ReturnType<BasicTracerProvider['getTracer']>) => void) {
  const memory = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new SanitisingSpanExporter(memory))] });
  record(provider.getTracer('test'));
  return memory.getFinishedSpans();
}

describe('span sanitising', () => {
  it('drops the URL, query, client and user agent of an HTTP server span and keeps its route template', () => {
    const [span] = exported((tracer) => {
      const server = tracer.startSpan('GET', {
        kind: SpanKind.SERVER,
        attributes: {
          'http.request.method': 'GET',
          'url.scheme': 'http',
          'url.path': `/v1/subjects/whatsapp/${PHONE}/report`,
          'url.query': `waId=${PHONE}`,
          'url.full': `http://127.0.0.1/v1/subjects/whatsapp/${PHONE}/report?waId=${PHONE}`,
          'http.target': `/v1/subjects/whatsapp/${PHONE}/report`,
          'http.url': `http://127.0.0.1/v1/subjects/whatsapp/${PHONE}/report`,
          'client.address': '10.1.2.3',
          'network.peer.address': '10.1.2.3',
          'user_agent.original': 'curl/8.5',
          'http.request.header.x-forwarded-for': ['10.1.2.3'],
          // From the Host header: whatever the client sent.
          'server.address': `${PHONE}.example`,
          'server.port': 3000,
          'http.host': `${PHONE}.example:3000`,
        },
      });
      server.setAttributes({ 'http.route': '/v1/subjects/:type/:id/report', 'http.response.status_code': 200 });
      server.updateName('GET /v1/subjects/:type/:id/report');
      server.end();
    });
    expect(span!.name).toBe('GET /v1/subjects/:type/:id/report');
    expect(span!.attributes).toEqual({ 'http.request.method': 'GET', 'url.scheme': 'http', 'http.route': '/v1/subjects/:type/:id/report', 'http.response.status_code': 200 });
  });

  it('keeps only the type of a recorded exception and drops the status message', () => {
    const [span] = exported((tracer) => {
      const query = tracer.startSpan('pg.query:INSERT sluice', { attributes: { 'db.system.name': 'postgresql', 'db.query.text': 'INSERT INTO consent_states VALUES ($1, $2)', 'db.query.parameter.0': PHONE } });
      query.recordException(Object.assign(new Error(`Key (subject_id)=(${PHONE}) already exists.`), { name: 'DatabaseError' }));
      query.setStatus({ code: SpanStatusCode.ERROR, message: `Key (subject_id)=(${PHONE}) already exists.` });
      query.addLink({ context: query.spanContext(), attributes: { 'url.full': `https://cdn.example/${PHONE}.jpg`, 'sluice.share.id': 'shr_1' } });
      query.end();
    });
    expect(span!.attributes).toEqual({ 'db.system.name': 'postgresql', 'db.query.text': 'INSERT INTO consent_states VALUES ($1, $2)' });
    expect(span!.status).toEqual({ code: SpanStatusCode.ERROR });
    expect(span!.events.map((e) => [e.name, e.attributes])).toEqual([['exception', { 'exception.type': 'DatabaseError' }]]);
    expect(span!.links.map((l) => l.attributes)).toEqual([{ 'sluice.share.id': 'shr_1' }]);
    expect(JSON.stringify({ ...span, resource: undefined })).not.toContain(PHONE);
  });

  it('drops every url.* attribute that may hold a path or a query', () => {
    for (const key of ['url.full', 'url.path', 'url.query', 'url.fragment', 'url.original', 'url.domain']) expect([key, isDroppedAttribute(key)]).toEqual([key, true]);
    for (const key of ['url.scheme', 'url.template', 'http.route', 'server.address', 'sluice.share.id']) expect([key, isDroppedAttribute(key)]).toEqual([key, false]);
  });

  it('keeps the host sluice called on a client span', () => {
    const [span] = exported((tracer) => tracer.startSpan('POST', { kind: SpanKind.CLIENT, attributes: { 'server.address': 'graph.facebook.com', 'server.port': 443, 'http.request.method': 'POST' } }).end());
    expect(span!.attributes).toEqual({ 'server.address': 'graph.facebook.com', 'server.port': 443, 'http.request.method': 'POST' });
  });
});

describe('when telemetry is exported', () => {
  it.each([
    [{}, { traces: undefined, metrics: false }],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }, { traces: 'otlp', metrics: true }],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' }, { traces: undefined, metrics: false }],
    [{ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://collector:4318/v1/traces' }, { traces: 'otlp', metrics: false }],
    [{ OTEL_EXPORTER_OTLP_METRICS_ENDPOINT: 'http://collector:4318/v1/metrics' }, { traces: undefined, metrics: true }],
    [{ OTEL_TRACES_EXPORTER: 'console' }, { traces: 'console', metrics: false }],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_TRACES_EXPORTER: 'none', OTEL_METRICS_EXPORTER: 'none' }, { traces: undefined, metrics: false }],
    [{ OTEL_METRICS_EXPORTER: 'prometheus' }, { traces: undefined, metrics: true }],
    [{ OTEL_TRACES_EXPORTER: 'zipkin' }, { traces: undefined, metrics: false }],
  ])('%j: %j', (env, expected) => {
    expect(telemetryExport(env)).toEqual(expected);
  });

  describe("a caller's tracestate", () => {
    const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const PARENT = { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1, isRemote: true };

    it('is not taken in: the trace continues from traceparent alone, without baggage', () => {
      const propagator = new TraceParentOnlyPropagator();
      const extracted = propagator.extract(ROOT_CONTEXT, { traceparent: TRACEPARENT, tracestate: 'x=anna.devries@example.nl', baggage: `phone=${PHONE}` }, defaultTextMapGetter);
      expect(trace.getSpanContext(extracted)).toEqual(PARENT);
      const outgoing: Record<string, string> = {};
      propagator.inject(extracted, outgoing, defaultTextMapSetter);
      expect(outgoing).toEqual({ traceparent: TRACEPARENT });
    });

    it('is not exported on a span, its parent or its links, should a span context carry it', () => {
      const withState = trace.setSpanContext(ROOT_CONTEXT, { ...PARENT, traceState: new TraceState('x=anna.devries@example.nl') });
      const [span] = exported((tracer) => {
        tracer.startSpan('POST', { kind: SpanKind.SERVER, links: [{ context: trace.getSpanContext(withState)! }] }, withState).end();
      });
      expect(span!.parentSpanContext).toEqual(PARENT);
      expect([span!.spanContext().traceId, span!.spanContext().traceState]).toEqual([PARENT.traceId, undefined]);
      expect(span!.links.map((link) => link.context.traceState)).toEqual([undefined]);
    });
  });
});
