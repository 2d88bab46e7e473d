import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import type BetterSqlite3 from 'better-sqlite3';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { runAuditCommand } from '../../src/audit/cli/audit-cli.js';
import { sqliteConnection } from '../../src/platform/database/sql.js';
import { TransactionRunner } from '../../src/platform/database/transaction-runner.js';
import { eventually } from '../support/eventually.js';
import { AUTHOR_ID, consent, RECIPIENT, shareRequest, TAGGED_ID } from '../support/fixtures.js';
import { type RunningApp, type TestResponse, startTestApp } from '../support/test-app.js';

/** Every fdatasync the process starts, with the file it syncs; each is held until the test lets it go, or fails it. */
class HeldSyncs {
  readonly started: { path: string; release: () => void; fail: (error: Error) => void }[] = [];
  private spy: { mockRestore(): void } | undefined;
  private passThrough = true;
  private failing: Error | undefined;

  async install(): Promise<void> {
    const probe = await open(process.execPath, 'r');
    const prototype = Object.getPrototypeOf(probe) as FileHandle;
    await probe.close();
    const realSync = prototype.datasync;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the mock needs both its handle and this recorder
    const held = this;
    this.spy = jest.spyOn(prototype, 'datasync').mockImplementation(function (this: FileHandle) {
      // eslint-disable-next-line @typescript-eslint/no-this-alias -- the held sync runs later, on this handle
      const handle = this;
      const path = readlinkSync(`/proc/self/fd/${handle.fd}`);
      if (held.failing) return Promise.reject(held.failing);
      if (held.passThrough) return realSync.call(handle);
      return new Promise<void>((resolve, reject) => {
        held.started.push({ path, release: () => void realSync.call(handle).then(resolve, reject), fail: reject });
      });
    });
  }

  hold(): void {
    this.passThrough = false;
  }

  /** Lets every held sync finish, and every later one run at once. */
  releaseAll(): void {
    this.passThrough = true;
    for (const sync of this.started.splice(0)) sync.release();
  }

  /** Fails every held sync and every later one, as a disk error would. */
  failAll(error: Error): void {
    this.failing = error;
    for (const sync of this.started.splice(0)) sync.fail(error);
  }

  restore(): void {
    this.releaseAll();
    this.spy?.mockRestore();
  }
}

/** The request's answer, or 'pending' if it has not come within `ms`. */
async function answerWithin(response: Promise<TestResponse>, ms: number): Promise<TestResponse | 'pending'> {
  let timer: NodeJS.Timeout | undefined;
  const pending = new Promise<'pending'>((resolve) => (timer = setTimeout(() => resolve('pending'), ms)));
  return Promise.race([response, pending]).finally(() => clearTimeout(timer));
}

function writerConnection(sluice: RunningApp): BetterSqlite3.Database {
  return sqliteConnection(sluice.app.get(TransactionRunner).dataSource);
}

/**
 * SQLite commits in the server are made durable by an fdatasync of the WAL file on the thread pool
 * (WalSync) instead of inside COMMIT on the event loop. This proves the durability stays what
 * `synchronous = FULL` gave: no answer — to the writer, or to a reader who could see the commit —
 * before the WAL holding it is synced, and a failed sync fails closed. PostgreSQL is not part of
 * this suite: its COMMIT returns once its own WAL is flushed, and the group-commit suite proves on
 * both databases that answers come after the commit.
 */
describe('durable commits on SQLite: the WAL is synced off the event loop before anyone is answered', () => {
  let sluice: RunningApp;
  const syncs = new HeldSyncs();

  beforeAll(async () => {
    sluice = await startTestApp('sqlite');
    for (const waId of [RECIPIENT]) expect((await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId) })).status).toBe(201);
    for (const id of [AUTHOR_ID, TAGGED_ID]) expect((await sluice.request('POST', '/v1/consents', { body: consent('workplace', id) })).status).toBe(201);
    await syncs.install();
  });
  afterEach(() => syncs.releaseAll());
  afterAll(async () => {
    syncs.restore();
    await sluice?.close();
  });

  it('answers a share, and a read that could see it, only after the WAL holding it is synced', async () => {
    const walPath = `${(sluice.config.database as { path: string }).path}-wal`;
    syncs.hold();
    const key = randomUUID();
    const share = sluice.request('POST', '/v1/shares', { body: shareRequest(), headers: { 'idempotency-key': key } });
    await eventually(() => (syncs.started.length > 0 ? true : undefined), 'a sync of the WAL to start');
    expect(syncs.started.map((s) => s.path)).toEqual([walPath]);

    // Committed, and visible to readers, but not yet synced: nobody is answered.
    const [row] = await sluice.database.adminQuery<{ id: string }>('SELECT id FROM shares WHERE idempotency_key = ?', [key]);
    expect(row).toBeDefined();
    expect(await answerWithin(share, 200)).toBe('pending');
    const checkpoint = sluice.request('GET', '/v1/audit/checkpoint');
    const shareRead = sluice.request('GET', `/v1/shares/${row!.id}`);
    const replay = sluice.request('POST', '/v1/shares', { body: shareRequest(), headers: { 'idempotency-key': key } });
    expect(await answerWithin(checkpoint, 200)).toBe('pending');
    expect(await answerWithin(shareRead, 50)).toBe('pending');
    expect(await answerWithin(replay, 50)).toBe('pending');

    syncs.releaseAll();
    const answered = await share;
    expect(answered.status).toBe(201);
    expect(answered.json.id).toBe(row!.id);
    const note = await checkpoint;
    expect(note.status).toBe(200);
    expect(Number(note.text.split('\n')[1])).toBeGreaterThan(answered.json.audit.index);
    expect((await shareRead).status).toBe(200);
    expect((await replay).status).toBe(200);
  });

  it('does not hold reads when nothing is waiting to be synced', async () => {
    syncs.hold();
    const read = await answerWithin(sluice.request('GET', '/v1/audit/checkpoint'), 5_000);
    expect(read).not.toBe('pending');
    expect((read as TestResponse).status).toBe(200);
    expect(syncs.started).toHaveLength(0);
  });

  it('starts no sync for a transaction that wrote nothing: an idle server, polling, syncs nothing', async () => {
    syncs.hold();
    // The audit sequencer polls every 100 ms in a transaction that finds nothing queued.
    await new Promise((resolve) => setTimeout(resolve, 350));
    const transactions = sluice.app.get(TransactionRunner);
    const read = transactions.run(async (manager) => manager.query('SELECT count(*) AS n FROM shares'));
    expect(await answerWithin(read, 1_000)).not.toBe('pending');
    const noMatch = transactions.run(async (manager) => manager.query("UPDATE shares SET status = status WHERE id = 'shr_none'"));
    expect(await answerWithin(noMatch, 1_000)).not.toBe('pending');
    expect(syncs.started).toHaveLength(0);
  });

  it('has a transaction that wrote nothing wait for the sync of a commit it could have read', async () => {
    syncs.hold();
    const share = sluice.request('POST', '/v1/shares', { body: shareRequest(), headers: { 'idempotency-key': randomUUID() } });
    await eventually(() => (syncs.started.length > 0 ? true : undefined), 'a sync of the WAL to start');
    const read = sluice.app.get(TransactionRunner).run(async (manager) => manager.query('SELECT count(*) AS n FROM shares'));
    expect(await answerWithin(read, 200)).toBe('pending');
    expect(syncs.started).toHaveLength(1);
    syncs.releaseAll();
    await read;
    expect((await share).status).toBe(201);
  });

  it('syncs a transaction that only changed the schema', async () => {
    syncs.hold();
    const created = sluice.app.get(TransactionRunner).run(async (manager) => manager.query('CREATE TABLE schema_probe (id integer PRIMARY KEY)'));
    await eventually(() => (syncs.started.length > 0 ? true : undefined), 'a sync of the WAL to start');
    expect(await answerWithin(created, 200)).toBe('pending');
    syncs.releaseAll();
    await created;
  });

  it('commits with synchronous=NORMAL only inside its transactions; everything else keeps FULL', async () => {
    const transactions = sluice.app.get(TransactionRunner);
    const inside = await transactions.run(async () => writerConnection(sluice).pragma('synchronous', { simple: true }));
    expect(inside).toBe(1);
    expect(writerConnection(sluice).pragma('synchronous', { simple: true })).toBe(2);
    // A transaction that fails restores it too.
    await expect(
      transactions.run(async () => {
        throw new Error('rolled back');
      }),
    ).rejects.toThrow('rolled back');
    expect(writerConnection(sluice).pragma('synchronous', { simple: true })).toBe(2);
  });

  it('leaves WAL checkpoints to the worker thread: the writer makes none of its own', async () => {
    expect(writerConnection(sluice).pragma('wal_autocheckpoint', { simple: true })).toBe(0);
  });

  it('keeps the journal a savepoint needs in memory, never in a temporary file', async () => {
    const writer = writerConnection(sluice);
    const transactions = sluice.app.get(TransactionRunner);
    await transactions.run(async () => {
      writer.exec('CREATE TABLE journal_probe (id integer PRIMARY KEY, filler blob NOT NULL)');
      const fill = writer.prepare('INSERT INTO journal_probe (id, filler) VALUES (?, randomblob(3000))');
      for (let id = 0; id < 100; id++) fill.run(id);
    });
    const openTemporaryFiles = () => readdirSync('/proc/self/fd').filter((fd) => safeReadlink(`/proc/self/fd/${fd}`).endsWith('(deleted)'));
    const before = openTemporaryFiles();
    // Changing some 75 pages after a savepoint journals their old content: far beyond the 64 KiB
    // SQLite keeps in memory before spilling a file journal to disk.
    const during = await transactions.run(async () => {
      writer.exec('SAVEPOINT probe');
      writer.exec('UPDATE journal_probe SET filler = randomblob(3000)');
      const files = openTemporaryFiles();
      writer.exec('ROLLBACK TO SAVEPOINT probe');
      return files;
    });
    expect(during).toEqual(before);
  });

  it('has the CLI write out an export of the live file only once what it read is on disk', async () => {
    const { config } = sluice;
    const walPath = `${(config.database as { path: string }).path}-wal`;
    syncs.hold();
    const share = sluice.request('POST', '/v1/shares', { body: shareRequest(), headers: { 'idempotency-key': randomUUID() } });
    await eventually(() => (syncs.started.length > 0 ? true : undefined), 'a sync of the WAL to start');

    // The share's entry and its checkpoint are committed, readable by another process, not yet on disk.
    const dir = mkdtempSync(join(tmpdir(), 'sluice-export-'));
    const bundle = join(dir, 'bundle.ndjson');
    const env = { SQLITE_PATH: (config.database as { path: string }).path, DATA_DIR: config.dataDir, SLUICE_MASTER_KEY: config.masterKey!.toString('base64') };
    const exported = runAuditCommand('export', ['--out', bundle], env, { out: new PassThrough(), err: new PassThrough() });
    await eventually(() => (syncs.started.length > 1 ? true : undefined), "the export's own sync of the WAL");
    expect(syncs.started.map((s) => s.path)).toEqual([walPath, walPath]);
    expect(await Promise.race([exported, new Promise((resolve) => setTimeout(() => resolve('pending'), 200))])).toBe('pending');
    expect(existsSync(bundle)).toBe(false);

    syncs.releaseAll();
    expect(await exported).toBe(0);
    const answered = await share;
    expect(answered.status).toBe(201);
    const header = JSON.parse(readFileSync(bundle, 'utf8').split('\n')[0]!) as { until: number };
    expect(header.until).toBeGreaterThanOrEqual(answered.json.audit.index);
    rmSync(dir, { recursive: true, force: true });
  });

  it('fails closed when the WAL cannot be synced: the share is not confirmed, later writes fail, the server is not ready', async () => {
    expect((await sluice.request('GET', '/ready', { key: null })).status).toBe(200);
    syncs.hold();
    const share = sluice.request('POST', '/v1/shares', { body: shareRequest(), headers: { 'idempotency-key': randomUUID() } });
    await eventually(() => (syncs.started.length > 0 ? true : undefined), 'a sync of the WAL to start');
    syncs.failAll(Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' }));
    const refused = await share;
    expect(refused.status).toBe(500);
    expect(refused.json).toEqual({ type: 'about:blank', title: 'internal server error', status: 500 });

    const later = await sluice.request('POST', '/v1/shares', { body: shareRequest(), headers: { 'idempotency-key': randomUUID() } });
    expect(later.status).toBe(500);
    expect((await sluice.request('GET', '/v1/audit/checkpoint')).status).toBe(500);
    const ready = await sluice.request('GET', '/ready', { key: null });
    expect(ready.status).toBe(503);
    expect(ready.json.checks.database).toBe(false);
  });
});

function safeReadlink(path: string): string {
  try {
    return readlinkSync(path);
  } catch {
    return '';
  }
}
