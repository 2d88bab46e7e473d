import { describe, expect, it } from '@jest/globals';
import type { EntityManager } from 'typeorm';
import { GroupCommit } from '../../../src/platform/database/group-commit.js';
import type { TransactionRunner } from '../../../src/platform/database/transaction-runner.js';

/** A transaction runner that records each transaction's items and when it committed, or fails it. */
function fakeTransactions() {
  const log: { items: string[]; committed: boolean }[] = [];
  const runner = {
    async run<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
      const result = await work({} as EntityManager);
      await new Promise((resolve) => setTimeout(resolve, 1));
      log.at(-1)!.committed = true;
      return result;
    },
  } as unknown as TransactionRunner;
  return { runner, log };
}

describe('GroupCommit', () => {
  it('puts items submitted together into one transaction, and answers each after it committed', async () => {
    const { runner, log } = fakeTransactions();
    const answeredAfterCommit: boolean[] = [];
    const group = new GroupCommit<string, string>(runner, async (_manager, items) => {
      log.push({ items, committed: false });
      return { results: items.map((item) => item.toUpperCase()) };
    });
    const answers = await Promise.all(
      ['a', 'b', 'c'].map(async (item) => {
        const answer = await group.submit(item);
        answeredAfterCommit.push(log.find((t) => t.items.includes(item))!.committed);
        return answer;
      }),
    );
    expect(answers).toEqual(['A', 'B', 'C']);
    expect(log.map((t) => t.items)).toEqual([['a', 'b', 'c']]);
    expect(answeredAfterCommit).toEqual([true, true, true]);
  });

  it('gathers what arrives during a transaction into the next one', async () => {
    const { runner, log } = fakeTransactions();
    const group = new GroupCommit<string, string>(runner, async (_manager, items) => {
      log.push({ items, committed: false });
      return { results: items };
    });
    const first = group.submit('a');
    await new Promise((resolve) => setImmediate(resolve));
    const later = [group.submit('b'), group.submit('c')];
    await Promise.all([first, ...later]);
    expect(log.map((t) => t.items)).toEqual([['a'], ['b', 'c']]);
  });

  it('tries each item of a failed transaction again alone: a poisoned item fails by itself, the others commit', async () => {
    const { runner, log } = fakeTransactions();
    const poison = new Error('poisoned');
    const committedHook: string[][] = [];
    const group = new GroupCommit<string, string>(runner, async (_manager, items) => {
      log.push({ items, committed: false });
      if (items.includes('poison')) throw poison;
      return { results: items, committed: () => committedHook.push(items) };
    });
    const outcomes = await Promise.allSettled(['a', 'poison', 'b'].map((item) => group.submit(item)));
    expect(outcomes).toEqual([
      { status: 'fulfilled', value: 'a' },
      { status: 'rejected', reason: poison },
      { status: 'fulfilled', value: 'b' },
    ]);
    expect(log.map((t) => [t.items, t.committed])).toEqual([
      [['a', 'poison', 'b'], false],
      [['a'], true],
      [['poison'], false],
      [['b'], true],
    ]);
    // What is done after a commit happens for committed transactions only.
    expect(committedHook).toEqual([['a'], ['b']]);
  });

  it('keeps batches within the limit', async () => {
    const { runner, log } = fakeTransactions();
    const group = new GroupCommit<number, number>(
      runner,
      async (_manager, items) => {
        log.push({ items: items.map(String), committed: false });
        return { results: items };
      },
      { maxBatch: 2 },
    );
    await Promise.all([1, 2, 3, 4, 5].map((n) => group.submit(n)));
    expect(log.map((t) => t.items.length)).toEqual([2, 2, 1]);
  });

  it('runs up to `inFlight` transactions at once, each with what had arrived when it began', async () => {
    const { runner, log } = fakeTransactions();
    let running = 0;
    let most = 0;
    const group = new GroupCommit<string, string>(
      runner,
      async (_manager, items) => {
        log.push({ items, committed: false });
        most = Math.max(most, ++running);
        await new Promise((resolve) => setTimeout(resolve, 20));
        running--;
        return { results: items };
      },
      { inFlight: 2 },
    );
    const first = group.submit('a');
    await new Promise((resolve) => setImmediate(resolve));
    const second = group.submit('b');
    await new Promise((resolve) => setImmediate(resolve));
    const third = [group.submit('c'), group.submit('d')];
    await Promise.all([first, second, ...third]);
    // 'b' did not wait for 'a' to commit; 'c' and 'd' waited for a free slot, then went together.
    expect(log.map((t) => t.items)).toEqual([['a'], ['b'], ['c', 'd']]);
    expect(most).toBe(2);
  });
});
