import { Module, type OnApplicationShutdown } from '@nestjs/common';
import { QueueGauges } from './queue-gauges.js';
import { stopTelemetry } from './telemetry-sdk.js';

/** Sluice's metrics that need the application (backlog gauges), and the SDK's flush on shutdown. */
@Module({ providers: [QueueGauges] })
export class ObservabilityModule implements OnApplicationShutdown {
  async onApplicationShutdown(): Promise<void> {
    await stopTelemetry();
  }
}
