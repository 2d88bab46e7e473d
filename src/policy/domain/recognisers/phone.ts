import { parsePhoneNumberFromString } from 'libphonenumber-js/max';
import { contextBefore, continuesAsNumber, digitsOf, isWordCharAt, type ContextWords, type Recogniser, type Span } from './context.js';

const PHONE_CONTEXT: ContextWords = {
  supporting: [
    'tel:', 'tel.', 'tel ', 'telnr', 'telefoon', 'telephone', 'telefonisch', 'phone', 'bel ', 'belt ', 'bellen', 'gebeld', 'call', 'mobiel',
    'mobile', 'gsm', 'whatsapp', 'app ', 'sms', 'text me', 'fax', 'bereikbaar', 'reach', 'contact', 'cell', 'ring', 'mijn nummer',
    "m'n nummer", 'je nummer', 'jouw nummer', 'uw nummer', 'zijn nummer', 'haar nummer', 'my number', 'your number', 'his number', 'her number',
  ],
  opposing: [
    'order', 'bestel', 'factuur', 'invoice', 'klantnummer', 'customer', 'ticket', 'tracking', 'zending', 'pakket', 'parcel', 'referentie',
    'reference', 'ref ', 'ref.', 'kenmerk', 'dossier', 'artikel', 'article', 'serienummer', 'serial', 'kvk', 'btw', 'bedrag', 'amount', '€',
  ],
};

const SPACE = String.raw`[ \u00a0]`;
/** Between digit groups: one space, or a dash (also U+2010-2013), dot or slash with optional spaces around it. */
const SEPARATOR = String.raw`(?:${SPACE}?[-\u2010-\u2013./]${SPACE}?|${SPACE})`;
/** A digit group, an area code in brackets, or the "(0)" of "+31 (0)6" with what follows it. */
const GROUP = String.raw`(?:\(0\)${SPACE}?\d+|\(\d{1,5}\)|\d+)`;
/**
 * A phone-shaped run: international with "+", or national (and "00" international) starting with
 * 0 or a bracket, then groups joined by single separators. It does not start inside another number
 * (after a digit, or after a digit and a separator) nor on a date such as 06-11-2026 (three parts,
 * one separator; 06.12.34.56.78 goes on and is a number). Groups must be separated, so a run of
 * digits splits into groups in only one way: no catastrophic backtracking.
 */
const PHONE_CANDIDATE = new RegExp(
  String.raw`(?<![\p{L}\p{N}_+]|\p{N}[.,/-])(?:\+${SPACE}?|(?=[0(])(?!\d{1,2}([-./])\d{1,2}\1\d{2,4}(?!\d|[-./]\d)))${GROUP}(?:${SEPARATOR}${GROUP}){0,8}`,
  'gu',
);

/** Tries of a candidate: whole, then cut at its last spaces (a time or count may follow the number). */
const MAX_TRIES = 3;
const NATIONAL_DIGITS = { min: 8, max: 12 };
const INTERNATIONAL_DIGITS = { min: 8, max: 17 };
const DUTCH_MOBILE = /^06\d{8}$/;
/** "09.00-11.30": eight digits that make a valid 0900 number, but read as opening hours. */
const TIME_RANGE = /^(?:[01]?\d|2[0-3])[.:][0-5]\d\s?[-\u2013]\s?(?:[01]?\d|2[0-3])[.:][0-5]\d$/u;
const SEPARATORS_AT_END = /[\s\-\u2010-\u2013./]+$/u;

/**
 * Phone numbers valid for libphonenumber (full metadata, default country NL). International numbers
 * ("+" or "00") need no context. National numbers lose to a nearer reference-number word (order,
 * invoice); written as one block of digits they also need a phone word, except a Dutch mobile number.
 */
export const phoneRecogniser: Recogniser = {
  minDigits: 7,
  find(text) {
    const spans: Span[] = [];
    PHONE_CANDIDATE.lastIndex = 0;
    for (let match = PHONE_CANDIDATE.exec(text); match; match = PHONE_CANDIDATE.exec(text)) {
      const start = match.index;
      const length = validLength(text, start, match[0]);
      if (length !== undefined) spans.push({ start, end: start + length });
      // After a failed candidate go on after its first group, where a number may still start.
      PHONE_CANDIDATE.lastIndex = start + (length ?? firstGroupLength(match[0]));
    }
    return spans;
  },
};

/** Length of the longest valid phone number at the start of the candidate, if any. */
function validLength(text: string, start: number, candidate: string): number | undefined {
  let variant = candidate;
  for (let tries = 0; tries < MAX_TRIES; tries++) {
    const end = start + variant.length;
    if (!isWordCharAt(text, end) && !continuesAsNumber(text, end) && isPhoneNumber(text, start, variant)) return variant.length;
    const lastSpace = Math.max(variant.lastIndexOf(' '), variant.lastIndexOf('\u00a0'));
    if (lastSpace <= 0) return undefined;
    variant = variant.slice(0, lastSpace).replace(SEPARATORS_AT_END, '');
  }
  return undefined;
}

function isPhoneNumber(text: string, start: number, candidate: string): boolean {
  const digits = digitsOf(candidate);
  const international = candidate.startsWith('+') || digits.startsWith('00');
  const allowed = international ? INTERNATIONAL_DIGITS : NATIONAL_DIGITS;
  if (digits.length < allowed.min || digits.length > allowed.max || TIME_RANGE.test(candidate)) return false;
  if (!international) {
    const context = contextBefore(text, start, PHONE_CONTEXT);
    if (context === 'opposing') return false;
    const needsPhoneWord = candidate === digits && !DUTCH_MOBILE.test(digits);
    if (needsPhoneWord && context !== 'supporting') return false;
  }
  // The costly check last: parsing with the full metadata validates number ranges per country.
  return parsePhoneNumberFromString(candidate, 'NL')?.isValid() ?? false;
}

function firstGroupLength(candidate: string): number {
  const separator = candidate.slice(1).search(/[ \u00a0\-\u2010-\u2013./]/u);
  return separator < 0 ? candidate.length : separator + 1;
}
