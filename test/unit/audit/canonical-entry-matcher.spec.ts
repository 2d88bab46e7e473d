import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { canonicalJson } from '../../../src/audit/domain/canonical-json.js';
import { CanonicalEntryMatcher, FAST_PATH_MAX_LENGTH, plainPattern } from '../../../src/audit/verifier/canonical-entry-matcher.js';
import { isCanonicalJsonText } from '../../../src/audit/verifier/canonical-text.js';
import { bundleSchemas } from '../../../src/audit/verifier/schemas.js';
import { ENTRY_KINDS, entryText } from './bundle-fixtures.js';

const { entry: validate, entryMatcher: matcher } = bundleSchemas();

/** What the full checks make of a text: the entry if it is JSON, canonical and schema-valid, else null. */
function fullChecks(text: string): { index: number; kind: string; time: string } | null {
  let entry: { index: number; kind: string; time: string };
  try {
    entry = JSON.parse(text) as typeof entry;
  } catch {
    return null;
  }
  if (!isCanonicalJsonText(text) || !validate(entry)) return null;
  return { index: entry.index, kind: entry.kind, time: entry.time };
}

/** Every text the gateway's kinds can be, from the fixtures: several per kind (n varies the optional parts). */
const samples = ENTRY_KINDS.flatMap((kind) => [2, 3, 17].map((n) => entryText(n, kind)));

/** Characters a mutation puts in: JSON's structure, escapes, digits, and what plain strings exclude. */
const mutationCharacter = fc.constantFrom('"', '\\', ',', ':', '{', '}', '[', ']', '0', '1', '9', '-', '.', 'e', 'a', 'Z', '_', ' ', '\n', '\u0000', '\u007f', 'é', '😀', 'null', 'true', '"index":1', '"x":1');

const mutated = fc
  .tuple(fc.constantFrom(...samples), fc.array(fc.tuple(fc.nat(), fc.nat(3), mutationCharacter), { minLength: 1, maxLength: 3 }))
  .map(([text, edits]) => {
    let result = text;
    for (const [at, remove, insert] of edits) {
      const position = at % (result.length + 1);
      result = result.slice(0, position) + insert + result.slice(position + remove);
    }
    return result;
  });

describe('the fast path of the offline verifier (CanonicalEntryMatcher)', () => {
  it('has a fast path for every kind the gateway writes but an erasure, whose definition is a choice of two forms', () => {
    expect(matcher.kinds.sort()).toEqual(ENTRY_KINDS.filter((kind) => kind !== 'subject.erased').sort());
  });

  it('leaves an erasure that is neither of its two forms to the full checks, which refuse it', () => {
    const bare = '{"id":"ent_0123456789abcdef0123456789abcdef","index":5,"kind":"subject.erased","time":"2026-11-20T10:00:00.000Z","v":1}';
    expect(fullChecks(bare)).toBeNull();
    expect(matcher.match(bare)).toBeNull();
  });

  it.each(samples.map((text) => [JSON.parse(text).kind as string, text]))('takes a %s entry as the full checks do', (kind, text) => {
    expect(fullChecks(text)).not.toBeNull();
    // An erasure's counts by table and by subject type are maps (propertyNames, maxProperties),
    // which have no exact expression: those rare entries take the full checks.
    expect(matcher.match(text)).toEqual(kind === 'subject.erased' ? null : fullChecks(text));
  });

  it('is sound: whatever it accepts, the full checks accept with the same index, kind and time', () => {
    fc.assert(
      fc.property(mutated, (text) => {
        const fast = matcher.match(text);
        if (fast !== null) expect(fast).toEqual(fullChecks(text));
      }),
      { numRuns: 20_000 },
    );
  });

  it('still takes valid entries after edits that keep them valid (extra members of delivery entries, anywhere in key order)', () => {
    const extraKey = fc.stringMatching(/^[a-z][A-Za-z0-9_]{0,12}$/);
    const extraValue = fc.oneof(fc.stringMatching(/^[A-Za-z0-9._:=+/-]{0,20}$/), fc.integer({ min: -1e9, max: 1e9 }), fc.boolean(), fc.constant(null));
    fc.assert(
      fc.property(fc.constantFrom('message.sent', 'message.status', 'message.failed', 'message.cancelled'), fc.dictionary(extraKey, extraValue, { maxKeys: 6 }), (kind, extras) => {
        const entry = JSON.parse(entryText(5, kind)) as Record<string, unknown>;
        const text = canonicalJson({ ...extras, ...entry });
        expect(matcher.match(text)).toEqual(fullChecks(text));
        expect(matcher.match(text)).not.toBeNull();
      }),
      { numRuns: 2_000 },
    );
  });

  it('leaves an entry longer than any the gateway writes to the full checks, which take linear time on any shape', () => {
    // Thousands of extra members: the expression, failing on such a text, could try every way to
    // split them between its groups (a hostile bundle could stall the verifier for hours).
    const entry = JSON.parse(entryText(5, 'message.sent')) as Record<string, unknown>;
    const extras = Object.fromEntries(Array.from({ length: 2_000 }, (_, i) => [`a${String(i).padStart(6, '0')}`, 0]));
    const long = canonicalJson({ ...extras, ...entry });
    expect(long.length).toBeGreaterThan(FAST_PATH_MAX_LENGTH);
    expect(fullChecks(long)).not.toBeNull();
    expect(matcher.match(long)).toBeNull();
    expect(samples.every((text) => text.length < FAST_PATH_MAX_LENGTH / 4)).toBe(true);
  });

  it.each([
    ['keys out of order', (e: string) => e.replace(/^\{"attempt":1,"decision":("[^"]*")/, '{"decision":$1,"attempt":1')],
    ['an escape in a string', (e: string) => e.replace('"share":"shr_', '"share":"\\u0073hr_')],
    ['whitespace', (e: string) => e.replace('":', '": ')],
    ['a duplicated key', (e: string) => e.replace('"attempt":1,', '"attempt":1,"attempt":1,')],
    ['a number not in canonical form', (e: string) => e.replace('"attempt":1', '"attempt":1.0')],
    ['a named member with a value of the other members', (e: string) => e.replace(/"recipient":"[^"]*"/, '"recipient":7')],
    ['a missing required member', (e: string) => e.replace(/,"outbox":"[^"]*"/, '')],
  ])('leaves %s to the full checks', (_label, change) => {
    const text = change(entryText(4, 'message.sent'));
    expect(text).not.toBe(entryText(4, 'message.sent'));
    expect(matcher.match(text)).toBeNull();
  });

  it.each([
    ['consent.granted', 'an unlisted purpose without its digest', (e: string) => e.replace(/,"purposeDigest":"[^"]*"/, '')],
    ['share.decided', 'an unlisted purpose, sealed, without its digest', (e: string) => e.replace(/,"purposeDigest":"[^"]*"/, '')],
    ['consent.withdrawn', 'a digest beside a purpose in clear', (e: string) => e.replace('"purpose":"(unlisted)"', '"purpose":"frontline-updates"')],
    ['share.decided', 'a sealed purpose beside a purpose in clear', (e: string) => e.replace('"purpose":"(unlisted)"', '"purpose":"frontline-updates"').replace(/,"purposeDigest":"[^"]*"/, '')],
  ])('leaves a %s with %s to the full checks, which refuse it', (kind, _label, change) => {
    const text = change(entryText(17, kind));
    expect(text).not.toBe(entryText(17, kind));
    expect(fullChecks(text)).toBeNull();
    expect(matcher.match(text)).toBeNull();
  });

  it('compiles a condition on one member (if it equals a constant: then, else) into both cases', () => {
    const schemaWith = (condition: Record<string, unknown>) =>
      schemaOfKindK({ p: { anyOf: [{ type: 'string', pattern: '^[a-z]+$' }, { const: '?' }] }, d: { type: 'integer' } }, ['p'], condition);
    const conditional = CanonicalEntryMatcher.fromSchema(schemaWith({ if: { properties: { p: { const: '?' } } }, then: { required: ['d'] }, else: { properties: { d: false } } }));
    expect(conditional.kinds).toEqual(['k']);
    // A branch with more than required and forbidden members, or a condition on more than one member's value: full checks.
    expect(CanonicalEntryMatcher.fromSchema(schemaWith({ if: { properties: { p: { const: '?' } } }, then: { minProperties: 5 } })).kinds).toEqual([]);
    expect(CanonicalEntryMatcher.fromSchema(schemaWith({ if: { properties: { p: { const: '?' }, d: { const: 1 } } }, then: { required: ['d'] } })).kinds).toEqual([]);
    const entry = { index: 0, kind: 'k', time: '1' };
    expect(conditional.match('{"d":1,"index":0,"kind":"k","p":"?","time":"1"}')).toEqual(entry);
    expect(conditional.match('{"index":0,"kind":"k","p":"abc","time":"1"}')).toEqual(entry);
    expect(conditional.match('{"index":0,"kind":"k","p":"?","time":"1"}')).toBeNull();
    expect(conditional.match('{"d":1,"index":0,"kind":"k","p":"abc","time":"1"}')).toBeNull();
    expect(conditional.match('{"index":0,"kind":"k","p":"AB","time":"1"}')).toBeNull();
  });

  it('compiles only what it can translate exactly: other constructs fall to the full checks', () => {
    const schemaWith = (properties: Record<string, unknown>, required = Object.keys(properties)) => schemaOfKindK(properties, required);
    const compiles = (properties: Record<string, unknown>) => CanonicalEntryMatcher.fromSchema(schemaWith(properties)).kinds.length === 1;
    expect(compiles({})).toBe(true);
    expect(compiles({ n: { type: 'integer', minimum: 0, maximum: 100 } })).toBe(false);
    expect(compiles({ n: { type: 'number' } })).toBe(false);
    expect(compiles({ s: { type: 'string', format: 'email' } })).toBe(false);
    expect(compiles({ s: { type: 'string', pattern: '^.*$' } })).toBe(false);
    expect(compiles({ o: { type: 'object', additionalProperties: false, properties: { index: { type: 'integer' } } } })).toBe(false);
    expect(compiles({ o: { oneOf: [{ type: 'null' }, { type: 'integer' }] } })).toBe(false);

    const matcherOf = (properties: Record<string, unknown>, required: string[] = []) => CanonicalEntryMatcher.fromSchema(schemaWith(properties, required));
    const bounded = matcherOf({ s: { type: 'string', maxLength: 3 }, a: { type: 'array', maxItems: 2, items: { enum: [1, 2] } } }, ['s', 'a']);
    expect(bounded.match('{"a":[1,2],"index":0,"kind":"k","s":"abc","time":"1"}')).toEqual({ index: 0, kind: 'k', time: '1' });
    expect(bounded.match('{"a":[1,2],"index":0,"kind":"k","s":"abcd","time":"1"}')).toBeNull();
    expect(bounded.match('{"a":[1,2,1],"index":0,"kind":"k","s":"abc","time":"1"}')).toBeNull();
    expect(bounded.match('{"a":[3],"index":0,"kind":"k","s":"abc","time":"1"}')).toBeNull();
    const optional = matcherOf({ a: { type: 'boolean' }, z: { type: 'null' } });
    for (const text of ['{"index":0,"kind":"k","time":"1"}', '{"a":true,"index":0,"kind":"k","time":"1"}', '{"index":0,"kind":"k","time":"1","z":null}']) {
      expect(optional.match(text)).toEqual({ index: 0, kind: 'k', time: '1' });
    }
    expect(optional.match('{,"index":0,"kind":"k","time":"1"}')).toBeNull();
    // An optional member whose schema has no expression: entries without it still take the fast path.
    const unsupported = matcherOf({ n: { type: 'number' } });
    expect(unsupported.match('{"index":0,"kind":"k","time":"1"}')).toEqual({ index: 0, kind: 'k', time: '1' });
    expect(unsupported.match('{"index":0,"kind":"k","n":1.5,"time":"1"}')).toBeNull();
  });

  it('keeps to the shipped schema: every kind of it compiles, but those with more than properties to check', () => {
    const schema = JSON.parse(readFileSync(fileURLToPath(new URL('../../../schemas/audit-entry.schema.json', import.meta.url)), 'utf8')) as Record<string, unknown>;
    const definitions = schema.$defs as Record<string, Record<string, unknown>>;
    const kinds = ((schema.oneOf as { $ref: string }[]) ?? []).map((branch) => branch.$ref.replace('#/$defs/', ''));
    const plain = kinds.filter((kind) => !('oneOf' in definitions[kind]!) && !('anyOf' in definitions[kind]!) && !('allOf' in definitions[kind]!));
    expect(plain.length).toBeGreaterThan(5);
    expect(CanonicalEntryMatcher.fromSchema(schema).kinds.sort()).toEqual(plain.sort());
  });
});

describe('plainPattern: schema patterns that can only match plain characters', () => {
  it.each([
    ['^ps_[A-Za-z0-9_-]{43}$', 'ps_[A-Za-z0-9_-]{43}'],
    ['^[0-9]{4}-[0-9]{2}(\\.[0-9]{1,9})?Z$', '[0-9]{4}-[0-9]{2}(?:\\.[0-9]{1,9})?Z'],
    ['^[A-Za-z0-9_().\\[\\]*-]+$', '[A-Za-z0-9_().\\[\\]*-]+'],
    ['^(image|video)/[a-z0-9.+-]{1,50}$', '(?:image|video)/[a-z0-9.+-]{1,50}'],
    ['^\\d\\w(?:x)$', '\\d\\w(?:x)'],
  ])('takes %s', (pattern, expression) => {
    expect(plainPattern(pattern)).toBe(expression);
  });

  it.each([
    ['not anchored', '[a-z]+'],
    ['only anchored at the start', '^[a-z]+'],
    ['any character', '^a.b$'],
    ['a negated class (takes quotes)', '^[^a]+$'],
    ['a range over the quote', '^[ -~]+$'],
    ['a range over the backslash', '^[A-z]+$'],
    ['a backslash', '^a\\\\b$'],
    ['a quote', '^a"b$'],
    ['whitespace classes', '^\\s$'],
    ['a negated shorthand', '^\\W$'],
    ['a lookahead', '^(?=a)a$'],
    ['a named group', '^(?<n>a)$'],
    ['a back-reference', '^(a)\\1$'],
    ['alternation across the anchors', '^a|b$'],
    ['a non-ASCII character', '^é$'],
    ['an unbalanced group', '^(a$'],
  ])('refuses %s', (_label, pattern) => {
    expect(plainPattern(pattern)).toBeNull();
  });
});

/** An entry schema of one kind, `k`, with these members besides kind, index and time, and these keywords on its definition. */
function schemaOfKindK(properties: Record<string, unknown>, required: string[], keywords: Record<string, unknown> = {}) {
  return {
    type: 'object',
    required: ['kind', 'index', 'time'],
    discriminator: { propertyName: 'kind' },
    oneOf: [{ $ref: '#/$defs/k' }],
    $defs: {
      k: {
        type: 'object',
        additionalProperties: false,
        required: ['kind', 'index', 'time', ...required],
        properties: { kind: { const: 'k' }, index: { type: 'integer', minimum: 0 }, time: { type: 'string', pattern: '^[0-9]+$' }, ...properties },
        ...keywords,
      },
    },
  };
}
