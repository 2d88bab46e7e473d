import { isSpecialCategory, specialCategoriesCovered } from '../domain/data-categories.js';
import type { PolicyBundle } from '../domain/loader.js';
import { type CompiledPolicy, type CompiledTemplate, type TemplateLine, transformLabel } from '../domain/policy.js';
import { retentionMs } from '../domain/retention.js';

/** What of whom a policy lets cross, in the terms a privacy reviewer compares. */
interface PrivacyProfile {
  name: string;
  file: string;
  purpose: string;
  /** What selects the policy: purpose, source and destination. */
  selection: string;
  lawfulBasis: string;
  recipientConsent: string | null;
  author: string | null;
  mentioned: string | null;
  fields: Map<string, { category: string; transform: string; subject: string | null }>;
  recognisers: Set<string>;
  freeTextActions: Map<string, string>;
  photos: boolean;
  videos: boolean;
  /** Categories, types and limits of the media that may cross (while allowed). */
  photoRule: string;
  videoRule: string;
  photoCategory: string | null;
  videoCategory: string | null;
  limits: string;
  /** The message as the policy writes it: its text or template, and the template outside the window. */
  delivery: string;
  /** The allow-listed fields the message actually carries (an allow-listed field no template names does not reach WhatsApp). */
  sentFields: Set<string>;
  retention: string | null;
  /** Whose consent is asked for, and for which purpose. */
  consentPurposes: Map<string, string>;
}

function profileOf(policy: CompiledPolicy): PrivacyProfile {
  const crossing = policy.fields.filter((f) => f.transform.kind !== 'drop');
  const freeTextUsed = crossing.some((f) => f.transform.kind === 'redact-pii');
  const recognisers = freeTextUsed ? policy.freeText.recognisers : [];
  const { photos, videos } = policy.media;
  return {
    name: policy.name,
    file: policy.file,
    purpose: policy.purpose,
    selection: selectionOf(policy),
    lawfulBasis: policy.lawfulBasis,
    recipientConsent: policy.recipientConsent?.purpose ?? null,
    author: policy.author ? `consent ${policy.author.consent.purpose}, else ${policy.author.whenMissing}` : null,
    mentioned: policy.mentioned ? `consent ${policy.mentioned.consent.purpose}, else ${policy.mentioned.whenMissing}` : null,
    fields: new Map(crossing.map((f) => [f.path, { category: f.category, transform: transformLabel(f.transform), subject: f.subject ?? null }])),
    recognisers: new Set(recognisers),
    freeTextActions: new Map(recognisers.map((r) => [r, policy.freeText.actionOf[r]])),
    photos: photos.allow,
    videos: videos.allow,
    photoRule: photos.allow ? `category ${photos.category}; ${photos.types.join(', ')}; up to ${photos.maxPixels} pixels, ${photos.maxDimension} px a side` : '',
    videoRule: videos.allow ? `category ${videos.category}; ${videos.types.join(', ')}` : '',
    photoCategory: photos.allow ? photos.category : null,
    videoCategory: videos.allow ? videos.category : null,
    limits: `${policy.limits.recipientsPerShare} recipients a share, messages up to ${policy.limits.messageLength} characters, media up to ${policy.limits.mediaBytes} bytes`,
    delivery: deliveryOf(policy),
    sentFields: new Set(fieldsSent(policy).filter((path) => crossing.some((f) => f.path === path))),
    consentPurposes: new Map(
      [
        ['recipients', policy.recipientConsent?.purpose],
        ['the author', policy.author?.consent.purpose],
        ['mentioned people', policy.mentioned?.consent.purpose],
      ].filter((entry): entry is [string, string] => entry[1] !== undefined),
    ),
    retention: policy.retention ?? null,
  };
}

function lineText(line: TemplateLine): string {
  return line.map((part) => ('text' in part ? part.text : `{${part.field}}`)).join('');
}

function templateOf(template: CompiledTemplate): string {
  return `template ${template.name} (${template.language}) with ${template.parameters.map((p) => `"${lineText(p.text)}"`).join(', ') || 'no parameters'}`;
}

function deliveryOf(policy: CompiledPolicy): string {
  const { delivery } = policy;
  if (delivery.type === 'template') return templateOf(delivery);
  const text = `text "${delivery.body.map(lineText).join('\\n')}"`;
  return delivery.outsideWindow ? `${text}; outside the window ${templateOf(delivery.outsideWindow)}` : text;
}

/** The field paths the message's templates name. */
function fieldsSent(policy: CompiledPolicy): string[] {
  const { delivery } = policy;
  const lines = delivery.type === 'template' ? delivery.parameters.map((p) => p.text) : [...delivery.body, ...(delivery.outsideWindow?.parameters.map((p) => p.text) ?? [])];
  return lines.flatMap((line) => line.flatMap((part) => ('field' in part ? [part.field] : [])));
}

const FREE_TEXT_CATEGORY = /^user\.content(\.|$)/;
/** Fields of a Workplace post that people write, under any category: `name` is a link's title at the top level only. */
const FREE_TEXT_NAMES = new Set(['message', 'story', 'description', 'caption', 'title', 'text']);
/** Free text that names people by their tags (message_tags, story_tags). */
const TAGGED_TEXT = new Set(['message', 'story']);
/** Links to a post's media: whoever has one fetches the original, as posted, past the media rules. */
const MEDIA_LINK_NAMES = new Set(['full_picture', 'picture', 'source', 'src', 'url', 'unshimmed_url']);
/** Parts of a post about people other than its author: tagged, addressed, commenting, reacting. */
const OTHER_PEOPLE_ROOTS = new Set(['message_tags', 'story_tags', 'with_tags', 'description_tags', 'to', 'comments', 'likes', 'reactions', 'seen', 'admin_creator']);

const lastName = (path: string) => path.slice(path.lastIndexOf('.') + 1);
const rootName = (path: string) => path.split('.')[0]!;

function isFreeText(path: string, category: string): boolean {
  return FREE_TEXT_CATEGORY.test(category) || path === 'name' || FREE_TEXT_NAMES.has(lastName(path));
}

/** Free text that crosses without any recogniser looking at it. */
function unscreenedFreeText(profile: PrivacyProfile): string[] {
  return [...profile.fields].filter(([path, f]) => isFreeText(path, f.category) && f.transform !== 'redact-pii' && f.transform !== 'hash').map(([path]) => path);
}

/** Fields of the author's (from.*) that cross without the author's consent. */
function authorFieldsWithoutConsent(profile: PrivacyProfile): string[] {
  return [...profile.fields].filter(([path, f]) => rootName(path) === 'from' && f.subject === null).map(([path]) => path);
}

/** Free text that names tagged people, crossing with no rule for their consent. */
function taggedTextWithoutConsent(profile: PrivacyProfile): string[] {
  return profile.mentioned === null ? [...profile.fields.keys()].filter((path) => TAGGED_TEXT.has(path)) : [];
}

const newIn = (head: string[], before: string[]) => head.filter((x) => !before.includes(x));

function selectionOf(policy: CompiledPolicy): string {
  return `${policy.purpose}|${policy.source}|${policy.destination}`;
}

/** Every category that crosses, with where: fields by path, and the media allowed. */
function categoriesCrossing(profile: PrivacyProfile): Map<string, string[]> {
  const where = new Map<string, string[]>();
  const add = (category: string | null, place: string) => {
    if (category !== null) where.set(category, [...(where.get(category) ?? []), place]);
  };
  for (const [path, field] of profile.fields) add(field.category, `\`${path}\``);
  add(profile.photoCategory, 'photos');
  add(profile.videoCategory, 'videos');
  return where;
}

function riskFlags(base: PrivacyProfile | undefined, head: PrivacyProfile): string[] {
  const flags: string[] = [];
  const before = base ?? emptyProfile();
  const categoriesBefore = categoriesCrossing(before);
  for (const [category, places] of categoriesCrossing(head)) {
    if (categoriesBefore.has(category)) continue;
    const covered = specialCategoriesCovered(category);
    if (isSpecialCategory(category)) flags.push(`GDPR Art. 9/10 special category \`${category}\` newly crosses (${places.join(', ')}): needs an Art. 9(2) exception`);
    else if (covered.length > 0) flags.push(`category \`${category}\` newly crosses (${places.join(', ')}) and covers GDPR Art. 9/10 special categories (${covered.join(', ')}): name a narrower category, or the Art. 9(2) exception`);
    else if (category.startsWith('org.')) flags.push(`organisation category \`${category}\` newly crosses (${places.join(', ')}): not in the pinned taxonomy, so not checked for GDPR Art. 9/10 special categories`);
  }
  if (base) {
    if (base.purpose !== head.purpose) flags.push(`purpose changed: ${base.purpose} → ${head.purpose}: the policy now decides the shares of another purpose`);
    // No retention keeps the detail for good: only a retention set or made shorter shortens it.
    if (head.retention !== null && (base.retention === null || retentionMs(head.retention) < retentionMs(base.retention))) {
      flags.push(`audit retention shortened: ${base.retention ?? 'none'} → ${head.retention}: subject reports leave out this policy's crossings older than that`);
    }
    if (base.author && !head.author) flags.push('consent requirement removed: the author rule is gone');
    if (base.mentioned && !head.mentioned) flags.push('consent requirement removed: the rule for mentioned people is gone');
    for (const recogniser of base.recognisers) {
      if (!head.recognisers.has(recogniser)) flags.push(`recogniser \`${recogniser}\` no longer screens the free text`);
    }
    if (base.lawfulBasis !== head.lawfulBasis) flags.push(`lawful basis changed: ${base.lawfulBasis} → ${head.lawfulBasis}`);
  }
  // Consent that nobody is asked for, where before it was asked for or nothing crossed.
  if (head.fields.size > 0 && head.recipientConsent === null) {
    if (before.recipientConsent !== null) flags.push('consent requirement removed: recipients no longer need consent');
    else if (before.fields.size === 0) flags.push('recipients need no consent: whoever the integration names receives the shares');
  }
  for (const [path, field] of head.fields) {
    if (before.fields.get(path)?.subject && !field.subject) flags.push(`consent requirement removed: \`${path}\` no longer needs its subject's consent`);
  }
  for (const path of newIn(authorFieldsWithoutConsent(head), authorFieldsWithoutConsent(before))) {
    if (!before.fields.get(path)?.subject) flags.push(`\`${path}\`, the author's, crosses without the author's consent`);
  }
  // (A rule for mentioned people that is gone is flagged above.)
  if (!before.mentioned) {
    for (const path of newIn(taggedTextWithoutConsent(head), taggedTextWithoutConsent(before))) {
      flags.push(`names of people tagged in \`${path}\` cross without their consent: no rule for mentioned people`);
    }
  }
  for (const path of [...head.fields.keys()].filter((p) => OTHER_PEOPLE_ROOTS.has(rootName(p)) && !before.fields.has(p))) {
    flags.push(`\`${path}\`, about people other than the author (tagged, addressed, commenting or reacting), newly crosses without their consent`);
  }
  const unscreenedBefore = new Set(unscreenedFreeText(before));
  for (const path of unscreenedFreeText(head)) {
    if (!unscreenedBefore.has(path)) flags.push(`free text without recognisers: \`${path}\` crosses with transform ${head.fields.get(path)!.transform}`);
  }
  for (const path of [...head.fields.keys()].filter((p) => MEDIA_LINK_NAMES.has(lastName(p)) && !before.fields.has(p))) {
    flags.push(`a link to the post's media newly crosses: \`${path}\`: whoever receives it fetches the original, as posted (metadata included), past the media rules`);
  }
  // Purpose limitation (GDPR Art. 5(1)(b)): consent given for one purpose is not consent to another.
  for (const [whose, purpose] of head.consentPurposes) {
    const was = before.consentPurposes.get(whose);
    if (was !== undefined && was !== purpose) flags.push(`consent purpose changed for ${whose}: \`${was}\` → \`${purpose}\`: consents given for \`${purpose}\` now let these shares through`);
    else if (was === undefined && purpose !== head.purpose) flags.push(`consent of ${whose} is asked for \`${purpose}\`, not the policy's purpose \`${head.purpose}\`: consents given for another purpose let these shares through`);
  }
  if (head.photos && !before.photos) flags.push('media newly allowed: photos');
  if (head.videos && !before.videos) flags.push('media newly allowed: videos');
  return flags;
}

function emptyProfile(): PrivacyProfile {
  return {
    name: '',
    file: '',
    purpose: '',
    selection: '',
    lawfulBasis: '',
    recipientConsent: null,
    author: null,
    mentioned: null,
    fields: new Map(),
    recognisers: new Set(),
    freeTextActions: new Map(),
    photos: false,
    videos: false,
    photoRule: '',
    videoRule: '',
    photoCategory: null,
    videoCategory: null,
    limits: '',
    delivery: '',
    sentFields: new Set(),
    retention: null,
    consentPurposes: new Map(),
  };
}

const cell = (value: string | null) => (value === null || value === '' ? '—' : `\`${value.replaceAll('|', '\\|')}\``);

function fieldTable(base: PrivacyProfile, head: PrivacyProfile): string[] {
  const rows: string[] = [];
  for (const [path, field] of head.fields) {
    const was = base.fields.get(path);
    if (!was) rows.push(`| newly crosses | ${cell(path)} | ${cell(field.category)} | ${cell(field.transform)} | ${cell(field.subject)} |`);
    else if (was.category !== field.category || was.transform !== field.transform || was.subject !== field.subject) {
      const change = (a: string | null, b: string | null) => (a === b ? cell(b) : `${cell(a)} → ${cell(b)}`);
      rows.push(`| changed | ${cell(path)} | ${change(was.category, field.category)} | ${change(was.transform, field.transform)} | ${change(was.subject, field.subject)} |`);
    }
  }
  for (const [path, field] of base.fields) {
    if (!head.fields.has(path)) rows.push(`| no longer crosses | ${cell(path)} | ${cell(field.category)} | ${cell(field.transform)} | ${cell(field.subject)} |`);
  }
  return rows.length === 0 ? [] : ['| | Field | Category | Transform | Subject |', '|---|---|---|---|---|', ...rows];
}

function setChanges(label: string, before: Set<string>, after: Set<string>): string[] {
  const added = [...after].filter((x) => !before.has(x));
  const removed = [...before].filter((x) => !after.has(x));
  const lines: string[] = [];
  if (added.length) lines.push(`- ${label} newly crossing: ${added.map((x) => cell(x)).join(', ')}`);
  if (removed.length) lines.push(`- ${label} no longer crossing: ${removed.map((x) => cell(x)).join(', ')}`);
  return lines;
}

function settingChanges(base: PrivacyProfile, head: PrivacyProfile): string[] {
  const lines: string[] = [];
  const compare = (label: string, a: string | null, b: string | null) => {
    if (a !== b) lines.push(`- ${label}: ${cell(a)} → ${cell(b)}`);
  };
  compare('Purpose', base.purpose, head.purpose);
  compare('Lawful basis', base.lawfulBasis, head.lawfulBasis);
  compare("Recipients' consent rule", base.recipientConsent, head.recipientConsent);
  compare('Author rule', base.author, head.author);
  compare('Mentioned people rule', base.mentioned, head.mentioned);
  lines.push(...setChanges('Recognisers', base.recognisers, head.recognisers).map((l) => l.replace('newly crossing', 'newly applied').replace('no longer crossing', 'no longer applied')));
  for (const [recogniser, action] of head.freeTextActions) {
    const was = base.freeTextActions.get(recogniser);
    if (was && was !== action) lines.push(`- Recogniser ${cell(recogniser)} action: ${cell(was)} → ${cell(action)}`);
  }
  compare('Photos allowed', String(base.photos), String(head.photos));
  compare('Videos allowed', String(base.videos), String(head.videos));
  compare('Photos', base.photoRule, head.photoRule);
  compare('Videos', base.videoRule, head.videoRule);
  compare('Limits', base.limits, head.limits);
  compare('Delivery', base.delivery, head.delivery);
  lines.push(...setChanges('Fields in the message', base.sentFields, head.sentFields));
  compare('Audit retention', base.retention, head.retention);
  return lines;
}

/**
 * The Markdown privacy diff of two policy bundles, per policy: what newly crosses or stops
 * crossing (fields, categories, subjects, consent rules, lawful basis, recognisers, media), with
 * risk flags first. Meant to be posted on the pull request that changes the policies.
 */
export function privacyDiff(base: PolicyBundle | undefined, head: PolicyBundle, baseLabel: string, baseProblems: string[] = []): string {
  const out = [`## Privacy diff of \`policies/\` against \`${baseLabel}\``, ''];
  if (base) out.push(`Bundle: \`${base.hash}\` → \`${head.hash}\``, '');
  if (baseProblems.length > 0) out.push(`The base revision's policies did not load (${baseProblems.length} problem(s)); everything below is compared with nothing.`, '');
  const before = (base?.policies ?? []).map(profileOf);
  const after = head.policies.map(profileOf);
  // A policy is the one that decided the same shares before (same purpose, source and
  // destination), renamed or not; else the one of the same name, if its selection changed.
  const paired = new Map<PrivacyProfile, PrivacyProfile>();
  for (const profile of after) {
    const was = before.find((b) => b.selection === profile.selection);
    if (was) paired.set(profile, was);
  }
  const claimed = new Set(paired.values());
  for (const profile of after) {
    if (paired.has(profile)) continue;
    // Else the policy of its name, even one that another took over by purpose: its own changes (a
    // new purpose) are shown against what it was.
    const was = before.find((b) => b.name === profile.name && !claimed.has(b)) ?? before.find((b) => b.name === profile.name);
    if (was) {
      paired.set(profile, was);
      claimed.add(was);
    }
  }
  let changed = 0;

  // The daily sweep destroys keys by the longest retention of the bundle, and not at all if a
  // policy sets none: what it does depends on every policy together.
  const sweepBefore = base ? sweepRetention(base) : null;
  const sweepAfter = sweepRetention(head);
  if (base && sweepAfter !== null && (sweepBefore === null || retentionMs(sweepAfter) < retentionMs(sweepBefore))) {
    changed++;
    out.push('### The whole bundle', '', '**Risk flags**', '', `- ⚠️ audit retention of the log shortened: ${sweepBefore ?? 'none (no sweep)'} → ${sweepAfter}: the daily sweep destroys the keys of people not processed within it`, '');
  }

  for (const profile of after) {
    const name = profile.name;
    const was = paired.get(profile);
    const flags = riskFlags(was, profile);
    const details = [
      ...fieldTable(was ?? emptyProfile(), profile),
      ...setChanges('Categories', new Set([...(was ?? emptyProfile()).fields.values()].map((f) => f.category)), new Set([...profile.fields.values()].map((f) => f.category))),
      ...setChanges('Subjects', subjectsOf(was ?? emptyProfile()), subjectsOf(profile)),
      ...settingChanges(was ?? emptyProfile(), profile),
    ];
    if (was && was.name !== name) details.unshift(`- Renamed from ${cell(was.name)} (\`${was.file}\`)`);
    if (was && flags.length === 0 && details.length === 0) continue;
    changed++;
    out.push(`### ${was ? '' : 'New policy: '}\`${name}\` (\`${profile.file}\`, purpose \`${profile.purpose}\`)`, '');
    if (flags.length) out.push('**Risk flags**', '', ...flags.map((f) => `- ⚠️ ${f}`), '');
    const table = details.filter((l) => l.startsWith('|'));
    const bullets = details.filter((l) => !l.startsWith('|'));
    if (table.length) out.push(...table, '');
    if (bullets.length) out.push(...bullets, '');
  }
  for (const profile of before) {
    if (claimed.has(profile)) continue;
    changed++;
    out.push(`### Removed policy: \`${profile.name}\` (\`${profile.file}\`)`, '', `Nothing crosses for purpose \`${profile.purpose}\` any more (default deny).`, '');
  }
  if (changed === 0) out.push('No privacy-relevant change: the same fields, categories, subjects, consent rules, lawful bases, recognisers and media cross as before.', '');
  return out.join('\n');
}

/** The retention the daily sweep applies: the longest of the policies', none if a policy sets none. */
function sweepRetention(bundle: PolicyBundle): string | null {
  const retentions = bundle.policies.map((p) => p.retention ?? null);
  if (retentions.length === 0 || retentions.includes(null)) return null;
  return retentions.reduce((longest, r) => (retentionMs(r!) > retentionMs(longest!) ? r : longest))!;
}

/** Whose data crosses, whatever consent rule applies to it. */
function subjectsOf(profile: PrivacyProfile): Set<string> {
  const subjects = new Set<string>();
  if (profile.fields.size === 0) return subjects;
  subjects.add('recipients');
  const paths = [...profile.fields.keys()];
  if (paths.some((path) => rootName(path) === 'from') || [...profile.fields.values()].some((f) => f.subject === 'author')) subjects.add('author');
  if (paths.some((path) => TAGGED_TEXT.has(path) || rootName(path).endsWith('_tags'))) subjects.add('mentioned people');
  if (paths.some((path) => OTHER_PEOPLE_ROOTS.has(rootName(path)) && !rootName(path).endsWith('_tags'))) subjects.add('other people (addressed, commenting or reacting)');
  return subjects;
}
