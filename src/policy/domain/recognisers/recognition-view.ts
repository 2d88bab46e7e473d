import { CodeUnitOrigins } from '../code-unit-origins.js';
import { isDigitCode } from './context.js';

/**
 * A text as the recognisers read it, and where each of its UTF-16 code units came from.
 *
 * A reader sees a phone number written in full-width or Arabic-Indic digits, in keycap emoji or
 * dingbat digits, with invisible characters between its digits, broken over two lines or with
 * WhatsApp's bold markers around a group, as the number it is; the recognisers match ASCII. So
 * they read a folded copy of the text: the decimal digits of every script as ASCII digits,
 * compatibility forms (full-width letters and signs, mathematical digits) as the one ASCII
 * character they stand for, circled, parenthesised and dingbat numbers as their digits, every
 * space, tab and line break (and the blank braille pattern) as a space, every dash and the minus
 * sign as a hyphen, and neither default-ignorable characters (joiners, direction marks, variation
 * selectors, fillers, tags), combining marks, nor the formatting markers * _ ~ ` next to a digit.
 * What crosses is still the original text: a finding replaces the original code points it covers,
 * invisible ones inside it included.
 */
export interface RecognitionView {
  text: string;
  /** Absent when each code unit of `text` is read from the one at the same offset (line breaks as spaces). */
  offsets?: {
    /** For each code unit of `text`, where the code point it was folded from starts in the original. */
    starts: Uint32Array;
    /** ... and where it ends (exclusive), with the marks and invisible characters that follow it. */
    ends: Uint32Array;
  };
}

const MARKER_NEXT_TO_DIGIT = /[*_~`]\d|\d[*_~`]/;
/** Printable ASCII without a formatting marker next to a digit is read as it is, and most posts are that. */
const MAYBE_FOLDED = new RegExp(String.raw`[^\x20-\x7e]|${MARKER_NEXT_TO_DIGIT.source}`);
const NON_ASCII = /[^\p{ASCII}]/u;
/** ASCII read otherwise: a tab or line break (as a space), a formatting marker next to a digit (as nothing). */
const ASCII_FOLDED = new RegExp(String.raw`[\t\n\v\f\r]|${MARKER_NEXT_TO_DIGIT.source}`);
const TAB_OR_LINE_BREAK = /[\t\n\v\f]/g;
/** A code point outside ASCII that folds by its class or by the table below; the compatibility forms are found by NFKC. */
const FOLDS_BY_CLASS = /(?!\p{ASCII})[\p{Default_Ignorable_Code_Point}\p{M}\p{Nd}\p{Z}\p{Pd}\u0085\u2212\u2796\u2800\u24eb-\u24ff\u2776-\u2793\u{1f10b}\u{1f10c}]/u;
const INVISIBLE_OR_MARK = /^(?:\p{Default_Ignorable_Code_Point}|\p{M})$/u;
const DECIMAL_DIGIT = /^\p{Nd}$/u;
/** Spaces, the line and paragraph separators, NEL and the blank braille pattern (shown as a space). */
const SPACE = /^[\p{Z}\u0085\u2800]$/u;
const DASH = /^(?:\p{Pd}|[\u2212\u2796])$/u;
const PRINTABLE_ASCII = /^[\x20-\x7e]$/;
/** What NFKC makes of circled, parenthesised, full-stop and comma numbers: "12" of "⑫", "(1)" of "⑴", "1." of "⒈", "0," of "🄁". */
const ENCLOSED_NUMBER = /^\(?(\d{1,2})[).,]?$/;

/**
 * Dingbat and negative circled numbers, which NFKC leaves alone: first and last code point and
 * the number of the first ("❶" to "❿" are 1 to 10, "⓿" and the sans-serif "🄋" and "🄌" are 0).
 */
const DINGBAT_NUMBERS: readonly (readonly [first: number, last: number, value: number])[] = [
  [0x24eb, 0x24f4, 11], // ⓫-⓴
  [0x24f5, 0x24fe, 1], // ⓵-⓾
  [0x24ff, 0x24ff, 0], // ⓿
  [0x2776, 0x277f, 1], // ❶-❿
  [0x2780, 0x2789, 1], // ➀-➉
  [0x278a, 0x2793, 1], // ➊-➓
  [0x1f10b, 0x1f10b, 0], // 🄋
  [0x1f10c, 0x1f10c, 0], // 🄌
];

/** Folds of the code points seen so far; bounded, as a hostile text may hold very many distinct ones. */
const folds = new Map<number, string>();
const MAX_CACHED_FOLDS = 8192;

/** The view of `text`, or undefined when the recognisers read it as it is (nothing to fold). */
export function recognitionView(text: string): RecognitionView | undefined {
  // Most posts hold nothing to fold: they are read as they are, without a copy.
  if (!MAYBE_FOLDED.test(text)) return undefined;
  if (!NON_ASCII.test(text)) {
    // Most others are ASCII with line breaks: read as spaces one for one, they need no offsets.
    if (!MARKER_NEXT_TO_DIGIT.test(text) && !text.includes('\r')) return { text: text.replace(TAB_OR_LINE_BREAK, ' ') };
  } else if (!ASCII_FOLDED.test(text) && !FOLDS_BY_CLASS.test(text) && text.normalize('NFKC') === text) {
    return undefined;
  }
  const parts: string[] = [];
  // Only a number folding to more digits than it has code units ("⑫") makes the view longer.
  const origins = new CodeUnitOrigins(text.length);
  /** The original text before this is in `parts`; what follows it up to `i` is read as it is. */
  let copiedTo = 0;
  let endsWithDigit = false;
  /** The end of the run of formatting markers last met, and whether the view leaves that run out. */
  let markersEnd = 0;
  let dropsMarkers = false;
  for (let i = 0; i < text.length; ) {
    const codePoint = text.codePointAt(i)!;
    const width = codePoint > 0xffff ? 2 : 1;
    /** How the code point is read; undefined when as it is. */
    let read: string | undefined;
    if (codePoint >= 0x80) {
      const original = width === 1 ? text[i]! : text.slice(i, i + 2);
      const fold = foldOf(codePoint, original);
      if (fold !== original) read = fold;
    } else if (isFormattingMarker(codePoint)) {
      // "*06*-12345678", "06-*1234*5678": bold, italics or strike around part of a number.
      if (i >= markersEnd) {
        markersEnd = endOfMarkers(text, i);
        dropsMarkers = endsWithDigit || readsAsDigit(text, markersEnd);
      }
      if (dropsMarkers) read = '';
    } else if (isTabOrLineBreak(codePoint)) {
      // CR LF is one line break: the CR is read as nothing.
      read = codePoint === 0x0d && text.charCodeAt(i + 1) === 0x0a ? '' : ' ';
    }
    if (read === undefined) {
      endsWithDigit = isDigitCode(codePoint);
      origins.add(width, i, i + width);
    } else {
      parts.push(text.slice(copiedTo, i));
      copiedTo = i + width;
      if (read === '') {
        // A mark or invisible character (all outside ASCII) belongs to the character before it (a
        // keycap to its digit): a finding that ends with that character covers it too. A marker
        // or the CR of a line break does not: "_06-12345678_" is masked as "_[phone]_".
        if (codePoint >= 0x80) origins.extendLast(i + width);
      } else {
        endsWithDigit = isDigitCode(read.charCodeAt(read.length - 1));
        parts.push(read);
        origins.add(read.length, i, i + width);
      }
    }
    i += width;
  }
  if (copiedTo === 0) return undefined;
  parts.push(text.slice(copiedTo));
  return { text: parts.join(''), offsets: origins.table() };
}

function foldOf(codePoint: number, character: string): string {
  let fold = folds.get(codePoint);
  if (fold === undefined) {
    fold = computeFold(codePoint, character);
    if (folds.size < MAX_CACHED_FOLDS) folds.set(codePoint, fold);
  }
  return fold;
}

function computeFold(codePoint: number, character: string): string {
  if (INVISIBLE_OR_MARK.test(character)) return '';
  if (DECIMAL_DIGIT.test(character)) return String(digitValue(codePoint));
  if (SPACE.test(character)) return ' ';
  if (DASH.test(character)) return '-';
  const dingbat = DINGBAT_NUMBERS.find(([first, last]) => codePoint >= first && codePoint <= last);
  if (dingbat) return String(dingbat[2] + codePoint - dingbat[0]);
  const compatible = character.normalize('NFKC');
  if (PRINTABLE_ASCII.test(compatible)) return compatible;
  return ENCLOSED_NUMBER.exec(compatible)?.[1] ?? character;
}

/**
 * Unicode encodes the decimal digits of a script as one contiguous run from 0 to 9 (a stability
 * guarantee), some runs directly after another (the mathematical digits): the value is the
 * distance from the run's start, modulo 10.
 */
function digitValue(codePoint: number): number {
  let start = codePoint;
  while (DECIMAL_DIGIT.test(String.fromCodePoint(start - 1))) start--;
  return (codePoint - start) % 10;
}

/** WhatsApp's markers for bold, italics, strike-through and monospace. */
function isFormattingMarker(code: number): boolean {
  return code === 0x2a || code === 0x5f || code === 0x7e || code === 0x60;
}

function endOfMarkers(text: string, start: number): number {
  let end = start;
  while (end < text.length && isFormattingMarker(text.charCodeAt(end))) end++;
  return end;
}

/** Tab, line feed, vertical tab, form feed, carriage return. */
function isTabOrLineBreak(code: number): boolean {
  return code >= 0x09 && code <= 0x0d;
}

/** True when the code point at `index` is read as (a number starting with) a digit. */
function readsAsDigit(text: string, index: number): boolean {
  if (index >= text.length) return false;
  const codePoint = text.codePointAt(index)!;
  return codePoint < 0x80 ? isDigitCode(codePoint) : isDigitCode(foldOf(codePoint, String.fromCodePoint(codePoint)).charCodeAt(0));
}
