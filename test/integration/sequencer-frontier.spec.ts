import { afterAll, beforeAll, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import pg from 'pg';
import { AuditLogService } from '../../src/audit/audit-log.service.js';
import { AuditSequencer, SEQUENCER_LOCK_ID } from '../../src/audit/audit-sequencer.js';
import { Sql } from '../../src/platform/database/sql.js';
import { TransactionRunner } from '../../src/platform/database/transaction-runner.js';
import { expectConsistentLog } from '../support/audit-log.js';
import { describeEachDatabase } from '../support/databases.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

/**
 * The sequencer keeps the tree's frontier of its last batch in memory, so that the next batch
 * need not read it back. This proves the cache can never put a wrong root in a signed checkpoint:
 * after a batch that rolled back, and after another replica grew the log to that same size with
 * other entries, every checkpoint still commits to exactly the leaves the log holds. And the
 * inserts of several tables in one statement (PostgreSQL) stay all or nothing.
 */
describeEachDatabase('the sequencer frontier cache and multi-table inserts', (dialect) => {
  let sluice: RunningApp;
  let replica: RunningApp;

  beforeAll(async () => {
    // No background sequencing passes: each test says when the log is sequenced.
    sluice = await startTestApp(dialect, { env: { AUDIT_SEQUENCE_POLL_MS: '60000' } });
    replica = await sluice.startReplica();
  });
  afterAll(async () => {
    await replica?.close();
    await sluice?.close();
  });

  const draft = (app: RunningApp, note: string) => ({ id: app.app.get(AuditLogService).newEntryId(), kind: 'policy.activated' as const, body: { note } });

  /** Sequences one entry in the gateway's own way (in a writer's transaction), then commits or rolls back. */
  async function sequence(app: RunningApp, note: string, outcome: 'commit' | 'rollback'): Promise<void> {
    const attempt = app.app.get(TransactionRunner).run(async (manager) => {
      const indices = await app.app.get(AuditSequencer).appendSequenced(manager, [draft(app, note)]);
      expect(indices.size).toBe(1);
      if (outcome === 'rollback') throw new Error('rolled back after sequencing');
    });
    if (outcome === 'rollback') await expect(attempt).rejects.toThrow('rolled back after sequencing');
    else await attempt;
  }

  const checkpointsMatchLeaves = () => expectConsistentLog(sluice.database);

  it('signs the right root after a rolled-back batch and another replica writing the same size', async () => {
    await sequence(sluice, 'first', 'commit');
    const size = await checkpointsMatchLeaves();
    // This process computes (and caches) the frontier of size + 1, then rolls the batch back...
    await sequence(sluice, 'rolled back', 'rollback');
    // ...and the other replica makes the log that size with another entry.
    await sequence(replica, 'from the replica', 'commit');
    expect(await checkpointsMatchLeaves()).toBe(size + 1);
    // The next batch here must build on the replica's tree, not on the cached frontier.
    await sequence(sluice, 'after', 'commit');
    await sequence(sluice, 'and again', 'commit');
    expect(await checkpointsMatchLeaves()).toBe(size + 3);
  });

  // SQLite has one writer: no lock to hold.
  if (dialect === 'postgres') it('queues the entries of a writer while another replica holds the sequencer lock', async () => {
    const size = await checkpointsMatchLeaves();
    const holder = new pg.Client({ connectionString: (sluice.config.database as { url: string }).url });
    await holder.connect();
    const locked = draft(sluice, 'while locked');
    try {
      await holder.query('SELECT pg_advisory_lock($1)', [SEQUENCER_LOCK_ID]);
      const errors = jest.spyOn(Logger.prototype, 'error');
      // Waits for the lock a while, then queues: an ordinary outcome, not an error.
      const queued = await sluice.app.get(TransactionRunner).run((manager) => sluice.app.get(AuditSequencer).appendSequenced(manager, [locked]));
      expect(errors).not.toHaveBeenCalled();
      errors.mockRestore();
      expect(queued.size).toBe(0);
      expect(await sluice.database.adminQuery('SELECT id FROM audit_queue')).toHaveLength(1);
      await holder.query('SELECT pg_advisory_unlock($1)', [SEQUENCER_LOCK_ID]);
    } finally {
      await holder.end();
    }
    // Free again: the next writer sequences what was queued, then its own entry.
    const after = draft(sluice, 'after the lock');
    const indices = await sluice.app.get(TransactionRunner).run((manager) => sluice.app.get(AuditSequencer).appendSequenced(manager, [after]));
    expect([...indices]).toEqual([
      [locked.id, size],
      [after.id, size + 1],
    ]);
    expect(await sluice.database.adminQuery('SELECT id FROM audit_queue')).toHaveLength(0);
    expect(await checkpointsMatchLeaves()).toBe(size + 2);
  });

  if (dialect === 'postgres') it("waits for the sequencer lock while another transaction's batch commits, then sequences its own entries", async () => {
    const size = await checkpointsMatchLeaves();
    const holder = new pg.Client({ connectionString: (sluice.config.database as { url: string }).url });
    await holder.connect();
    const waiting = draft(sluice, 'waited for the lock');
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT pg_advisory_xact_lock($1)', [SEQUENCER_LOCK_ID]);
      const writer = sluice.app.get(TransactionRunner).run((manager) => sluice.app.get(AuditSequencer).appendSequenced(manager, [waiting]));
      // Once the writer waits for the lock (a try-lock would not wait, and queue), the other
      // transaction commits, well within the writer's wait (250 ms).
      const waitingForLock = async () => Number((await holder.query("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")).rows[0].n) > 0;
      for (const deadline = Date.now() + 5000; !(await waitingForLock()) && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 2));
      await holder.query('COMMIT');
      expect([...(await writer)]).toEqual([[waiting.id, size]]);
    } finally {
      await holder.end();
    }
    expect(await sluice.database.adminQuery('SELECT id FROM audit_queue')).toHaveLength(0);
    expect(await checkpointsMatchLeaves()).toBe(size + 1);
  });

  it('inserts into several tables at once, all or nothing', async () => {
    const transactions = sluice.app.get(TransactionRunner);
    await sluice.database.adminQuery('CREATE TABLE frontier_parent (id varchar(10) PRIMARY KEY)');
    await sluice.database.adminQuery('CREATE TABLE frontier_child (id varchar(10) PRIMARY KEY, parent varchar(10) NOT NULL REFERENCES frontier_parent (id))');
    const insertAll = (parents: string[], children: [string, string][]) =>
      transactions.run((manager) =>
        Sql.of(manager).insertAll(manager, [
          { table: 'frontier_parent', columns: ['id'], rows: parents.map((id) => [id]) },
          { table: 'frontier_child', columns: ['id', 'parent'], rows: children },
          { table: 'frontier_parent', columns: ['id'], rows: [] },
        ]),
      );
    // A child may name a parent of the same call.
    await insertAll(['p1', 'p2'], [['c1', 'p1'], ['c2', 'p2']]);
    // A child that cannot be written (its key is taken) fails the call, and its parent is not written either.
    await expect(insertAll(['p3'], [['c3', 'p3'], ['c1', 'p3']])).rejects.toThrow();
    // So does a child naming no parent.
    await expect(insertAll(['p4'], [['c4', 'p4'], ['c5', 'nobody']])).rejects.toThrow();
    expect((await sluice.database.adminQuery<{ id: string }>('SELECT id FROM frontier_parent ORDER BY id')).map((r) => r.id)).toEqual(['p1', 'p2']);
    expect((await sluice.database.adminQuery<{ id: string }>('SELECT id FROM frontier_child ORDER BY id')).map((r) => r.id)).toEqual(['c1', 'c2']);
  });
});
