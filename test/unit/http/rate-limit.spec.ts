import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { TokenBucketLimiter } from '../../../src/platform/http/rate-limit.js';

describe('TokenBucketLimiter', () => {
  const clock = () => {
    let now = 0;
    return { now: () => now, advance: (ms: number) => void (now += ms) };
  };

  it('lets a full burst through at once, then one request per 1/rate seconds', () => {
    const time = clock();
    const limiter = new TokenBucketLimiter({ perSecond: 2, burst: 3 }, { now: time.now });
    expect([1, 2, 3].map(() => limiter.take('key_a').allowed)).toEqual([true, true, true]);
    expect(limiter.take('key_a')).toEqual({ allowed: false, retryAfterSeconds: 1 });
    time.advance(499);
    expect(limiter.take('key_a').allowed).toBe(false);
    time.advance(1);
    expect(limiter.take('key_a').allowed).toBe(true);
    expect(limiter.take('key_a').allowed).toBe(false);
  });

  it('keeps one bucket per caller', () => {
    const limiter = new TokenBucketLimiter({ perSecond: 1, burst: 1 }, { now: clock().now });
    expect(limiter.take('key_a').allowed).toBe(true);
    expect(limiter.take('key_a').allowed).toBe(false);
    expect(limiter.take('key_b').allowed).toBe(true);
  });

  it('refills no further than the burst after a long quiet spell', () => {
    const time = clock();
    const limiter = new TokenBucketLimiter({ perSecond: 10, burst: 5 }, { now: time.now });
    limiter.take('key_a');
    time.advance(3_600_000);
    expect(Array.from({ length: 6 }, () => limiter.take('key_a').allowed)).toEqual([true, true, true, true, true, false]);
  });

  it('refills at a rate per minute: fractions of a token per second', () => {
    const time = clock();
    const limiter = new TokenBucketLimiter({ perSecond: 30 / 60, burst: 2 }, { now: time.now });
    expect([1, 2, 3].map(() => limiter.take('10.0.0.1'))).toEqual([{ allowed: true }, { allowed: true }, { allowed: false, retryAfterSeconds: 2 }]);
    time.advance(1999);
    expect(limiter.take('10.0.0.1').allowed).toBe(false);
    time.advance(1);
    expect(limiter.take('10.0.0.1').allowed).toBe(true);
    expect(limiter.take('10.0.0.1').allowed).toBe(false);
  });

  it('takes a token given back again, but never holds more than the burst', () => {
    const time = clock();
    const limiter = new TokenBucketLimiter({ perSecond: 1, burst: 2 }, { now: time.now });
    limiter.take('a');
    limiter.take('a');
    limiter.giveBack('a');
    expect([limiter.take('a').allowed, limiter.take('a').allowed]).toEqual([true, false]);
    time.advance(60_000);
    limiter.giveBack('a');
    limiter.giveBack('a');
    expect([1, 2, 3].map(() => limiter.take('a').allowed)).toEqual([true, true, false]);
    // A caller without a bucket has nothing to give back to; it starts with a full one.
    limiter.giveBack('b');
    expect([1, 2, 3].map(() => limiter.take('b').allowed)).toEqual([true, true, false]);
  });

  it('tells how long until a caller has a token without taking one, adding a bucket or counting a use', () => {
    const time = clock();
    const limiter = new TokenBucketLimiter({ perSecond: 30 / 60, burst: 1 }, { maxCallers: 2, now: time.now });
    expect(limiter.secondsUntilToken('a')).toBe(0);
    limiter.take('a');
    expect(limiter.secondsUntilToken('a')).toBe(2);
    time.advance(1500);
    expect([limiter.secondsUntilToken('a'), limiter.secondsUntilToken('a')]).toEqual([1, 1]);
    // Asked about, 'a' stays the least recently used, and is the one forgotten for 'c'.
    limiter.take('b');
    limiter.secondsUntilToken('a');
    limiter.take('c');
    expect([limiter.take('b').allowed, limiter.take('a').allowed]).toEqual([false, true]);
  });

  it('holds buckets for at most maxCallers callers, forgetting the least recently used first', () => {
    const limiter = new TokenBucketLimiter({ perSecond: 1, burst: 1 }, { maxCallers: 100, now: clock().now });
    // A flood from 10,000 addresses, each emptying its bucket.
    for (let i = 0; i < 10_000; i++) expect(limiter.take(`10.0.${i >> 8}.${i & 255}`).allowed).toBe(true);
    // The last 100 are remembered (still empty); the first were dropped and start over full.
    for (let i = 9_900; i < 10_000; i++) expect(limiter.take(`10.0.${i >> 8}.${i & 255}`).allowed).toBe(false);
    expect(limiter.take('10.0.0.0').allowed).toBe(true);
  });

  it('keeps a caller that keeps coming back, however many others come once', () => {
    const limiter = new TokenBucketLimiter({ perSecond: 1, burst: 1 }, { maxCallers: 3, now: clock().now });
    expect(limiter.take('persistent').allowed).toBe(true);
    for (const once of ['a', 'b', 'c', 'd', 'e']) {
      limiter.take(once);
      // Each refused request counts as a use: the persistent caller is never the least recent.
      expect(limiter.take('persistent').allowed).toBe(false);
    }
  });

  it('asks for whole seconds, rounded up, at least 1: a retry after that long succeeds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 50 }), fc.integer({ min: 0, max: 100 }), (perSecond, burst, extra) => {
        const time = clock();
        const limiter = new TokenBucketLimiter({ perSecond, burst }, { now: time.now });
        for (let i = 0; i < burst; i++) expect(limiter.take('k').allowed).toBe(true);
        let refused = limiter.take('k');
        for (let i = 0; i < extra && !refused.allowed; i++) refused = limiter.take('k');
        expect(refused.allowed).toBe(false);
        if (refused.allowed) return;
        expect(Number.isInteger(refused.retryAfterSeconds) && refused.retryAfterSeconds >= 1).toBe(true);
        // A slow limit (under one per second) waits longer than one second; a fast one never does.
        expect(refused.retryAfterSeconds).toBe(Math.ceil(1 / perSecond));
        time.advance(refused.retryAfterSeconds * 1000);
        expect(limiter.take('k').allowed).toBe(true);
      }),
    );
  });
});
