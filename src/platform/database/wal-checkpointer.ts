import { Logger } from '@nestjs/common';
import type BetterSqlite3 from 'better-sqlite3';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** SQLite's own threshold for an automatic checkpoint, in WAL frames (pages). */
const AUTOCHECKPOINT_FRAMES = 1000;

export interface WalCheckpointerOptions {
  /** How often the worker copies what the WAL holds into the database file. */
  intervalMs?: number;
  /**
   * WAL frames past which the worker waits for a moment without a writer and restarts the log
   * (a busy writer can keep a checkpoint from ever reaching the end of the log, and SQLite
   * rewrites the WAL from its start only after one has).
   */
  restartFrames?: number;
}

/**
 * The worker's code, evaluated as a script (it imports dynamically, so it runs whether node
 * treats evaluated code as CommonJS or as a module). It owns one more connection to the file and
 * checkpoints on a timer until told to stop; every result goes back to the server.
 */
const WORKER_SOURCE = `(async () => {
  const { parentPort, workerData } = await import('node:worker_threads');
  const { createRequire } = await import('node:module');
  const Database = createRequire(workerData.resolveFrom)('better-sqlite3');
  const db = new Database(workerData.path, { fileMustExist: true });
  db.pragma('busy_timeout = 5000');
  db.pragma('synchronous = FULL');
  const checkpoint = (mode) => db.pragma('wal_checkpoint(' + mode + ')')[0];
  const timer = setInterval(() => {
    try {
      let result = checkpoint('PASSIVE');
      if (result.log > workerData.restartFrames) result = checkpoint('RESTART');
      parentPort.postMessage({ type: 'checkpointed', ...result });
    } catch (error) {
      parentPort.postMessage({ type: 'failed', name: error.name, code: error.code });
    }
  }, workerData.intervalMs);
  parentPort.on('message', () => {
    clearInterval(timer);
    db.close();
    parentPort.close();
  });
  parentPort.postMessage({ type: 'ready' });
})();`;

export interface CheckpointResult {
  /** Frames in the WAL when the checkpoint ran. */
  log: number;
  /** Of those, how many are now in the database file. */
  checkpointed: number;
}

/**
 * Runs SQLite's WAL checkpoints on a worker thread with its own connection. The writer's automatic
 * checkpoint copies about 1,000 pages into the database file and fsyncs both files, on the thread
 * that made the commit: under load some 6 ms every fifty commits, during which the event loop
 * stood still (half of all the time COMMIT took). The writer's automatic checkpoints are off
 * while this runs; the worker checkpoints passively, so writers never wait for it, except when a
 * busy writer has kept the log from restarting for `restartFrames`.
 *
 * A checkpoint only copies what commits have put in the WAL, and syncs the WAL before it writes
 * the database file: it changes nothing about when a commit is durable (see WalSync). If the
 * worker fails, the writer checkpoints for itself again.
 */
export class WalCheckpointer {
  private readonly logger = new Logger('WalCheckpointer');
  private readonly results = new Set<(result: CheckpointResult) => void>();
  private stopped = false;

  private constructor(
    private readonly worker: Worker,
    private readonly writer: BetterSqlite3.Database,
  ) {}

  /** Starts the worker on the database at `path`; resolves once it has opened its connection. */
  static async start(path: string, writer: BetterSqlite3.Database, options: WalCheckpointerOptions = {}): Promise<WalCheckpointer> {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        path,
        resolveFrom: createRequire(import.meta.url).resolve('better-sqlite3'),
        intervalMs: options.intervalMs ?? 250,
        restartFrames: options.restartFrames ?? 16 * AUTOCHECKPOINT_FRAMES,
      },
    });
    worker.unref();
    const checkpointer = new WalCheckpointer(worker, writer);
    const exitedEarly = (code: number) => new Error(`the WAL checkpoint worker exited with ${code} before it was ready`);
    let settle: { onError: (error: Error) => void; onExit: (code: number) => void } | undefined;
    await new Promise<void>((resolve, reject) => {
      settle = { onError: reject, onExit: (code) => reject(exitedEarly(code)) };
      worker.once('message', () => resolve());
      worker.once('error', settle.onError);
      worker.once('exit', settle.onExit);
    });
    // Only these: the worker's own listeners (which start its message port) must stay.
    worker.off('error', settle!.onError).off('exit', settle!.onExit);
    worker.on('message', (message: { type: string } & CheckpointResult & { name?: string; code?: string }) => checkpointer.received(message));
    worker.on('error', (error) => checkpointer.fallBack(`failed (${error.name})`));
    worker.on('exit', (code) => checkpointer.fallBack(`exited with ${code}`));
    writer.pragma('wal_autocheckpoint = 0');
    return checkpointer;
  }

  /** Resolves with the result of the next checkpoint the worker runs. */
  nextCheckpoint(): Promise<CheckpointResult> {
    return new Promise((resolve) => this.results.add(resolve));
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.writer.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_FRAMES}`);
    const exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.worker.postMessage('stop');
    await exited;
  }

  private received(message: { type: string; name?: string; code?: string } & CheckpointResult): void {
    if (message.type === 'failed') {
      this.logger.warn(`a WAL checkpoint failed (${message.name}${message.code ? ` ${message.code}` : ''}); the next one retries`);
      return;
    }
    const result = { log: message.log, checkpointed: message.checkpointed };
    for (const resolve of this.results) resolve(result);
    this.results.clear();
  }

  private fallBack(why: string): void {
    if (this.stopped) return;
    this.stopped = true;
    this.logger.error(`the WAL checkpoint worker ${why}; the writer checkpoints for itself again`);
    if (this.writer.open) this.writer.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_FRAMES}`);
  }
}
