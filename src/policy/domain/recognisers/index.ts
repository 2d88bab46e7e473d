import { bsnRecogniser } from './bsn.js';
import { countDigits, type Recogniser } from './context.js';
import { credentialUrlRecogniser } from './credential-url.js';
import { emailRecogniser } from './email.js';
import { ibanRecogniser } from './iban.js';
import { ipAddressRecogniser } from './ip-address.js';
import { paymentCardRecogniser } from './payment-card.js';
import { phoneRecogniser } from './phone.js';
import { recognitionView } from './recognition-view.js';

export const RECOGNISER_IDS = ['email', 'phone', 'iban', 'bsn', 'payment_card', 'ip_address', 'credential_url'] as const;
export type RecogniserId = (typeof RECOGNISER_IDS)[number];

/** fideslang data category of what each recogniser finds */
export const RECOGNISER_CATEGORIES: Readonly<Record<RecogniserId, string>> = {
  email: 'user.contact.email',
  phone: 'user.contact.phone_number',
  iban: 'user.financial.bank_account',
  bsn: 'user.government_id.national_identification_number',
  payment_card: 'user.financial.credit_card',
  ip_address: 'user.device.ip_address',
  credential_url: 'user.authorization.credentials',
};

/** Typed placeholder that replaces a finding when the action is mask. */
export const RECOGNISER_PLACEHOLDERS: Readonly<Record<RecogniserId, string>> = {
  email: '[email]',
  phone: '[phone]',
  iban: '[iban]',
  bsn: '[bsn]',
  payment_card: '[card]',
  ip_address: '[ip]',
  credential_url: '[url]',
};

const REDACTED = '[redacted]';

/** A finding: UTF-16 code unit offsets into the text, half-open. */
export interface PiiFinding {
  recogniser: RecogniserId;
  start: number;
  end: number;
}

const RECOGNISERS: Readonly<Record<RecogniserId, Recogniser>> = {
  email: emailRecogniser,
  phone: phoneRecogniser,
  iban: ibanRecogniser,
  bsn: bsnRecogniser,
  payment_card: paymentCardRecogniser,
  ip_address: ipAddressRecogniser,
  credential_url: credentialUrlRecogniser,
};

/**
 * On overlap the disjoint findings covering the most text win (a URL contains the "pass@host" of
 * its credentials, an IBAN digit runs that may pass the Luhn check); at equal cover the more
 * specific shapes, first here.
 */
const SPECIFICITY: Readonly<Record<RecogniserId, number>> = {
  credential_url: 0,
  email: 1,
  iban: 2,
  payment_card: 3,
  bsn: 4,
  phone: 5,
  ip_address: 6,
};

/**
 * The phone scan (libphonenumber) is the costly one: it runs last and skips digits inside an IBAN
 * that wins its overlaps (never a phone number). It does not skip a card or BSN found before: such
 * a finding may lose its overlap with a longer phone number, and the number after it must then
 * still be found.
 */
const SCAN_ORDER: readonly RecogniserId[] = [...RECOGNISER_IDS.filter((id) => id !== 'phone'), 'phone'];

/**
 * Every finding of the enabled recognisers, sorted by start, non-overlapping (on overlap the
 * findings covering the most text win), in offsets of `text`. The recognisers read the text folded
 * as a reader sees it (recognitionView): digits of any script, full-width forms, invisible characters.
 * Never throws on any string input.
 */
export function findPii(text: string, recognisers: readonly RecogniserId[] = RECOGNISER_IDS): PiiFinding[] {
  const view = recognitionView(text);
  if (!view) return findInText(text, recognisers);
  const findings = findInText(view.text, recognisers);
  const offsets = view.offsets;
  if (!offsets) return findings;
  // Folding keeps the order of the text, so findings stay in order; two that end and begin inside
  // one folded character ("⑫" read as "12") would share it, and become one, covering both.
  const mapped: PiiFinding[] = [];
  for (const f of findings) {
    const start = offsets.starts[f.start]!;
    const end = offsets.ends[f.end - 1]!;
    const previous = mapped.at(-1);
    if (previous && start < previous.end) previous.end = Math.max(previous.end, end);
    else mapped.push({ recogniser: f.recogniser, start, end });
  }
  return mapped;
}

function findInText(text: string, recognisers: readonly RecogniserId[]): PiiFinding[] {
  if (text.length === 0) return [];
  const enabled = new Set(recognisers);
  const digits = countDigits(text);
  const candidates: PiiFinding[] = [];
  for (const id of SCAN_ORDER) {
    const recogniser = RECOGNISERS[id];
    if (!enabled.has(id) || digits < recogniser.minDigits) continue;
    // Only IBANs that keep their place: a look-alike that loses to an address must not hide a number.
    const skip = id === 'phone' ? withoutOverlaps(candidates, false).filter((c) => c.recogniser === 'iban') : candidates;
    const values = candidates.filter((c) => c.recogniser === 'email' || c.recogniser === 'iban');
    for (const span of recogniser.find(text, skip, values)) candidates.push({ recogniser: id, start: span.start, end: span.end });
  }
  return withoutOverlaps(candidates, true);
}

/**
 * Keeps, of overlapping findings, the disjoint set that covers the most text, then the one with
 * the more specific shapes; in text order. The longest single finding is not enough: a card
 * look-alike from the end of one card to the start of the next would hide both. With `widen`, a
 * finding that loses widens the one it overlaps (widenOver).
 */
function withoutOverlaps(candidates: PiiFinding[], widen: boolean): PiiFinding[] {
  if (candidates.length < 2) return candidates;
  const byEnd = [...candidates].sort((a, b) => a.end - b.end || a.start - b.start || SPECIFICITY[a.recogniser] - SPECIFICITY[b.recogniser]);
  const count = byEnd.length;
  // Weighted interval scheduling: best[i] is the best choice among the first i findings by end,
  // as code units covered and (lower is better) the sum of the kept findings' specificity ranks.
  const covered = new Float64Array(count + 1);
  const ranks = new Float64Array(count + 1);
  const before = new Int32Array(count);
  const taken = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const finding = byEnd[i]!;
    before[i] = countEndingBy(byEnd, i, finding.start);
    const withIt = covered[before[i]!]! + finding.end - finding.start;
    const rankWithIt = ranks[before[i]!]! + SPECIFICITY[finding.recogniser];
    const better = withIt > covered[i]! || (withIt === covered[i]! && rankWithIt < ranks[i]!);
    covered[i + 1] = better ? withIt : covered[i]!;
    ranks[i + 1] = better ? rankWithIt : ranks[i]!;
    taken[i] = better ? 1 : 0;
  }
  const kept: PiiFinding[] = [];
  const isKept = new Uint8Array(count);
  for (let i = count; i > 0; ) {
    if (taken[i - 1]) {
      kept.push({ ...byEnd[i - 1]! });
      isKept[i - 1] = 1;
      i = before[i - 1]!;
    } else i--;
  }
  kept.reverse();
  if (widen) for (let i = 0; i < count; i++) if (!isKept[i]) widenOver(kept, byEnd[i]!);
  return kept;
}

/**
 * Widens the one kept finding a loser overlaps so that it covers the loser too, unless that would
 * reach another kept finding: the part of a value outside a longer look-alike must not cross.
 */
function widenOver(kept: PiiFinding[], loser: PiiFinding): void {
  const first = countEndingBy(kept, kept.length, loser.start);
  const winner = kept[first];
  if (!winner || winner.start >= loser.end || (first + 1 < kept.length && kept[first + 1]!.start < loser.end)) return;
  const start = Math.min(winner.start, loser.start);
  const end = Math.max(winner.end, loser.end);
  if ((first > 0 && kept[first - 1]!.end > start) || (first + 1 < kept.length && kept[first + 1]!.start < end)) return;
  winner.start = start;
  winner.end = end;
}

/** How many of the first `limit` findings (sorted by end) end at or before `position`. */
function countEndingBy(byEnd: readonly PiiFinding[], limit: number, position: number): number {
  let low = 0;
  let high = limit;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (byEnd[middle]!.end <= position) low = middle + 1;
    else high = middle;
  }
  return low;
}

/**
 * Replaces each finding: 'mask' -> its typed placeholder, 'redact' -> '[redacted]'. Returns the new
 * text and a count per recogniser. Findings out of the text's range or overlapping an earlier one
 * are ignored, so what comes back always reads left to right.
 */
export function replaceFindings(
  text: string,
  findings: readonly PiiFinding[],
  action: 'mask' | 'redact',
): { text: string; counts: Partial<Record<RecogniserId, number>> } {
  const counts: Partial<Record<RecogniserId, number>> = {};
  const parts: string[] = [];
  let copiedTo = 0;
  for (const finding of [...findings].sort((a, b) => a.start - b.start)) {
    if (finding.start < copiedTo || finding.end <= finding.start || finding.end > text.length) continue;
    parts.push(text.slice(copiedTo, finding.start), action === 'mask' ? RECOGNISER_PLACEHOLDERS[finding.recogniser] : REDACTED);
    copiedTo = finding.end;
    counts[finding.recogniser] = (counts[finding.recogniser] ?? 0) + 1;
  }
  parts.push(text.slice(copiedTo));
  return { text: parts.join(''), counts };
}
