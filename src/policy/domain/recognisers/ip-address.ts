import { isIP } from 'node:net';
import { allMatches, isLetterOrDigitAt, type Recogniser, type Span } from './context.js';

/**
 * A dotted quad right after these words is a version or section number, not an address ("versie
 * 3.2.1.4", "Release 10.0.0.1"; compounds such as "softwareversie" too). Only right after: "the
 * build server is 10.42.0.15" names an address. "Update" is not among them: "Update: 192.168.1.10
 * is down" is how posts begin.
 */
const VERSION_BEFORE = /(?:versie|version|release|build|firmware|artikel|article|paragraaf|section|hoofdstuk|chapter)[\s:]*v?$/i;
const VERSION_WINDOW = 24;

/**
 * Four dot-separated groups of one to three digits, not inside a longer dotted number (an
 * underscore around it is Markdown italics); a port or prefix length may follow.
 */
const IPV4_CANDIDATE = /(?<![\p{L}\p{N}.]|\p{N},)\d{1,3}(?:\.\d{1,3}){3}(?![\p{L}\p{N}]|\.\d)/gu;
const MAX_OCTET = 255;
/** "12.30.00.000", "10.01.05.123": with leading zeros, a time of day to the millisecond rather than an address. */
const TIME_OF_DAY = /^(?:[01]\d|2[0-3])\.[0-5]\d\.[0-5]\d\.\d{3}$/;
const LEADING_ZERO = /(?:^|\.)0\d/;
/**
 * A first octet with a leading zero is an address only padded to three digits throughout, as
 * devices print them (010.000.000.001): "01.02.03.04" numbers rooms or sections.
 */
const FIRST_OCTET_PADDED = /^0\d/;
const PADDED_TO_THREE = /^\d{3}\.\d{3}\.\d{3}\.\d{3}$/;

/**
 * Two colons with at most four hex digits between them: every IPv6 address has them and prose rarely
 * does. Scanning for this literal first is cheap; the address is then read outwards from it.
 */
const IPV6_HINT = /:[0-9a-f]{0,4}:/gi;
const MIN_IPV6_GROUPS = 2;

/**
 * IPv4 addresses (octets 0-255, also with the leading zeros some devices print: 192.168.001.010)
 * and IPv6 addresses, including the compressed "::" forms.
 */
export const ipAddressRecogniser: Recogniser = {
  minDigits: 0,
  find(text) {
    const spans: Span[] = [];
    if (text.includes('.')) {
      for (const match of allMatches(IPV4_CANDIDATE, text)) {
        if (!isIpv4(match[0]) || VERSION_BEFORE.test(text.slice(Math.max(0, match.index - VERSION_WINDOW), match.index))) continue;
        spans.push({ start: match.index, end: match.index + match[0].length });
      }
    }
    let scannedTo = 0;
    for (const hint of text.includes(':') ? allMatches(IPV6_HINT, text) : []) {
      if (hint.index < scannedTo) continue;
      const run = ipv6Run(text, hint.index);
      scannedTo = run.end;
      const span = ipv6Span(text, run);
      if (span) spans.push(span);
    }
    return spans;
  },
};

function isIpv4(dottedQuad: string): boolean {
  if (FIRST_OCTET_PADDED.test(dottedQuad) && !PADDED_TO_THREE.test(dottedQuad)) return false;
  if (LEADING_ZERO.test(dottedQuad) && TIME_OF_DAY.test(dottedQuad)) return false;
  return dottedQuad.split('.').every((octet) => Number(octet) <= MAX_OCTET);
}

/** The run of hex digits, colons and dots (an embedded IPv4 address) around `at`. */
function ipv6Run(text: string, at: number): Span {
  let start = at;
  while (start > 0 && isIpv6Char(text.charCodeAt(start - 1))) start--;
  let end = at;
  while (end < text.length && isIpv6Char(text.charCodeAt(end))) end++;
  return { start, end };
}

function ipv6Span(text: string, run: Span): Span | undefined {
  let { start, end } = run;
  while (text.charCodeAt(start) === 0x2e) start++;
  while (text.charCodeAt(end - 1) === 0x2e) end--;
  // A colon right after the address ends a clause ("het adres is fe80::1: ..."), it is not part of it.
  if (text.charCodeAt(end - 1) === 0x3a && text.charCodeAt(end - 2) !== 0x3a) end--;
  // Hex letters glued to other letters are a word, not an address ("cafe:babe::" in "decafe:babe::").
  if (isLetterOrDigitAt(text, start - 1) || isLetterOrDigitAt(text, end)) return undefined;
  const address = text.slice(start, end);
  if (isIP(address) !== 6) return undefined;
  // "::" or "::1" alone carry no address worth hiding and read too easily as punctuation.
  if (address.split(':').filter((group) => group !== '').length < MIN_IPV6_GROUPS) return undefined;
  return { start, end };
}

function isIpv6Char(code: number): boolean {
  // 0-9 : . A-F a-f
  return (code >= 0x30 && code <= 0x3a) || code === 0x2e || (code >= 0x41 && code <= 0x46) || (code >= 0x61 && code <= 0x66);
}
