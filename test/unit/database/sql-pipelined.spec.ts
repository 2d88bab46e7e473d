import { describe, expect, it } from '@jest/globals';
import type { EntityManager } from 'typeorm';
import { Sql } from '../../../src/platform/database/sql.js';

/** A Sql for each dialect; `pipelined` runs no statement of its own, so no database is needed. */
const postgres = Sql.of({ dataSource: { options: { type: 'postgres' } } } as unknown as EntityManager);
const sqlite = Sql.of({ dataSource: { options: { type: 'better-sqlite3' }, driver: { databaseConnection: {} } } } as unknown as EntityManager);

describe('Sql.pipelined: steps of one transaction that need not wait for each other', () => {
  /** A step that records when it starts and ends, and resolves (or fails) after `ms`. */
  function stepper() {
    const events: string[] = [];
    const step =
      <T>(name: string, ms: number, value: T, failure?: Error) =>
      () => {
        events.push(`${name} started`);
        return new Promise<T>((resolve, reject) =>
          setTimeout(() => {
            events.push(`${name} ended`);
            if (failure) reject(failure);
            else resolve(value);
          }, ms),
        );
      };
    return { events, step };
  }

  it('on PostgreSQL starts every step before any has ended, and resolves with their results in order', async () => {
    const { events, step } = stepper();
    await expect(postgres.pipelined(step('a', 20, 'slow'), step('b', 1, 42))).resolves.toEqual(['slow', 42]);
    expect(events).toEqual(['a started', 'b started', 'b ended', 'a ended']);
  });

  it('on PostgreSQL fails with the first failure only once every started step has ended', async () => {
    // Were it to fail at once (Promise.all), the transaction would end while step b still had a
    // statement to send on its connection.
    const { events, step } = stepper();
    const first = new Error('the first statement failed');
    await expect(postgres.pipelined(step('a', 1, 0, first), step('b', 30, 0), step('c', 5, 0, new Error('a later failure')))).rejects.toBe(first);
    expect(events.at(-1)).toBe('b ended');
  });

  it('on PostgreSQL waits for the steps already started when a later one throws before starting', async () => {
    const { events, step } = stepper();
    const thrown = new Error('thrown while preparing');
    const throwing = () => {
      throw thrown;
    };
    await expect(postgres.pipelined(step('a', 20, 0), throwing)).rejects.toBe(thrown);
    expect(events).toEqual(['a started', 'a ended']);
  });

  it('on SQLite runs the steps one after another, and a failure stops the rest', async () => {
    const { events, step } = stepper();
    await expect(sqlite.pipelined(step('a', 20, 1), step('b', 1, 2))).resolves.toEqual([1, 2]);
    expect(events).toEqual(['a started', 'a ended', 'b started', 'b ended']);
    events.length = 0;
    const failure = new Error('SQLITE_FULL');
    await expect(sqlite.pipelined(step('a', 1, 0, failure), step('b', 1, 0))).rejects.toBe(failure);
    expect(events).toEqual(['a started', 'a ended']);
  });
});
