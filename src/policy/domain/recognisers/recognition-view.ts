/**
 * A text as the recognisers read it, and where each of its UTF-16 code units came from.
 *
 * A reader sees a phone number written in full-width or Arabic-Indic digits, in keycap emoji, or
 * with invisible characters between its digits, as the number it is; the recognisers match ASCII.
 * So they read a folded copy of the text: the decimal digits of every script as ASCII digits,
 * compatibility forms (full-width letters and signs, mathematical and circled digits) as the one
 * ASCII character they stand for, every space as a space, every dash and the minus sign as a
 * hyphen, and neither default-ignorable characters (joiners, direction marks, variation
 * selectors, fillers, tags) nor combining marks. What crosses is still the original text: a
 * finding replaces the original code points it covers, invisible ones inside it included.
 */
export interface RecognitionView {
  text: string;
  /** For each code unit of `text`, where the code point it was folded from starts in the original. */
  starts: Uint32Array;
  /** ... and where it ends (exclusive), with the marks and invisible characters that follow it. */
  ends: Uint32Array;
}

const NON_ASCII = /[^\p{ASCII}]/u;
/** A code point outside ASCII that folds by its class; the compatibility forms are found by NFKC. */
const FOLDS_BY_CLASS = /(?!\p{ASCII})[\p{Default_Ignorable_Code_Point}\p{M}\p{Nd}\p{Zs}\p{Pd}\u2212\u2796]/u;
const INVISIBLE_OR_MARK = /^(?:\p{Default_Ignorable_Code_Point}|\p{M})$/u;
const DECIMAL_DIGIT = /^\p{Nd}$/u;
const SPACE = /^\p{Zs}$/u;
const DASH = /^(?:\p{Pd}|[\u2212\u2796])$/u;
const PRINTABLE_ASCII = /^[\x20-\x7e]$/;

/** Folds of the code points seen so far; bounded, as a hostile text may hold very many distinct ones. */
const folds = new Map<number, string>();
const MAX_CACHED_FOLDS = 8192;

/** The view of `text`, or undefined when the recognisers read it as it is (all ASCII, or nothing to fold). */
export function recognitionView(text: string): RecognitionView | undefined {
  // Most posts hold nothing to fold: they are read as they are, without a copy.
  if (!NON_ASCII.test(text) || (!FOLDS_BY_CLASS.test(text) && text.normalize('NFKC') === text)) return undefined;
  // A code point folds to at most as many code units as it has: the view is never longer.
  const parts: string[] = [];
  const starts = new Uint32Array(text.length);
  const ends = new Uint32Array(text.length);
  let length = 0;
  let folded = false;
  /** Where the units of the last character kept in the view begin. */
  let lastKept = 0;
  for (let i = 0; i < text.length; ) {
    const codePoint = text.codePointAt(i)!;
    const width = codePoint > 0xffff ? 2 : 1;
    const original = width === 1 ? text[i]! : text.slice(i, i + 2);
    const read = codePoint < 0x80 ? original : foldOf(codePoint, original);
    if (read !== original) folded = true;
    if (read === '') {
      // A mark or invisible character belongs to the character before it (a keycap to its digit):
      // a finding that ends with that character covers it too.
      if (length > 0) ends.fill(i + width, lastKept, length);
    } else {
      lastKept = length;
      parts.push(read);
      for (let unit = 0; unit < read.length; unit++) {
        starts[length] = i;
        ends[length++] = i + width;
      }
    }
    i += width;
  }
  return folded ? { text: parts.join(''), starts: starts.subarray(0, length), ends: ends.subarray(0, length) } : undefined;
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
  const compatible = character.normalize('NFKC');
  return PRINTABLE_ASCII.test(compatible) ? compatible : character;
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
