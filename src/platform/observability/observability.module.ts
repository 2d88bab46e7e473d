import { Module } from '@nestjs/common';
import { QueueGauges } from './queue-gauges.js';

/**
 * Sluice's metrics that need the application (backlog gauges). The SDK is flushed by main.ts once
 * the application has closed, so that the spans and metrics of its last steps are exported too.
 */
@Module({ providers: [QueueGauges] })
export class ObservabilityModule {}
