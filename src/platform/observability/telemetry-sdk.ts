import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { SanitisingSpanExporter, TraceParentOnlyPropagator, withoutDroppedAttributes } from './span-sanitiser.js';
import { telemetryExport } from './telemetry-settings.js';

let sdk: { shutdown(): Promise<void> } | undefined;

/**
 * Starts the OpenTelemetry SDK when the environment asks for it (telemetry-settings.ts): HTTP,
 * undici (fetch) and PostgreSQL instrumentation, sluice's own spans and metrics, OTLP export.
 * The SDK is only imported then, so a gateway without telemetry loads none of it. Must run before
 * the application is imported, or the instrumentations miss the modules they patch.
 */
export async function startTelemetry(env: NodeJS.ProcessEnv): Promise<void> {
  const wanted = telemetryExport(env);
  if (!wanted.traces && !wanted.metrics) return;
  const [{ NodeSDK }, { getNodeAutoInstrumentations }, { defaultResource, envDetector, hostDetector, resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-node'),
    import('@opentelemetry/auto-instrumentations-node'),
    import('@opentelemetry/resources'),
  ]);
  const node = new NodeSDK({
    // Not the process detector: the process owner (a user name) and command line say nothing useful here.
    resource: defaultResource().merge(resourceFromAttributes({ 'service.name': 'sluice' })),
    resourceDetectors: [envDetector, hostDetector],
    instrumentations: [
      getNodeAutoInstrumentations({
        // Outgoing calls and queries only inside a request or a sluice span: not the pollers' idle queries.
        '@opentelemetry/instrumentation-http': { requireParentforOutgoingSpans: true },
        '@opentelemetry/instrumentation-undici': { requireParentforSpans: true },
        '@opentelemetry/instrumentation-pg': { requireParentSpan: true },
        // Nest 12 is not supported by it; spans for handlers come from @Traced.
        '@opentelemetry/instrumentation-nestjs-core': { enabled: false },
        // Log lines carry trace ids through the logger's own mixin and are not sent as OTLP logs.
        '@opentelemetry/instrumentation-pino': { enabled: false },
        '@opentelemetry/instrumentation-net': { enabled: false },
        '@opentelemetry/instrumentation-dns': { enabled: false },
      }),
    ],
    // Not the default (W3C trace context with tracestate, and baggage): free text a caller chose.
    textMapPropagator: new TraceParentOnlyPropagator(),
    ...(wanted.traces ? { traceExporter: new SanitisingSpanExporter(await traceExporter(wanted.traces, env)) } : { spanProcessors: [] }),
    ...(wanted.metrics ? {} : { metricReaders: [] }),
    // Whatever instrumentation records a metric, URL and client attributes never leave the process.
    views: [{ instrumentName: '*', attributesProcessors: [{ process: withoutDroppedAttributes }] }],
    logRecordProcessors: [],
  });
  node.start();
  sdk = node;
}

/** Flushes and stops the SDK (once the application has closed), if it was started. */
export async function stopTelemetry(): Promise<void> {
  const running = sdk;
  sdk = undefined;
  await running?.shutdown();
}

/** The OTLP exporter for OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL (http/protobuf by default, as the SDK's own). */
async function traceExporter(kind: 'otlp' | 'console', env: NodeJS.ProcessEnv): Promise<SpanExporter> {
  if (kind === 'console') return new (await import('@opentelemetry/sdk-trace-base')).ConsoleSpanExporter();
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL ?? 'http/protobuf').trim();
  if (protocol === 'grpc') return new (await import('@opentelemetry/exporter-trace-otlp-grpc')).OTLPTraceExporter();
  if (protocol === 'http/json') return new (await import('@opentelemetry/exporter-trace-otlp-http')).OTLPTraceExporter();
  return new (await import('@opentelemetry/exporter-trace-otlp-proto')).OTLPTraceExporter();
}
