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

  it('finds nothing to show in the same policies', () => {
    expect(diffAgainstShipped({ 'frontline-updates.policy.yaml': SHIPPED })).toContain('No privacy-relevant change');
  });
});
