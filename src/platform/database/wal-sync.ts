import { type FileHandle, open } from 'node:fs/promises';
import type { DataSource } from 'typeorm';
import { sqliteConnection } from './sql.js';

export class WalSyncFailed extends Error {
  constructor(cause: unknown) {
    super('the SQLite write-ahead log could not be synced to disk; restart the server', { cause });
    this.name = 'WalSyncFailed';
  }
}

/**
 * Makes SQLite commits durable off the event loop. better-sqlite3 is synchronous: with
 * `synchronous = FULL` every COMMIT blocks the event loop for its fsync (about 2 ms here), and the
 * whole server waits with it. The server's transactions instead commit with `synchronous = NORMAL`
 * (in WAL mode the commit is then written to the WAL file, not yet synced) and call `committed()`,
 * which resolves once an fdatasync of that WAL file, run on libuv's thread pool, has finished after
 * the commit: the same durability FULL gives, before anyone is answered. Syncs coalesce: one in
 * flight, and every commit made meanwhile shares the next one.
 *
 * A commit is visible to readers before its sync ends, so whatever is about to be shown to anyone
 * waits for `allCommitted()` first (the server holds every response until then).
 *
 * The WAL file keeps its inode while any connection to the database is open (SQLite removes it
 * only when the last one closes; it rewrites it from the start after checkpoints), and the server
 * keeps its connections open for its lifetime.
 */
export class WalSync {
  private commits = 0;
  private syncedThrough = 0;
  private syncing = false;
  private failure: WalSyncFailed | undefined;
  private waiting: { through: number; resolve: () => void; reject: (error: Error) => void }[] = [];
  private file: Promise<FileHandle> | undefined;

  constructor(private readonly walPath: string) {}

  /** Call right after a COMMIT: resolves once that commit is on disk. */
  committed(): Promise<void> {
    return this.durableThrough(++this.commits);
  }

  /** Set once a sync has failed: nothing written since can be trusted to be on disk. */
  get failed(): boolean {
    return this.failure !== undefined;
  }

  /** Whether a commit made so far is not yet known to be on disk. */
  pending(): boolean {
    return this.syncedThrough < this.commits || this.failure !== undefined;
  }

  /** Resolves once every commit made so far is on disk (at once when they already are). */
  allCommitted(): Promise<void> {
    return this.durableThrough(this.commits);
  }

  async close(): Promise<void> {
    await this.allCommitted().catch(() => undefined);
    const file = this.file;
    this.file = undefined;
    await (await file?.catch(() => undefined))?.close();
  }

  private durableThrough(commit: number): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.syncedThrough >= commit) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.waiting.push({ through: commit, resolve, reject });
      this.syncNext();
    });
  }

  private syncNext(): void {
    if (this.syncing || this.waiting.length === 0) return;
    this.syncing = true;
    // An fsync that starts now covers every commit made so far.
    const through = this.commits;
    this.file ??= open(this.walPath, 'r+');
    this.file
      .then((file) => file.datasync())
      .then(
        () => {
          this.syncedThrough = through;
          const still: typeof this.waiting = [];
          for (const waiter of this.waiting) {
            if (waiter.through <= through) waiter.resolve();
            else still.push(waiter);
          }
          this.waiting = still;
        },
        (error: unknown) => {
          // After a failed fsync the kernel may have dropped the dirty pages: a retry that succeeds
          // proves nothing (PostgreSQL stops in this case too). Every later commit fails as well.
          this.failure = new WalSyncFailed(error);
          for (const waiter of this.waiting) waiter.reject(this.failure);
          this.waiting = [];
        },
      )
      .finally(() => {
        this.syncing = false;
        this.syncNext();
      });
  }
}

/**
 * For a process that reads a SQLite file a server is writing (the CLI): the server's commits are
 * visible before its WalSync has synced them, so such a reader could pass on a commit that a crash
 * then undoes, such as a signed checkpoint the log would later sign differently. Called after the
 * reads, it makes everything they saw durable, whoever wrote it: all of it was in the WAL file (or,
 * checkpointed, in the database file, synced by the checkpoint) before it could be read.
 */
export async function syncReadsOf(dataSource: DataSource): Promise<void> {
  if (dataSource.options.type !== 'better-sqlite3') return;
  const file = await open(`${sqliteConnection(dataSource).name}-wal`, 'r+').catch((error: NodeJS.ErrnoException) => {
    // No WAL file: no connection has the database open in WAL mode, so what was read is in the database file.
    if (error.code === 'ENOENT') return undefined;
    throw error;
  });
  try {
    await file?.datasync();
  } finally {
    await file?.close();
  }
}
