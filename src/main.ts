// First: OpenTelemetry must be in place before the application's modules load (see tracing.ts).
import './tracing.js';
import { ConfigError, loadConfig } from './platform/config/config.js';
import { stopTelemetry } from './platform/observability/telemetry-sdk.js';
import { ProcessShutdown } from './platform/shutdown/process-shutdown.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  // Imported only now: a static import would load the application alongside tracing.ts, before
  // its instrumentations are registered (sibling imports do not wait for its top-level await).
  const [{ createApp }, { Logger }] = await Promise.all([import('./app.js'), import('@nestjs/common')]);
  const shutdown = new ProcessShutdown(config.shutdownTimeoutMs, new Logger('Shutdown'), stopTelemetry);
  try {
    const app = await createApp(config);
    shutdown.closes(app);
    await app.listen({ port: config.port, host: config.host });
    // The bound port, not the configured one: PORT=0 picks a free port.
    const { port } = app.getHttpServer().address() as { port: number };
    new Logger('sluice').log(`listening on http://${config.host}:${port}`);
  } catch (error) {
    reportStartupFailure(error);
    // A shutdown under way closes what did start and ends the process itself.
    if (!shutdown.underway) process.exit(1);
  } finally {
    shutdown.started();
  }
}

function reportStartupFailure(error: unknown): void {
  // Configuration and policy errors are the operator's to fix: their message names file and line.
  const message = error instanceof ConfigError || (error as Error)?.name === 'PolicyLoadError' ? (error as Error).message : String((error as Error)?.stack ?? error);
  process.stderr.write(`sluice failed to start:\n${message}\n`);
}

main().catch((error: unknown) => {
  reportStartupFailure(error);
  process.exit(1);
});
