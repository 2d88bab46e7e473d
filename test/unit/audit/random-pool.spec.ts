import { describe, expect, it } from '@jest/globals';
import { randomBytesPooled, randomIdPooled } from '../../../src/audit/domain/random-pool.js';

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

  it('makes ids of the prefix and base64url', () => {
    const ids = Array.from({ length: 5000 }, () => randomIdPooled('ent_', 12));
    for (const id of ids) expect(id).toMatch(/^ent_[A-Za-z0-9_-]{16}$/);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('serves across a refill, and what it gave stays as it was', () => {
    // Odd sizes so that some requests straddle the end of the pool, whatever its state.
    const given: Array<[Buffer, string]> = [];
    for (let total = 0; total < 5 * POOL_SIZE; ) {
      const size = 1 + (given.length % 97);
      const bytes = given.length % 2 === 0 ? randomBytesPooled(size) : Buffer.from(randomIdPooled('', size), 'base64url');
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
    expect(Buffer.from(randomIdPooled('x_', POOL_SIZE + 1).slice(2), 'base64url')).toHaveLength(POOL_SIZE + 1);
    expect(randomBytesPooled(0)).toHaveLength(0);
    expect(randomIdPooled('p_', 0)).toBe('p_');
  });

  it('refuses sizes that are not non-negative integers', () => {
    expect(() => randomBytesPooled(-1)).toThrow(RangeError);
    expect(() => randomBytesPooled(1.5)).toThrow(RangeError);
    expect(() => randomIdPooled('x', Number.NaN)).toThrow(RangeError);
  });
});
