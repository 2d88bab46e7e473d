import { describe, expect, it } from '@jest/globals';
import { applyTransform } from './transforms.js';

describe('applyTransform', () => {
  it('masks all but the kept characters, counting code points', () => {
    expect(applyTransform('0612345678', { kind: 'mask', keepFirst: 2, keepLast: 2 })).toBe('06******78');
    expect(applyTransform('🎉abc🎉', { kind: 'mask', keepFirst: 1, keepLast: 1 })).toBe('🎉***🎉');
    expect(applyTransform('abc', { kind: 'mask', keepFirst: 2, keepLast: 2 })).toBe('***');
  });

  it('truncates without splitting a surrogate pair', () => {
    expect(applyTransform('😀😀😀😀', { kind: 'truncate', length: 2 })).toBe('😀😀…');
    expect(applyTransform('short', { kind: 'truncate', length: 10 })).toBe('short');
  });

  it.each([
    ['2026-11-20T09:12:44+0000', 'day', '2026-11-20'],
    ['2026-11-20T23:30:00-0200', 'day', '2026-11-21'],
    ['2026-11-30T23:30:00-02:00', 'month', '2026-12'],
    ['2026-11-20', 'month', '2026-11'],
    ['2026-11-20T09:12:44.123Z', 'day', '2026-11-20'],
  ] as const)('generalises %s to its UTC %s', (value, to, expected) => {
    expect(applyTransform(value, { kind: 'generalise', to })).toBe(expected);
  });

  it.each(['yesterday', '2026-02-31', '20261120', '2026-11-20 09:12', ''])('refuses to generalise %j', (value) => {
    expect(applyTransform(value, { kind: 'generalise', to: 'day' })).toBeUndefined();
  });
});
