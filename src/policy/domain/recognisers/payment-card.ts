import { continuesAsNumber, digitsOf, isDigitCode, type Recogniser, type Span } from './context.js';

const FROM_13_TO_19 = [13, 14, 15, 16, 17, 18, 19];
const FROM_14_TO_19 = [14, 15, 16, 17, 18, 19];
const FROM_16_TO_19 = [16, 17, 18, 19];

/** Issuer ranges: the number's first `digits` digits lie in [from, to] and its length is one of `lengths`. */
const ISSUER_RANGES: readonly { digits: number; from: number; to: number; lengths: readonly number[] }[] = [
  { digits: 1, from: 4, to: 4, lengths: [13, 16, 19] }, // Visa
  { digits: 2, from: 51, to: 55, lengths: [16] }, // Mastercard
  { digits: 4, from: 2221, to: 2720, lengths: [16] }, // Mastercard 2-series
  { digits: 2, from: 34, to: 34, lengths: [15] }, // American Express
  { digits: 2, from: 37, to: 37, lengths: [15] }, // American Express
  { digits: 3, from: 300, to: 305, lengths: FROM_14_TO_19 }, // Diners Club
  { digits: 2, from: 36, to: 36, lengths: FROM_14_TO_19 }, // Diners Club
  { digits: 2, from: 38, to: 39, lengths: FROM_14_TO_19 }, // Diners Club
  { digits: 4, from: 3528, to: 3589, lengths: FROM_16_TO_19 }, // JCB
  { digits: 4, from: 2200, to: 2204, lengths: FROM_16_TO_19 }, // Mir
  { digits: 2, from: 50, to: 50, lengths: FROM_13_TO_19 }, // Maestro
  // Maestro, Discover (6011, 644-649, 65), UnionPay (62) and the other debit schemes of 56-69.
  { digits: 2, from: 56, to: 69, lengths: FROM_13_TO_19 },
];

/**
 * 13-19 digits, compact or in three to six groups (the first of four digits) joined by separators
 * as people type them, mixed too: one or two spaces (also no-break ones), a dash, dot or slash, or
 * a dash between spaces ("4111  1111-1111 1111"). Not a dot or slash with spaces around it: that
 * lists numbers ("5615 / 5612 / 5613 / 5614"). Luhn and the issuer prefix keep out what else looks
 * like this. An underscore around it is Markdown italics.
 */
const CARD_CANDIDATE = /(?<![\p{L}\p{N}.,/+-])\d{4}(?:(?:(?:[ \u00a0\u202f]{1,2}|[./-]|[ \u00a0\u202f]-[ \u00a0\u202f])\d{1,6}){2,5}|\d{9,15})(?![\p{L}\p{N}])/gu;

/** Payment card numbers: Luhn-valid, 13-19 digits, with a known issuer prefix for that length. */
export const paymentCardRecogniser: Recogniser = {
  minDigits: 13,
  find(text) {
    const spans: Span[] = [];
    CARD_CANDIDATE.lastIndex = 0;
    for (let match = CARD_CANDIDATE.exec(text); match; match = CARD_CANDIDATE.exec(text)) {
      const start = match.index;
      const length = cardLength(text, start, match[0]);
      if (length !== undefined) spans.push({ start, end: start + length });
      // Go on inside the candidate: a card may start there, also when this one will lose an overlap.
      CARD_CANDIDATE.lastIndex = start + 1;
    }
    return spans;
  },
};

/** Length of the card number at the start of the candidate; its last groups may belong to what follows (an expiry date, a year). */
function cardLength(text: string, start: number, candidate: string): number | undefined {
  let runsOn = continuesAsNumber(text, start + candidate.length);
  for (let part = candidate, digits = digitsOf(part); digits.length >= 13; digits = digitsOf(part)) {
    if (!runsOn && hasIssuerPrefix(digits) && passesLuhn(digits)) return part.length;
    part = withoutLastGroup(part);
    runsOn = false;
  }
  return undefined;
}

/** The part before the last group of digits and the separators before it; empty for a compact number. */
function withoutLastGroup(part: string): string {
  let end = part.length;
  while (end > 0 && isDigitCode(part.charCodeAt(end - 1))) end--;
  while (end > 0 && !isDigitCode(part.charCodeAt(end - 1))) end--;
  return part.slice(0, end);
}

function hasIssuerPrefix(digits: string): boolean {
  return ISSUER_RANGES.some((range) => {
    const prefix = Number(digits.slice(0, range.digits));
    return prefix >= range.from && prefix <= range.to && range.lengths.includes(digits.length);
  });
}

function passesLuhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let digit = digits.charCodeAt(digits.length - 1 - i) - 0x30;
    if (i % 2 === 1) {
      digit *= 2;
      if (digit > 9) digit -= 9;
    }
    sum += digit;
  }
  return sum % 10 === 0;
}
