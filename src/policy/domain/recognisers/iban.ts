import { allMatches, isLetterOrDigitAt, type Recogniser, type Span } from './context.js';

/** IBAN length per country, from the SWIFT IBAN registry (ISO 13616). */
const IBAN_LENGTHS: Readonly<Record<string, number>> = {
  AD: 24, AE: 23, AL: 28, AT: 20, AZ: 28, BA: 20, BE: 16, BG: 22, BH: 22, BR: 29, CH: 21, CR: 22, CY: 28, CZ: 24,
  DE: 22, DK: 18, DO: 28, EE: 20, EG: 29, ES: 24, FI: 18, FO: 18, FR: 27, GB: 22, GE: 22, GI: 23, GL: 18, GR: 27,
  GT: 28, HR: 21, HU: 28, IE: 22, IL: 23, IS: 26, IT: 27, JO: 30, KW: 30, KZ: 20, LB: 28, LC: 32, LI: 21, LT: 20,
  LU: 20, LV: 21, MC: 27, MD: 24, ME: 22, MK: 19, MR: 27, MT: 31, MU: 30, NL: 18, NO: 15, PK: 24, PL: 28, PS: 29,
  PT: 25, QA: 29, RO: 24, RS: 22, SA: 24, SE: 24, SI: 19, SK: 24, SM: 27, TN: 24, TR: 26, UA: 29, VA: 22, XK: 20,
};

/**
 * Country code and check digits (sometimes printed "NL 91") at the start of a word (or of Markdown
 * italics: "_NL91…_"), not the end of a domain ("jan@example.nl 06…"); the rest is read up to the
 * country's length.
 */
const IBAN_START = /(?<![\p{L}\p{N}]|[\p{L}\p{N}][.@])[A-Za-z]{2}[ \u00a0\u202f]?\d{2}/gu;
/** Between two groups: " ", "  ", ".", "-", " - ". */
const MAX_SEPARATORS = 3;

/** IBANs printed compact or in groups, valid by length and the mod-97 check. */
export const ibanRecogniser: Recogniser = {
  minDigits: 6,
  find(text) {
    const spans: Span[] = [];
    let scannedTo = 0;
    for (const match of allMatches(IBAN_START, text)) {
      const start = match.index;
      if (start < scannedTo) continue;
      const length = IBAN_LENGTHS[match[0].slice(0, 2).toUpperCase()];
      if (length === undefined) continue;
      const read = readIban(text, start, length);
      if (read === undefined || !isValidIban(read.compact)) continue;
      spans.push({ start, end: read.end });
      scannedTo = read.end;
    }
    return spans;
  },
};

/**
 * Reads `length` letters and digits from `start`. Separators (spaces, also no-break ones, dots and
 * dashes, a few in a row) are allowed where IBANs are printed with them: after each group of four
 * and after the country code, so the read never runs on into the words of the sentence.
 */
function readIban(text: string, start: number, length: number): { compact: string; end: number } | undefined {
  let compact = '';
  let i = start;
  while (compact.length < length && i < text.length) {
    const code = text.charCodeAt(i);
    if (isAsciiAlphanumeric(code)) {
      compact += text[i]!.toUpperCase();
      i++;
      continue;
    }
    if (compact.length % 4 !== 0 && compact.length !== 2) break;
    let next = i;
    while (next - i < MAX_SEPARATORS && isSeparator(text.charCodeAt(next))) next++;
    if (next === i || !isAsciiAlphanumeric(text.charCodeAt(next))) break;
    i = next;
  }
  // A letter or digit right after the country's length means a longer code, not this IBAN.
  if (compact.length < length || isLetterOrDigitAt(text, i)) return undefined;
  return { compact, end: i };
}

/** A space (also a no-break one), dot or dash. */
function isSeparator(code: number): boolean {
  return code === 0x20 || code === 0xa0 || code === 0x202f || code === 0x2e || code === 0x2d;
}

/** ISO 7064 MOD 97-10 over the IBAN with its first four characters moved to the end. */
function isValidIban(compact: string): boolean {
  const checkDigits = compact.slice(2, 4);
  if (checkDigits === '00' || checkDigits === '01' || checkDigits === '99') return false;
  const rearranged = compact.slice(4) + compact.slice(0, 4);
  let remainder = 0;
  for (let i = 0; i < rearranged.length; i++) {
    const code = rearranged.charCodeAt(i);
    if (code >= 0x30 && code <= 0x39) remainder = (remainder * 10 + (code - 0x30)) % 97;
    else if (code >= 0x41 && code <= 0x5a) remainder = (remainder * 100 + (code - 0x41 + 10)) % 97;
    else return false;
  }
  return remainder === 1;
}

function isAsciiAlphanumeric(code: number): boolean {
  return (code >= 0x30 && code <= 0x39) || (code >= 0x41 && code <= 0x5a) || (code >= 0x61 && code <= 0x7a);
}
