import { expect } from '@jest/globals';
import { InMemoryMerkleLog } from '../../src/audit/domain/merkle.js';
import type { TestDatabase } from './databases.js';

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
