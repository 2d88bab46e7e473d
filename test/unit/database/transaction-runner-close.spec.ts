import { afterEach, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { DatabaseClosingError, TransactionRunner } from '../../../src/platform/database/transaction-runner.js';
import { toProblem } from '../../../src/platform/http/problem.js';

const dir = mkdtempSync(join(tmpdir(), 'sluice-runner-'));
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** A gate that work waits at until the test opens it. */
function gate(): { opened: Promise<void>; open(): void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

it('refuses work once closing began (answered 503) and waits for the reads and transactions under way, not only the queue', async () => {
  const dataSource = new DataSource({ type: 'better-sqlite3', database: join(dir, 'runner.db') });
  await dataSource.initialize();
  await dataSource.query('CREATE TABLE items (id INTEGER PRIMARY KEY)');
  const runner = new TransactionRunner(dataSource);

  const readGate = gate();
  const writeGate = gate();
  // A read (outside the SQLite queue) and a transaction, each between two statements when closing begins.
  const reading = runner.read(async (manager) => {
    await manager.query('SELECT COUNT(*) FROM items');
    await readGate.opened;
    return manager.query('SELECT COUNT(*) AS count FROM items');
  });
  const writing = runner.run(async (manager) => {
    await manager.query('INSERT INTO items (id) VALUES (1)');
    await writeGate.opened;
    await manager.query('INSERT INTO items (id) VALUES (2)');
  });
  await new Promise((resolve) => setImmediate(resolve));

  // As DatabaseModule does at shutdown: the runner, then the data source.
  let closed = false;
  const closing = runner
    .close()
    .then(() => dataSource.destroy())
    .then(() => (closed = true));
  const refused = await runner.run(async () => 'ran').catch((error: unknown) => error);
  expect(refused).toBeInstanceOf(DatabaseClosingError);
  expect(toProblem(refused).status).toBe(503);
  await expect(runner.read(async () => 'read')).rejects.toBeInstanceOf(DatabaseClosingError);

  writeGate.open();
  await expect(writing).resolves.toBeUndefined();
  // Whatever closing has left to do without waiting for the read is done by the next turn.
  await new Promise((resolve) => setImmediate(resolve));
  expect(closed).toBe(false);
  readGate.open();
  await expect(reading).resolves.toHaveLength(1);
  await closing;
  const reopened = new DataSource({ type: 'better-sqlite3', database: join(dir, 'runner.db') });
  await reopened.initialize();
  expect(await reopened.query('SELECT id FROM items ORDER BY id')).toEqual([{ id: 1 }, { id: 2 }]);
  await reopened.destroy();
});
