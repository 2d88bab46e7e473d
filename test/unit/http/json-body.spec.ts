import { describe, expect, it } from '@jest/globals';
import { jsonBodyProblems, MAX_JSON_DEPTH } from '../../../src/platform/http/json-body.js';

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
});
