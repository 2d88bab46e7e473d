import { isIP } from 'node:net';
import { contextBefore, isWordCharAt, type ContextWords, type Recogniser, type Span } from './context.js';

/** A dotted quad after these words is a version or section number, not an address. */
const VERSION_CONTEXT: ContextWords = {
  supporting: ['versie', 'version', 'release', 'build', 'firmware', 'update', 'artikel', 'article', 'paragraaf', 'section', 'hoofdstuk', 'chapter'],
};
const VERSION_WINDOW = 20;

/** Four dot-separated groups of one to three digits, not inside a longer dotted number; a port or prefix length may follow. */
const IPV4_CANDIDATE = /(?<![\p{L}\p{N}_.]|\p{N}[,-])\d{1,3}(?:\.\d{1,3}){3}(?![\p{L}\p{N}_]|\.\d)/gu;

/**
 * Hex groups with at least two colons, optionally ending in an embedded IPv4 address. Each group
 * ends at a colon, so the split is unique; validity (one "::", eight groups) is left to node:net.
 */
const IPV6_CANDIDATE = /(?<![\p{L}\p{N}_:.])[0-9a-f]{0,4}(?::[0-9a-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}/giu;
const MIN_IPV6_GROUPS = 2;

/** IPv4 addresses (octets 0-255, no leading zeros) and IPv6 addresses, including the compressed "::" forms. */
export const ipAddressRecogniser: Recogniser = {
  minDigits: 0,
  find(text) {
    const spans: Span[] = [];
    if (text.includes('.')) {
      for (const match of text.matchAll(IPV4_CANDIDATE)) {
        if (isIP(match[0]) !== 4 || contextBefore(text, match.index, VERSION_CONTEXT, VERSION_WINDOW) === 'supporting') continue;
        spans.push({ start: match.index, end: match.index + match[0].length });
      }
    }
    if (text.includes(':')) {
      for (const match of text.matchAll(IPV6_CANDIDATE)) {
        const span = ipv6Span(text, match.index, match[0]);
        if (span) spans.push(span);
      }
    }
    return spans;
  },
};

function ipv6Span(text: string, start: number, candidate: string): Span | undefined {
  // A colon right after the address ends a sentence clause ("het adres is fe80::1: ..."), it is not part of it.
  const address = candidate.endsWith(':') && !candidate.endsWith('::') ? candidate.slice(0, -1) : candidate;
  const end = start + address.length;
  if (isWordCharAt(text, end) || isIP(address) !== 6) return undefined;
  // "::" or "::1" alone carry no address worth hiding and read too easily as punctuation.
  if (address.split(':').filter((group) => group !== '').length < MIN_IPV6_GROUPS) return undefined;
  return { start, end };
}
