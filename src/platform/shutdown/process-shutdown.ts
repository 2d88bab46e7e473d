import { shutdownSteps } from './shutdown-steps.js';

interface ShutdownLog {
  log(message: string): void;
  error(message: string): void;
}

interface Closable {
  close(): Promise<void>;
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;

/**
 * SIGTERM and SIGINT for the server process (instead of Nest's shutdown hooks, which ignore a second
 * signal and start tearing down while the application is still starting):
 * - a signal during start-up waits for start-up to end, then shuts down as usual;
 * - the application is closed (its hooks: worker, HTTP server, sequencer, database), then telemetry
 *   is flushed, so that the spans and metrics of those last steps are exported too;
 * - the whole shutdown has `timeoutMs`: past it, the process logs what is still pending and exits
 *   with status 1 (a hung database or collector must not wait for SIGKILL);
 * - a second signal during shutdown exits at once with status 1 (Ctrl-C twice).
 * A shutdown that finishes raises the signal again, so the exit status says what ended the process.
 */
export class ProcessShutdown {
  private signal: NodeJS.Signals | undefined;
  private app: Closable | undefined;
  private starting = true;
  private startupEnded!: () => void;
  private readonly startup = new Promise<void>((resolve) => (this.startupEnded = resolve));
  private readonly onSignal = (signal: NodeJS.Signals) => this.signalled(signal);

  constructor(
    private readonly timeoutMs: number,
    private readonly logger: ShutdownLog,
    private readonly afterClose: () => Promise<void>,
  ) {
    for (const signal of SIGNALS) process.on(signal, this.onSignal);
  }

  /** True from the first signal on. */
  get underway(): boolean {
    return this.signal !== undefined;
  }

  /** The application to close on a signal, as soon as it exists (start-up may not have finished). */
  closes(app: Closable): void {
    this.app = app;
  }

  /** Start-up is over, listening or failed: a shutdown waiting for it goes on. */
  started(): void {
    this.starting = false;
    this.startupEnded();
  }

  private signalled(signal: NodeJS.Signals): void {
    if (this.signal) {
      this.logger.error(`${signal} during shutdown: exiting at once; still pending: ${shutdownSteps.describePending()}`);
      process.exit(1);
    }
    this.signal = signal;
    // The policies stop listening for SIGHUP as they shut down, and a SIGHUP nobody listens for
    // ends the process: until it exits, one is ignored instead.
    process.on('SIGHUP', ignoreHangup);
    setTimeout(() => {
      this.logger.error(`shutdown did not finish within SHUTDOWN_TIMEOUT_MS (${this.timeoutMs} ms): exiting; still pending: ${shutdownSteps.describePending()}`);
      process.exit(1);
    }, this.timeoutMs).unref();
    shutdownSteps.onBegin = (name) => this.logger.log(`shutdown step: ${name}`);
    this.logger.log(this.starting ? `${signal} received during start-up: shutting down once start-up has finished` : `${signal} received: shutting down`);
    this.shutDown(signal).catch((error: unknown) => {
      // By type only, as every fault is logged: a message may quote what caused it.
      this.logger.error(`shutdown failed: ${error instanceof Error ? error.name : typeof error}`);
      process.exit(1);
    });
  }

  private async shutDown(signal: NodeJS.Signals): Promise<void> {
    await shutdownSteps.run('start-up', () => this.startup);
    const app = this.app;
    if (app) await shutdownSteps.run('application shutdown', () => app.close());
    await shutdownSteps.run('telemetry export', this.afterClose);
    for (const each of SIGNALS) process.off(each, this.onSignal);
    process.kill(process.pid, signal);
  }
}

function ignoreHangup(): void {}
