import type { CompiledField, CompiledPolicy, LawfulBasis } from './policy.js';

export type SubjectType = 'whatsapp' | 'workplace';
export type ConsentState = 'granted' | 'withdrawn' | 'none';
export type ConsentSnapshot = (subject: { type: SubjectType; id: string }, purpose: string) => ConsentState;

export interface ShareInput {
  purpose: string;
  source: string;
  destination: string;
  /** A Workplace Graph API post object (snake_case); unknown fields are allowed. */
  post: Record<string, unknown>;
  recipients: { waId: string }[];
}

export type DecisionStatus = 'accepted' | 'partially_accepted' | 'denied';

export interface ShareDecision {
  status: DecisionStatus;
  policy: { name: string; bundle: string } | null;
  lawfulBasis?: LawfulBasis;
  /** Reasons that deny the whole share. */
  reasons: string[];
  recipients: { waId: string; decision: 'allowed' | 'denied'; reasons: string[] }[];
  crossing: {
    fields: { path: string; category: string; transform: string; subject?: 'author' }[];
    dropped: { path: string; reason: string }[];
    redactions: { path: string; recogniser: string; count: number }[];
  };
  /** The people involved, for the audit log to pseudonymise; never shown or logged as is. */
  subjects: { role: 'author' | 'mentioned' | 'recipient'; type: SubjectType; id: string; consent: ConsentState; categories: string[] }[];
  /** The exact text that may cross, the same for every allowed recipient; null when nothing is sent. */
  outbound: { type: 'text'; body: string } | null;
}

export const PERSON_PLACEHOLDER = '[person]';

interface Mention {
  id: string;
  name: string;
  offset: number;
  length: number;
}

/** Every (subject, purpose) whose consent the evaluation reads, so the caller can fetch them in bulk. */
export function consentSubjectsFor(policy: CompiledPolicy, input: ShareInput): { subject: { type: SubjectType; id: string }; purpose: string }[] {
  const needed: { subject: { type: SubjectType; id: string }; purpose: string }[] = input.recipients.map((r) => ({
    subject: { type: 'whatsapp', id: r.waId },
    purpose: policy.recipientConsent.purpose,
  }));
  const authorId = authorIdOf(input.post);
  if (policy.author && authorId) needed.push({ subject: { type: 'workplace', id: authorId }, purpose: policy.author.consent.purpose });
  if (policy.mentioned) {
    for (const mention of mentionsOf(input.post)) needed.push({ subject: { type: 'workplace', id: mention.id }, purpose: policy.mentioned.consent.purpose });
  }
  return needed;
}

/**
 * Decides one share: default deny, only allow-listed fields cross, the subject rules applied with
 * consent. Pure: all consent is read from the snapshot. Never throws: an error denies the share
 * (fail closed) with internal.fail_closed.
 */
export function evaluateShare(policy: CompiledPolicy | undefined, bundle: string, input: ShareInput, consents: ConsentSnapshot): ShareDecision {
  try {
    if (!policy) return denyAll(null, input, ['policy.none_matches']);
    return evaluate(policy, bundle, input, consents);
  } catch {
    return denyAll(policy ? { name: policy.name, bundle } : null, input, ['internal.fail_closed']);
  }
}

function evaluate(policy: CompiledPolicy, bundle: string, input: ShareInput, consents: ConsentSnapshot): ShareDecision {
  const named = { name: policy.name, bundle };
  const { post } = input;
  if (input.recipients.length > policy.limits.recipientsPerShare) return denyAll(named, input, ['limits.too_many_recipients'], policy);

  const subjects: ShareDecision['subjects'] = [];
  const crossing: ShareDecision['crossing'] = { fields: [], dropped: [], redactions: [] };
  const shareReasons: string[] = [];

  const authorId = authorIdOf(post);
  let authorConsent: ConsentState = 'none';
  if (policy.author && authorId) authorConsent = consents({ type: 'workplace', id: authorId }, policy.author.consent.purpose);
  const authorCategories: string[] = [];

  const crossed = new Map<string, string>();
  for (const field of policy.fields) {
    const value = valueAt(post, field);
    if (value === undefined || value === null) continue;
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      crossing.dropped.push({ path: field.path, reason: 'invalid_value' });
      continue;
    }
    if (field.subject === 'author' && authorConsent !== 'granted') {
      if (policy.author!.whenMissing === 'deny') shareReasons.push('subject.no_consent');
      crossing.dropped.push({ path: field.path, reason: 'subject.no_consent' });
      continue;
    }
    let text = String(value);
    if (field.path === 'message' && policy.mentioned) {
      const outcome = applyMentionRule(text, post, policy, consents, subjects);
      if (outcome.deny) shareReasons.push('subject.no_consent');
      if (outcome.drop) {
        crossing.dropped.push({ path: field.path, reason: 'subject.no_consent' });
        continue;
      }
      text = outcome.text;
      if (outcome.count > 0) crossing.redactions.push({ path: 'message', recogniser: 'mention', count: outcome.count });
    }
    crossed.set(field.path, text);
    crossing.fields.push({ path: field.path, category: field.category, transform: field.transform, ...(field.subject ? { subject: field.subject } : {}) });
    if (field.subject === 'author') authorCategories.push(field.category);
  }
  crossing.dropped.push(...notAllowListed(post, policy.fields));
  if (policy.author && authorId) subjects.unshift({ role: 'author', type: 'workplace', id: authorId, consent: authorConsent, categories: authorCategories });

  const recipients = input.recipients.map((r) => {
    const consent = consents({ type: 'whatsapp', id: r.waId }, policy.recipientConsent.purpose);
    subjects.push({ role: 'recipient', type: 'whatsapp', id: r.waId, consent, categories: ['user.contact.phone_number'] });
    const reasons = consent === 'granted' ? [] : [consent === 'withdrawn' ? 'recipient.consent_withdrawn' : 'recipient.no_consent'];
    return { waId: r.waId, decision: reasons.length === 0 ? ('allowed' as const) : ('denied' as const), reasons };
  });

  const body = render(policy, crossed);
  if (body.trim() === '') shareReasons.push('content.empty');
  else if (body.length > policy.limits.messageLength) shareReasons.push('limits.message_too_long');

  const reasons = [...new Set(shareReasons)];
  if (reasons.length > 0) {
    return { ...denyAll(named, input, reasons, policy), crossing, subjects };
  }
  const allowed = recipients.filter((r) => r.decision === 'allowed').length;
  const status: DecisionStatus = allowed === 0 ? 'denied' : allowed === recipients.length ? 'accepted' : 'partially_accepted';
  return {
    status,
    policy: named,
    lawfulBasis: policy.lawfulBasis,
    reasons: [],
    recipients,
    crossing,
    subjects,
    outbound: allowed > 0 ? { type: 'text', body } : null,
  };
}

function denyAll(policy: ShareDecision['policy'], input: ShareInput, reasons: string[], compiled?: CompiledPolicy): ShareDecision {
  return {
    status: 'denied',
    policy,
    ...(compiled ? { lawfulBasis: compiled.lawfulBasis } : {}),
    reasons,
    recipients: input.recipients.map((r) => ({ waId: r.waId, decision: 'denied', reasons })),
    crossing: { fields: [], dropped: [], redactions: [] },
    subjects: [],
    outbound: null,
  };
}

function authorIdOf(post: Record<string, unknown>): string | undefined {
  const from = post.from;
  if (from === null || typeof from !== 'object') return undefined;
  const id = (from as Record<string, unknown>).id;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

function mentionsOf(post: Record<string, unknown>): Mention[] {
  const tags = post.message_tags;
  if (tags === undefined || tags === null) return [];
  if (!Array.isArray(tags)) throw new TypeError('message_tags is not an array');
  return tags
    .filter((t): t is Record<string, unknown> => t !== null && typeof t === 'object' && ((t as Record<string, unknown>).type ?? 'user') === 'user')
    .map((t) => {
      if (typeof t.id !== 'string' || typeof t.name !== 'string' || !Number.isInteger(t.offset) || !Number.isInteger(t.length)) {
        throw new TypeError('a message tag lacks id, name, offset or length');
      }
      return { id: t.id, name: t.name, offset: t.offset as number, length: t.length as number };
    });
}

/**
 * Applies the mentioned-people rule to the message. A tag's offset and length are UTF-16 code
 * units (as JavaScript strings count), so an emoji before the tag does not shift the cut. The
 * name is also replaced wherever else it appears, and even when the offsets do not point at it:
 * a name never slips through on a bad offset.
 */
function applyMentionRule(
  message: string,
  post: Record<string, unknown>,
  policy: CompiledPolicy,
  consents: ConsentSnapshot,
  subjects: ShareDecision['subjects'],
): { text: string; count: number; deny: boolean; drop: boolean } {
  const rule = policy.mentioned!;
  const withoutConsent: Mention[] = [];
  for (const mention of mentionsOf(post)) {
    const consent = consents({ type: 'workplace', id: mention.id }, rule.consent.purpose);
    subjects.push({ role: 'mentioned', type: 'workplace', id: mention.id, consent, categories: consent === 'granted' ? ['user.name'] : [] });
    if (consent !== 'granted') withoutConsent.push(mention);
  }
  if (withoutConsent.length === 0) return { text: message, count: 0, deny: false, drop: false };
  if (rule.whenMissing === 'deny') return { text: message, count: 0, deny: true, drop: false };
  if (rule.whenMissing === 'drop') return { text: message, count: 0, deny: false, drop: true };

  let text = message;
  let count = 0;
  const exact = withoutConsent
    .filter((m) => m.offset + m.length <= message.length && message.slice(m.offset, m.offset + m.length) === m.name)
    .sort((a, b) => b.offset - a.offset);
  let lastStart = Number.POSITIVE_INFINITY;
  for (const m of exact) {
    if (m.offset + m.length > lastStart) continue;
    text = text.slice(0, m.offset) + PERSON_PLACEHOLDER + text.slice(m.offset + m.length);
    lastStart = m.offset;
    count++;
  }
  for (const name of new Set(withoutConsent.map((m) => m.name).filter((n) => n.trim() !== ''))) {
    const parts = text.split(name);
    count += parts.length - 1;
    text = parts.join(PERSON_PLACEHOLDER);
  }
  return { text, count, deny: false, drop: false };
}

function valueAt(post: Record<string, unknown>, field: CompiledField): unknown {
  let value: unknown = post;
  for (const segment of field.segments) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, segment)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

/** Every part of the post outside the allow-list, reported at the shallowest path that says it. */
function notAllowListed(post: Record<string, unknown>, fields: CompiledField[]): { path: string; reason: string }[] {
  const dropped: { path: string; reason: string }[] = [];
  const walk = (value: Record<string, unknown>, prefix: string[]) => {
    for (const key of Object.keys(value)) {
      const path = [...prefix, key];
      const dotted = path.join('.');
      if (fields.some((f) => f.path === dotted)) continue;
      const partly = fields.some((f) => f.path.startsWith(`${dotted}.`));
      const child = value[key];
      if (partly && child !== null && typeof child === 'object' && !Array.isArray(child)) walk(child as Record<string, unknown>, path);
      else dropped.push({ path: dotted, reason: 'not_allow_listed' });
    }
  };
  walk(post, []);
  return dropped;
}

function render(policy: CompiledPolicy, crossed: Map<string, string>): string {
  return policy.template
    .filter((line) => line.every((part) => !('field' in part) || crossed.has(part.field)))
    .map((line) => line.map((part) => ('field' in part ? crossed.get(part.field)! : part.text)).join(''))
    .join('\n');
}
