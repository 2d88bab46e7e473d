import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { canonicalWhatsAppId, SUBJECT_ID_PATTERNS, subjectForms, whatsAppIdForms } from './subject.js';

describe('canonicalWhatsAppId', () => {
  it.each([
    ['551187654321', '5511987654321', 'a Brazilian mobile registered before the ninth digit'],
    ['552161234567', '5521961234567', 'another area code, a subscriber from 6'],
    ['5215512345678', '525512345678', 'a Mexican mobile with the old 1'],
  ])('reads %s as %s (%s)', (old, current) => {
    expect(canonicalWhatsAppId(old)).toBe(current);
  });

  it.each([
    ['5511987654321', "a Brazilian mobile as dialled today"],
    ['551132654321', 'a Brazilian landline (8 digits from 2 to 5)'],
    ['550187654321', 'no Brazilian area code has a 0'],
    ['525512345678', 'a Mexican number as dialled today'],
    ['31612345678', 'a Dutch mobile'],
    ['5411987654321', 'an Argentinian number, whose forms cannot be told apart'],
  ])('leaves %s as it is (%s)', (id) => {
    expect(canonicalWhatsAppId(id)).toBe(id);
  });

  it('gives both forms of any Brazilian mobile the same id', () => {
    const digit = (from: number) => fc.integer({ min: from, max: 9 }).map(String);
    fc.assert(
      fc.property(digit(1), digit(1), digit(6), fc.stringMatching(/^[0-9]{7}$/), (a, b, first, rest) => {
        expect(canonicalWhatsAppId(`55${a}${b}${first}${rest}`)).toBe(canonicalWhatsAppId(`55${a}${b}9${first}${rest}`));
      }),
    );
  });

  it('gives an id that is itself canonical and still a valid WhatsApp id', () => {
    fc.assert(
      fc.property(fc.stringMatching(SUBJECT_ID_PATTERNS.whatsapp), (id) => {
        const canonical = canonicalWhatsAppId(id);
        expect(canonicalWhatsAppId(canonical)).toBe(canonical);
        expect(canonical).toMatch(SUBJECT_ID_PATTERNS.whatsapp);
      }),
    );
  });
});

describe('whatsAppIdForms', () => {
  it.each([
    ['5491123456789', ['5491123456789', '541123456789'], 'an Argentinian mobile as WhatsApp names it'],
    ['541123456789', ['541123456789', '5491123456789'], 'the same number without the 9'],
    ['542614123456', ['542614123456', '5492614123456'], 'a Mendoza number (area code 261)'],
    ['31612345678', ['31612345678'], 'a Dutch mobile'],
    ['5411234567890', ['5411234567890'], 'eleven digits after 54: not an Argentinian number'],
    ['544123456789', ['544123456789'], 'no Argentinian area code begins with 4'],
    ['5215512345678', ['5215512345678'], 'a Mexican number (read by canonicalWhatsAppId, not here)'],
  ])('gives %s the forms %j (%s)', (id, forms) => {
    expect(whatsAppIdForms(id)).toEqual(forms);
  });

  it('gives each form of a number the same set of forms, each a valid WhatsApp id', () => {
    fc.assert(
      fc.property(fc.stringMatching(SUBJECT_ID_PATTERNS.whatsapp), (id) => {
        const forms = whatsAppIdForms(id);
        expect(forms[0]).toBe(id);
        for (const form of forms) {
          expect(form).toMatch(SUBJECT_ID_PATTERNS.whatsapp);
          expect(new Set(whatsAppIdForms(form))).toEqual(new Set(forms));
        }
      }),
    );
    fc.assert(
      fc.property(fc.stringMatching(/^[1-3][0-9]{9}$/), (number) => {
        expect(new Set(whatsAppIdForms(`54${number}`))).toEqual(new Set([`54${number}`, `549${number}`]));
      }),
    );
  });
});

describe('subjectForms', () => {
  it('gives a WhatsApp contact under each form of their number, anyone else as they are', () => {
    expect(subjectForms({ type: 'whatsapp', id: '541123456789' })).toEqual([
      { type: 'whatsapp', id: '541123456789' },
      { type: 'whatsapp', id: '5491123456789' },
    ]);
    expect(subjectForms({ type: 'whatsapp', id: '31612345678' })).toEqual([{ type: 'whatsapp', id: '31612345678' }]);
    // A Workplace id that happens to look like an Argentinian number is one id.
    expect(subjectForms({ type: 'workplace', id: '541123456789' })).toEqual([{ type: 'workplace', id: '541123456789' }]);
  });
});
