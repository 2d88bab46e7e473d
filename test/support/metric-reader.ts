import { metrics } from '@opentelemetry/api';
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';

/** Reads the metrics on demand. */
class CollectingReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

/**
 * Registers a meter provider read on demand, for a test file that asserts on sluice's metrics.
 * Per test file: jest gives each its own global object, where the OpenTelemetry API keeps its
 * provider. `registered` is false if another provider was there first (then nothing is read).
 */
export function collectMetrics(): { registered: boolean; collect: () => ReturnType<MetricReader['collect']> } {
  const reader = new CollectingReader();
  const registered = metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }));
  return { registered, collect: () => reader.collect() };
}
