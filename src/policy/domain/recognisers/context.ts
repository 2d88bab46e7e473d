/** A half-open range of UTF-16 code units in the scanned text. */
export interface Span {
  start: number;
  end: number;
}

/** How far before a candidate the context words are looked for, in UTF-16 code units. */
const CONTEXT_WINDOW = 48;

export type ContextVerdict = 'supporting' | 'opposing' | 'none';

/**
 * Words that say what a number is, looked up as lowercase substrings so that Dutch compounds
 * ("bankrekeningnummer", "werktelefoon") count. Opposing words say the number is something else
 * (an order number, an amount); when both kinds occur the one nearest to the candidate decides.
 * An opposing word counts only at a word start ("ordernummer", not the "order" of "border"): a
 * sharer must not unmask a number by an innocent word that happens to contain one.
 */
export interface ContextWords {
  supporting: readonly string[];
  opposing?: readonly string[];
}

/** Context words compiled into one regex: group 1 is a supporting word, group 2 an opposing one. */
export interface ContextPattern {
  pattern: RegExp;
}

/** Supporting words of five or more letters count anywhere (compounds); shorter ones only at a word start ("bel", not "hotel"). */
const MIN_INNER_WORD_LENGTH = 5;
/** Not after a letter or digit; an underscore may open Markdown italics ("_BSN_"). */
const WORD_START = String.raw`(?<![\p{L}\p{N}])`;
const STARTS_WITH_LETTER = /^\p{L}/u;

export function contextPattern(words: ContextWords): ContextPattern {
  // Longest first, so that at one position "telefoon" wins over "tel "; the words that need a word
  // start share one lookbehind, tried once per position instead of once per word.
  const alternatives = (list: readonly string[], atWordStart: (word: string) => boolean) => {
    const escaped = (group: string[]) => group.sort((a, b) => b.length - a.length).map((word) => word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    const anywhere = escaped(list.filter((word) => !atWordStart(word)));
    const atStart = escaped(list.filter(atWordStart));
    return [...anywhere, ...(atStart.length > 0 ? [`${WORD_START}(?:${atStart.join('|')})`] : [])].join('|');
  };
  const supporting = alternatives(words.supporting, (word) => word.length < MIN_INNER_WORD_LENGTH);
  // Signs ("€") and words written with their spaces (" eur ") stand on their own already.
  const opposing = words.opposing?.length ? `|(${alternatives(words.opposing, (word) => STARTS_WITH_LETTER.test(word))})` : '';
  return { pattern: new RegExp(`(${supporting})${opposing}`, 'gu') };
}

/**
 * Which kind of context word occurs nearest before `start`, within CONTEXT_WINDOW code units. An
 * opposing word inside one of `values` (an e-mail address, an IBAN) is no word of the sentence: the
 * bank code of "GB14 KVKA …" or the address order@shop.nl must not unmask the number after it.
 */
export function contextBefore(text: string, start: number, words: ContextPattern, values: readonly Span[] = []): ContextVerdict {
  // Lowercasing only the window keeps this cheap; the offsets of matches are relative to it.
  const windowStart = Math.max(0, start - CONTEXT_WINDOW);
  const before = text.slice(windowStart, start).toLowerCase();
  let verdict: ContextVerdict = 'none';
  // Matches come left to right and do not overlap ("bestel" hides its "tel"): the last one is the nearest.
  for (const match of allMatches(words.pattern, before)) {
    if (match[1] !== undefined) verdict = 'supporting';
    else if (!insideAny(values, windowStart + match.index, windowStart + match.index + match[0].length)) verdict = 'opposing';
  }
  return verdict;
}

function insideAny(spans: readonly Span[], start: number, end: number): boolean {
  return spans.some((span) => start < span.end && span.start < end);
}

/**
 * Every match of a global regex, as String.prototype.matchAll gives them but without its iterator
 * and copy of the regex, which cost more than the matching itself on a short post.
 */
export function allMatches(pattern: RegExp, text: string): RegExpExecArray[] {
  const matches: RegExpExecArray[] = [];
  pattern.lastIndex = 0;
  for (let match = pattern.exec(text); match; match = pattern.exec(text)) {
    matches.push(match);
    if (match[0] === '') pattern.lastIndex++;
  }
  return matches;
}

const LETTER_OR_DIGIT = /[\p{L}\p{N}]/u;

/**
 * True when the code unit at `index` is (part of) a letter or digit; false outside the text. An
 * underscore is not one: it opens and closes WhatsApp italics ("_06-12345678_").
 */
export function isLetterOrDigitAt(text: string, index: number): boolean {
  if (index < 0 || index >= text.length) return false;
  const code = text.charCodeAt(index);
  if (code < 0x80) return (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
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
  /**
   * Spans may overlap, also those of other recognisers: findPii keeps the disjoint set covering the
   * most text. `earlier` holds what the recognisers run before found; a costly scan may skip
   * candidates that start inside them. `values` are the e-mail addresses and IBANs among them,
   * whose letters are no context words (see contextBefore).
   */
  find(text: string, earlier: readonly Span[], values: readonly Span[]): Span[];
}
