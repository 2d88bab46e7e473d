// First: OpenTelemetry must be in place before the application's modules load (see tracing.ts).
import './tracing.js';
import { ConfigError, loadConfig } from './platform/config/config.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  // Imported only now: a static import would load the application alongside tracing.ts, before
  // its instrumentations are registered (sibling imports do not wait for its top-level await).
  const [{ createApp }, { Logger }] = await Promise.all([import('./app.js'), import('@nestjs/common')]);
  const app = await createApp(config);
  await app.listen({ port: config.port, host: config.host });
  // The bound port, not the configured one: PORT=0 picks a free port.
  const { port } = app.getHttpServer().address() as { port: number };
  new Logger('sluice').log(`listening on http://${config.host}:${port}`);
}

main().catch((error: unknown) => {
  // Configuration and policy errors are the operator's to fix: their message names file and line.
  const message = error instanceof ConfigError || (error as Error)?.name === 'PolicyLoadError' ? (error as Error).message : String((error as Error)?.stack ?? error);
  process.stderr.write(`sluice failed to start:\n${message}\n`);
  process.exit(1);
});
