/**
 * Loaded by main.ts before anything else: starts OpenTelemetry when the OTEL_* variables ask for
 * it (see README, Observability), so its instrumentations are in place before the application's
 * modules load. No ESM loader hook (`--import`, instrumentation/hook.mjs) is needed on Node 20:
 * the modules the instrumentations patch are loaded with require() — node:http by Fastify and pg
 * by TypeORM, both CommonJS — which the SDK's require hook sees; sluice's own ESM modules get
 * spans from @Traced instead. The telemetry leak test asserts the HTTP and PostgreSQL spans.
 */
import { startTelemetry } from './platform/observability/telemetry-sdk.js';

await startTelemetry(process.env);
