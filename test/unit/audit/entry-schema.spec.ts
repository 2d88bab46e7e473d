import { describe, expect, it } from '@jest/globals';
import { bundleSchemas, describeSchemaError } from '../../../src/audit/verifier/schemas.js';
import { ENTRY_KINDS, entryText } from './bundle-fixtures.js';

const validate = (entry: unknown) => {
  const { entry: validator } = bundleSchemas();
  return validator(entry) ? 'valid' : describeSchemaError(validator.errors);
};

const entryOf = (kind: string, index = 1): Record<string, unknown> => JSON.parse(entryText(index, kind)) as Record<string, unknown>;

describe('schemas/audit-entry.schema.json', () => {
  it.each(ENTRY_KINDS)('accepts a %s entry as the services write it', (kind) => {
    expect(validate(entryOf(kind, 2))).toBe('valid');
    expect(validate(entryOf(kind, 3))).toBe('valid');
  });

  it.each(['share.decided', 'consent.granted', 'consent.withdrawn'])('accepts a %s entry whose purpose no policy names: (unlisted), with its digest', (kind) => {
    const entry = entryOf(kind, 17);
    expect(entry).toMatchObject({ purpose: '(unlisted)', purposeDigest: expect.stringMatching(/^hd_/) });
    expect(validate(entry)).toBe('valid');
  });

  it.each<[string, string, (e: Record<string, unknown>) => unknown, RegExp]>([
    ['an unlisted purpose without its digest', 'consent.granted', ({ purposeDigest: _d, ...e }) => e, /must have required property 'purposeDigest'/],
    ['an unlisted share purpose sealed but without its digest', 'share.decided', ({ purposeDigest: _d, ...e }) => e, /must have required property 'purposeDigest'/],
    ['a digest beside a purpose in clear', 'consent.withdrawn', (e) => ({ ...e, purpose: 'frontline-updates' }), /purposeDigest must not be present/],
    ['a sealed purpose beside a purpose in clear', 'share.decided', ({ purposeDigest: _d, ...e }) => ({ ...e, purpose: 'frontline-updates' }), /purposeSealed must not be present/],
  ])('refuses %s: (unlisted) goes with purposeDigest, and only it has purposeSealed', (_label, kind, change, message) => {
    expect(validate(change(entryOf(kind, 17)))).toMatch(message);
  });

  it('accepts a decision without content or policy, and an index as the decision of older message entries', () => {
    const denied = { ...entryOf('share.decided'), policy: { name: null, bundle: `sha256:${'0'.repeat(64)}` }, lawfulBasis: null, status: 'denied', reasons: ['policy.none_matches'], content: null };
    expect(validate(denied)).toBe('valid');
    expect(validate({ ...entryOf('message.sent'), decision: 4 })).toBe('valid');
  });

  it.each<[string, string, (e: Record<string, unknown>) => unknown, RegExp]>([
    ['an unknown kind', 'consent.granted', (e) => ({ ...e, kind: 'consent.maybe' }), /kind/],
    ['another version', 'consent.granted', (e) => ({ ...e, v: 2 }), /v must be equal to constant/],
    ['a missing field', 'consent.granted', ({ purpose: _purpose, ...e }) => e, /must have required property 'purpose'/],
    ['a field no kind has', 'share.decided', (e) => ({ ...e, note: 'called Anna about it' }), /must NOT have additional properties \(note\)/],
    ['a phone number where a pseudonym belongs', 'consent.granted', (e) => ({ ...e, subject: '+31612345678' }), /subject must match pattern/],
    ['a name among the recipients', 'share.decided', (e) => ({ ...e, recipients: [{ subject: 'Anna de Vries', decision: 'allowed', reasons: [] }] }), /recipients\.0\.subject/],
    ['the message text in the clear', 'share.decided', (e) => ({ ...e, content: { type: 'text', digest: 'hd_x', length: 5, text: 'hello' } }), /content/],
    ['free text in a delivery entry', 'message.failed', (e) => ({ ...e, error: 'Anna de Vries could not be reached' }), /error/],
    ['a negative index', 'policy.activated', (e) => ({ ...e, index: -1 }), /index must be >= 0/],
    ['a time that is not UTC ISO 8601', 'policy.activated', (e) => ({ ...e, time: '20 Nov 2026' }), /time must match pattern/],
    ['an erasure naming neither a subject nor a retention sweep', 'subject.erased', ({ subject: _s, subjectType: _t, reason: _r, cutoff: _c, keys: _k, ...e }) => e, /must have required property 'subject'/],
    ['an erasure with a name in it', 'subject.erased', (e) => ({ ...e, subject: 'Pieter Jansen' }), /subject must match pattern/],
    ['a purpose that is not a code', 'consent.granted', (e) => ({ ...e, purpose: 'Jan de Vries, private' }), /purpose/],
    ['a purpose in clear where its digest belongs', 'consent.withdrawn', (e) => ({ ...e, purpose: '(unlisted)', purposeDigest: 'jan-de-vries-private' }), /purposeDigest must match pattern/],
    ['a purpose in clear where it is sealed', 'share.decided', (e) => ({ ...e, purpose: '(unlisted)', purposeDigest: e.post, purposeSealed: 'jan-de-vries-private' }), /purposeSealed must match pattern/],
    ['a sealed purpose in a consent entry (the ledger keeps it)', 'consent.granted', (e) => ({ ...e, purposeSealed: 'sealed:v1:abc' }), /must NOT have additional properties \(purposeSealed\)/],
  ])('refuses %s', (_label, kind, change, message) => {
    expect(validate(change(entryOf(kind, 2)))).toMatch(message);
  });
});
