import { type Attributes, type Context, type SpanContext, SpanKind, type TextMapGetter, type TextMapPropagator, type TextMapSetter, trace } from '@opentelemetry/api';
import { type ExportResult, W3CTraceContextPropagator } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace-base';

/**
 * Attributes that can carry personal data and never leave the process. URLs hold subject ids
 * (`/v1/subjects/whatsapp/31612345678/report`) and query strings (`?waId=`): spans name the route
 * template (`http.route`) instead. Client addresses and user agents identify people too; an error
 * message or stack may quote the input that caused it.
 */
const DROPPED_ATTRIBUTES = new Set([
  'http.target',
  'http.url',
  'http.client_ip',
  'http.user_agent',
  'client.address',
  'client.port',
  'network.peer.address',
  'network.peer.port',
  'net.peer.ip',
  'net.peer.port',
  'net.sock.peer.addr',
  'net.sock.peer.port',
  'user_agent.original',
  'user_agent.synthetic.type',
  'db.postgresql.values',
  'exception.message',
  'exception.stacktrace',
]);
const DROPPED_PREFIXES = ['url.', 'http.request.header.', 'http.response.header.', 'db.query.parameter.', 'enduser.'];
/** `url.*` attributes that hold no part of a URL's path or query. */
const KEPT_URL_ATTRIBUTES = new Set(['url.scheme', 'url.template']);

export function isDroppedAttribute(key: string): boolean {
  if (KEPT_URL_ATTRIBUTES.has(key)) return false;
  return DROPPED_ATTRIBUTES.has(key) || DROPPED_PREFIXES.some((prefix) => key.startsWith(prefix));
}

/**
 * On a server span the server's name and port come from the request's Host header: whatever a
 * client sent. (On a client span they name the host sluice called: kept.)
 */
const DROPPED_ON_SERVER_SPANS = new Set(['server.address', 'server.port', 'http.host', 'net.host.name', 'net.host.port']);

export function withoutDroppedAttributes(attributes: Attributes): Attributes {
  const kept: Attributes = {};
  for (const [key, value] of Object.entries(attributes)) if (!isDroppedAttribute(key)) kept[key] = value;
  return kept;
}

function spanAttributes(attributes: Attributes, kind: SpanKind): Attributes {
  const kept = withoutDroppedAttributes(attributes);
  if (kind === SpanKind.SERVER) for (const key of DROPPED_ON_SERVER_SPANS) delete kept[key];
  return kept;
}

/**
 * A span context without its W3C trace state: a caller's `tracestate` header is free text (say
 * `x=anna@example.nl`), and every span of the request would carry it out.
 */
function withoutTraceState(context: SpanContext): SpanContext {
  return { traceId: context.traceId, spanId: context.spanId, traceFlags: context.traceFlags, ...(context.isRemote === undefined ? {} : { isRemote: context.isRemote }) };
}

/**
 * The span as it may be exported: the dropped attributes removed from it, its events and links,
 * the status message (instrumentations copy an error's message there) and any trace state left out.
 */
export function sanitisedSpan(span: ReadableSpan): ReadableSpan {
  return {
    name: span.name,
    kind: span.kind,
    spanContext: () => withoutTraceState(span.spanContext()),
    parentSpanContext: span.parentSpanContext && withoutTraceState(span.parentSpanContext),
    startTime: span.startTime,
    endTime: span.endTime,
    status: { code: span.status.code },
    attributes: spanAttributes(span.attributes, span.kind),
    links: span.links.map((link) => ({ ...link, context: withoutTraceState(link.context), ...(link.attributes ? { attributes: withoutDroppedAttributes(link.attributes) } : {}) })),
    events: span.events.map((event) => ({ ...event, ...(event.attributes ? { attributes: withoutDroppedAttributes(event.attributes) } : {}) })),
    duration: span.duration,
    ended: span.ended,
    resource: span.resource,
    instrumentationScope: span.instrumentationScope,
    droppedAttributesCount: span.droppedAttributesCount,
    droppedEventsCount: span.droppedEventsCount,
    droppedLinksCount: span.droppedLinksCount,
  };
}

/**
 * Wraps the configured exporter so every span passes `sanitisedSpan` on its way out, whichever
 * instrumentation made it: the last gate before telemetry leaves the process.
 */
export class SanitisingSpanExporter implements SpanExporter {
  constructor(private readonly inner: SpanExporter) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.inner.export(spans.map(sanitisedSpan), resultCallback);
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  async forceFlush(): Promise<void> {
    await this.inner.forceFlush?.();
  }
}

/**
 * W3C trace context without `tracestate` and without baggage: a caller's trace continues here
 * through `traceparent` (ids only), but neither free-text header is taken in, so neither rides
 * along on sluice's spans or on its requests to WhatsApp and media hosts.
 */
export class TraceParentOnlyPropagator implements TextMapPropagator {
  private readonly w3c = new W3CTraceContextPropagator();

  inject(context: Context, carrier: unknown, setter: TextMapSetter): void {
    const spanContext = trace.getSpanContext(context);
    this.w3c.inject(spanContext?.traceState ? trace.setSpanContext(context, withoutTraceState(spanContext)) : context, carrier, setter);
  }

  extract(context: Context, carrier: unknown, getter: TextMapGetter): Context {
    const extracted = this.w3c.extract(context, carrier, getter);
    const spanContext = trace.getSpanContext(extracted);
    return spanContext?.traceState ? trace.setSpanContext(extracted, withoutTraceState(spanContext)) : extracted;
  }

  fields(): string[] {
    return ['traceparent'];
  }
}
