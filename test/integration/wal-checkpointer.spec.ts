import { afterEach, describe, expect, it } from '@jest/globals';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CheckpointResult, WalCheckpointer, type WalCheckpointerOptions } from '../../src/platform/database/wal-checkpointer.js';

const PAGE = 4096;

describe('WAL checkpoints on a worker thread', () => {
  const dirs: string[] = [];
  const opened: { writer: Database.Database; checkpointer: WalCheckpointer }[] = [];

  afterEach(async () => {
    for (const { writer, checkpointer } of opened.splice(0)) {
      await checkpointer.stop();
      writer.close();
    }
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
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

  async function checkpointUntil(checkpointer: WalCheckpointer, done: (result: CheckpointResult) => boolean): Promise<CheckpointResult> {
    for (let attempt = 0; attempt < 100; attempt++) {
      const result = await checkpointer.nextCheckpoint();
      if (done(result)) return result;
    }
    throw new Error('no checkpoint met the condition');
  }

  it('copies the WAL into the database file on the worker, never on the writer', async () => {
    const { path, writer, checkpointer } = await open({ intervalMs: 20 });
    expect(writer.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    // Three times SQLite's automatic threshold: a writer checkpointing for itself would have
    // copied all but the last few pages by the time the last commit returned.
    write(writer, 3000);
    const result = await checkpointUntil(checkpointer, (r) => r.log >= 3000 && r.checkpointed === r.log);
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
    const until = Date.now() + 300;
    let writes = 0;
    while (Date.now() < until) {
      write(writer, 1);
      writes += 1;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    expect(writes).toBeGreaterThan(5);
    expect(pauses.length).toBeGreaterThan(0);
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
});
