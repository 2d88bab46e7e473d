import { UNLISTED_PURPOSE } from '../../audit/domain/auditable-purpose.js';
import { canonicalJson } from '../../audit/domain/canonical-json.js';
import { keyedDigest, openSealedField } from '../../audit/domain/pseudonym.js';
import { OTHER_EVIDENCE_METHOD } from '../../consent/evidence-methods.js';

/** A person's subject access report (GDPR Art. 15), decoded from the audit log with their key. */
export interface SubjectReport {
  subject: { type: string; id: string };
  generatedAt: string;
  /** False when sluice holds no key for the person: never seen, or erased. */
  found: boolean;
  log: { size: number; checkpoint: string | null };
  /** `purpose` and `evidence` (the method) as the person gave them, though the log may hold them as (unlisted) and other. */
  consents: { index: number; time: string; status: 'granted' | 'withdrawn'; purpose: string; evidence: string }[];
  crossings: Crossing[];
  deliveries: Delivery[];
}

/** One step of a message to the person: its send, cancellation or failure, or a status WhatsApp reported. */
export interface Delivery {
  index: number;
  time: string;
  share: string;
  outcome: 'sent' | 'cancelled' | 'failed' | 'status';
  /** The reason of a cancellation, or the status reported (delivered, read, failed). */
  detail: string | null;
  /** The error of a failure (e.g. whatsapp.131056); null without one. */
  error: string | null;
  /** A failure after which the message was queued to be sent again (final: false). */
  sentAgain: boolean;
  /** A send that no attempt saw succeed, known from WhatsApp's status report of a copy sent earlier. */
  confirmedByStatus: boolean;
}

export interface Crossing {
  index: number;
  time: string;
  share: string;
  /** The purpose the share was asked for: one no policy names only for the one who shared it, else (unlisted). */
  purpose: string;
  /** How the person took part: the author, a person tagged, a recipient, the one who shared. */
  roles: string[];
  policy: { name: string | null; bundle: string };
  lawfulBasis: string | null;
  status: string;
  reasons: string[];
  /** The person's consent as it stood at the decision. */
  consent: string | null;
  /** Past the policy's audit retention: the detail is no longer shown. */
  expired: boolean;
  /** Nothing where no recipient was allowed: then nothing was sent, whatever the policy made of the post. */
  crossed: { path: string; category: string; transform: string; aboutYou: boolean }[];
  /** The categories of the person's own data that crossed: their name in the post, their number as a recipient's. */
  yourData: string[];
  redactions: { path: string; recogniser: string; count: number }[];
  recipients: { allowed: number; total: number };
  /** The exact text that crossed, for its author only; null where nothing was sent. */
  message: string | null;
}

type Entry = Record<string, unknown> & { kind: string; index: number; time: string };

/** What the report needs to know of the policies that decided: the active bundle's. */
export interface PoliciesKnown {
  /** A policy's audit retention in milliseconds (undefined: kept); detail of older crossings is left out. */
  retentionOf(policy: string | null): number | undefined;
  /** Whether the policy of that name in that bundle asks recipients for consent; undefined when that bundle is not the active one. */
  asksRecipientConsent(policy: string, bundle: string): boolean | undefined;
}

/** A change of consent as the consent ledger holds it, opened with the person's key: its purpose and evidence. */
export interface ConsentRecorded {
  purpose: string;
  evidence: Record<string, unknown>;
}

/**
 * Decodes the entries that name the person's pseudonym. `recorded`: the person's consent changes
 * in the ledger, by id, which give an unlisted purpose and a method the log writes `other`.
 */
export function decodeSubjectReport(
  pseudonym: string,
  subjectKey: Uint8Array,
  entries: Entry[],
  policies: PoliciesKnown,
  now: Date,
  recorded: ReadonlyMap<string, ConsentRecorded>,
): Pick<SubjectReport, 'consents' | 'crossings' | 'deliveries'> {
  const consents: SubjectReport['consents'] = [];
  const crossings: Crossing[] = [];
  const deliveries: SubjectReport['deliveries'] = [];
  /** Per outbox message, its latest step in `deliveries`. */
  const latestStep = new Map<string, Delivery>();
  for (const entry of entries) {
    switch (entry.kind) {
      case 'consent.granted':
      case 'consent.withdrawn':
        if (entry.subject === pseudonym) {
          const change = recorded.get(String(entry.consent));
          consents.push({
            index: entry.index,
            time: entry.time,
            status: entry.kind === 'consent.granted' ? 'granted' : 'withdrawn',
            purpose: consentPurpose(entry, change, subjectKey),
            evidence: evidenceMethod(entry, change, subjectKey),
          });
        }
        break;
      case 'share.decided':
        crossings.push(decodeDecision(entry, pseudonym, subjectKey, policies, now));
        break;
      case 'message.sent':
      case 'message.cancelled':
      case 'message.failed':
      case 'message.status':
        if (entry.recipient === pseudonym) {
          const step: Delivery = {
            index: entry.index,
            time: entry.time,
            share: String(entry.share ?? ''),
            outcome: entry.kind.slice('message.'.length) as Delivery['outcome'],
            detail: typeof entry.reason === 'string' ? entry.reason : typeof entry.status === 'string' ? entry.status : null,
            error: typeof entry.error === 'string' ? entry.error : null,
            sentAgain: entry.final === false,
            confirmedByStatus: entry.kind === 'message.sent' && entry.confirmedBy !== undefined,
          };
          const outbox = typeof entry.outbox === 'string' ? entry.outbox : undefined;
          // A failure followed by the news that an earlier copy got through was not sent again after all.
          const previous = outbox === undefined ? undefined : latestStep.get(outbox);
          if (step.confirmedByStatus && previous?.sentAgain) previous.sentAgain = false;
          if (outbox !== undefined) latestStep.set(outbox, step);
          deliveries.push(step);
        }
        break;
      default:
        break;
    }
  }
  return { consents, crossings, deliveries };
}

/** An unlisted purpose is the ledger's, if it is the one whose digest the entry holds. */
function consentPurpose(entry: Entry, change: ConsentRecorded | undefined, subjectKey: Uint8Array): string {
  if (entry.purpose !== UNLISTED_PURPOSE) return String(entry.purpose);
  return change !== undefined && keyedDigest(subjectKey, change.purpose) === entry.purposeDigest ? change.purpose : UNLISTED_PURPOSE;
}

/** A method written `other` is the ledger's evidence's, if that is the evidence whose digest the entry holds. */
function evidenceMethod(entry: Entry, change: ConsentRecorded | undefined, subjectKey: Uint8Array): string {
  const evidence = (entry.evidence ?? {}) as { method?: unknown; digest?: unknown };
  const method = String(evidence.method ?? '');
  if (method !== OTHER_EVIDENCE_METHOD || change === undefined || keyedDigest(subjectKey, canonicalJson(change.evidence)) !== evidence.digest) return method;
  return String(change.evidence.method);
}

/**
 * A recipient's consent at the time, from the decision about them (the entry keeps no separate
 * record of it): refused for its absence or withdrawal; granted if allowed under a policy that
 * asks recipients for consent (known from the active bundle, else from a lawful basis of
 * consent, which requires it). Otherwise not known to have been asked (null).
 */
function recipientConsent(recipient: { decision: string; reasons?: string[] }, asked: boolean): string | null {
  const reasons = recipient.reasons ?? [];
  if (reasons.includes('recipient.consent_withdrawn')) return 'withdrawn';
  if (reasons.includes('recipient.no_consent')) return 'none';
  return recipient.decision === 'allowed' && asked ? 'granted' : null;
}

function decodeDecision(entry: Entry, pseudonym: string, subjectKey: Uint8Array, policies: PoliciesKnown, now: Date): Crossing {
  const policy = (entry.policy ?? { name: null, bundle: '' }) as { name: string | null; bundle: string };
  const subjects = (entry.subjects ?? []) as { role: string; subject: string; consent: string; categories?: string[] }[];
  const recipients = (entry.recipients ?? []) as { subject: string; decision: string; reasons?: string[] }[];
  const mine = subjects.filter((s) => s.subject === pseudonym);
  const asRecipient = recipients.find((r) => r.subject === pseudonym);
  const asked = policy.name !== null && (policies.asksRecipientConsent(policy.name, policy.bundle) ?? entry.lawfulBasis === 'consent');
  const roles = [
    ...mine.map((s) => s.role),
    ...(recipients.some((r) => r.subject === pseudonym) ? ['recipient'] : []),
    ...(entry.sharedBy === pseudonym ? ['shared it'] : []),
  ];
  const retention = policies.retentionOf(policy.name);
  const expired = retention !== undefined && Date.parse(entry.time) + retention < now.getTime();
  const allowed = recipients.filter((r) => r.decision === 'allowed').length;
  // A share no recipient was allowed sent nothing: its crossing is what the policy made of the post, not what crossed.
  const crossedAny = !expired && allowed > 0;
  const crossing = (entry.crossing ?? { fields: [], redactions: [] }) as {
    fields: { path: string; category: string; transform: string; subject?: string }[];
    redactions: { path: string; recogniser: string; count: number }[];
  };
  const content = entry.content as { sealed?: string } | null | undefined;
  const isAuthor = mine.some((s) => s.role === 'author');
  // A tagged person's name crosses in the message (the mention rule applies there only), when they consented.
  const namedInMessage = mine.some((s) => s.role === 'mentioned' && (s.categories ?? []).length > 0);
  // Sealed under the sharer's key: only their key opens an unlisted purpose.
  const purpose = typeof entry.purposeSealed === 'string' ? openSealedField(subjectKey, entry.purposeSealed, `share ${String(entry.share)} purpose`) : undefined;
  return {
    index: entry.index,
    time: entry.time,
    share: String(entry.share),
    purpose: purpose ?? String(entry.purpose),
    roles,
    policy,
    lawfulBasis: (entry.lawfulBasis as string | null) ?? null,
    status: String(entry.status),
    reasons: (entry.reasons as string[] | undefined) ?? [],
    consent: mine[0] ? (mine[0].consent === 'not_asked' ? null : mine[0].consent) : asRecipient ? recipientConsent(asRecipient, asked) : null,
    expired,
    crossed: crossedAny ? crossing.fields.map((f) => ({ path: f.path, category: f.category, transform: f.transform, aboutYou: f.subject === pseudonym || (namedInMessage && f.path === 'message') })) : [],
    yourData: crossedAny ? [...new Set([...mine.flatMap((s) => s.categories ?? []), ...(asRecipient?.decision === 'allowed' ? ['user.contact.phone_number'] : [])])] : [],
    redactions: crossedAny ? crossing.redactions : [],
    recipients: { allowed, total: recipients.length },
    message: crossedAny && isAuthor && content?.sealed ? (openSealedField(subjectKey, content.sealed, `share ${String(entry.share)}`) ?? null) : null,
  };
}
