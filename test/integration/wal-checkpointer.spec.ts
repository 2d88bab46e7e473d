import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { type CheckpointResult, WalCheckpointer, type WalCheckpointerOptions } from '../../src/platform/database/wal-checkpointer.js';

const PAGE = 4096;

describe('WAL checkpoints on a worker thread', () => {
  const dirs: string[] = [];
  const opened: { writer: Database.Database; checkpointer: WalCheckpointer }[] = [];

  afterEach(async () => {
    try {
      for (const { writer, checkpointer } of opened.splice(0)) {
        const worker = workerOf(checkpointer);
        try {
          // After a fallback `stop` has nothing left to do and returns at once; bounded all the
          // same, so a stop left hanging fails here rather than at jest's timeout.
          await within(checkpointer.stop(), 10_000, 'stop()');
        } finally {
          // A fallback ends the worker without waiting for it: make sure the thread is gone (and
          // its connection closed) before the files are removed, whatever state a test left it in.
          if (worker.threadId !== -1) await worker.terminate();
          if (writer.open) writer.close();
        }
      }
    } finally {
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
      jest.restoreAllMocks();
    }
  });

  async function open(options: WalCheckpointerOptions = {}) {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-checkpoint-'));
    dirs.push(dir);
    const path = join(dir, 'test.db');
    const writer = new Database(path);
    writer.pragma('journal_mode = WAL');
    writer.exec('CREATE TABLE filler (id integer PRIMARY KEY, data blob NOT NULL)');
    const checkpointer = await WalCheckpointer.start(path, writer, options);
    opened.push({ writer, checkpointer });
    return { path, writer, checkpointer };
  }

  /** Commits `pages` pages of data, 100 per transaction, without yielding to the event loop. */
  function write(writer: Database.Database, pages: number): void {
    const insert = writer.prepare('INSERT INTO filler (data) VALUES (randomblob(4000))');
    const commit = writer.transaction((count: number) => {
      for (let i = 0; i < count; i++) insert.run();
    });
    for (let done = 0; done < pages; done += 100) commit(Math.min(100, pages - done));
  }

  /**
   * The checkpointer's private worker thread. The fallback tests inject faults through it that
   * cannot be provoked from outside: a PASSIVE checkpoint does not fail, not even on a corrupted
   * file, and nothing but `terminate` kills a thread. They go through the events the real worker
   * raises ('exit', 'error', 'message'), so the checkpointer's own listeners handle them.
   * (TypeScript allows a bracket access to a private member; acceptable in a fault-injection test.)
   */
  function workerOf(checkpointer: WalCheckpointer): Worker {
    return checkpointer['worker'];
  }

  /** Delivers what the real worker posts when a checkpoint throws, to the checkpointer's listener. */
  function fail(worker: Worker): void {
    worker.emit('message', { type: 'failed', requested: false, name: 'SqliteError', code: 'SQLITE_IOERR' });
  }

  /** Resolves once the worker thread has ended (its handle is gone then, and `threadId` -1). */
  function ended(worker: Worker): Promise<void> {
    if (worker.threadId === -1) return Promise.resolve();
    return new Promise((resolve) => worker.once('exit', () => resolve()));
  }

  /** What a promise came to, caught at once: a rejection before the test looks is not unhandled. */
  function outcome(promise: Promise<unknown>): Promise<string> {
    return promise.then(
      () => 'resolved',
      (error: Error) => `rejected: ${error.message}`,
    );
  }

  async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms)));
    try {
      return await Promise.race([promise, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Keeps the fallback's log lines out of the output, and lets a test see them. */
  function captureLogs() {
    return {
      error: jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined),
      warn: jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined),
    };
  }

  /**
   * Commits 1,200 pages with the worker gone: only a writer checkpointing for itself (at its commit
   * past 1,000 pages, after which the next commit starts the log over) leaves fewer than 1,000
   * frames in the log; one that does not leaves all 1,200 there.
   */
  function expectWriterCheckpoints(writer: Database.Database): void {
    write(writer, 1200);
    const [result] = writer.pragma('wal_checkpoint(PASSIVE)') as CheckpointResult[];
    expect(result!.log).toBeLessThan(1000);
  }

  async function checkpointUntil(checkpointer: WalCheckpointer, done: (result: CheckpointResult) => boolean): Promise<CheckpointResult> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const result = await checkpointer.nextCheckpoint();
      if (done(result)) return result;
    }
    throw new Error('no checkpoint met the condition');
  }

  it('copies the WAL into the database file on the worker, never on the writer', async () => {
    // No checkpoint on the timer while writing: one that reached the end of the log mid-way would
    // let the next commit start the log over, as a writer checkpointing for itself would.
    const { path, writer, checkpointer } = await open({ intervalMs: 60_000 });
    expect(writer.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    // Three times SQLite's automatic threshold: a writer checkpointing for itself would have
    // copied all but the last few pages by the time the last commit returned.
    write(writer, 3000);
    const result = await checkpointer.checkpointNow();
    expect(result.log).toBeGreaterThanOrEqual(3000);
    expect(result.checkpointed).toBe(result.log);
    expect(statSync(path).size).toBeGreaterThan(2500 * PAGE);
    // Everything is in the database file: a new connection reads it all.
    const reader = new Database(path, { readonly: true });
    expect(reader.prepare('SELECT count(*) AS n FROM filler').get()).toEqual({ n: 3000 });
    reader.close();
  });

  it('never holds a writer off, not even while a reader pins an old snapshot and the log outgrows its limit', async () => {
    const pauses: number[] = [];
    const { path, writer, checkpointer } = await open({ intervalMs: 20, restartFrames: 500, pauseEveryMs: 0 });
    checkpointer.whenLogOutgrown(async (work) => {
      pauses.push(Date.now());
      await work();
    });
    // The reader's snapshot keeps every checkpoint from copying anything newer, so the log grows.
    const reader = new Database(path, { readonly: true });
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) AS n FROM filler').get();
    write(writer, 1000);
    writer.pragma('busy_timeout = 0');
    // Writes go on (each would throw SQLITE_BUSY if held off) until the checkpointer has asked for
    // a pause, and through at least 20 of its rounds: counted, not timed, so a slow disk cannot fail it.
    const deadline = Date.now() + 20_000;
    for (let writes = 0; writes < 20 || pauses.length === 0; writes++) {
      if (Date.now() > deadline) throw new Error('the checkpointer never asked for a pause');
      write(writer, 1);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    reader.exec('COMMIT');
    reader.close();
  });

  it('asks for a pause between transactions once the log outgrows its limit, and checkpoints all of it there', async () => {
    let paused: Promise<unknown> | undefined;
    const { writer, checkpointer } = await open({ intervalMs: 20, restartFrames: 500 });
    checkpointer.whenLogOutgrown((work) => (paused ??= work()));
    write(writer, 1000);
    await checkpointUntil(checkpointer, () => paused !== undefined);
    // The pause's own checkpoint: nothing was written meanwhile, so it copied the whole log...
    expect(await paused).toEqual({ log: expect.any(Number), checkpointed: expect.any(Number) });
    const caughtUp = (await paused) as CheckpointResult;
    expect(caughtUp.log).toBeGreaterThan(500);
    expect(caughtUp.checkpointed).toBe(caughtUp.log);
    // ...and the next commit starts the log over. (The first result that counts it is the first
    // whose log differs: one may have been on its way already.)
    write(writer, 100);
    const next = await checkpointUntil(checkpointer, (r) => r.log !== caughtUp.log);
    expect(next.log).toBeLessThan(500);
  });

  it('hands checkpoints back to the writer when stopped', async () => {
    const { writer, checkpointer } = await open();
    await checkpointer.stop();
    expect(writer.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    write(writer, 1200);
    // The writer checkpointed at its commit past 1,000 pages, so the log restarted since.
    const [result] = writer.pragma('wal_checkpoint(PASSIVE)') as CheckpointResult[];
    expect(result!.log).toBeLessThan(1000);
    await expect(checkpointer.nextCheckpoint()).rejects.toThrow('stopped');
  });

  describe('when the worker fails', () => {
    // An interval no test reaches: the worker checkpoints only when asked, so no checkpoint of its
    // own resets the failure count or settles a waiter behind a test's back.
    const idle = { intervalMs: 60_000 };

    it('hands checkpoints back to the writer when the worker thread dies, and rejects every waiter', async () => {
      const logs = captureLogs();
      const { writer, checkpointer } = await open(idle);
      const worker = workerOf(checkpointer);
      expect(writer.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
      const next = outcome(checkpointer.nextCheckpoint());
      const died = worker.terminate();
      // Asked after the thread was told to end (so it never answers), before its exit is reported.
      const now = outcome(checkpointer.checkpointNow());
      await within(died, 5000, 'the worker thread ending');
      expect(worker.threadId).toBe(-1);

      expect(await within(next, 5000, 'the waiting nextCheckpoint()')).toBe('rejected: the WAL checkpoint worker exited with 1');
      expect(await within(now, 5000, 'the waiting checkpointNow()')).toBe('rejected: the WAL checkpoint worker exited with 1');
      await expect(checkpointer.nextCheckpoint()).rejects.toThrow('stopped');
      await expect(checkpointer.checkpointNow()).rejects.toThrow('stopped');
      expect(logs.error).toHaveBeenCalledWith(expect.stringContaining('exited with 1; the writer checkpoints for itself again'));
      expect(writer.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
      expectWriterCheckpoints(writer);
    });

    it('hands checkpoints back to the writer after three checkpoint failures in a row', async () => {
      const logs = captureLogs();
      const { writer, checkpointer } = await open(idle);
      const worker = workerOf(checkpointer);
      const exit = ended(worker);
      const next = outcome(checkpointer.nextCheckpoint());
      fail(worker);
      fail(worker);
      // Two are tolerated: the worker still runs and still has the checkpoints.
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(worker.threadId).not.toBe(-1);
      expect(writer.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
      // Asked now, so it waits for an answer the real worker may well post (an answer after the
      // fallback changes nothing): the third failure comes first, at once.
      const now = outcome(checkpointer.checkpointNow());
      fail(worker);
      await within(exit, 5000, 'the worker thread ending');
      expect(worker.threadId).toBe(-1);

      expect(await within(next, 5000, 'the waiting nextCheckpoint()')).toBe('rejected: the WAL checkpoint worker failed 3 times in a row');
      expect(await within(now, 5000, 'the waiting checkpointNow()')).toBe('rejected: the WAL checkpoint worker failed 3 times in a row');
      await expect(checkpointer.checkpointNow()).rejects.toThrow('stopped');
      expect(logs.warn).toHaveBeenCalledTimes(3);
      expect(logs.error).toHaveBeenCalledWith(expect.stringContaining('failed 3 times in a row; the writer checkpoints for itself again'));
      expect(writer.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
      expectWriterCheckpoints(writer);
    });

    it('starts counting failures over after a checkpoint succeeds', async () => {
      captureLogs();
      const { writer, checkpointer } = await open(idle);
      const worker = workerOf(checkpointer);
      fail(worker);
      fail(worker);
      // A real checkpoint, answered by the real worker.
      await expect(checkpointer.checkpointNow()).resolves.toEqual({ log: expect.any(Number), checkpointed: expect.any(Number) });
      const next = outcome(checkpointer.nextCheckpoint());
      fail(worker);
      fail(worker);
      // Four failures, never three in a row: no fallback (it would have ended the thread by now,
      // and rejected the waiter).
      expect(await Promise.race([next, new Promise((resolve) => setTimeout(() => resolve('pending'), 50))])).toBe('pending');
      expect(worker.threadId).not.toBe(-1);
      expect(writer.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
      // The next one is the third in a row.
      const exit = ended(worker);
      fail(worker);
      await within(exit, 5000, 'the worker thread ending');
      expect(await within(next, 5000, 'the waiting nextCheckpoint()')).toBe('rejected: the WAL checkpoint worker failed 3 times in a row');
      expect(writer.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
    });

    it.each([
      ['its thread dies', (worker: Worker) => void worker.terminate()],
      ['its thread reports an error', (worker: Worker) => void worker.emit('error', new Error('the worker crashed'))],
      ['three checkpoints fail', (worker: Worker) => [1, 2, 3].forEach(() => fail(worker))],
    ])('stops at once after falling back because %s, and leaves the writer checkpointing', async (_, fault) => {
      captureLogs();
      const { writer, checkpointer } = await open(idle);
      const worker = workerOf(checkpointer);
      const exit = ended(worker);
      fault(worker);
      await within(exit, 5000, 'the worker thread ending');
      // Nothing is left to wait for: a stop that waited for the worker's exit would never return.
      await within(checkpointer.stop(), 1000, 'stop() after a fallback');
      await within(checkpointer.stop(), 1000, 'a second stop()');
      expect(writer.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
      await expect(checkpointer.nextCheckpoint()).rejects.toThrow();
      expectWriterCheckpoints(writer);
    });
  });
});
