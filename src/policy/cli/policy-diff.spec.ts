import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compilePolicyBundle } from '../domain/loader.js';
import { privacyDiff } from './policy-diff.js';

const SHIPPED = readFileSync(fileURLToPath(new URL('../../../policies/frontline-updates.policy.yaml', import.meta.url)), 'utf8');
const bundleOf = (files: Record<string, string>) => compilePolicyBundle(Object.entries(files).map(([name, text]) => ({ name, bytes: Buffer.from(text) })));
const base = bundleOf({ 'frontline-updates.policy.yaml': SHIPPED });
const diffAgainstShipped = (files: Record<string, string>) => privacyDiff(base, bundleOf(files), 'main');
const flagsOf = (markdown: string) => markdown.split('\n').filter((line) => line.startsWith('- ⚠️ ')).map((line) => line.slice(5));

describe('privacyDiff', () => {
  it('flags a policy that now decides the shares of another purpose', () => {
    const markdown = diffAgainstShipped({ 'frontline-updates.policy.yaml': SHIPPED.replace('purpose: frontline-updates\n', 'purpose: marketing\n') });
    expect(flagsOf(markdown)).toEqual(['purpose changed: frontline-updates → marketing: the policy now decides the shares of another purpose']);
    expect(markdown).toContain('- Purpose: `frontline-updates` → `marketing`');
    expect(markdown).not.toContain('Removed policy');
  });

  it('compares a renamed policy with the one that decided the same shares before', () => {
    const renamed = SHIPPED.replace('name: frontline-updates', 'name: frontline-updates-v2')
      .replace('recipients:\n  # Each WhatsApp recipient must hold an active frontline-updates consent.\n  consent: { purpose: frontline-updates }', 'recipients: {}')
      .replace('lawfulBasis: consent ', 'lawfulBasis: legitimate-interests ');
    const markdown = diffAgainstShipped({ 'frontline-updates-v2.policy.yaml': renamed });
    expect(flagsOf(markdown)).toEqual(expect.arrayContaining(['consent requirement removed: recipients no longer need consent', 'lawful basis changed: consent → legitimate-interests']));
    expect(markdown).toContain('### `frontline-updates-v2` (`frontline-updates-v2.policy.yaml`, purpose `frontline-updates`)');
    expect(markdown).toContain('- Renamed from `frontline-updates` (`frontline-updates.policy.yaml`)');
    expect(markdown).not.toContain('Removed policy');
    expect(markdown).not.toContain('New policy');
  });

  it('flags a shorter audit retention, of the policy and of the whole log, and not a longer one or none', () => {
    const shorter = diffAgainstShipped({ 'frontline-updates.policy.yaml': SHIPPED.replace('retention: P2Y', 'retention: P1M') });
    expect(flagsOf(shorter)).toEqual([
      'audit retention of the log shortened: P2Y → P1M: the daily sweep destroys the keys of people not processed within it',
      "audit retention shortened: P2Y → P1M: subject reports leave out this policy's crossings older than that",
    ]);
    const longer = diffAgainstShipped({ 'frontline-updates.policy.yaml': SHIPPED.replace('retention: P2Y', 'retention: P3Y') });
    expect(flagsOf(longer)).toEqual([]);
    expect(longer).toContain('- Audit retention: `P2Y` → `P3Y`');
    // No retention keeps everything and turns the sweep off: nothing shortened.
    expect(flagsOf(diffAgainstShipped({ 'frontline-updates.policy.yaml': SHIPPED.replace('\naudit:\n  retention: P2Y', '') }))).toEqual([]);
  });

  it('flags a retention that turns the sweep on for the whole log', () => {
    const noRetention = bundleOf({ 'frontline-updates.policy.yaml': SHIPPED.replace('\naudit:\n  retention: P2Y', '') });
    const markdown = privacyDiff(noRetention, bundleOf({ 'frontline-updates.policy.yaml': SHIPPED.replace('retention: P2Y', 'retention: P30D') }), 'main');
    expect(flagsOf(markdown)).toContain('audit retention of the log shortened: none (no sweep) → P30D: the daily sweep destroys the keys of people not processed within it');
  });

  it('compares a policy moved to another purpose with what it was, when a new policy took its old purpose', () => {
    const moved = SHIPPED.replace('purpose: frontline-updates\n', 'purpose: marketing\n').replace('recipients:\n  # Each WhatsApp recipient must hold an active frontline-updates consent.\n  consent: { purpose: frontline-updates }', 'recipients: {}').replace('lawfulBasis: consent ', 'lawfulBasis: legitimate-interests ');
    const taker = SHIPPED.replace('name: frontline-updates', 'name: frontline-updates-v2');
    const markdown = diffAgainstShipped({ 'frontline-updates.policy.yaml': moved, 'frontline-updates-v2.policy.yaml': taker });
    expect(flagsOf(markdown)).toEqual(
      expect.arrayContaining(['purpose changed: frontline-updates → marketing: the policy now decides the shares of another purpose', 'consent requirement removed: recipients no longer need consent']),
    );
    expect(markdown).toContain('- Renamed from `frontline-updates`');
    expect(markdown).not.toContain('New policy');
  });

  it('flags a special category that newly crosses as photos', () => {
    const markdown = diffAgainstShipped({ 'frontline-updates.policy.yaml': SHIPPED.replace('    allow: true\n    types: [jpeg, png, heic, webp]', '    allow: true\n    category: user.health_and_medical\n    types: [jpeg, png, heic, webp]') });
    expect(flagsOf(markdown)).toEqual(['GDPR Art. 9/10 special category `user.health_and_medical` newly crosses (photos): needs an Art. 9(2) exception']);
    expect(markdown).toContain('- Photos: `category user.content; jpeg, png, heic, webp; up to 40000000 pixels, 10000 px a side` → `category user.health_and_medical;');
  });

  it('shows changed limits and media types', () => {
    const markdown = diffAgainstShipped({
      'frontline-updates.policy.yaml': SHIPPED.replace('recipientsPerShare: 50', 'recipientsPerShare: 200').replace('types: [jpeg, png, heic, webp]', 'types: [jpeg]'),
    });
    expect(markdown).toContain('- Limits: `50 recipients a share, messages up to 4096 characters, media up to 5242880 bytes` → `200 recipients a share,');
    expect(markdown).toContain('→ `category user.content; jpeg; up to');
  });

  /** A new policy, for another purpose, whose fields are these (lawful basis legitimate interests, no consent rules). */
  const policyWithFields = (fields: string, extra = '') => `apiVersion: sluice.policy/v1
name: ops-broadcast
purpose: ops-broadcast
lawfulBasis: legitimate-interests
source: workplace.post
destination: whatsapp
recipients: {}
${extra}fields:
${fields}
media:
  photos: { allow: false }
  videos: { allow: false }
limits: { recipientsPerShare: 10, messageLength: 1000, mediaBytes: 1000 }
delivery:
  type: text
  template: "{message}"
`;
  const withShipped = (policy: string) => diffAgainstShipped({ 'frontline-updates.policy.yaml': SHIPPED, 'ops.policy.yaml': policy });

  it('flags what a new policy lets cross unscreened or without consent, whatever the categories say', () => {
    const markdown = withShipped(
      policyWithFields(`  - { path: message, category: system.operations }
  - { path: from.name, category: user.name }
  - { path: full_picture, category: system.operations }
  - { path: message_tags.name, category: user.name }`),
    );
    expect(flagsOf(markdown)).toEqual([
      'recipients need no consent: whoever the integration names receives the shares',
      "`from.name`, the author's, crosses without the author's consent",
      'names of people tagged in `message` cross without their consent: no rule for mentioned people',
      '`message_tags.name`, about people other than the author (tagged, addressed, commenting or reacting), newly crosses without their consent',
      'free text without recognisers: `message` crosses with transform none',
      "a link to the post's media newly crosses: `full_picture`: whoever receives it fetches the original, as posted (metadata included), past the media rules",
    ]);
    expect(markdown).toContain('- Subjects newly crossing: `recipients`, `author`, `mentioned people`');
  });

  it('flags a category that covers special categories, and an organisation category it cannot judge', () => {
    const markdown = withShipped(
      policyWithFields(`  - { path: message, category: user.content, transform: redact-pii }
  - { path: story, category: user.demographic, transform: redact-pii }
  - { path: description, category: org.acme.trade_union_membership, transform: redact-pii }`, 'subjects:\n  mentioned: { consent: { purpose: ops-broadcast }, whenMissing: redact }\nfreeText: { recognisers: [email, phone], action: mask }\n'),
    );
    expect(flagsOf(markdown)).toEqual(
      expect.arrayContaining([
        'category `user.demographic` newly crosses (`story`) and covers GDPR Art. 9/10 special categories (user.demographic.political_opinion, user.demographic.race_ethnicity, user.demographic.religious_belief, user.demographic.sexual_orientation): name a narrower category, or the Art. 9(2) exception',
        'organisation category `org.acme.trade_union_membership` newly crosses (`description`): not in the pinned taxonomy, so not checked for GDPR Art. 9/10 special categories',
      ]),
    );
  });

  it('flags consent asked for another purpose: a rule moved to one, or a new policy borrowing one', () => {
    const moved = diffAgainstShipped({
      'frontline-updates.policy.yaml': SHIPPED.replace('  consent: { purpose: frontline-updates }\n\nsubjects:', '  consent: { purpose: marketing }\n\nsubjects:'),
    });
    expect(flagsOf(moved)).toEqual(['consent purpose changed for recipients: `frontline-updates` → `marketing`: consents given for `marketing` now let these shares through']);
    const borrowing = withShipped(
      policyWithFields('  - { path: message, category: user.content, transform: redact-pii }', 'subjects:\n  mentioned: { consent: { purpose: frontline-updates }, whenMissing: redact }\nfreeText: { recognisers: [email, phone], action: mask }\n'),
    );
    expect(flagsOf(borrowing)).toContain(
      "consent of mentioned people is asked for `frontline-updates`, not the policy's purpose `ops-broadcast`: consents given for another purpose let these shares through",
    );
    const own = withShipped(
      policyWithFields('  - { path: message, category: user.content, transform: redact-pii }', 'subjects:\n  mentioned: { consent: { purpose: ops-broadcast }, whenMissing: redact }\nfreeText: { recognisers: [email, phone], action: mask }\n'),
    );
    expect(flagsOf(own).filter((flag) => flag.includes('purpose'))).toEqual([]);
  });

  it('counts a subject as crossing while their data crosses, whatever became of the consent rule', () => {
    const withoutRules = SHIPPED.replace(/\nsubjects:\n(?: {2}.*\n|\n)*?(?=\nfields:)/, '\n').replace('    subject: author\n', '');
    const markdown = diffAgainstShipped({ 'frontline-updates.policy.yaml': withoutRules });
    expect(flagsOf(markdown)).toEqual(
      expect.arrayContaining(['consent requirement removed: the author rule is gone', 'consent requirement removed: the rule for mentioned people is gone', "consent requirement removed: `from.name` no longer needs its subject's consent"]),
    );
    expect(markdown).not.toContain('Subjects no longer crossing');
    expect(markdown).not.toContain('names of people tagged in');
  });

  it('finds nothing to show in the same policies', () => {
    expect(diffAgainstShipped({ 'frontline-updates.policy.yaml': SHIPPED })).toContain('No privacy-relevant change');
  });
});
