import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditSequencer } from '../../src/audit/audit-sequencer.js';
import { describeEachDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, idempotencyKey, RECIPIENT, shareRequest, workplacePost } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

/** `department` is a name no Workplace post has: only this policy's allow-list makes it one the log may hold. */
const POLICY = `apiVersion: sluice.policy/v1
name: team-updates
purpose: team-updates
lawfulBasis: consent
source: workplace.post
destination: whatsapp
recipients: { consent: { purpose: team-updates } }
subjects:
  author: { consent: { purpose: team-updates }, whenMissing: drop }
fields:
  - { path: message, category: user.content, transform: redact-pii }
  - { path: from.name, category: user.name, subject: author }
  - { path: from.department, category: user.job_title, subject: author }
freeText: { recognisers: [email, phone], action: mask }
delivery:
  type: text
  template: |-
    {from.name} ({from.department}):
    {message}
`;

type Dropped = { path: string; reason: string };

/**
 * A share's audit entry names a dropped field only by names a Workplace post or the policy has
 * (docs/audit-export.md): every dropped path but `not_allow_listed` comes from the policy, so a
 * field it lists keeps its name when dropped, while a field it does not list, whose name the
 * caller chose and could be anything, is written `(unnamed)`.
 */
describeEachDatabase('names of dropped fields in a share audit entry', (dialect) => {
  let sluice: RunningApp;
  let policies: string;
  /** What the caller was answered, and the share's audit entry as the log serves it. */
  let answered: { crossing: { dropped: Dropped[] } };
  let entryText: string;
  let entry: { crossing: { dropped: Dropped[] } };

  beforeAll(async () => {
    policies = mkdtempSync(join(tmpdir(), 'sluice-policies-'));
    writeFileSync(join(policies, 'team-updates.policy.yaml'), POLICY);
    sluice = await startTestApp(dialect, { env: { POLICIES_DIR: policies } });
    // The recipient consents; the author does not, so the author's fields are dropped.
    expect((await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', RECIPIENT, 'granted', 'team-updates') })).status).toBe(201);
    const post = workplacePost({
      from: { id: AUTHOR_ID, name: 'Anna de Vries', department: 'Logistics', NL91ABNA0417164300: 1 },
      annelies_vermeulen: { x: 1 },
    });
    const response = await sluice.request('POST', '/v1/shares', { body: shareRequest({ purpose: 'team-updates', post }), headers: idempotencyKey() });
    expect([response.status, response.json.status]).toEqual([201, 'accepted']);
    answered = response.json;
    await sluice.app.get(AuditSequencer).sequenceNow();
    const lines = (await sluice.request('GET', '/v1/audit/entries')).text.split('\n').filter(Boolean);
    entryText = lines.map((line) => JSON.parse(line).entry as string).find((text) => JSON.parse(text).id === response.json.audit.entry)!;
    entry = JSON.parse(entryText);
  });
  afterAll(async () => {
    await sluice?.close();
    rmSync(policies, { recursive: true, force: true });
  });

  it('keeps the name of a field the policy lists but dropped for want of the author\'s consent, though no Workplace post has it', () => {
    expect(answered.crossing.dropped).toContainEqual({ path: 'from.department', reason: 'subject.no_consent' });
    expect(entry.crossing.dropped).toEqual(
      expect.arrayContaining([
        { path: 'from.name', reason: 'subject.no_consent' },
        { path: 'from.department', reason: 'subject.no_consent' },
      ]),
    );
  });

  it('writes a field the policy does not list (unnamed) when its name is neither a Workplace post\'s nor the policy\'s', () => {
    // The caller is answered with the names it sent.
    expect(answered.crossing.dropped).toEqual(
      expect.arrayContaining([
        { path: 'from.NL91ABNA0417164300', reason: 'not_allow_listed' },
        { path: 'annelies_vermeulen', reason: 'not_allow_listed' },
      ]),
    );
    expect(entry.crossing.dropped).toEqual(
      expect.arrayContaining([
        { path: 'from.(unnamed)', reason: 'not_allow_listed' },
        { path: '(unnamed)', reason: 'not_allow_listed' },
        { path: 'permalink_url', reason: 'not_allow_listed' },
      ]),
    );
    expect(entry.crossing.dropped.filter((d) => d.reason === 'not_allow_listed' && d.path.includes('(unnamed)'))).toHaveLength(2);
    expect(entryText).not.toMatch(/NL91|annelies|vermeulen/i);
  });
});
