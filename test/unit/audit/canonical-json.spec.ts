import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { canonicalJson } from '../../../src/audit/domain/canonical-json.js';

/** UTF-16 code-unit order, spelled out rather than borrowed from Array.prototype.sort. */
function byCodeUnits(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a.charCodeAt(i) - b.charCodeAt(i);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

/** The straightforward model: JSON.stringify for every leaf, keys sorted by code units. */
function reference(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((item) => reference(item) ?? 'null').join(',')}]`;
  const members: string[] = [];
  for (const key of Object.keys(value).sort(byCodeUnits)) {
    const member = reference((value as Record<string, unknown>)[key]);
    if (member !== undefined) members.push(`${JSON.stringify(key)}:${member}`);
  }
  return `{${members.join(',')}}`;
}

const awkward = fc.constantFrom('"', '\\', '/', '\n', '\r', '\t', '\b', '\f', '\u0000', '\u001f', '\u007f', '\u0080', 'é', '€', '\u2028', '\u2029', '\ufeff', '\ufffd', '\ud83d\ude00', '\udbff\udfff', '\ud800\udc00');
const text = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }), // any code point, astral ones as surrogate pairs
  fc.string({ unit: fc.oneof(fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 1 }), awkward) }),
);
const number = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
  fc.constantFrom(-0, 0, Number.MAX_VALUE, -Number.MAX_VALUE, Number.MIN_VALUE, Number.MAX_SAFE_INTEGER + 2, 1e21, 1e-7, 1e-6, 123456789012345680000),
);
const { value } = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small', withCrossShrink: true }, fc.constant(null), fc.boolean(), number, text, tie('array'), tie('object')),
  array: fc.array(fc.oneof(tie('value'), fc.constant(undefined)), { maxLength: 6 }),
  object: fc.dictionary(fc.oneof(text, fc.constantFrom('1', '10', '2', '__proto__', '')), fc.oneof(tie('value'), fc.constant(undefined)), { maxKeys: 8 }),
}));

type Step = { key: string } | { index: number };
const step: fc.Arbitrary<Step> = fc.oneof(fc.record({ key: fc.string({ unit: 'binary', maxLength: 6 }) }), fc.record({ index: fc.nat(4) }));
const pathOf = (steps: Step[]) => `$${steps.map((s) => ('key' in s ? `.${s.key}` : `[${s.index}]`)).join('')}`;

/** Puts `leaf` at the end of `steps`, among valid siblings. */
function nestAt(steps: Step[], leaf: unknown, sibling: unknown): unknown {
  return steps.reduceRight<unknown>((inner, s) => {
    if ('key' in s) return s.key === '~sibling' ? { [s.key]: inner } : { '~sibling': sibling, [s.key]: inner };
    return Array.from({ length: s.index + 2 }, (_, i) => (i === s.index ? inner : sibling));
  }, leaf);
}

function messageOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(TypeError);
    return (error as TypeError).message;
  }
  throw new Error('did not throw');
}

describe('canonicalJson against a reference model', () => {
  it('writes exactly what the reference writes', () => {
    fc.assert(
      fc.property(value, (v) => {
        expect(canonicalJson(v)).toBe(reference(v));
      }),
      { numRuns: 2000 },
    );
  });

  it('writes -0 as 0 and extreme numbers as ECMAScript does', () => {
    expect(canonicalJson([-0, { a: -0 }])).toBe('[0,{"a":0}]');
    expect(canonicalJson([Number.MIN_VALUE, Number.MAX_VALUE, 1e21, 1e-7])).toBe('[5e-324,1.7976931348623157e+308,1e+21,1e-7]');
  });

  it('escapes and sorts what the fast paths skip', () => {
    const v = { b: 'plain ascii', a: 'q"uo\\te', é: '\u0000\u001f\u007f', '\ud83d\ude00': '\u2028', '\uffff': 1, '': [] };
    expect(canonicalJson(v)).toBe(reference(v));
  });

  it('calls toJSON as JSON.stringify does', () => {
    const date = new Date(0);
    expect(canonicalJson({ at: date, nested: { toJSON: () => ({ z: 1, a: [undefined] }) } })).toBe('{"at":"1970-01-01T00:00:00.000Z","nested":{"a":[null],"z":1}}');
  });

  it('refuses a lone surrogate and names where it is', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 5 }), fc.constantFrom('\ud800', '\udfff', 'a\udc00b', '\ud83d\ude00\ud83d', '\ud83d\ud83d\udc00\udc00'), value, (steps, lone, sibling) => {
        expect(messageOf(() => canonicalJson(nestAt(steps, lone, sibling)))).toBe(`canonicalJson: ${pathOf(steps)} holds a lone surrogate, which UTF-8 cannot encode`);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a lone surrogate in a key and names the object', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 5 }), fc.constantFrom('\ud800', 'k\udbff', '\ud83d\ud83d\udc00\udc00'), value, (steps, lone, sibling) => {
        const leaf = { [lone]: sibling ?? 1 };
        expect(messageOf(() => canonicalJson(nestAt(steps, leaf, sibling)))).toBe(`canonicalJson: ${pathOf(steps)} key holds a lone surrogate, which UTF-8 cannot encode`);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses a non-finite number and names where it is', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 5 }), fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY), value, (steps, bad, sibling) => {
        expect(messageOf(() => canonicalJson(nestAt(steps, bad, sibling)))).toBe(`canonicalJson: ${pathOf(steps)} is ${bad}, which JSON cannot represent`);
      }),
      { numRuns: 300 },
    );
  });

  it('refuses lone surrogates around a pair, in a value and in a key', () => {
    // Removing the inner pair of D83D D83D DC00 DC00 joins the outer two: the old regular-expression check let this through.
    const illFormed = '\ud83d\ud83d\udc00\udc00';
    expect(messageOf(() => canonicalJson({ a: [illFormed] }))).toBe('canonicalJson: $.a[0] holds a lone surrogate, which UTF-8 cannot encode');
    expect(messageOf(() => canonicalJson({ a: { [illFormed]: 1 } }))).toBe('canonicalJson: $.a key holds a lone surrogate, which UTF-8 cannot encode');
    expect(messageOf(() => canonicalJson(`x${illFormed}`))).toBe('canonicalJson: $ holds a lone surrogate, which UTF-8 cannot encode');
  });

  it.each([
    ['bigint', 1n],
    ['function', () => 1],
    ['symbol', Symbol('x')],
  ])('refuses a %s and names where it is', (kind, bad) => {
    expect(messageOf(() => canonicalJson({ a: [0, { b: bad }] }))).toBe(`canonicalJson: $.a[1].b is a ${kind}, which JSON cannot represent`);
  });

  it('refuses undefined at the top, also from toJSON', () => {
    expect(messageOf(() => canonicalJson(undefined))).toBe('canonicalJson: the top-level value is undefined');
    expect(messageOf(() => canonicalJson({ toJSON: () => undefined }))).toBe('canonicalJson: the top-level value is undefined');
  });
});
