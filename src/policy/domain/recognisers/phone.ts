import { parsePhoneNumberFromString, PhoneNumber, type CountryCode } from 'libphonenumber-js/core';
// The full metadata (number ranges per country), as a JS module: no JSON import needed.
import metadata from 'libphonenumber-js/max/metadata';
import { contextBefore, contextPattern, continuesAsNumber, digitsOf, isDigitCode, isLetterOrDigitAt, type ContextVerdict, type Recogniser, type Span } from './context.js';

const PHONE_CONTEXT = contextPattern({
  supporting: [
    'tel:', 'tel.', 'tel ', 'telnr', 'telefoon', 'telephone', 'telefonisch', 'phone', 'bel ', 'belt ', 'bellen', 'gebeld', 'call', 'mobiel',
    'mobile', 'gsm', 'whatsapp', 'app ', 'sms', 'text me', 'fax', 'bereikbaar', 'reach', 'contact', 'cell', 'ring', 'mijn nummer',
    "m'n nummer", 'je nummer', 'jouw nummer', 'uw nummer', 'zijn nummer', 'haar nummer', 'my number', 'your number', 'his number', 'her number',
  ],
  opposing: [
    'order', 'bestel', 'factuur', 'invoice', 'klantnummer', 'customer', 'ticket', 'tracking', 'zending', 'pakket', 'parcel', 'referentie',
    'reference', 'ref ', 'ref.', 'kenmerk', 'dossier', 'artikel', 'article', 'serienummer', 'serial', 'kvk', 'btw', 'bedrag', 'amount', '€',
  ],
});

const SPACE = String.raw`[ \u00a0]`;
/** Between digit groups: one space, or a dash (also U+2010-2013), dot or slash with optional spaces around it. */
const SEPARATOR = String.raw`(?:${SPACE}?[-\u2010-\u2013./]${SPACE}?|${SPACE})`;
/** A digit group, an area code in brackets, or the "(0)" of "+31 (0)6" with what follows it. */
const GROUP = String.raw`(?:\(0\)${SPACE}?\d+|\(\d{1,5}\)|\d+)`;
/**
 * A phone-shaped run: international with "+" or "(+31)", or national (and "00" international)
 * starting with 0 or a bracket, then groups joined by single separators ("(0)" may follow with
 * none: "+31(0)6-12345678"), at most eleven groups: a number written digit by digit, also after
 * "+31". It does not start inside another number (after a digit, or a digit and a dot or dash;
 * after a slash or comma it may: "020-1234567/06-12345678"; after an underscore too: "_06-12345678_"
 * is in italics) nor on a date such as 06-11-2026 (three parts, one separator; 06.12.34.56.78 goes
 * on and is a number). Groups must be separated, so a run of digits splits into groups in only one
 * way: no catastrophic backtracking. The leading lookahead lets the engine skip cheaply to a
 * possible first character before the costlier lookbehind.
 */
const PHONE_CANDIDATE = new RegExp(
  String.raw`(?=[+(0])(?<![\p{L}\p{N}+]|\p{N}[.-])(?:\+${SPACE}?${GROUP}|\(\+\d{1,3}\)|(?=[0(])(?!\d{1,2}([-./])\d{1,2}\1\d{2,4}(?!\d|[-./]\d))${GROUP})(?:${SEPARATOR}${GROUP}|\(0\)${SPACE}?\d+){0,10}`,
  'gu',
);

/**
 * An international number written without "+" or "00", one block of digits: how WhatsApp shows a
 * contact's number ("31612345678"). Not inside another number or word.
 */
const BARE_INTERNATIONAL = /(?<![\p{L}\p{N}+]|\p{N}[.,/-])[1-9]\d{9,14}(?![\p{L}\p{N}]|[.,/-]\p{N})/gu;
/** The same written digit by digit ("3 1 6 1 2 3 4 5 6 7 8"), as the national and "+" forms may be. */
const BARE_INTERNATIONAL_DIGIT_BY_DIGIT = /(?<![\p{L}\p{N}+]|\p{N}[.,/-]|\p{N}[ \u00a0])[1-9](?:[ \u00a0]\d){9,14}(?![\p{L}\p{N}]|[ \u00a0]\p{N}|[.,/-]\p{N})/gu;
/**
 * A North American number written nationally without brackets ("415-555-2671", "415.555.2671",
 * "1-415-555-2671", "4155552671"): an area code and exchange that do not start with 0 or 1, one
 * separator used between them. It needs a phone word, as foreign national numbers do, and a valid US number.
 */
const NORTH_AMERICAN = /(?<![\p{L}\p{N}+]|\p{N}[.,/-])(?:1[-. ]?)?[2-9]\d{2}([-. ]?)[2-9]\d{2}\1\d{4}(?![\p{L}\p{N}]|[.,/-]\p{N})/gu;
/** A Dutch mobile number in that form, distinctive enough to need no phone word and to be taken after a reference word (as 06 12345678). */
const BARE_DUTCH_MOBILE = /^316\d{8}$/;

const NATIONAL = { min: 8, max: 12, start: /^(?:0[1-9]|[2-9])/ };
const INTERNATIONAL = { min: 8, max: 17, start: /^(?:00)?[1-9]/ };
const INTERNATIONAL_PREFIX = /^\(?\+/;
const DUTCH_MOBILE = /^06\d{8}$/;
/** Reference numbers are joined with dashes into three or more parts ("06-2026-0145", "0612-3456-78"); phone numbers are not. */
const REFERENCE_LAYOUT = /-.*-/;
/** "09.00-11.30", "09.00 10.30" (a list of times, also one a line): eight digits that make a valid 0900 number, but read as times. */
const TIME_RANGE = /^(?:[01]?\d|2[0-3])[.:][0-5]\d(?:\s?[-\u2013]\s?|\s)(?:[01]?\d|2[0-3])[.:][0-5]\d$/u;
const SEPARATORS_AT_END = /[\s\-\u2010-\u2013./]+$/u;

/**
 * Where English-speaking colleagues write their numbers nationally ("07911 123456", "(415) 555-2671").
 * Tried only after a phone word, and not for German or French numbers: their ranges are so wide that
 * most Dutch-looking digit runs would pass.
 */
const FOREIGN_COUNTRIES: readonly CountryCode[] = ['GB', 'US'];
const NETHERLANDS: readonly CountryCode[] = ['NL'];

/** A candidate, or a shorter part of it, that has the digits of a phone number. */
interface Variant {
  text: string;
  digits: string;
  /** What is handed to libphonenumber: the digits, after a "+" for international numbers. */
  dialable: string;
  international: boolean;
  /** Written as one block of digits or digit by digit, without the groups of a phone number. */
  ungrouped: boolean;
}

/** Validity per variant and country, kept for one scan only: digit soup repeats the same variants. */
type ValidityCache = Map<string, boolean>;

/**
 * Phone numbers valid for libphonenumber (full metadata, default country NL). International numbers
 * ("+" or "00") need no context; written as a bare block of digits ("31612345678", as WhatsApp
 * shows them) they need a phone word, except a Dutch mobile number. National numbers lose to a
 * nearer reference-number word (order, invoice); written as one block of digits or digit by digit
 * they also need a phone word. A Dutch mobile number needs neither and loses to no word, unless
 * laid out as reference numbers are: its shape is unmistakable, and a sharer must not unmask one
 * by writing "order" before it. A national number that is not Dutch is taken only after a phone
 * word ("call (415) 555-2671", "call 415-555-2671").
 */
export const phoneRecogniser: Recogniser = {
  minDigits: 7,
  find(text, earlier, values) {
    const spans: Span[] = [];
    const validity: ValidityCache = new Map();
    PHONE_CANDIDATE.lastIndex = 0;
    for (let match = PHONE_CANDIDATE.exec(text); match; match = PHONE_CANDIDATE.exec(text)) {
      const start = match.index;
      // Digits inside an IBAN found before (`earlier`) are not parsed as a phone number.
      const length = earlier.some((span) => start >= span.start && start < span.end) ? undefined : validLength(text, start, match[0], values, validity);
      if (length !== undefined) spans.push({ start, end: start + length });
      // Go on inside the candidate: a number may start there ("0 06 12345678"), also when this one
      // will lose an overlap ("0300 0009 06" inside the card 4000 0000 0300 0009).
      PHONE_CANDIDATE.lastIndex = start + 1;
    }
    for (const bare of [BARE_INTERNATIONAL, BARE_INTERNATIONAL_DIGIT_BY_DIGIT]) {
      bare.lastIndex = 0;
      for (let match = bare.exec(text); match; match = bare.exec(text)) {
        const start = match.index;
        if (earlier.some((span) => start >= span.start && start < span.end) || spans.some((span) => start >= span.start && start < span.end)) continue;
        if (isBareInternational(digitsOf(match[0]), contextBefore(text, start, PHONE_CONTEXT, values), validity)) spans.push({ start, end: start + match[0].length });
      }
    }
    NORTH_AMERICAN.lastIndex = 0;
    for (let match = NORTH_AMERICAN.exec(text); match; match = NORTH_AMERICAN.exec(text)) {
      const start = match.index;
      if (earlier.some((span) => start >= span.start && start < span.end) || spans.some((span) => start < span.end && span.start < start + match![0].length)) continue;
      if (contextBefore(text, start, PHONE_CONTEXT, values) === 'supporting' && isValidIn(digitsOf(match[0]), 'US', validity)) spans.push({ start, end: start + match[0].length });
    }
    return spans.sort((a, b) => a.start - b.start);
  },
};

/** A block of digits that is a valid number once "+" is put before it: a Dutch mobile number, or any after a phone word. */
function isBareInternational(digits: string, context: ContextVerdict, validity: ValidityCache): boolean {
  if (context !== 'supporting' && !BARE_DUTCH_MOBILE.test(digits)) return false;
  return isValidIn(`+${digits}`, 'NL', validity);
}

/** Length of the longest valid phone number at the start of the candidate, if any. */
function validLength(text: string, start: number, candidate: string, values: readonly Span[], validity: ValidityCache): number | undefined {
  const variants = variantsOf(text, start, candidate);
  if (variants.length === 0) return undefined;
  const context = contextBefore(text, start, PHONE_CONTEXT, values);
  // Dutch first for every variant, so that "06 12345678 2" is not taken as a longer foreign number.
  const dutch = variants.find((variant) => isPhoneNumber(variant, context, NETHERLANDS, validity));
  if (dutch) return dutch.text.length;
  if (context !== 'supporting') return undefined;
  return variants.find((variant) => isPhoneNumber(variant, context, FOREIGN_COUNTRIES, validity))?.text.length;
}

/**
 * The candidate and its parts ending before a space or slash, longest first (a time, a count or the next
 * number may follow a number), keeping only those with the digits of a phone number. A candidate
 * has at most eleven groups, which bounds the number of (costly) parses per candidate.
 */
function variantsOf(text: string, start: number, candidate: string): Variant[] {
  const end = start + candidate.length;
  // A comma before the next number lists them ("06-12345678,06-87654321"); before other digits it continues this one.
  const listed = text.charCodeAt(end) === 0x2c && /^,[+0]/.test(text.slice(end, end + 2));
  const parts = isLetterOrDigitAt(text, end) || (continuesAsNumber(text, end) && !listed) ? [] : [candidate];
  for (let cut = lastCutBefore(candidate, candidate.length); cut > 0; cut = lastCutBefore(candidate, cut)) {
    parts.push(candidate.slice(0, cut).replace(SEPARATORS_AT_END, ''));
  }
  const variants: Variant[] = [];
  for (const part of parts) {
    const variant = phoneShaped(part);
    if (variant) variants.push(variant);
  }
  return variants;
}

/** Where a part may end: before a space, or a slash between two numbers ("020-1234567/06-12345678"). */
function lastCutBefore(candidate: string, end: number): number {
  return Math.max(candidate.lastIndexOf(' ', end - 1), candidate.lastIndexOf('\u00a0', end - 1), candidate.lastIndexOf('/', end - 1));
}

function phoneShaped(text: string): Variant | undefined {
  const digits = digitsOf(text);
  const plus = INTERNATIONAL_PREFIX.test(text);
  const international = plus || digits.startsWith('00');
  const shape = international ? INTERNATIONAL : NATIONAL;
  if (digits.length < shape.min || digits.length > shape.max || !shape.start.test(digits) || TIME_RANGE.test(text)) return undefined;
  // libphonenumber parses plain digits faster than formatted text; the "(0)" of "+31 (0)6" is not dialled.
  const dialable = international ? `${plus ? '+' : ''}${digitsOf(text.replace('(0)', ''))}` : digits;
  return { text, digits, dialable, international, ungrouped: text === digits || isDigitByDigit(text) };
}

/** True when no two digits stand together: "0 6 1 2 3 4 5 6 7 8". */
function isDigitByDigit(text: string): boolean {
  for (let i = 1; i < text.length; i++) if (isDigitCode(text.charCodeAt(i)) && isDigitCode(text.charCodeAt(i - 1))) return false;
  return true;
}

function isPhoneNumber(variant: Variant, context: ContextVerdict, countries: readonly CountryCode[], validity: ValidityCache): boolean {
  // The country only matters for national numbers: an international one is checked once, as Dutch.
  if (variant.international) return countries === NETHERLANDS && isValidIn(variant.dialable, 'NL', validity);
  const dutchMobile = DUTCH_MOBILE.test(variant.digits);
  const unmistakable = dutchMobile && !REFERENCE_LAYOUT.test(variant.text);
  if (context === 'opposing' && !unmistakable) return false;
  if (variant.ungrouped && !dutchMobile && context !== 'supporting') return false;
  // The costly check last: parsing with the full metadata validates number ranges per country.
  return countries.some((country) => isValidIn(variant.dialable, country, validity));
}

function isValidIn(dialable: string, country: CountryCode, validity: ValidityCache): boolean {
  const key = `${country} ${dialable}`;
  let valid = validity.get(key);
  if (valid === undefined) {
    const e164 = dutchE164(dialable, country);
    valid = (e164 ? new PhoneNumber(e164, metadata).isValid() : parsePhoneNumberFromString(dialable, country, metadata)?.isValid()) ?? false;
    validity.set(key, valid);
  }
  return valid;
}

/**
 * A Dutch number in E.164, when that is plain to see: national with one trunk 0, or +31. Built
 * directly, it skips libphonenumber's text parsing, which costs twice its validation; +31 belongs
 * to the Netherlands alone, so the result is the same.
 */
function dutchE164(dialable: string, country: CountryCode): string | undefined {
  if (country !== 'NL') return undefined;
  if (/^0[1-9]\d{8}$/.test(dialable)) return `+31${dialable.slice(1)}`;
  if (/^\+31[1-9]\d{8}$/.test(dialable)) return dialable;
  return undefined;
}
