/**
 * Whether a JSON text is in RFC 8785 canonical form, i.e. equal to canonicalJson(JSON.parse(text)),
 * decided in one pass over the text instead of re-serialising the parsed value (which costs more
 * than parsing it): the offline verifier runs this on every entry.
 *
 * The text must already be known to be valid JSON (JSON.parse accepted it); what is left to check
 * is what canonical form adds to the grammar: no insignificant whitespace; object keys strictly
 * ascending by UTF-16 code units (so no duplicates); numbers as ECMAScript prints them; strings
 * escaped exactly as JSON.stringify escapes them (\" \\ \b \f \n \r \t, \u00xx in lower case for
 * the other control characters, nothing else) and without lone surrogates.
 */
export function isCanonicalJsonText(text: string): boolean {
  if (!isWellFormed(text)) return false;
  // One slot per open container: an object's previous key (null before its first), or ARRAY.
  const previousKeys: (string | null | typeof ARRAY)[] = [];
  let expectKey = false;
  let i = 0;
  const length = text.length;
  // Strings are found with native indexOf, which scans far faster than a loop over characters;
  // the next backslash is looked up once and reused, since most entries have none at all.
  let nextBackslash = text.indexOf('\\');
  if (nextBackslash === -1) nextBackslash = length;
  // Tokens by how often entries hold them: strings, then punctuation, then literals and numbers.
  while (i < length) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      const quote = text.indexOf('"', i + 1);
      const escaped = quote > nextBackslash;
      let end = quote + 1;
      if (escaped) {
        end = escapedStringEnd(text, i);
        if (end < 0) return false;
        nextBackslash = text.indexOf('\\', end);
        if (nextBackslash === -1) nextBackslash = length;
      }
      if (expectKey) {
        const key = escaped ? (JSON.parse(text.slice(i, end)) as string) : text.slice(i + 1, quote);
        const previous = previousKeys[previousKeys.length - 1] as string | null;
        if (previous !== null && !(previous < key)) return false;
        previousKeys[previousKeys.length - 1] = key;
        expectKey = false;
      }
      i = end;
    } else if (c === 0x2c) {
      // ,
      expectKey = previousKeys[previousKeys.length - 1] !== ARRAY;
      i++;
    } else if (c === 0x3a) {
      // :
      i++;
    } else if (c === 0x7b) {
      // {
      previousKeys.push(null);
      expectKey = true;
      i++;
    } else if (c === 0x5b) {
      // [
      previousKeys.push(ARRAY);
      expectKey = false;
      i++;
    } else if (c === 0x7d || c === 0x5d) {
      // } ]
      previousKeys.pop();
      expectKey = false;
      i++;
    } else if (c === 0x74 || c === 0x6e) {
      // true, null
      i += 4;
    } else if (c === 0x66) {
      // false
      i += 5;
    } else {
      if (c !== 0x2d && (c < 0x30 || c > 0x39)) return false; // whitespace: the only other thing valid JSON holds here
      const start = i;
      i++;
      let digitsOnly = c !== 0x2d;
      for (let d = text.charCodeAt(i); i < length && isNumberChar(d); d = text.charCodeAt(++i)) {
        if (d < 0x30 || d > 0x39) digitsOnly = false;
      }
      // Up to 15 digits every integer is exact and printed as written (JSON has no leading zeros).
      if (digitsOnly && i - start <= 15) continue;
      const token = text.slice(start, i);
      if (String(Number(token)) !== token) return false;
    }
  }
  return true;
}

const ARRAY = Symbol('array');

/** String.prototype.isWellFormed (ES2024, in Node 20): no lone surrogates, which UTF-8 cannot encode. */
const isWellFormed = (text: string): boolean => (text as unknown as { isWellFormed(): boolean }).isWellFormed();

function isNumberChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x65 || c === 0x45 || c === 0x2b || c === 0x2d;
}

/** Escapes JSON.stringify writes in short form: " \ b f n r t. */
const SHORT_ESCAPES = new Set([0x22, 0x5c, 0x62, 0x66, 0x6e, 0x72, 0x74]);
/** Control characters that have a short escape, so \u00xx is not canonical for them. */
const SHORT_ESCAPED_CONTROLS = new Set([0x08, 0x09, 0x0a, 0x0c, 0x0d]);

/** The index after the closing quote of the string starting at `start`, or -1 if its escapes are not canonical. */
function escapedStringEnd(text: string, start: number): number {
  let i = start + 1;
  for (;;) {
    const c = text.charCodeAt(i);
    if (c === 0x22) return i + 1;
    if (c !== 0x5c) {
      i++;
      continue;
    }
    const escaped = text.charCodeAt(i + 1);
    if (SHORT_ESCAPES.has(escaped)) {
      i += 2;
      continue;
    }
    // Only \u00xx (lower-case hex) for a control character without a short escape: never a
    // surrogate (JSON.stringify writes a pair as is, and a lone one cannot be canonical).
    if (escaped !== 0x75 || text.charCodeAt(i + 2) !== 0x30 || text.charCodeAt(i + 3) !== 0x30) return -1;
    const hex = text.slice(i + 4, i + 6);
    if (!/^[01][0-9a-f]$/.test(hex) || SHORT_ESCAPED_CONTROLS.has(parseInt(hex, 16))) return -1;
    i += 6;
  }
}
