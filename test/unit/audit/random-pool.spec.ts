import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { randomBytesPooled, timeOrderedId } from '../../../src/audit/domain/random-pool.js';

const POOL_SIZE = 4096;

describe('random pool', () => {
  it('hands out distinct bytes of the asked length', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 5000; i++) {
      const bytes = randomBytesPooled(12);
      expect(bytes).toHaveLength(12);
      seen.add(bytes.toString('hex'));
    }
    expect(seen.size).toBe(5000);
  });

  it('makes time-ordered ids of the prefix and 16 base64url characters, distinct within one millisecond', () => {
    const now = Date.UTC(2026, 10, 27, 13, 0, 0, 0);
    const ids = Array.from({ length: 5000 }, () => timeOrderedId('ent_', now));
    for (const id of ids) expect(id).toMatch(/^ent_[A-Za-z0-9_-]{16}$/);
    expect(new Set(ids).size).toBe(ids.length);
    // The first eight characters are the time; the rest is random.
    expect(new Set(ids.map((id) => id.slice(4, 12))).size).toBe(1);
  });

  it('sorts ids by the time they were made, to the millisecond, as text', () => {
    const times = fc.integer({ min: 0, max: 2 ** 48 - 1 });
    fc.assert(
      fc.property(times, times, (a, b) => {
        const [x, y] = [timeOrderedId('shr_', a), timeOrderedId('shr_', b)];
        if (a < b) expect(x < y).toBe(true);
        if (a > b) expect(x > y).toBe(true);
        if (a === b) expect(x.slice(0, 12)).toBe(y.slice(0, 12));
      }),
      { numRuns: 5000 },
    );
    // Across the digits where base64url's own order is not ASCII order ('z' then '0', '9' then '-').
    const boundaries = [51, 52, 61, 62, 63, 64].map((n) => n * 2 ** 24);
    for (const t of boundaries) expect(timeOrderedId('', t - 1) < timeOrderedId('', t)).toBe(true);
  });

  it('serves across a refill, and what it gave stays as it was', () => {
    // Odd sizes so that some requests straddle the end of the pool, whatever its state.
    const given: Array<[Buffer, string]> = [];
    for (let total = 0; total < 5 * POOL_SIZE; ) {
      const size = 1 + (given.length % 97);
      const bytes = randomBytesPooled(size);
      expect(bytes).toHaveLength(size);
      given.push([bytes, bytes.toString('hex')]);
      total += size;
    }
    for (const [bytes, hex] of given) expect(bytes.toString('hex')).toBe(hex);
    // No 8-byte window is handed out twice (a repeat would be a 2^-64 accident).
    const windows = given.filter(([b]) => b.length >= 8).map(([b]) => b.subarray(0, 8).toString('hex'));
    expect(new Set(windows).size).toBe(windows.length);
  });

  it('returns copies: later refills leave them alone', () => {
    const a = randomBytesPooled(16);
    const before = a.toString('hex');
    for (let i = 0; i < 3 * POOL_SIZE; i += 64) randomBytesPooled(64);
    expect(a.toString('hex')).toBe(before);
  });

  it('serves lengths larger than the pool, and zero', () => {
    const big = randomBytesPooled(3 * POOL_SIZE + 5);
    expect(big).toHaveLength(3 * POOL_SIZE + 5);
    expect(big.subarray(0, POOL_SIZE).equals(big.subarray(POOL_SIZE, 2 * POOL_SIZE))).toBe(false);
    expect(randomBytesPooled(0)).toHaveLength(0);
  });

  it('refuses sizes that are not non-negative integers', () => {
    expect(() => randomBytesPooled(-1)).toThrow(RangeError);
    expect(() => randomBytesPooled(1.5)).toThrow(RangeError);
    expect(() => randomBytesPooled(Number.NaN)).toThrow(RangeError);
  });
});
