import { isLetterOrDigitAt, type Recogniser, type Span } from './context.js';

const MAX_LOCAL_PART = 64;

/**
 * The domain after the `@`: labels of letters, digits and inner hyphens, each ending in a dot, then
 * an alphabetic top-level domain, which an underscore may follow (Markdown's _italics_). Sticky,
 * so it is tried exactly at the position after the `@`.
 */
const DOMAIN = /(?:[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?\.)+(?:\p{L}{2,24}|xn--[a-z0-9-]{1,59})(?![\p{L}\p{N}-])/iuy;

/**
 * E-mail addresses as people write them: local@domain.tld. Scanning outwards from each `@` keeps
 * the cost linear; `@mentions` (no local part) and hosts without a top-level domain do not match.
 */
export const emailRecogniser: Recogniser = {
  minDigits: 0,
  find(text) {
    const spans: Span[] = [];
    let scannedTo = 0;
    for (let at = text.indexOf('@'); at >= 0; at = text.indexOf('@', at + 1)) {
      if (at < scannedTo) continue;
      const start = localPartStart(text, at);
      if (start === undefined) continue;
      DOMAIN.lastIndex = at + 1;
      const domain = DOMAIN.exec(text);
      if (!domain) continue;
      scannedTo = at + 1 + domain[0].length;
      spans.push({ start, end: scannedTo });
    }
    return spans;
  },
};

/** Start of the local part ending at `at`, or undefined when there is none or it is too long. */
function localPartStart(text: string, at: number): number | undefined {
  let start = at;
  while (start > 0 && isLocalPartChar(text, start - 1)) {
    start--;
    if (at - start > MAX_LOCAL_PART) return undefined;
  }
  // Dots before the address are punctuation ("zie: ...jan@example.nl"), not part of it.
  while (start < at && text.charCodeAt(start) === 0x2e) start++;
  // A mistyped address ("jan..piet@…") is still someone's address: no check for double dots.
  if (start === at || text.charCodeAt(at - 1) === 0x2e) return undefined;
  return start;
}

function isLocalPartChar(text: string, index: number): boolean {
  const code = text.charCodeAt(index);
  // . % + - _
  if (code === 0x2e || code === 0x25 || code === 0x2b || code === 0x2d || code === 0x5f) return true;
  // An apostrophe only inside a name (sarah.o'connor@…), never as a quote around the address.
  if (code === 0x27) return isLetterOrDigitAt(text, index - 1) && isLetterOrDigitAt(text, index + 1);
  return isLetterOrDigitAt(text, index);
}
