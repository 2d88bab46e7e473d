import { afterEach, describe, expect, it } from '@jest/globals';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeEachDatabase } from '../support/databases.js';
import { SHIPPED_POLICIES, startTestApp } from '../support/test-app.js';

describe('start-up refusals', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('refuses to start on an invalid policy, naming its file and line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sluice-policies-'));
    dirs.push(dir);
    copyFileSync(join(SHIPPED_POLICIES, 'frontline-updates.policy.yaml'), join(dir, 'frontline-updates.policy.yaml'));
    writeFileSync(
      join(dir, 'broken.policy.yaml'),
      ['apiVersion: sluice.policy/v1', 'name: broken', 'purpose: broken', 'lawfulBasis: whim', 'source: workplace.post', 'destination: whatsapp', ''].join('\n'),
    );
    await expect(startTestApp('sqlite', { env: { POLICIES_DIR: dir } })).rejects.toThrow(/broken\.policy\.yaml:4/);
  });
});

describeEachDatabase('policy bundle activation', (dialect) => {
  it('records a bundle once, and again only when it changes', async () => {
    let sluice = await startTestApp(dialect);
    const dir = mkdtempSync(join(tmpdir(), 'sluice-policies-'));
    try {
      const entries = async () =>
        (await sluice.database.adminQuery<{ entry: string }>(`SELECT entry FROM audit_entries ORDER BY idx`)).map((r) => JSON.parse(r.entry));
      const bundle = (await sluice.request('GET', '/ready', { key: null })).json.checks.bundle as string;
      expect(await entries()).toEqual([expect.objectContaining({ kind: 'policy.activated', bundle, index: 0 })]);
      expect((await entries())[0].policies).toEqual([
        expect.objectContaining({ name: 'frontline-updates', purpose: 'frontline-updates', lawfulBasis: 'consent', consentPurposes: ['frontline-updates'] }),
      ]);

      sluice = await sluice.restart();
      expect(await entries()).toHaveLength(1);

      // A changed policy is another bundle.
      const policy = join(dir, 'frontline-updates.policy.yaml');
      copyFileSync(join(SHIPPED_POLICIES, 'frontline-updates.policy.yaml'), policy);
      // Mentioned people's consent is asked for another purpose: the entry lists it, so that a reader
      // of the log sees why that purpose is held in clear.
      const mentionedRule = '  mentioned:\n    consent: { purpose: frontline-updates }';
      expect(readFileSync(policy, 'utf8')).toContain(mentionedRule);
      writeFileSync(policy, readFileSync(policy, 'utf8').replace(mentionedRule, '  mentioned:\n    consent: { purpose: staff-directory }'));
      sluice = await sluice.restart({ POLICIES_DIR: dir });
      const after = await entries();
      expect(after).toHaveLength(2);
      expect(after[1]).toMatchObject({ kind: 'policy.activated', index: 1 });
      expect(after[1].bundle).not.toBe(bundle);
      expect(after[1].policies[0].consentPurposes).toEqual(['frontline-updates', 'staff-directory']);
    } finally {
      await sluice.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
