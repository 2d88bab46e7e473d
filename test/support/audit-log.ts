import { expect } from '@jest/globals';
import { InMemoryMerkleLog } from '../../src/audit/domain/merkle.js';
import type { Dialect, TestDatabase } from './databases.js';

/**
 * Checks the log as stored: every index once, in order, and every signed checkpoint's root the
 * root of the first tree_size leaves. Returns how many entries the log holds.
 */
export async function expectConsistentLog(database: TestDatabase): Promise<number> {
  const leaves = await database.adminQuery<{ idx: string | number; leaf_hash: string }>('SELECT idx, leaf_hash FROM audit_entries ORDER BY idx');
  expect(leaves.map((l) => Number(l.idx))).toEqual(leaves.map((_, i) => i));
  const tree = new InMemoryMerkleLog();
  tree.append(leaves.map((l) => Buffer.from(l.leaf_hash, 'hex')));
  const checkpoints = await database.adminQuery<{ tree_size: string | number; root_hash: string }>('SELECT tree_size, root_hash FROM audit_checkpoints ORDER BY tree_size');
  for (const checkpoint of checkpoints) expect(Buffer.from(tree.root(Number(checkpoint.tree_size))).toString('hex')).toBe(checkpoint.root_hash);
  return leaves.length;
}

interface Trigger {
  name: string;
  definition: string;
}

/** The owner's way around the append-only triggers: drop them, change a row, put them back as they were. */
export async function behindTheTriggers(database: TestDatabase, dialect: Dialect, table: string, sql: string, params: unknown[]): Promise<void> {
  const triggers =
    dialect === 'sqlite'
      ? (await database.adminQuery<{ name: string; sql: string }>(`SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = ?`, [table])).map(
          (t): Trigger => ({ name: t.name, definition: t.sql }),
        )
      : await database.adminQuery<Trigger>(`SELECT tgname AS name, pg_get_triggerdef(oid) AS definition FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal`, [table]);
  expect(triggers.length).toBeGreaterThan(0);
  for (const { name } of triggers) await database.adminQuery(dialect === 'sqlite' ? `DROP TRIGGER ${name}` : `DROP TRIGGER ${name} ON ${table}`);
  await database.adminQuery(sql, params);
  for (const { definition } of triggers) await database.adminQuery(definition);
}
