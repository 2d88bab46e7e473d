import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import BetterSqlite3 from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import type { EntityManager } from 'typeorm';
import { ApiKeyService, hashApiKey } from '../../../src/platform/auth/api-key.service.js';
import { RequestAuthenticator } from '../../../src/platform/auth/request-authenticator.js';
import { loadConfig } from '../../../src/platform/config/config.js';
import type { TransactionRunner } from '../../../src/platform/database/transaction-runner.js';
import { Sql } from '../../../src/platform/database/sql.js';
import { TooManyRequestsException } from '../../../src/platform/http/rate-limit.js';

/**
 * The real RequestAuthenticator and ApiKeyService over an in-memory SQLite key table; every
 * statement they run goes through Sql.rows, where it is counted.
 */
async function gateway(env: Record<string, string> = {}) {
  const db = new BetterSqlite3(':memory:');
  db.exec('CREATE TABLE api_keys (id varchar(40) PRIMARY KEY, name varchar(200) NOT NULL, key_hash char(64) NOT NULL UNIQUE, scopes varchar(500) NOT NULL, created_at varchar(30) NOT NULL)');
  const manager = { dataSource: { options: { type: 'sqlite' }, driver: { databaseConnection: db } } } as unknown as EntityManager;
  const transactions = { dataSource: manager.dataSource, read: (work: (m: EntityManager) => Promise<unknown>) => work(manager) } as unknown as TransactionRunner;
  const statements = jest.spyOn(Sql.prototype, 'rows');
  /** Stores a key as `sluice keys create` in another process would: behind this service's back. */
  const storeKey = () => {
    const secret = `slk_${randomBytes(32).toString('base64url')}`;
    db.prepare('INSERT INTO api_keys VALUES (?, ?, ?, ?, ?)').run(`key_${randomBytes(8).toString('hex')}`, 'test', hashApiKey(secret), 'audit:read', new Date().toISOString());
    return `Bearer ${secret}`;
  };
  const stored = storeKey();
  const apiKeys = new ApiKeyService(transactions);
  await apiKeys.rememberStoredKeys();
  const authenticator = new RequestAuthenticator(apiKeys, loadConfig({ AUTH_FAILURE_BURST: '3', AUTH_FAILURES_PER_MINUTE: '1', ...env }));
  const statementsLike = (text: string) => statements.mock.calls.filter(([, sql]) => sql.includes(text));
  return {
    authenticator,
    stored,
    storeKey,
    /** Key digests looked up so far (concurrent lookups share a statement). */
    lookedUp: () => statementsLike('WHERE key_hash IN').reduce((sum, [, , params]) => sum + (params?.length ?? 0), 0),
    reloads: () => statementsLike('ORDER BY created_at').length,
  };
}

const unknownKey = () => `Bearer slk_${randomBytes(32).toString('base64url')}`;

/** What authenticating ends in: the key's name, or the status refused with. */
async function outcome(promise: Promise<{ name: string }>): Promise<string | number> {
  try {
    return (await promise).name;
  } catch (error) {
    return (error as { getStatus(): number }).getStatus();
  }
}

describe('RequestAuthenticator: failed authentications per client address', () => {
  // The clock stands still unless a test moves it: tens of thousands of attempts on a busy machine
  // would otherwise earn a bucket a token (one every 7.5 s for a /48) in the middle of a test.
  beforeEach(() => {
    jest.spyOn(performance, 'now').mockReturnValue(1_000_000);
  });
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('refuses an address past its failures with 429 before any lookup; other addresses and stored keys go on', async () => {
    const { authenticator, stored, lookedUp } = await gateway();
    for (let i = 0; i < 3; i++) expect(await outcome(authenticator.authenticate(unknownKey(), '203.0.113.7'))).toBe(401);
    expect(lookedUp()).toBe(3);

    const refusal = await authenticator.authenticate(unknownKey(), '203.0.113.7').catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(TooManyRequestsException);
    // One token a minute: the wait is a minute, less what has refilled since.
    expect((refusal as TooManyRequestsException).retryAfterSeconds).toBeGreaterThanOrEqual(59);
    expect((refusal as TooManyRequestsException).retryAfterSeconds).toBeLessThanOrEqual(60);
    for (let i = 0; i < 5; i++) expect(await outcome(authenticator.authenticate(unknownKey(), '::ffff:203.0.113.7'))).toBe(429);
    expect(lookedUp()).toBe(3);

    expect(await outcome(authenticator.authenticate(stored, '203.0.113.7'))).toBe('test');
    expect(await outcome(authenticator.authenticate(unknownKey(), '203.0.113.8'))).toBe(401);
    // Neither a missing key nor a malformed header costs a lookup: not counted, still 401.
    expect(await outcome(authenticator.authenticate(undefined, '203.0.113.7'))).toBe(401);
    expect(await outcome(authenticator.authenticate('Basic eDp5', '203.0.113.7'))).toBe(401);
    expect(lookedUp()).toBe(5);
  });

  it('counts the addresses of one IPv6 /64 together', async () => {
    const { authenticator } = await gateway();
    for (let i = 1; i <= 3; i++) expect(await outcome(authenticator.authenticate(unknownKey(), `2001:db8:aa:1::${i}`))).toBe(401);
    expect(await outcome(authenticator.authenticate(unknownKey(), '2001:db8:aa:1:ffff::4'))).toBe(429);
    expect(await outcome(authenticator.authenticate(unknownKey(), '2001:db8:aa:2::1'))).toBe(401);
  });

  it('counts the /64s of one IPv6 /48 together too, at 8 times the rate and burst of one /64', async () => {
    const { authenticator, stored, lookedUp } = await gateway();
    const refusal = (address: string) =>
      authenticator.authenticate(unknownKey(), address).then(
        () => undefined,
        (error: unknown) => error as TooManyRequestsException,
      );
    // One /64 out of failures: its refusals are not charged to the /48.
    for (let i = 0; i < 3; i++) expect(await outcome(authenticator.authenticate(unknownKey(), '2001:db8:aa:0::1'))).toBe(401);
    for (let i = 0; i < 5; i++) expect(await outcome(authenticator.authenticate(unknownKey(), '2001:db8:aa:0::1'))).toBe(429);
    // Ever new /64s: each would have a full bucket, but the /48 has 8 x 3 failures in all.
    for (let subnet = 1; subnet <= 21; subnet++) expect(await outcome(authenticator.authenticate(unknownKey(), `2001:db8:aa:${subnet.toString(16)}::1`))).toBe(401);
    expect(lookedUp()).toBe(24);

    // A /64 of that /48 never seen: refused before any lookup, to come back when the /48 has a token (8 a minute).
    const fresh = await refusal('2001:db8:aa:ffff::1');
    expect(fresh).toBeInstanceOf(TooManyRequestsException);
    expect(fresh!.retryAfterSeconds).toBe(8);
    expect(fresh!.message).toContain("this address's IPv6 /48 network: 8 per minute, in bursts of up to 24");
    // A /64 that is out of failures itself waits for its own token, a minute.
    expect((await refusal('2001:db8:aa:0::2'))?.retryAfterSeconds).toBeGreaterThanOrEqual(59);
    for (let subnet = 0x100; subnet < 0x110; subnet++) expect(await outcome(authenticator.authenticate(unknownKey(), `2001:db8:aa:${subnet.toString(16)}::1`))).toBe(429);
    expect(lookedUp()).toBe(24);

    // A stored key still works from that /48; another /48, and IPv4, are not affected.
    expect(await outcome(authenticator.authenticate(stored, '2001:db8:aa:ffff::1'))).toBe('test');
    expect(await outcome(authenticator.authenticate(unknownKey(), '2001:db8:ab:1::1'))).toBe(401);
    expect(await outcome(authenticator.authenticate(unknownKey(), '203.0.113.7'))).toBe(401);
    expect(lookedUp()).toBe(27);
  });

  it('does not let a /48 out of failures push other networks out of memory by cycling its /64s', async () => {
    const { authenticator } = await gateway();
    for (let i = 0; i < 3; i++) expect(await outcome(authenticator.authenticate(unknownKey(), '203.0.113.7'))).toBe(401);
    for (let subnet = 0; subnet < 24; subnet++) await authenticator.authenticate(unknownKey(), `2001:db8:aa:${subnet.toString(16)}::1`).catch(() => undefined);
    // More /64s than the 50,000 networks remembered, all refused.
    const guess = unknownKey();
    let refused = 0;
    for (let subnet = 0x100; subnet < 0x100 + 60_000; subnet++) {
      if ((await outcome(authenticator.authenticate(guess, `2001:db8:aa:${subnet.toString(16)}::1`))) === 429) refused++;
    }
    expect(refused).toBe(60_000);
    // Still remembered as out of failures, not forgotten and given a full bucket.
    expect(await outcome(authenticator.authenticate(unknownKey(), '203.0.113.7'))).toBe(429);
  });

  it('looks up no more than the burst of unknown keys from one address, however many arrive at once', async () => {
    const { authenticator, lookedUp } = await gateway();
    const outcomes = await Promise.all(Array.from({ length: 10 }, () => outcome(authenticator.authenticate(unknownKey(), '203.0.113.7'))));
    expect(outcomes.sort()).toEqual([...Array(3).fill(401), ...Array(7).fill(429)]);
    expect(lookedUp()).toBe(3);
  });

  it('gives a stored key found by a lookup its token back: only failures count', async () => {
    const { authenticator, storeKey } = await gateway();
    // Stored after the process loaded the keys: its first use takes a token, which comes back.
    const newer = storeKey();
    expect(await outcome(authenticator.authenticate(newer, '203.0.113.7'))).toBe('test');
    for (let i = 0; i < 3; i++) expect(await outcome(authenticator.authenticate(unknownKey(), '203.0.113.7'))).toBe(401);
    expect(await outcome(authenticator.authenticate(unknownKey(), '203.0.113.7'))).toBe(429);
    // Now known, it needs no token.
    expect(await outcome(authenticator.authenticate(newer, '203.0.113.7'))).toBe('test');
  });

  it('knows a key stored elsewhere within a minute even at an address out of failures, loading the keys at most once a minute', async () => {
    // Whole milliseconds: a minute later is then exactly one token later.
    let now = 1_000_000;
    jest.spyOn(performance, 'now').mockImplementation(() => now);
    const { authenticator, storeKey, lookedUp, reloads } = await gateway();
    expect(reloads()).toBe(1);
    for (let i = 0; i < 3; i++) await authenticator.authenticate(unknownKey(), '203.0.113.7').catch(() => undefined);
    const newer = storeKey();
    // Loaded less than a minute ago: neither a reload nor a lookup.
    expect(await outcome(authenticator.authenticate(newer, '203.0.113.7'))).toBe(429);
    expect([reloads(), lookedUp()]).toEqual([1, 3]);

    now += 60_000;
    // The minute also refilled one token: spent on one more failure.
    expect(await outcome(authenticator.authenticate(unknownKey(), '203.0.113.7'))).toBe(401);
    expect(await outcome(authenticator.authenticate(newer, '203.0.113.7'))).toBe('test');
    expect([reloads(), lookedUp()]).toEqual([2, 5]);
    // The next unknown keys wait for the next minute: refused without a statement.
    for (let i = 0; i < 5; i++) expect(await outcome(authenticator.authenticate(unknownKey(), '203.0.113.7'))).toBe(429);
    expect([reloads(), lookedUp()]).toEqual([2, 5]);
  });
});
