import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { canonicalJson } from '../../../src/audit/domain/canonical-json.js';
import { isCanonicalJsonText } from '../../../src/audit/verifier/canonical-text.js';
import { entryText } from './bundle-fixtures.js';

/** The definition the one-pass check must agree with: the text is what canonicalJson makes of it. */
function reference(text: string): boolean {
  try {
    return canonicalJson(JSON.parse(text)) === text;
  } catch {
    return false;
  }
}

const check = (text: string) => {
  JSON.parse(text); // the check's precondition
  return isCanonicalJsonText(text);
};

describe('the canonical-form check of the offline verifier', () => {
  it.each([
    ['an entry', entryText(2)],
    ['nesting and every scalar', '{"a":[1,-2,3.5,1e+21,1e-7,true,false,null,"x",{},[]],"b":{"c":{"d":[[]]}}}'],
    ['the short escapes, \\u00xx and a raw DEL', '{"s":"\\"\\\\\\b\\f\\n\\r\\t\\u0000\\u001f\u007f"}'],
    ['non-ASCII as is', '{"€":"é😀","😀":"\u2028"}'],
    ['keys in UTF-16 order (a BMP character above surrogates sorts after an astral one)', '{"😀":1,"\uff01":2}'],
    ['numeric keys in string order', '{"10":1,"9":2}'],
    ['a top-level scalar', '"plain"'],
    ['the largest exact integer', '{"n":9007199254740991}'],
    ['an empty key first', '{"":1,"a":2}'],
  ])('accepts %s', (_label, text) => {
    expect(reference(text)).toBe(true);
    expect(check(text)).toBe(true);
  });

  it.each([
    ['whitespace between tokens', '{"a": 1}'],
    ['a trailing newline', '{"a":1}\n'],
    ['keys out of order', '{"b":1,"a":2}'],
    ['a repeated key', '{"a":1,"a":1}'],
    ['numeric keys in number order', '{"9":1,"10":2}'],
    ['keys in code-point order', '{"\uff01":2,"😀":1}'],
    ['an escaped key out of order', '{"b":1,"\\u0061":2}'],
    ['a trailing zero', '{"n":1.0}'],
    ['an exponent that is not ECMAScript\'s', '{"n":1E3}'],
    ['a big integer written out', '{"n":1000000000000000000000}'],
    ['an unsafe integer', '{"n":9007199254740993}'],
    ['minus zero', '{"n":-0}'],
    ['a number beyond double', '{"n":1e400}'],
    ['an escaped solidus', '{"s":"a\\/b"}'],
    ['an escaped printable character', '{"s":"\\u0041"}'],
    ['an upper-case \\u escape', '{"s":"\\u001F"}'],
    ['\\u00xx where a short escape exists', '{"s":"\\u000a"}'],
    ['an escaped lone surrogate', '{"s":"\\ud800"}'],
    ['an escaped surrogate pair', '{"s":"\\ud83d\\ude00"}'],
    ['a raw lone surrogate', '{"s":"\ud800"}'],
    ['a raw lone low surrogate', '{"s":"x\udc00"}'],
    ['an escaped DEL', '{"s":"\\u007f"}'],
  ])('refuses %s', (_label, text) => {
    expect(reference(text)).toBe(false);
    expect(check(text)).toBe(false);
  });

  it('compares escaped keys by what they stand for, also when the first quote after an escape closes the key', () => {
    // "\\" is one backslash, which sorts before a backslash and a quote: found by the property below.
    const text = canonicalJson({ '': { '\\': null, '\\"': '' } });
    expect(text).toBe('{"":{"\\\\":null,"\\\\\\"":""}}');
    expect(check(text)).toBe(true);
    expect(check('{"":{"\\\\\\"":"","\\\\":null}}')).toBe(false);
  });

  it('agrees with canonicalJson(JSON.parse(text)) === text on any JSON value, canonical or re-serialised', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.constantFrom<'canonical' | 'stringify' | 'pretty'>('canonical', 'stringify', 'pretty'), (value, form) => {
        const text = form === 'canonical' ? canonicalJson(value) : form === 'stringify' ? JSON.stringify(value) : JSON.stringify(value, null, 1);
        expect(check(text)).toBe(reference(text));
      }),
      { numRuns: 2000 },
    );
  });

  it('agrees with the definition on arbitrary strings, escapes and numbers', () => {
    const token = fc.oneof(
      fc.string({ unit: 'binary' }).map((s) => JSON.stringify(s)),
      fc.constantFrom('"\\u0000"', '"\\u00e9"', '"\\/"', '"\\ud83d\\ude00"', '"\\uDBFF\\uDFFF"', '"\\u001f"', '"\\b"'),
      fc.double({ noNaN: true, noDefaultInfinity: true }).map(String),
      fc.constantFrom('0', '-0', '1.50', '2e0', '1e21', '1e+21', '0.000001', '1e-7', '123456789012345678', '-1'),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.string({ maxLength: 3 }), token), { maxLength: 5 }), (members) => {
        const text = `{${members.map(([key, value]) => `${JSON.stringify(key)}:${value}`).join(',')}}`;
        let valid = true;
        try {
          JSON.parse(text);
        } catch {
          valid = false;
        }
        if (valid) expect(isCanonicalJsonText(text)).toBe(reference(text));
      }),
      { numRuns: 3000 },
    );
  });
});
