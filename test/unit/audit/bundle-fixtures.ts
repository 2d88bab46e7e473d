import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { canonicalJson } from '../../../src/audit/domain/canonical-json.js';
import { signCheckpoint, verifierKey } from '../../../src/audit/domain/checkpoint.js';
import { consistencyProof, InMemoryMerkleLog, leafHash, rangeProof } from '../../../src/audit/domain/merkle.js';
import {
  BUNDLE_FORMAT,
  BUNDLE_VERSION,
  type BundleFormat,
  type BundleHeader,
  csvEntryRow,
  csvPreamble,
  headerJson,
  ndjsonEntryLine,
} from '../../../src/audit/verifier/bundle-format.js';

export const ORIGIN = 'sluice.test/audit';

/** Deterministic ids and pseudonyms of the right shape, different per entry. */
const id = (prefix: string, n: number, length = 16) => `${prefix}${Buffer.from(`${prefix}${n}`.repeat(8)).toString('base64url').slice(0, length)}`;
const pseudonym = (n: number) => id('ps_', n, 43);
const digest = (n: number) => id('hd_', n, 43);

/**
 * One body of each entry kind sluice writes, as the services build them (without v, kind, id,
 * index, time). Every 17th consent and share names a purpose no policy names: `(unlisted)`.
 */
export function entryBody(kind: string, n: number): Record<string, unknown> {
  const share = id('shr_', n);
  const message = { share, outbox: id('out_', n), decision: id('ent_', n - 1), recipient: pseudonym(n) };
  const unlisted = n % 17 === 0;
  switch (kind) {
    case 'share.decided':
      if (unlisted) {
        return {
          share,
          purpose: '(unlisted)',
          purposeDigest: digest(n + 3),
          purposeSealed: `sealed:v1:${id('', n + 3, 60)}`,
          policy: { name: null, bundle: `sha256:${'ab'.repeat(32)}` },
          lawfulBasis: null,
          status: 'denied',
          reasons: ['policy.none_matches'],
          requestedBy: 'key_0123456789abcdef0123456789abcdef',
          sharedBy: pseudonym(n),
          post: digest(n),
          recipients: [{ subject: pseudonym(n + 1), decision: 'denied', reasons: ['policy.none_matches'] }],
          subjects: [],
          crossing: { fields: [], dropped: [], redactions: [] },
          content: null,
        };
      }
      return {
        share,
        purpose: 'frontline-updates',
        policy: { name: 'frontline-updates', bundle: `sha256:${'ab'.repeat(32)}` },
        lawfulBasis: 'consent',
        status: 'partially_accepted',
        reasons: [],
        requestedBy: 'key_0123456789abcdef0123456789abcdef',
        sharedBy: pseudonym(n),
        post: digest(n),
        recipients: [
          { subject: pseudonym(n + 1), decision: 'allowed', reasons: [] },
          { subject: pseudonym(n + 2), decision: 'denied', reasons: ['recipient.no_consent'] },
        ],
        subjects: [{ role: 'author', subject: pseudonym(n), subjectType: 'workplace', consent: 'granted', categories: ['user.name'] }],
        crossing: {
          fields: [
            { path: 'message', category: 'user.content', transform: 'redact-pii' },
            { path: 'from.name', category: 'user.name', transform: 'none', subject: pseudonym(n) },
          ],
          dropped: [{ path: 'place', reason: 'not_allow_listed' }, { path: 'message_tags.0.id', reason: 'not_allow_listed' }],
          redactions: [{ path: 'message', recogniser: 'phone', count: 1 }],
        },
        content: { type: 'text', digest: digest(n + 1), length: 74, sealed: `sealed:v1:${id('', n, 60)}` },
      };
    case 'message.sent':
      return { ...message, attempt: 1, whatsappMessage: `wamid.SANDBOX${id('', n, 24)}` };
    case 'message.cancelled':
      return { ...message, reason: 'recipient.consent_withdrawn', via: 'whatsapp_opt_out' };
    case 'message.failed':
      return { ...message, attempt: 2, delivered: false, error: 'whatsapp.131047', final: false, nextAttemptAt: '2026-11-20T09:13:44.000Z' };
    case 'message.status':
      return { ...message, status: 'delivered', whatsappMessage: `wamid.SANDBOX${id('', n, 24)}`, reportedAt: '2026-11-20T09:13:50.000Z' };
    case 'consent.granted':
    case 'consent.withdrawn':
      return unlisted
        ? { consent: id('cns_', n), subject: pseudonym(n), subjectType: 'whatsapp', purpose: '(unlisted)', purposeDigest: digest(n + 3), evidence: { method: 'other', digest: digest(n) } }
        : { consent: id('cns_', n), subject: pseudonym(n), subjectType: 'whatsapp', purpose: 'frontline-updates', evidence: { method: 'form', digest: digest(n) } };
    case 'policy.activated':
      return {
        bundle: `sha256:${'cd'.repeat(32)}`,
        // Entries written before the consent rules' purposes were recorded have none.
        policies: [
          {
            name: 'frontline-updates',
            purpose: 'frontline-updates',
            lawfulBasis: 'consent',
            ...(n % 2 === 0 ? {} : { consentPurposes: ['frontline-updates', 'staff-directory'] }),
            file: 'frontline-updates.policy.yaml',
            sha256: 'ef'.repeat(32),
          },
        ],
      };
    case 'subject.erased':
      return n % 2 === 0
        ? { subject: pseudonym(n), subjectType: 'whatsapp', cleared: { shares: 2, messages: 3 } }
        : { reason: 'retention', cutoff: '2025-11-20T00:00:00.000Z', keys: { whatsapp: 4, workplace: 1 } };
    default:
      throw new Error(`no sample for ${kind}`);
  }
}

export const ENTRY_KINDS = [
  'policy.activated',
  'consent.granted',
  'share.decided',
  'message.sent',
  'message.status',
  'message.failed',
  'message.cancelled',
  'consent.withdrawn',
  'subject.erased',
] as const;

export function entryText(index: number, kind: string = ENTRY_KINDS[index % ENTRY_KINDS.length]!, body = entryBody(kind, index)): string {
  return canonicalJson({ ...body, v: 1, kind, id: id('ent_', index), index, time: `2026-11-20T09:${String(10 + (index % 50)).padStart(2, '0')}:44.123Z` });
}

export interface LogFixture {
  texts: string[];
  log: InMemoryMerkleLog;
  signingKey: KeyObject;
  publicKey: string;
  /** The signed checkpoint of the first `size` entries. */
  checkpoint(size?: number): string;
}

const keys = generateKeyPairSync('ed25519').privateKey;

/** A log of `count` entries of every kind, as sluice's sequencer would have written it. */
export function buildLog(count: number, signingKey: KeyObject = keys): LogFixture {
  const texts = Array.from({ length: count }, (_, i) => entryText(i));
  const log = new InMemoryMerkleLog();
  log.append(texts.map((t) => leafHash(Buffer.from(t, 'utf8'))));
  return {
    texts,
    log,
    signingKey,
    publicKey: verifierKey(ORIGIN, signingKey),
    checkpoint: (size = count) => signCheckpoint({ origin: ORIGIN, size, root: log.root(size), privateKey: signingKey }),
  };
}

export interface BundleOptions {
  since?: number;
  until?: number;
  /** The checkpoint's tree size (default: the whole log). */
  size?: number;
  format?: BundleFormat;
  consistencyFrom?: number;
  publicKey?: string | null;
}

/** The bundle the exporter would write for this log: same header, same lines, same proofs. */
export function buildBundle(fixture: LogFixture, options: BundleOptions = {}): Buffer {
  const size = options.size ?? fixture.texts.length;
  const since = options.since ?? 0;
  const until = options.until ?? size - 1;
  const b64 = (hash: Uint8Array) => Buffer.from(hash).toString('base64');
  const proof = rangeProof(since, until + 1, size, fixture.log.lookup);
  const from = options.consistencyFrom;
  const header: BundleHeader = {
    format: BUNDLE_FORMAT,
    version: BUNDLE_VERSION,
    since,
    until,
    checkpoint: fixture.checkpoint(size),
    publicKey: options.publicKey === undefined ? fixture.publicKey : options.publicKey,
    rangeProof: { left: proof.left.map(b64), right: proof.right.map(b64) },
    consistency: from === undefined ? null : { from, fromRoot: b64(fixture.log.root(from)), proof: consistencyProof(from, size, fixture.log.lookup).map(b64) },
  };
  const format = options.format ?? 'ndjson';
  const parts = [format === 'ndjson' ? `${headerJson(header)}\n` : csvPreamble(header)];
  for (let index = since; index <= until; index++) {
    const text = fixture.texts[index]!;
    const leaf = fixture.log.lookup(0, index)!;
    if (format === 'ndjson') parts.push(ndjsonEntryLine(leaf, text));
    else parts.push(csvEntryRow(JSON.parse(text) as { index: number; kind: string; time: string }, leaf, text));
  }
  return Buffer.from(parts.join(''), 'utf8');
}
