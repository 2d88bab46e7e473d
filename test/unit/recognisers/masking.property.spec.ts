import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { findPii, replaceFindings } from '../../../src/policy/domain/recognisers/index.js';

// The check digits are computed here, independently of the recognisers under test.

const digit = fc.integer({ min: 0, max: 9 }).map(String);
const upper = fc.integer({ min: 0, max: 25 }).map((i) => String.fromCharCode(0x41 + i));
const digits = (length: number) => fc.array(digit, { minLength: length, maxLength: length }).map((d) => d.join(''));
const letters = (length: number) => fc.array(upper, { minLength: length, maxLength: length }).map((l) => l.join(''));
const alphanumerics = (length: number) => fc.array(fc.oneof(digit, upper), { minLength: length, maxLength: length }).map((c) => c.join(''));

/** ISO 7064 MOD 97-10 over a string of digits and capital letters (A = 10 ... Z = 35). */
function mod97(value: string): number {
  const numeric = [...value].map((c) => (c >= 'A' ? String(c.charCodeAt(0) - 55) : c)).join('');
  return Number(BigInt(numeric) % 97n);
}

/** Basic bank account number layouts of some IBAN countries (from the IBAN registry). */
const BBANS: Record<string, fc.Arbitrary<string>> = {
  NL: fc.tuple(letters(4), digits(10)).map(([bank, account]) => bank + account),
  BE: digits(12),
  DE: digits(18),
  GB: fc.tuple(letters(4), digits(14)).map(([bank, account]) => bank + account),
  FR: fc.tuple(digits(10), alphanumerics(11), digits(2)).map((parts) => parts.join('')),
  ES: digits(20),
  IT: fc.tuple(letters(1), digits(10), alphanumerics(12)).map((parts) => parts.join('')),
  AT: digits(16),
};

const iban = fc
  .constantFrom(...Object.keys(BBANS))
  .chain((country) => BBANS[country]!.map((bban) => ({ country, bban })))
  .map(({ country, bban }) => `${country}${String(98 - mod97(`${bban}${country}00`)).padStart(2, '0')}${bban}`);

const bsn = digits(8)
  .map((first) => {
    const weighted = [...first].reduce((sum, d, i) => sum + Number(d) * (9 - i), 0);
    return { first, check: weighted % 11 };
  })
  // A check digit of 10 cannot be written, and all zeros is no BSN.
  .filter(({ first, check }) => check < 10 && !(first === '00000000' && check === 0))
  .map(({ first, check }) => `${first}${check}`);

function luhnCheckDigit(payload: string): number {
  const sum = [...payload].reverse().reduce((total, d, i) => {
    const doubled = i % 2 === 0 ? Number(d) * 2 : Number(d);
    return total + (doubled > 9 ? doubled - 9 : doubled);
  }, 0);
  return (10 - (sum % 10)) % 10;
}

const ISSUERS = [
  { prefix: '4', length: 16 },
  { prefix: '4', length: 13 },
  { prefix: '51', length: 16 },
  { prefix: '55', length: 16 },
  { prefix: '2221', length: 16 },
  { prefix: '34', length: 15 },
  { prefix: '37', length: 15 },
  { prefix: '6011', length: 16 },
];

const card = fc
  .constantFrom(...ISSUERS)
  .chain(({ prefix, length }) => digits(length - prefix.length - 1).map((body) => prefix + body))
  .map((payload) => payload + luhnCheckDigit(payload));

const email = fc
  .tuple(
    fc.stringMatching(/^[a-z][a-z0-9]{0,8}(?:[._+-][a-z0-9]{1,6})?$/),
    fc.stringMatching(/^[a-z][a-z0-9]{1,10}(?:-[a-z0-9]{1,5})?$/),
    fc.constantFrom('nl', 'com', 'org', 'eu', 'co.uk', 'io', 'de'),
  )
  .map(([local, domain, tld]) => `${local}@${domain}.${tld}`);

const DUTCH_MOBILE_FORMATS = [
  (n: string) => `06-${n}`,
  (n: string) => `06 ${n}`,
  (n: string) => `06${n}`,
  (n: string) => `06 ${n.slice(0, 4)} ${n.slice(4)}`,
  (n: string) => `06 ${n.slice(0, 2)} ${n.slice(2, 4)} ${n.slice(4, 6)} ${n.slice(6)}`,
  (n: string) => `06.${n.slice(0, 2)}.${n.slice(2, 4)}.${n.slice(4, 6)}.${n.slice(6)}`,
  (n: string) => `+31 6 ${n}`,
  (n: string) => `+316${n}`,
  (n: string) => `+31 (0)6 ${n.slice(0, 4)} ${n.slice(4)}`,
  (n: string) => `0031 6 ${n}`,
];

// Dutch mobile numbers are 06 followed by eight digits, the first of them 1-5.
const dutchMobile = fc
  .tuple(fc.integer({ min: 1, max: 5 }), digits(7), fc.constantFrom(...DUTCH_MOBILE_FORMATS))
  .map(([first, rest, format]) => format(`${first}${rest}`));

const ipv4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((octets) => octets.join('.'));

const inGroupsOfFour = (value: string) => value.replace(/(.{4})(?=.)/g, '$1 ');

interface Inserted {
  /** As written in the text. */
  written: string;
  /** The digits that must not survive masking, for the numbers whose digits are the secret. */
  secretDigits?: string;
}

const insertedValue: fc.Arbitrary<Inserted> = fc.oneof(
  fc.tuple(iban, fc.boolean()).map(([value, grouped]) => ({ written: grouped ? inGroupsOfFour(value) : value, secretDigits: value.replace(/\D/g, '') })),
  // A compact BSN needs a context word; the grouping printed on ID documents does not.
  fc
    .tuple(bsn, fc.constantFrom('BSN ', 'BSN: ', 'burgerservicenummer ', 'sofinummer ', 'citizen service number ', '#4-2-3', '#3.3.3'))
    .map(([value, form]) => {
      const written =
        form === '#4-2-3' ? `${value.slice(0, 4)} ${value.slice(4, 6)} ${value.slice(6)}` : form === '#3.3.3' ? `${value.slice(0, 3)}.${value.slice(3, 6)}.${value.slice(6)}` : `${form}${value}`;
      return { written, secretDigits: value };
    }),
  fc.tuple(card, fc.constantFrom('', ' ', '-')).map(([value, separator]) => {
    const written = separator === '' ? value : value.length === 15 ? [value.slice(0, 4), value.slice(4, 10), value.slice(10)].join(separator) : inGroupsOfFour(value).replaceAll(' ', separator);
    return { written, secretDigits: value };
  }),
  email.map((written) => ({ written })),
  dutchMobile.map((written) => ({ written })),
  ipv4.map((written) => ({ written })),
);

// Neutral words only: no context word that would (rightly) stop a number from being taken.
const filler = fc.constantFrom('hallo', 'team', 'morgen', 'vergadering', 'koffie', 'rooster', 'dienst', 'collega', 'graag', 'dank', 'the', 'meeting', 'tomorrow', 'please', 'thanks', 'shift', 'colleague', 'en', 'and', 'of', 'or', 'met', 'with', 'voor', 'for', 'nieuw', 'new', '👍', 'café');
const joiner = fc.constantFrom(' ', ', ', '; ', ' / ', '\n', ' - ', ': ');

const post = fc
  .array(fc.oneof({ arbitrary: filler.map((word) => ({ written: word }) as Inserted), weight: 2 }, { arbitrary: insertedValue, weight: 1 }), { minLength: 1, maxLength: 14 })
  .chain((parts) => fc.array(joiner, { minLength: parts.length, maxLength: parts.length }).map((joiners) => ({ parts, joiners })))
  .map(({ parts, joiners }) => ({
    text: parts.map((part, i) => (i === 0 ? '' : joiners[i]) + part.written).join(''),
    inserted: parts.filter((part) => part.written !== part.written.replace(/[\d@]/g, '')),
  }));

/** Where the decimal digits of some scripts begin: ASCII, Arabic-Indic, Persian, Devanagari, Bengali, Thai, full-width, mathematical bold and monospace. */
const DIGIT_ZEROS = [0x30, 0x660, 0x6f0, 0x966, 0x9e6, 0xe50, 0xff10, 0x1d7ce, 0x1d7f6];
/** Characters a phone shows as nothing (or as nothing between two digits). */
const INVISIBLES = ['\u200d', '\u200c', '\u200e', '\u200f', '\u061c', '\u2060', '\u2062', '\u2063', '\u034f', '\ufe0f', '\u180e', '\u3164', '\u{e0020}', '\u200b', '\u00ad'];
/** Spaces of every width, and what a phone shows as a space or line break: a tab, line breaks, the blank braille pattern. */
const SPACES = [' ', '\u00a0', '\u2007', '\u202f', '\u3000', '\n', '\t', '\u2028', '\u2029', '\u0085', '\u2800'];
const DASHES = ['-', '\u2011', '\u2013', '\u2212', '\uff0d'];
/** WhatsApp's markers for bold, italics, strike-through and monospace, put after a digit. */
const MARKERS = ['*', '_', '~', '```'];

/** One choice per character of a value: how its character is written, what invisible follows it, and what marker after a digit. */
const disguises = (length: number) => fc.array(fc.tuple(fc.nat(), fc.nat(INVISIBLES.length * 2), fc.nat(MARKERS.length * 3)), { minLength: length, maxLength: length });

/** The value as a reader still reads it: other digits, full-width forms, other spaces and dashes, invisible characters, markers. */
function disguise(written: string, choices: [number, number, number][]): string {
  return [...written]
    .map((c, i) => {
      const [form, invisible, marker] = choices[i]!;
      const code = c.charCodeAt(0);
      let shown = c;
      if (c >= '0' && c <= '9') shown = String.fromCodePoint(DIGIT_ZEROS[form % DIGIT_ZEROS.length]! + code - 0x30) + (MARKERS[marker] ?? '');
      else if (c === ' ') shown = SPACES[form % SPACES.length]!;
      else if (c === '-') shown = DASHES[form % DASHES.length]!;
      else if (code > 0x20 && code < 0x7f && form % 2 === 1) shown = String.fromCharCode(code + 0xfee0);
      return shown + (INVISIBLES[invisible] ?? '');
    })
    .join('');
}

/** Text folded back to ASCII by this test's own tables, to look for what a reader would still see. */
function asReaderSees(text: string): string {
  return [...text]
    .filter((c) => !INVISIBLES.includes(c))
    .map((c) => {
      const code = c.codePointAt(0)!;
      const zero = DIGIT_ZEROS.find((z) => code >= z && code < z + 10);
      if (zero !== undefined) return String(code - zero);
      if (SPACES.includes(c)) return ' ';
      if (DASHES.includes(c)) return '-';
      return code > 0xff00 && code < 0xff5f ? String.fromCharCode(code - 0xfee0) : c;
    })
    .join('')
    .replace(/[*_~`]+(?=\d)|(?<=\d)[*_~`]+/g, '');
}

const disguisedPost = fc
  .array(
    fc.oneof(
      { arbitrary: filler.map((word) => ({ written: word, shown: word }) as Inserted & { shown: string }), weight: 2 },
      { arbitrary: insertedValue.chain((value) => disguises([...value.written].length).map((choices) => ({ ...value, shown: disguise(value.written, choices) }))), weight: 1 },
    ),
    { minLength: 1, maxLength: 10 },
  )
  .map((parts) => ({ text: parts.map((part) => part.shown).join(' '), inserted: parts.filter((part) => part.written !== part.written.replace(/[\d@]/g, '')) }));

describe('masking property', () => {
  it('leaves none of the inserted values readable when they are written in other digits, full-width forms, with invisible characters, line breaks or markers', () => {
    fc.assert(
      fc.property(disguisedPost, ({ text, inserted }) => {
        const masked = asReaderSees(replaceFindings(text, findPii(text), 'mask').text);
        const maskedDigits = masked.replace(/\D/g, '');
        for (const value of inserted) {
          expect(masked).not.toContain(value.written);
          if (value.secretDigits) expect(maskedDigits).not.toContain(value.secretDigits);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('leaves none of the inserted values, nor the digits of an IBAN, BSN or card, in the masked text', () => {
    fc.assert(
      fc.property(post, ({ text, inserted }) => {
        const masked = replaceFindings(text, findPii(text), 'mask').text;
        const maskedDigits = masked.replace(/\D/g, '');
        for (const value of inserted) {
          expect(masked).not.toContain(value.written);
          if (value.secretDigits) expect(maskedDigits).not.toContain(value.secretDigits);
        }
      }),
      { numRuns: 500 },
    );
  });

  it.each([
    ['fc.string()', fc.string({ maxLength: 300 })],
    ['full Unicode strings', fc.string({ unit: 'binary', maxLength: 300 })],
    ['UTF-16 code units, lone surrogates included', fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)), maxLength: 300 })],
    ['number-like strings', fc.string({ unit: fc.constantFrom(...'0123456789 +-./:()@,abcfNLBE€\u00a0'), maxLength: 300 })],
  ])('never throws and returns ordered, disjoint findings inside the text on %s', (_name, strings) => {
    fc.assert(
      fc.property(strings, (text) => {
        const findings = findPii(text);
        let previousEnd = 0;
        for (const finding of findings) {
          expect(finding.start).toBeGreaterThanOrEqual(previousEnd);
          expect(finding.end).toBeGreaterThan(finding.start);
          expect(finding.end).toBeLessThanOrEqual(text.length);
          previousEnd = finding.end;
        }
        expect(() => replaceFindings(text, findings, 'redact')).not.toThrow();
      }),
      { numRuns: 300 },
    );
  });
});
