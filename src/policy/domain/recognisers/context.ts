/** A half-open range of UTF-16 code units in the scanned text. */
export interface Span {
  start: number;
  end: number;
}

/** How far before a candidate the context words are looked for, in UTF-16 code units. */
export const CONTEXT_WINDOW = 48;

export type ContextVerdict = 'supporting' | 'opposing' | 'none';

/**
 * Words that say what a number is, looked up as lowercase substrings so that Dutch compounds
 * ("bankrekeningnummer", "werktelefoon") count. Opposing words say the number is something else
 * (an order number, an amount); when both kinds occur the one nearest to the candidate decides.
 */
export interface ContextWords {
  supporting: readonly string[];
  opposing?: readonly string[];
}

/** Which kind of context word occurs nearest before `start`, within `window` code units. */
export function contextBefore(text: string, start: number, words: ContextWords, window = CONTEXT_WINDOW): ContextVerdict {
  // Lowercasing only the window keeps this cheap; a length change from lowercasing (e.g. U+0130)
  // would only shift positions inside the window, which are compared with each other, not with text.
  const before = text.slice(Math.max(0, start - window), start).toLowerCase();
  const supporting = lastIndexOfAny(before, words.supporting);
  const opposing = words.opposing ? lastIndexOfAny(before, words.opposing) : -1;
  if (supporting < 0 && opposing < 0) return 'none';
  return supporting >= opposing ? 'supporting' : 'opposing';
}

function lastIndexOfAny(haystack: string, needles: readonly string[]): number {
  let last = -1;
  for (const needle of needles) last = Math.max(last, lastOccurrence(haystack, needle));
  return last;
}

/** Words of five or more letters count anywhere (compounds); shorter ones only at a word start ("bel", not "hotel"). */
const MIN_INNER_WORD_LENGTH = 5;

function lastOccurrence(haystack: string, needle: string): number {
  let at = haystack.lastIndexOf(needle);
  if (needle.length >= MIN_INNER_WORD_LENGTH) return at;
  while (at > 0 && isWordCharAt(haystack, at - 1)) at = haystack.lastIndexOf(needle, at - 1);
  return at;
}

const LETTER_OR_DIGIT = /[\p{L}\p{N}_]/u;

/** True when the code unit at `index` is (part of) a letter, digit or underscore; false outside the text. */
export function isWordCharAt(text: string, index: number): boolean {
  if (index < 0 || index >= text.length) return false;
  const code = text.charCodeAt(index);
  if (code < 0x80) return (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a) || code === 0x5f;
  // Outside ASCII read the whole code point, so a letter written as a surrogate pair counts.
  const point = text.codePointAt(index >= 1 && isLowSurrogate(code) ? index - 1 : index)!;
  return LETTER_OR_DIGIT.test(String.fromCodePoint(point));
}

function isLowSurrogate(code: number): boolean {
  return code >= 0xdc00 && code <= 0xdfff;
}

export function isDigitCode(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}

/** True when a separator and a digit follow `end`, i.e. the number goes on as an amount, time or version. */
export function continuesAsNumber(text: string, end: number): boolean {
  const next = text.charCodeAt(end);
  // . , : / - followed by a digit
  return (next === 0x2e || next === 0x2c || next === 0x3a || next === 0x2f || next === 0x2d) && isDigitCode(text.charCodeAt(end + 1));
}

/** Keeps only the digits of a candidate. */
export function digitsOf(value: string): string {
  let digits = '';
  for (let i = 0; i < value.length; i++) if (isDigitCode(value.charCodeAt(i))) digits += value[i];
  return digits;
}

/** Counts the ASCII digits of a text, the cheap pre-check before any number recogniser runs. */
export function countDigits(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) if (isDigitCode(text.charCodeAt(i))) count++;
  return count;
}

/** One kind of finding: a cheap pre-check and the scan itself. */
export interface Recogniser {
  /** With fewer ASCII digits than this in the whole text the scan cannot find anything and is skipped. */
  minDigits: number;
  find(text: string): Span[];
}
