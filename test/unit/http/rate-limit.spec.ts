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
    const limiter = new TokenBucketLimiter({ perSecond: 2, burst: 3 }, time.now);
    expect([1, 2, 3].map(() => limiter.take('key_a').allowed)).toEqual([true, true, true]);
    expect(limiter.take('key_a')).toEqual({ allowed: false, retryAfterSeconds: 1 });
    time.advance(499);
    expect(limiter.take('key_a').allowed).toBe(false);
    time.advance(1);
    expect(limiter.take('key_a').allowed).toBe(true);
    expect(limiter.take('key_a').allowed).toBe(false);
  });

  it('keeps one bucket per caller', () => {
    const limiter = new TokenBucketLimiter({ perSecond: 1, burst: 1 }, clock().now);
    expect(limiter.take('key_a').allowed).toBe(true);
    expect(limiter.take('key_a').allowed).toBe(false);
    expect(limiter.take('key_b').allowed).toBe(true);
  });

  it('refills no further than the burst after a long quiet spell', () => {
    const time = clock();
    const limiter = new TokenBucketLimiter({ perSecond: 10, burst: 5 }, time.now);
    limiter.take('key_a');
    time.advance(3_600_000);
    expect(Array.from({ length: 6 }, () => limiter.take('key_a').allowed)).toEqual([true, true, true, true, true, false]);
  });

  it('asks for whole seconds, rounded up, at least 1: a retry after that long succeeds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 1, max: 50 }), fc.integer({ min: 0, max: 100 }), (perSecond, burst, extra) => {
        const time = clock();
        const limiter = new TokenBucketLimiter({ perSecond, burst }, time.now);
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
