import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WalSync, WalSyncFailed } from '../../../src/platform/database/wal-sync.js';

/**
 * The real fdatasync, held until the test lets each one finish (or fail): which file it synced,
 * and in what order syncs started and ended.
 */
async function gatedSyncs() {
  const probe = await open(process.execPath, 'r');
  const prototype = Object.getPrototypeOf(probe) as FileHandle;
  await probe.close();
  const started: { path: string; finish: () => void; fail: (error: Error) => void }[] = [];
  const realSync = prototype.datasync;
  const spy = jest.spyOn(prototype, 'datasync').mockImplementation(function (this: FileHandle) {
    const path = readlinkSync(`/proc/self/fd/${this.fd}`);
    return new Promise<void>((resolve, reject) => {
      started.push({ path, finish: () => void realSync.call(this).then(resolve, reject), fail: reject });
    });
  });
  return { started, restore: () => spy.mockRestore() };
}

/** Waits until `count` syncs have started (opening the file and starting a sync take the thread pool a moment). */
async function syncsStarted(started: unknown[], count: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (started.length < count) {
    if (Date.now() > deadline) throw new Error(`${started.length} syncs started, expected ${count}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
}

const settled = async <T>(promise: Promise<T>): Promise<'pending' | 'resolved' | 'rejected'> => {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  promise.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  return state;
};

describe('WalSync', () => {
  let dir: string;
  let walPath: string;
  let syncs: Awaited<ReturnType<typeof gatedSyncs>>;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'sluice-walsync-'));
    walPath = join(dir, 'sluice.db-wal');
    writeFileSync(walPath, 'frames');
    syncs = await gatedSyncs();
  });
  afterEach(() => {
    syncs.restore();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers a commit only after an fdatasync of the WAL file that began after it', async () => {
    const wal = new WalSync(walPath);
    const first = wal.committed();
    await syncsStarted(syncs.started, 1);
    await expect(settled(first)).resolves.toBe('pending');
    expect(syncs.started.map((s) => s.path)).toEqual([walPath]);
    expect(wal.pending()).toBe(true);

    syncs.started[0]!.finish();
    await first;
    expect(wal.pending()).toBe(false);
    await wal.close();
  });

  it('makes commits that arrive during a sync share the next one, never the one already under way', async () => {
    const wal = new WalSync(walPath);
    const first = wal.committed();
    await syncsStarted(syncs.started, 1);
    const second = wal.committed();
    const third = wal.committed();
    const reader = wal.allCommitted();
    // One sync at a time: the second starts only when the first has ended.
    expect(syncs.started).toHaveLength(1);

    syncs.started[0]!.finish();
    await first;
    await syncsStarted(syncs.started, 2);
    await expect(settled(second)).resolves.toBe('pending');
    await expect(settled(reader)).resolves.toBe('pending');

    syncs.started[1]!.finish();
    await Promise.all([second, third, reader]);
    expect(syncs.started).toHaveLength(2);
    await wal.close();
  });

  it('does not sync when everything committed is already on disk', async () => {
    const wal = new WalSync(walPath);
    await expect(settled(wal.allCommitted())).resolves.toBe('resolved');
    expect(wal.pending()).toBe(false);
    expect(syncs.started).toHaveLength(0);
    await wal.close();
  });

  it('fails the waiting commits and every later one once a sync fails', async () => {
    const wal = new WalSync(walPath);
    const first = wal.committed();
    const reader = wal.allCommitted();
    await syncsStarted(syncs.started, 1);
    syncs.started[0]!.fail(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    await expect(first).rejects.toBeInstanceOf(WalSyncFailed);
    await expect(reader).rejects.toBeInstanceOf(WalSyncFailed);
    expect(wal.failed).toBe(true);
    // A later sync could succeed without the lost pages being written: no later commit is trusted.
    await expect(wal.committed()).rejects.toBeInstanceOf(WalSyncFailed);
    expect(syncs.started).toHaveLength(1);
    await wal.close();
  });

  it('fails closed when the WAL file cannot be opened', async () => {
    const wal = new WalSync(join(dir, 'missing.db-wal'));
    await expect(wal.committed()).rejects.toBeInstanceOf(WalSyncFailed);
    await wal.close();
  });
});
