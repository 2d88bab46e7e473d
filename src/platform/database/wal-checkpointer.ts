import { Logger } from '@nestjs/common';
import type BetterSqlite3 from 'better-sqlite3';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** SQLite's own threshold for an automatic checkpoint, in WAL frames (pages). */
const AUTOCHECKPOINT_FRAMES = 1000;
/** Checkpoints failing one after another before the writer takes them back. */
const FAILURES_TOLERATED = 3;
/** How long `stop` waits for a checkpoint under way before it ends the worker. */
const STOP_TIMEOUT_MS = 5000;
/** The longest a pause between transactions holds writes back, whatever the checkpoint does. */
const PAUSE_LIMIT_MS = 1000;

export interface WalCheckpointerOptions {
  /** How often the worker copies what the WAL holds into the database file. */
  intervalMs?: number;
  /**
   * WAL frames past which the log is taken not to be restarting: a checkpoint never reached its
   * end before the next commit (or a reader pins an old snapshot). The checkpointer then asks for
   * a pause between two transactions (see `whenLogOutgrown`) and checkpoints in it.
   */
  restartFrames?: number;
  /** The least time between two such pauses. */
  pauseEveryMs?: number;
}

export interface CheckpointResult {
  /** Frames in the WAL when the checkpoint ran. */
  log: number;
  /** Of those, how many are now in the database file. */
  checkpointed: number;
}

type WorkerMessage = { type: 'ready' } | ({ type: 'checkpointed'; requested: boolean } & CheckpointResult) | { type: 'failed'; requested: boolean; name: string; code?: string };

/**
 * The worker's code, evaluated as a script (it imports dynamically, so it runs whether node
 * treats evaluated code as CommonJS or as a module). It owns one more connection to the file and
 * checkpoints passively (never waiting for, nor holding off, a writer or a reader) on a timer and
 * when asked; every result goes back to the server.
 */
const WORKER_SOURCE = `(async () => {
  const { parentPort, workerData } = await import('node:worker_threads');
  const { createRequire } = await import('node:module');
  const Database = createRequire(workerData.resolveFrom)('better-sqlite3');
  const db = new Database(workerData.path, { fileMustExist: true });
  db.pragma('synchronous = FULL');
  const checkpoint = (requested) => {
    try {
      parentPort.postMessage({ type: 'checkpointed', requested, ...db.pragma('wal_checkpoint(PASSIVE)')[0] });
    } catch (error) {
      parentPort.postMessage({ type: 'failed', requested, name: error.name, code: error.code });
    }
  };
  const timer = setInterval(() => checkpoint(false), workerData.intervalMs);
  parentPort.on('message', (message) => {
    if (message === 'checkpoint') return checkpoint(true);
    clearInterval(timer);
    db.close();
    parentPort.close();
  });
  parentPort.postMessage({ type: 'ready' });
})();`;

/**
 * Runs SQLite's WAL checkpoints on a worker thread with its own connection. The writer's automatic
 * checkpoint copies about 1,000 pages into the database file and fsyncs both files, on the thread
 * that made the commit: under load some 6 ms every fifty commits, during which the event loop
 * stood still (half of all the time COMMIT took). The writer's automatic checkpoints are off
 * while this runs; the worker checkpoints passively, so it never makes a writer wait.
 *
 * SQLite starts the log over only when a writer begins after a checkpoint has copied all of it.
 * A checkpoint running beside a busy writer may never get there, so when the log has outgrown
 * `restartFrames` the checkpointer asks (`whenLogOutgrown`) for a pause between two transactions
 * and checkpoints then: writes wait for a few milliseconds, nothing blocks the event loop.
 *
 * A checkpoint only copies what commits have put in the WAL, and syncs the WAL before it writes
 * the database file: it changes nothing about when a commit is durable (see WalSync). If the
 * worker fails, the writer checkpoints for itself again.
 */
export class WalCheckpointer {
  private readonly logger = new Logger('WalCheckpointer');
  private readonly waiting = { next: new Set<Settle>(), requested: new Set<Settle>() };
  private readonly restartFrames: number;
  private readonly pauseEveryMs: number;
  private onLogOutgrown: (() => Promise<unknown>) | undefined;
  private pausedAt = Number.NEGATIVE_INFINITY;
  private failures = 0;
  private stopped = false;

  private constructor(
    private readonly worker: Worker,
    private readonly writer: BetterSqlite3.Database,
    options: WalCheckpointerOptions,
  ) {
    this.restartFrames = options.restartFrames ?? 16 * AUTOCHECKPOINT_FRAMES;
    this.pauseEveryMs = options.pauseEveryMs ?? 1000;
  }

  /** Starts the worker on the database at `path`; resolves once it has opened its connection. */
  static async start(path: string, writer: BetterSqlite3.Database, options: WalCheckpointerOptions = {}): Promise<WalCheckpointer> {
    const worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { path, resolveFrom: createRequire(import.meta.url).resolve('better-sqlite3'), intervalMs: options.intervalMs ?? 250 },
    });
    worker.unref();
    let early: { onError: (error: Error) => void; onExit: (code: number) => void } | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        early = { onError: reject, onExit: (code) => reject(new Error(`the WAL checkpoint worker exited with ${code} before it was ready`)) };
        worker.once('message', () => resolve());
        worker.once('error', early.onError);
        worker.once('exit', early.onExit);
      });
    } catch (error) {
      await worker.terminate();
      throw error;
    }
    // Only these: the worker's own listeners (which start its message port) must stay.
    worker.off('error', early!.onError).off('exit', early!.onExit);
    const checkpointer = new WalCheckpointer(worker, writer, options);
    worker.on('message', (message: WorkerMessage) => checkpointer.received(message));
    worker.on('error', (error) => checkpointer.fallBack(`failed (${error.name})`));
    worker.on('exit', (code) => checkpointer.fallBack(`exited with ${code}`));
    writer.pragma('wal_autocheckpoint = 0');
    return checkpointer;
  }

  /**
   * `pause` runs its argument once no transaction is open and holds the next one back until it
   * has finished (TransactionRunner gives this).
   */
  whenLogOutgrown(pause: (work: () => Promise<unknown>) => Promise<unknown>): void {
    this.onLogOutgrown = () =>
      pause(() => {
        let timer: NodeJS.Timeout | undefined;
        const limit = new Promise<void>((resolve) => (timer = setTimeout(resolve, PAUSE_LIMIT_MS)));
        return Promise.race([this.checkpointNow(), limit]).finally(() => clearTimeout(timer));
      });
  }

  /** Resolves with the result of the next checkpoint the worker runs. */
  nextCheckpoint(): Promise<CheckpointResult> {
    return this.wait(this.waiting.next);
  }

  /** Has the worker checkpoint now; resolves with its result. */
  checkpointNow(): Promise<CheckpointResult> {
    const result = this.wait(this.waiting.requested);
    if (!this.stopped) this.worker.postMessage('checkpoint');
    return result;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.settleAll(new Error('the WAL checkpointer has stopped'));
    this.writer.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_FRAMES}`);
    const exited = new Promise((resolve) => this.worker.once('exit', resolve));
    this.worker.postMessage('stop');
    // A checkpoint under way finishes first; one stuck in a system call is not waited for.
    const timeout = setTimeout(() => void this.worker.terminate(), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timeout);
  }

  private wait(waiters: Set<Settle>): Promise<CheckpointResult> {
    if (this.stopped) return Promise.reject(new Error('the WAL checkpointer has stopped'));
    return new Promise((resolve, reject) => waiters.add({ resolve, reject }));
  }

  private received(message: WorkerMessage): void {
    if (message.type === 'ready') return;
    if (message.type === 'failed') {
      this.failures += 1;
      this.logger.warn(`a WAL checkpoint failed (${message.name}${message.code ? ` ${message.code}` : ''})`);
      if (message.requested) this.settle(this.waiting.requested, new Error(`the WAL checkpoint failed (${message.name})`));
      if (this.failures >= FAILURES_TOLERATED) void this.fallBack(`failed ${this.failures} times in a row`);
      return;
    }
    this.failures = 0;
    const result = { log: message.log, checkpointed: message.checkpointed };
    this.settle(this.waiting.next, result);
    if (message.requested) this.settle(this.waiting.requested, result);
    if (result.log > this.restartFrames && this.onLogOutgrown && Date.now() - this.pausedAt >= this.pauseEveryMs) {
      this.pausedAt = Date.now();
      this.onLogOutgrown().catch((error: Error) => {
        if (!this.stopped) this.logger.warn(`a checkpoint between transactions failed (${error.name})`);
      });
    }
  }

  private settle(waiters: Set<Settle>, outcome: CheckpointResult | Error): void {
    for (const { resolve, reject } of waiters) {
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    }
    waiters.clear();
  }

  private settleAll(error: Error): void {
    this.settle(this.waiting.next, error);
    this.settle(this.waiting.requested, error);
  }

  private async fallBack(why: string): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.logger.error(`the WAL checkpoint worker ${why}; the writer checkpoints for itself again`);
    this.settleAll(new Error(`the WAL checkpoint worker ${why}`));
    if (this.writer.open) this.writer.pragma(`wal_autocheckpoint = ${AUTOCHECKPOINT_FRAMES}`);
    await this.worker.terminate();
  }
}

interface Settle {
  resolve: (result: CheckpointResult) => void;
  reject: (error: Error) => void;
}
