/** Which OpenTelemetry signals sluice exports, read from the standard OTEL_* variables. */
export interface TelemetryExport {
  /** The span exporter to use, or undefined when no spans are exported. */
  traces: 'otlp' | 'console' | undefined;
  /** Whether metrics are exported (the exporter itself follows OTEL_METRICS_EXPORTER). */
  metrics: boolean;
}

const TRACE_EXPORTERS = ['otlp', 'console'] as const;

/**
 * Telemetry is off unless asked for: a signal is exported when its exporter is named
 * (OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER) or, with no exporter named, when an OTLP
 * endpoint for it is set (OTEL_EXPORTER_OTLP_ENDPOINT or the signal's own). OTEL_SDK_DISABLED=true
 * and an exporter of `none` turn it off. Unlike the SDK's own defaults, nothing is sent to
 * localhost:4318 just because the variables are missing.
 */
export function telemetryExport(env: NodeJS.ProcessEnv): TelemetryExport {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return { traces: undefined, metrics: false };
  const endpoint = (signal: string) => Boolean(env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || env[`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`]?.trim());
  const named = (variable: string) =>
    (env[variable] ?? '')
      .split(',')
      .map((name) => name.trim().toLowerCase())
      .filter(Boolean);

  const traceNames = named('OTEL_TRACES_EXPORTER');
  const traces =
    traceNames.length === 0
      ? endpoint('TRACES')
        ? 'otlp'
        : undefined
      : TRACE_EXPORTERS.find((name) => traceNames.includes(name));

  const metricNames = named('OTEL_METRICS_EXPORTER');
  const metrics = metricNames.length === 0 ? endpoint('METRICS') : !metricNames.includes('none');
  return { traces, metrics };
}
