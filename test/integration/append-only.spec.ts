import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { describeEachDatabase } from '../support/databases.js';
import { consent } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

const LOG_TABLES = ['audit_entries', 'audit_subtrees', 'audit_checkpoints', 'consent_events'];

describeEachDatabase('append-only log tables', (dialect) => {
  let sluice: RunningApp;
  let snapshot: string;

  const dump = async () => {
    const parts = [];
    for (const table of LOG_TABLES) parts.push(JSON.stringify(await sluice.database.adminQuery(`SELECT * FROM ${table} ORDER BY 1, 2`)));
    return parts.join('\n');
  };

  beforeAll(async () => {
    sluice = await startTestApp(dialect);
    // A few entries of each kind: policy activation (at start) and consent changes.
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', '31611111111') });
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', '31611111111', 'withdrawn') });
    snapshot = await dump();
  });
  afterAll(async () => {
    await sluice?.close();
  });

  const attempts: [string, string][] = [
    ['UPDATE an entry', `UPDATE audit_entries SET entry = '{}' WHERE idx = 0`],
    ['DELETE an entry', `DELETE FROM audit_entries WHERE idx = 1`],
    ['DELETE every entry', `DELETE FROM audit_entries`],
    ['UPDATE a subtree hash', `UPDATE audit_subtrees SET hash = '${'0'.repeat(64)}'`],
    ['DELETE a checkpoint', `DELETE FROM audit_checkpoints`],
    ['UPDATE a consent event', `UPDATE consent_events SET status = 'granted'`],
    ['DELETE consent events', `DELETE FROM consent_events`],
  ];
  if (dialect === 'sqlite') {
    attempts.push(
      ['INSERT OR REPLACE over an entry', `INSERT OR REPLACE INTO audit_entries (idx, id, kind, entry, leaf_hash, created_at) VALUES (0, 'ent_forged', 'x', '{}', '${'0'.repeat(64)}', 'now')`],
      ['REPLACE INTO a subtree', `REPLACE INTO audit_subtrees (level, idx, hash) VALUES (0, 0, '${'f'.repeat(64)}')`],
      ['INSERT OR REPLACE over a checkpoint', `INSERT OR REPLACE INTO audit_checkpoints (tree_size, root_hash, note, created_at) VALUES (1, 'x', 'forged', 'now')`],
      ['upsert a consent event', `INSERT INTO consent_events (id, subject_type, subject_id, purpose, status, evidence, audit_entry, recorded_at) SELECT id, subject_type, subject_id, purpose, 'granted', '{}', audit_entry, 'now' FROM consent_events LIMIT 1 ON CONFLICT (id) DO UPDATE SET status = 'granted'`],
    );
  } else {
    attempts.push(
      ['TRUNCATE the entries', `TRUNCATE audit_entries`],
      ['TRUNCATE the subtrees', `TRUNCATE audit_subtrees`],
      ['TRUNCATE consent events', `TRUNCATE consent_events CASCADE`],
      ['upsert over an entry', `INSERT INTO audit_entries (idx, id, kind, entry, leaf_hash, created_at) VALUES (0, 'ent_forged', 'x', '{}', '${'0'.repeat(64)}', 'now') ON CONFLICT (idx) DO UPDATE SET entry = EXCLUDED.entry`],
    );
  }

  it.each(attempts)('refuses to %s', async (_label, sql) => {
    await expect(sluice.database.adminQuery(sql)).rejects.toThrow(/append-only/);
    expect(await dump()).toBe(snapshot);
  });

  it('still accepts new entries', async () => {
    const response = await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', '31611111112') });
    expect(response.status).toBe(201);
  });
});
