import type { CompiledPolicy, CompiledTemplate, LawfulBasis, TemplateLine, Transform } from './policy.js';
import { transformLabel } from './policy.js';
import { findPii, RECOGNISER_PLACEHOLDERS, type RecogniserId } from './recognisers/index.js';
import { applyTransform } from './transforms.js';
import { cutNames, type PersonToCut } from './mentions.js';

export type SubjectType = 'whatsapp' | 'workplace';
export type ConsentState = 'granted' | 'withdrawn' | 'none';
export type ConsentSnapshot = (subject: { type: SubjectType; id: string }, purpose: string) => ConsentState;

/** An attachment of the post after media minimisation (done by the caller, see media/). */
export type MediaOutcome =
  | { path: string; ok: true; kind: 'photo' | 'video'; type: string; mimeType: string; sha256: string; bytes: number; removed: string[] }
  | { path: string; ok: false; reason: 'media.type_not_allowed' | 'media.too_large' | 'media.unreadable' | 'limits.too_many_media' };

/** A WhatsApp message carries one photo or video: a post with more shares none of them. */
export const MAX_MEDIA_PER_SHARE = 1;

export interface ShareInput {
  purpose: string;
  source: string;
  destination: string;
  /** A Workplace Graph API post object (snake_case); unknown fields are allowed. */
  post: Record<string, unknown>;
  recipients: { waId: string }[];
  /** One outcome per media attachment of the post (see mediaAttachmentsOf), in the same order. */
  media?: MediaOutcome[];
}

export interface EvaluationTools {
  consents: ConsentSnapshot;
  /** Keyed pseudonym for the `hash` transform; without it such a field fails the decision closed. */
  keyedHash?: (value: string) => string;
}

export type DecisionStatus = 'accepted' | 'partially_accepted' | 'denied';

export interface CrossedField {
  path: string;
  category: string;
  transform: string;
  subject?: 'author' | 'mentioned';
}

export type Outbound =
  | { type: 'text'; body: string }
  | { type: 'image' | 'video'; caption: string; media: { sha256: string; mimeType: string; path: string } }
  | { type: 'template'; name: string; language: string; parameters: string[] };

export interface ShareDecision {
  status: DecisionStatus;
  policy: { name: string; bundle: string } | null;
  /** The policy bundle that decided, also when no policy of it matched. */
  bundle: string;
  lawfulBasis?: LawfulBasis;
  /** Reasons that deny the whole share; where only the recipients are denied, theirs. */
  reasons: string[];
  recipients: { waId: string; decision: 'allowed' | 'denied'; reasons: string[] }[];
  /** The purpose whose consent every allowed recipient holds, checked again before sending; null when the policy asks none. */
  recipientConsent: string | null;
  /** What crossed, what was dropped and what was redacted: paths, categories and counts, never values. */
  crossing: {
    fields: CrossedField[];
    dropped: { path: string; reason: string }[];
    redactions: { path: string; recogniser: string; count: number }[];
  };
  /**
   * The people involved, for the audit log to pseudonymise; never shown or logged as is. The author
   * is named even where the policy asks them nothing (`not_asked`): the post is theirs, so their
   * access report and erasure must find the share.
   */
  subjects: {
    role: 'author' | 'mentioned' | 'recipient';
    type: SubjectType;
    id: string;
    consent: ConsentState | 'not_asked';
    categories: string[];
    /** The purpose their consent was asked for (not in the log entry: the delivery worker checks it again before each send). */
    purpose?: string;
  }[];
  /** The exact message that may cross, the same for every allowed recipient; null when nothing is sent. */
  outbound: Outbound | null;
  /** The template that replaces a text outbound where the recipient's 24-hour window is closed. */
  outsideWindow: Extract<Outbound, { type: 'template' }> | null;
}

export const REDACTED_PLACEHOLDER = '[redacted]';
/** WhatsApp's limit for a media caption (a text body may be 4096). */
const CAPTION_LIMIT = 1024;

interface Mention {
  id: string;
  name: string;
  offset: number;
  length: number;
}

/** A media attachment of a Workplace post: where its bytes are (if the post says) and what the post says it is. */
export interface MediaAttachment {
  path: string;
  declared: 'photo' | 'video';
  src: string | undefined;
}

/** Attachment types whose image is the photo itself (an album's is its cover, one of its photos). */
const PHOTO_TYPES: ReadonlySet<string> = new Set(['photo', 'album', 'cover_photo', 'profile_media']);

/** Every (subject, purpose) whose consent the evaluation reads, so the caller can fetch them in bulk. */
export function consentSubjectsFor(policy: CompiledPolicy, input: ShareInput): { subject: { type: SubjectType; id: string }; purpose: string }[] {
  const needed: { subject: { type: SubjectType; id: string }; purpose: string }[] = [];
  if (policy.recipientConsent) {
    for (const r of input.recipients) needed.push({ subject: { type: 'whatsapp', id: r.waId }, purpose: policy.recipientConsent.purpose });
  }
  const authorId = authorIdOf(input.post);
  if (policy.author && authorId) needed.push({ subject: { type: 'workplace', id: authorId }, purpose: policy.author.consent.purpose });
  if (policy.mentioned) {
    for (const mention of mentionsOf(input.post)) needed.push({ subject: { type: 'workplace', id: mention.id }, purpose: policy.mentioned.consent.purpose });
  }
  return needed;
}

/**
 * The photos and videos attached to a post (attachments.data[], albums' subattachments), with the
 * path of their source. A photo or video is one even without a usable source: it crosses as one
 * or not at all (unreadable), and a video never as its preview image. Links (to videos elsewhere too), GIFs, stickers and other
 * attachment types are not media: their images (previews, thumbnails) never cross.
 */
export function mediaAttachmentsOf(post: Record<string, unknown>): MediaAttachment[] {
  const found: MediaAttachment[] = [];
  const visit = (container: unknown, prefix: string) => {
    if (container === null || typeof container !== 'object') return;
    const data = (container as Record<string, unknown>).data;
    if (!Array.isArray(data)) return;
    data.forEach((item: unknown, i) => {
      if (item === null || typeof item !== 'object') return;
      const attachment = item as Record<string, unknown>;
      const path = `${prefix}.data.${i}`;
      const type = typeof attachment.type === 'string' ? attachment.type : '';
      const media = attachment.media as Record<string, unknown> | undefined;
      // video_share_* is a link to a video elsewhere (YouTube): a link, not media.
      if (type.startsWith('video') && !type.startsWith('video_share')) {
        const source = typeof media?.source === 'string' ? media.source : undefined;
        found.push({ path: source === undefined ? path : `${path}.media.source`, declared: 'video', src: source });
      } else if (PHOTO_TYPES.has(type)) {
        const image = media !== null && typeof media === 'object' ? (media.image as Record<string, unknown> | undefined) : undefined;
        if (typeof image?.src === 'string') found.push({ path: `${path}.media.image.src`, declared: 'photo', src: image.src });
        // A photo without a usable source cannot cross, and the share must not pass as if it had
        // none (an album's photos are its subattachments: its own image is only the cover).
        else if (type !== 'album') found.push({ path: image === undefined ? path : `${path}.media.image.src`, declared: 'photo', src: undefined });
      }
      if (attachment.subattachments) visit(attachment.subattachments, `${path}.subattachments`);
    });
  };
  visit(post.attachments, 'attachments');
  return found;
}

/**
 * Decides one share: default deny, only allow-listed fields cross, each through its transform,
 * the subject rules applied with consent, free text through the recognisers, media only as the
 * policy allows and minimised. Pure: all consent is read from the snapshot and media arrive
 * already processed. Never throws: an error denies the share (fail closed) with internal.fail_closed.
 */
export function evaluateShare(policy: CompiledPolicy | undefined, bundle: string, input: ShareInput, tools: EvaluationTools | ConsentSnapshot): ShareDecision {
  const resolved: EvaluationTools = typeof tools === 'function' ? { consents: tools } : tools;
  try {
    if (!policy) return denyAll(bundle, null, input, ['policy.none_matches']);
    return evaluate(policy, bundle, input, resolved);
  } catch {
    return denyAll(bundle, policy ? { name: policy.name, bundle } : null, input, ['internal.fail_closed']);
  }
}

function evaluate(policy: CompiledPolicy, bundle: string, input: ShareInput, tools: EvaluationTools): ShareDecision {
  const named = { name: policy.name, bundle };
  const { post } = input;
  const { consents } = tools;
  if (input.recipients.length > policy.limits.recipientsPerShare) return denyAll(bundle, named, input, ['limits.too_many_recipients'], policy);

  const subjects: ShareDecision['subjects'] = [];
  const crossing: ShareDecision['crossing'] = { fields: [], dropped: [], redactions: [] };
  const shareReasons: string[] = [];

  const authorId = authorIdOf(post);
  let authorConsent: ConsentState = 'none';
  if (policy.author && authorId) authorConsent = consents({ type: 'workplace', id: authorId }, policy.author.consent.purpose);
  /** The author's name, to be cut from the message: the author has not consented to it crossing. */
  const authorName = policy.author && authorConsent !== 'granted' ? authorNameOf(post) : undefined;
  const authorCategories: string[] = [];

  const crossed = new Map<string, string>();
  for (const field of policy.fields) {
    const value = valueAt(post, field.segments);
    if (value === undefined || value === null) continue;
    if (field.transform.kind === 'drop') {
      crossing.dropped.push({ path: field.path, reason: 'policy.drop' });
      continue;
    }
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
    // Before the hidden characters go: the tags' offsets count them.
    if (field.path === 'message' && (policy.mentioned || authorName !== undefined)) {
      const outcome = applyMentionRule(text, field.transform, post, policy, consents, subjects, authorName);
      if (outcome.deny) shareReasons.push('subject.no_consent');
      if (outcome.drop) {
        crossing.dropped.push({ path: field.path, reason: 'subject.no_consent' });
        continue;
      }
      text = outcome.text;
      if (outcome.count > 0) crossing.redactions.push({ path: field.path, recogniser: 'mention', count: outcome.count });
    }
    text = withoutHiddenCharacters(text);
    const transformed = transformValue(text, field.transform, policy, tools);
    if (transformed === undefined) {
      crossing.dropped.push({ path: field.path, reason: 'invalid_value' });
      continue;
    }
    if (transformed.denied) shareReasons.push('freetext.denied');
    for (const [recogniser, count] of Object.entries(transformed.counts)) crossing.redactions.push({ path: field.path, recogniser, count });
    crossed.set(field.path, transformed.text);
    crossing.fields.push({ path: field.path, category: field.category, transform: transformLabel(field.transform), ...(field.subject ? { subject: field.subject } : {}) });
  }
  unplacedFieldsDropped(policy, crossed, crossing, subjects);
  for (const field of crossing.fields) if (field.subject === 'author') authorCategories.push(field.category);

  const media = decideMedia(policy, input, crossing, shareReasons);
  // Allow-listed fields that did not cross were reported above with their reason.
  crossing.dropped.push(...notAllowListed(post, [...policy.fields.map((f) => f.path), ...media.crossedPaths]));
  if (authorId) {
    const asked = policy.author ? { consent: authorConsent, purpose: policy.author.consent.purpose } : { consent: 'not_asked' as const };
    subjects.unshift({ role: 'author', type: 'workplace', id: authorId, ...asked, categories: authorCategories });
  }

  const recipients = input.recipients.map((r) => {
    const consent: ConsentState = policy.recipientConsent ? consents({ type: 'whatsapp', id: r.waId }, policy.recipientConsent.purpose) : 'none';
    subjects.push({ role: 'recipient', type: 'whatsapp', id: r.waId, consent, categories: ['user.contact.phone_number'] });
    const reasons = !policy.recipientConsent || consent === 'granted' ? [] : [consent === 'withdrawn' ? 'recipient.consent_withdrawn' : 'recipient.no_consent'];
    return { waId: r.waId, decision: reasons.length === 0 ? ('allowed' as const) : ('denied' as const), reasons };
  });

  const outbound = buildOutbound(policy, crossed, media.outcome, shareReasons);
  const reasons = [...new Set(shareReasons)];
  if (reasons.length > 0) {
    return { ...denyAll(bundle, named, input, reasons, policy), crossing, subjects };
  }
  const allowed = recipients.filter((r) => r.decision === 'allowed').length;
  const status: DecisionStatus = allowed === 0 ? 'denied' : allowed === recipients.length ? 'accepted' : 'partially_accepted';
  return {
    status,
    policy: named,
    bundle,
    lawfulBasis: policy.lawfulBasis,
    // A share no recipient may receive is denied for their reasons.
    reasons: allowed === 0 ? [...new Set(recipients.flatMap((r) => r.reasons))] : [],
    recipients,
    recipientConsent: policy.recipientConsent?.purpose ?? null,
    crossing,
    subjects,
    outbound: allowed > 0 ? outbound : null,
    outsideWindow: allowed > 0 && policy.delivery.type === 'text' && policy.delivery.outsideWindow ? templateOutbound(policy.delivery.outsideWindow, crossed) : null,
  };
}

/**
 * Direction overrides, embeddings and isolates, control characters (but tab and line breaks) and
 * invisible separators (zero-width space, word joiner, byte order mark, soft hyphen) are taken out
 * of text before it crosses: they let the recognisers read other text than the recipient's phone
 * shows (a number written backwards under a right-to-left override, a zero-width space inside
 * one). Zero-width (non-)joiners stay: scripts and emoji need them, and the recognisers read past
 * them (recognitionView).
 */
function withoutHiddenCharacters(text: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are what it takes out
  return text.replace(/[\u202A-\u202E\u2066-\u2069\u200B\u2060\uFEFF\u00AD\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g, '');
}

/** A field's value through its transform; undefined when the value does not fit the transform. */
function transformValue(text: string, transform: Transform, policy: CompiledPolicy, tools: EvaluationTools): { text: string; counts: Record<string, number>; denied: boolean } | undefined {
  if (transform.kind === 'redact-pii') return redactPii(text, policy);
  if (transform.kind === 'hash') {
    if (!tools.keyedHash) throw new Error('the hash transform needs a key');
    return { text: tools.keyedHash(text), counts: {}, denied: false };
  }
  const result = applyTransform(text, transform);
  return result === undefined ? undefined : { text: result, counts: {}, denied: false };
}

/** Runs the policy's recognisers over free text and applies each one's action. */
function redactPii(text: string, policy: CompiledPolicy): { text: string; counts: Record<string, number>; denied: boolean } {
  const findings = findPii(text, policy.freeText.recognisers);
  const counts: Partial<Record<RecogniserId, number>> = {};
  let denied = false;
  let out = text;
  for (const finding of [...findings].sort((a, b) => b.start - a.start)) {
    const action = policy.freeText.actionOf[finding.recogniser];
    counts[finding.recogniser] = (counts[finding.recogniser] ?? 0) + 1;
    if (action === 'deny') denied = true;
    const replacement = action === 'redact' ? REDACTED_PLACEHOLDER : RECOGNISER_PLACEHOLDERS[finding.recogniser];
    out = out.slice(0, finding.start) + replacement + out.slice(finding.end);
  }
  const ordered: Record<string, number> = {};
  for (const id of policy.freeText.recognisers) if (counts[id]) ordered[id] = counts[id];
  return { text: out, counts: ordered, denied };
}

function decideMedia(
  policy: CompiledPolicy,
  input: ShareInput,
  crossing: ShareDecision['crossing'],
  shareReasons: string[],
): { outcome: Extract<MediaOutcome, { ok: true }> | undefined; crossedPaths: string[] } {
  const attachments = mediaAttachmentsOf(input.post);
  if (attachments.length === 0) return { outcome: undefined, crossedPaths: [] };
  const outcomes = input.media ?? [];
  // Every attachment must have been processed, else the caller skipped one: fail closed.
  if (outcomes.length !== attachments.length || outcomes.some((o, i) => o.path !== attachments[i]!.path)) throw new Error('media outcomes do not match the attachments');
  for (const outcome of outcomes) {
    if (!outcome.ok) {
      shareReasons.push(outcome.reason);
      crossing.dropped.push({ path: outcome.path, reason: outcome.reason });
    }
  }
  const ok = outcomes.filter((o): o is Extract<MediaOutcome, { ok: true }> => o.ok);
  if (ok.length > MAX_MEDIA_PER_SHARE) shareReasons.push('limits.too_many_media');
  const first = ok[0];
  if (!first || ok.length > MAX_MEDIA_PER_SHARE || outcomes.some((o) => !o.ok)) return { outcome: undefined, crossedPaths: [] };
  const rule = first.kind === 'photo' ? policy.media.photos : policy.media.videos;
  crossing.fields.push({ path: first.path, category: rule.category, transform: first.kind === 'photo' ? 'reencode-without-metadata' : 'strip-container-metadata' });
  return { outcome: first, crossedPaths: [first.path] };
}

function buildOutbound(policy: CompiledPolicy, crossed: Map<string, string>, media: Extract<MediaOutcome, { ok: true }> | undefined, shareReasons: string[]): Outbound | null {
  const delivery = policy.delivery;
  if (delivery.type === 'template') {
    const outbound = templateOutbound(delivery, crossed);
    if (outbound.parameters.join('').length > policy.limits.messageLength) shareReasons.push('limits.message_too_long');
    return outbound;
  }
  const body = delivery.body
    .filter((line) => lineCrossed(line, crossed))
    .map((line) => renderLine(line, crossed))
    .join('\n');
  if (media) {
    if (body.length > Math.min(policy.limits.messageLength, CAPTION_LIMIT)) shareReasons.push('limits.message_too_long');
    return { type: media.kind === 'photo' ? 'image' : 'video', caption: body, media: { sha256: media.sha256, mimeType: media.mimeType, path: media.path } };
  }
  if (body.trim() === '') shareReasons.push('content.empty');
  else if (body.length > policy.limits.messageLength) shareReasons.push('limits.message_too_long');
  return { type: 'text', body };
}

/**
 * A field crosses only where a message places it: a template line or parameter is left out when
 * one of its fields did not cross, and so takes the fields it does show with it. Such fields, and
 * any the templates never name, are reported as dropped (`not_in_message`) with their redactions
 * and, for the message, the names of mentioned people, so the crossing says exactly what was sent.
 */
function unplacedFieldsDropped(policy: CompiledPolicy, crossed: Map<string, string>, crossing: ShareDecision['crossing'], subjects: ShareDecision['subjects']): void {
  const delivery = policy.delivery;
  const parameters = delivery.type === 'template' ? delivery.parameters : (delivery.outsideWindow?.parameters ?? []);
  const placed = new Set<string>();
  const place = (line: TemplateLine) => {
    for (const part of line) if ('field' in part) placed.add(part.field);
  };
  for (const line of delivery.type === 'text' ? delivery.body : []) if (lineCrossed(line, crossed)) place(line);
  // A parameter that would render blank sends its fallback instead (see templateOutbound).
  for (const { text } of parameters) if (lineCrossed(text, crossed) && renderLine(text, crossed).trim() !== '') place(text);
  const unplaced = [...crossed.keys()].filter((path) => !placed.has(path));
  if (unplaced.length === 0) return;
  for (const path of unplaced) {
    crossed.delete(path);
    crossing.dropped.push({ path, reason: 'not_in_message' });
  }
  crossing.fields = crossing.fields.filter((f) => !unplaced.includes(f.path));
  crossing.redactions = crossing.redactions.filter((r) => !unplaced.includes(r.path));
  if (unplaced.includes('message')) for (const subject of subjects) if (subject.role === 'mentioned') subject.categories = [];
}

function templateOutbound(template: CompiledTemplate, crossed: Map<string, string>): Extract<Outbound, { type: 'template' }> {
  // Template parameters may not hold line breaks or tabs, nor be empty (Cloud API): breaks and tabs
  // become spaces, and a parameter left blank takes its fallback.
  const parameters = template.parameters.map((p) => {
    const text = lineCrossed(p.text, crossed) ? renderLine(p.text, crossed).replace(/[\r\n\t]+/g, ' ').replace(/ {4,}/g, '   ') : '';
    return text.trim() === '' ? p.fallback : text;
  });
  return { type: 'template', name: template.name, language: template.language, parameters };
}

function lineCrossed(line: TemplateLine, crossed: Map<string, string>): boolean {
  return line.every((part) => !('field' in part) || crossed.has(part.field));
}

function renderLine(line: TemplateLine, crossed: Map<string, string>): string {
  return line.map((part) => ('field' in part ? crossed.get(part.field)! : part.text)).join('');
}

function denyAll(bundle: string, policy: ShareDecision['policy'], input: ShareInput, reasons: string[], compiled?: CompiledPolicy): ShareDecision {
  return {
    status: 'denied',
    policy,
    bundle,
    ...(compiled ? { lawfulBasis: compiled.lawfulBasis } : {}),
    reasons,
    recipients: input.recipients.map((r) => ({ waId: r.waId, decision: 'denied', reasons })),
    recipientConsent: compiled?.recipientConsent?.purpose ?? null,
    crossing: { fields: [], dropped: [], redactions: [] },
    // The post is the author's whatever denied it: their access report and erasure must find the share.
    subjects: authorOf(input.post),
    outbound: null,
    outsideWindow: null,
  };
}

/** The post's author as a subject the policy asked nothing of, or none for a post without one. */
function authorOf(post: Record<string, unknown>): ShareDecision['subjects'] {
  const id = authorIdOf(post);
  return id === undefined ? [] : [{ role: 'author', type: 'workplace', id, consent: 'not_asked', categories: [] }];
}

function authorNameOf(post: Record<string, unknown>): string | undefined {
  const from = post.from;
  if (from === null || typeof from !== 'object') return undefined;
  const name = (from as Record<string, unknown>).name;
  return typeof name === 'string' ? name : undefined;
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
 * Applies the mentioned-people rule to the message: the names of tagged people without consent are
 * cut (cutNames), or the message is dropped or the share denied, as the rule says. The author's name
 * is cut too when the author has not consented (`authorName`): a post signed with it shows it as
 * plainly as `from.name`, which the author rule drops.
 */
function applyMentionRule(
  message: string,
  transform: Transform,
  post: Record<string, unknown>,
  policy: CompiledPolicy,
  consents: ConsentSnapshot,
  subjects: ShareDecision['subjects'],
  authorName: string | undefined,
): { text: string; count: number; deny: boolean; drop: boolean } {
  const rule = policy.mentioned;
  const withoutConsent: PersonToCut[] = [];
  for (const mention of rule ? mentionsOf(post) : []) {
    const consent = consents({ type: 'workplace', id: mention.id }, rule!.consent.purpose);
    subjects.push({ role: 'mentioned', type: 'workplace', id: mention.id, consent, categories: consent === 'granted' ? ['user.name'] : [], purpose: rule!.consent.purpose });
    if (consent !== 'granted') withoutConsent.push({ name: mention.name, tags: [{ offset: mention.offset, length: mention.length }] });
  }
  if (withoutConsent.length > 0 && rule!.whenMissing === 'deny') return { text: message, count: 0, deny: true, drop: false };
  if (withoutConsent.length > 0 && rule!.whenMissing === 'drop') return { text: message, count: 0, deny: false, drop: true };
  if (authorName !== undefined && authorName.trim() !== '') withoutConsent.push({ name: authorName, tags: [], author: true });
  // An address holding a name is left whole to the e-mail recogniser, when it runs on the message.
  const emailAddresses = transform.kind === 'redact-pii' && policy.freeText.recognisers.includes('email') ? (text: string) => findPii(text, ['email']) : undefined;
  const cut = cutNames(message, withoutConsent, emailAddresses);
  return { text: cut.text, count: cut.count, deny: false, drop: false };
}

function valueAt(post: Record<string, unknown>, segments: string[]): unknown {
  let value: unknown = post;
  for (const segment of segments) {
    if (value === null || typeof value !== 'object' || !Object.hasOwn(value, segment)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

/** Every part of the post outside the allow-list and the crossed media, at the shallowest path that says it. */
function notAllowListed(post: Record<string, unknown>, crossedPaths: string[]): { path: string; reason: string }[] {
  const dropped: { path: string; reason: string }[] = [];
  const walk = (value: Record<string, unknown>, prefix: string[]) => {
    for (const key of Object.keys(value)) {
      const path = [...prefix, key];
      const dotted = path.join('.');
      if (crossedPaths.includes(dotted)) continue;
      const partly = crossedPaths.some((p) => p.startsWith(`${dotted}.`));
      const child = value[key];
      if (partly && child !== null && typeof child === 'object') walk(child as Record<string, unknown>, path);
      else dropped.push({ path: dotted, reason: 'not_allow_listed' });
    }
  };
  walk(post, []);
  return dropped;
}

