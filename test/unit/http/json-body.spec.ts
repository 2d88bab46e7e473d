import { describe, expect, it } from '@jest/globals';
import { jsonBodyProblems, MAX_JSON_DEPTH, nestsDeeperThan, repeatedMemberNames, REQUEST_SHAPE_LIMITS } from '../../../src/platform/http/json-body.js';

describe('jsonBodyProblems', () => {
  it('accepts what the audit log can hash: finite numbers, surrogate pairs, 64 levels', () => {
    let deep: unknown = 1;
    for (let i = 0; i < MAX_JSON_DEPTH - 1; i++) deep = [deep];
    expect(jsonBodyProblems({ n: -1.7976931348623157e308, s: 'a\ud83d\ude42b', '\ud83d\ude42': null, deep, nul: '\u0000' })).toEqual([]);
  });

  it('names each place a number is out of range or a string or name holds a lone surrogate', () => {
    expect(jsonBodyProblems({ a: [1, Infinity], b: { '\ud800x': 'ok', c: '\udc00' } })).toEqual([
      { path: 'a.1', message: 'must be a number within the range of a double (about ±1.8e308)' },
      { path: 'b.\ud800x', message: 'the name must not contain lone UTF-16 surrogates' },
      { path: 'b.c', message: 'must not contain lone UTF-16 surrogates (\\ud800-\\udfff without their pair)' },
    ]);
    expect(jsonBodyProblems('\ud800')).toEqual([{ path: '(body)', message: 'must not contain lone UTF-16 surrogates (\\ud800-\\udfff without their pair)' }]);
  });

  it('stops at 64 levels without recursion, however deep the body', () => {
    let deep: unknown = [];
    for (let i = 0; i < 1_000_000; i++) deep = [deep];
    expect(jsonBodyProblems(deep)).toEqual([{ path: Array(MAX_JSON_DEPTH).fill('0').join('.'), message: 'must not nest deeper than 64 levels' }]);
  });

  it('names at most 100 problems and counts the rest', () => {
    const problems = jsonBodyProblems(Array(250).fill(-Infinity));
    expect(problems).toHaveLength(101);
    expect(problems.at(-1)).toEqual({ path: '(body)', message: 'and 150 more problem(s) like those above' });
  });

  describe('with the request shape limits', () => {
    const wide = (keys: number) => Object.fromEntries(Array.from({ length: keys }, (_, i) => [`k${i}`, 0]));

    it('takes objects and arrays up to the limits', () => {
      expect(jsonBodyProblems({ post: wide(1000), recipients: Array(1000).fill({ waId: '31612345678' }) }, REQUEST_SHAPE_LIMITS)).toEqual([]);
    });

    it('names an object or an array over its limit without looking inside it', () => {
      expect(jsonBodyProblems({ post: { from: wide(1001) }, recipients: Array(1001).fill(Infinity) }, REQUEST_SHAPE_LIMITS)).toEqual([
        { path: 'post.from', message: 'must not have more than 1000 members' },
        { path: 'recipients', message: 'must not have more than 1000 items' },
      ]);
    });

    it('refuses a body with more members and items in all than its limit, as one problem', () => {
      const body = { a: Array.from({ length: 21 }, () => wide(999)) };
      expect(jsonBodyProblems(body, REQUEST_SHAPE_LIMITS)).toEqual([{ path: '(body)', message: 'must not hold more than 20000 members and array items in all' }]);
      expect(jsonBodyProblems({ a: Array.from({ length: 19 }, () => wide(999)) }, REQUEST_SHAPE_LIMITS)).toEqual([]);
    });

  });
});

describe('nestsDeeperThan', () => {
  it('counts the nesting of arrays and objects, not brackets in strings', () => {
    // Three levels, and strings full of brackets, escaped quotes and a trailing backslash.
    const text = JSON.stringify({ a: [{ b: '[[[["{' }, { c: '\\', d: '"[[[[' }] });
    expect(nestsDeeperThan(Buffer.from(text), 3)).toBe(false);
    expect(nestsDeeperThan(Buffer.from(text), 2)).toBe(true);
    expect(nestsDeeperThan(Buffer.from('{"s":"[[[[[","a":[[{}]]}'), 3)).toBe(true);
    expect(nestsDeeperThan(Buffer.from('{"s":"[[[[[","a":[[]]}'), 3)).toBe(false);
    // A quote after an odd number of backslashes is in the string; after an even number it ends it.
    expect(nestsDeeperThan(Buffer.from(String.raw`["\\\"[[[["]`), 3)).toBe(false);
    expect(nestsDeeperThan(Buffer.from(String.raw`["\\"[[[["]`), 3)).toBe(true);
    expect(nestsDeeperThan(Buffer.from('["never closed [[[['), 3)).toBe(false);
  });
});

describe('repeatedMemberNames', () => {
  it('names each member whose name its object already has, names read as JSON reads them', () => {
    const text = '{"a":1,"b":[{"c":1,"c":2},{"c":3}],"\\u0061":2,"d":{"a":1},"s":"{\\"s\\":1,\\"s\\":2}"}';
    expect(repeatedMemberNames(Buffer.from(text))).toEqual({ paths: ['b.0.c', 'a'], count: 2 });
  });

  it('reads names outside ASCII as the characters they are, escaped or not', () => {
    expect(repeatedMemberNames(Buffer.from('{"é":1,"\\u00e9":2,"ë":3,"😀":4,"\\ud83d\\ude00":5}'))).toEqual({ paths: ['é', '😀'], count: 2 });
  });

  it('finds none where names repeat only across objects, or inside strings', () => {
    expect(repeatedMemberNames(Buffer.from('{"a":{"a":{"a":[{"a":1},{"a":2}]}},"b":"\\"b\\":1,","c":"}{"}'))).toEqual({ paths: [], count: 0 });
  });

  it('names at most 100 and counts the rest', () => {
    const text = `{${Array.from({ length: 250 }, (_, i) => `"k":${i}`).join(',')}}`;
    const repeated = repeatedMemberNames(Buffer.from(text));
    expect([repeated.paths.length, repeated.count]).toEqual([100, 249]);
  });

  it('stops deeper than 64 levels, and at text that is no JSON, leaving both to the parser', () => {
    expect(repeatedMemberNames(Buffer.from(`${'['.repeat(MAX_JSON_DEPTH)}{"a":1,"a":2}`))).toEqual({ paths: [], count: 0 });
    expect(repeatedMemberNames(Buffer.from(`${'['.repeat(MAX_JSON_DEPTH - 1)}{"a":1,"a":2}`)).count).toBe(1);
    expect(repeatedMemberNames(Buffer.from('{"a":1,"a'))).toEqual({ paths: [], count: 0 });
  });
});
