import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLogService } from '../../src/audit/audit-log.service.js';
import { AuditSequencer } from '../../src/audit/audit-sequencer.js';
import { DeliveryRecords } from '../../src/delivery/delivery-records.js';
import { OutboxMessageEntity } from '../../src/delivery/infrastructure/delivery.entities.js';
import { TransactionRunner } from '../../src/platform/database/transaction-runner.js';
import { firstSequencedFrom } from '../../src/subjects/processing-counts.js';
import { behindTheTriggers } from '../support/audit-log.js';
import { ensureBuilt } from '../support/build.js';
import { describeEachDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, idempotencyKey, OTHER_RECIPIENT, RECIPIENT, shareRequest } from '../support/fixtures.js';
import { REPO_ROOT, type RunningApp, startTestApp } from '../support/test-app.js';

describeEachDatabase('npx sluice report ropa', (dialect) => {
  let sluice: RunningApp;

  beforeAll(async () => {
    ensureBuilt();
    sluice = await startTestApp(dialect);
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', RECIPIENT) });
    await sluice.request('POST', '/v1/consents', { body: consent('workplace', AUTHOR_ID) });
    await sluice.request('POST', '/v1/shares', { body: shareRequest({ recipients: [{ waId: RECIPIENT }, { waId: OTHER_RECIPIENT }] }), headers: idempotencyKey() });
    await sluice.request('POST', '/v1/shares', { body: shareRequest({ purpose: 'marketing' }), headers: idempotencyKey() });
    // The message is sent in a later millisecond than its share was decided in.
    await new Promise((resolve) => setTimeout(resolve, 5));
    await sluice.drainOutbox();
    // Delivery outcomes are sequenced in the background; the report counts what the log holds.
    await sluice.app.get(AuditSequencer).sequenceNow();
  }, 120_000);
  afterAll(async () => {
    await sluice?.close();
  });

  const ropa = (args: string[], policiesDir = sluice.config.policiesDir) => {
    const { config } = sluice;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      POLICIES_DIR: policiesDir,
      DATA_DIR: config.dataDir,
      AUDIT_SIGNING_KEY: config.auditSigningKey!.export({ type: 'pkcs8', format: 'pem' }).toString(),
      SLUICE_MASTER_KEY: config.masterKey!.toString('base64'),
      ...(config.database.type === 'sqlite' ? { SQLITE_PATH: config.database.path, DATABASE_URL: '' } : { DATABASE_URL: config.database.url }),
    };
    return spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'sluice.js'), 'report', 'ropa', ...args], { encoding: 'utf8', env });
  };

  it('lists purpose, lawful basis, subjects, categories, recipients and retention per policy, with the log counts', () => {
    const result = ropa(['--format', 'json', '--controller', 'ACME B.V., privacy@acme.example']);
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.controller).toBe('ACME B.V., privacy@acme.example');
    expect(report.records).toHaveLength(1);
    const record = report.records[0];
    expect(record).toMatchObject({
      policy: 'frontline-updates',
      purpose: 'frontline-updates',
      lawfulBasis: 'consent, GDPR Art. 6(1)(a)',
      retention: expect.stringContaining('P2Y'),
      counts: { decisions: 1, partiallyAccepted: 1, recipientsAllowed: 1 },
    });
    expect(record.dataSubjects).toEqual(['authors of Workplace posts', 'people tagged in the posts', 'recipients: WhatsApp contacts who receive the shares (their phone number)']);
    expect(record.categories.map((c: { key: string }) => c.key)).toEqual(['user.contact.phone_number', 'user.content', 'user.name']);
    expect(record.removedBeforeTransfer.map((c: { key: string }) => c.key)).toContain('user.financial.bank_account');
    expect(record.recipients.join(' ')).toContain('Meta');
    expect(report.outsidePolicies.denialsWithoutPolicy).toBe(1);
  });

  it("counts a message in the period it was sent in, under its share's policy decided before", async () => {
    const entries = (await sluice.request('GET', '/v1/audit/entries')).text.split('\n').filter(Boolean).map((line) => JSON.parse(JSON.parse(line).entry) as { kind: string; time: string });
    const sent = entries.find((e) => e.kind === 'message.sent')!;
    expect(entries.find((e) => e.kind === 'share.decided' && e.time < sent.time)).toBeDefined();
    const result = ropa(['--format', 'json', '--since', sent.time]);
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout).records[0].counts).toMatchObject({ decisions: 0, messagesSent: 1 });
  });

  it('finds where the log was first sequenced at or after any time, by binary search', async () => {
    const { dataSource } = sluice.app.get(TransactionRunner);
    const rows = (await sluice.database.adminQuery('SELECT idx, created_at FROM audit_entries ORDER BY idx')) as { idx: number | string; created_at: string }[];
    expect(rows.length).toBeGreaterThan(3);
    const times = [...new Set(rows.map((r) => r.created_at))];
    for (const time of ['2020-01-01T00:00:00.000Z', ...times, '2999-01-01T00:00:00.000Z']) {
      const expected = rows.findIndex((r) => r.created_at >= time);
      expect(await firstSequencedFrom(dataSource, new Date(time))).toBe(expected === -1 ? rows.length : expected);
    }
  });

  it('reads from the period on, and finds the policy of a message whose share was decided before it', async () => {
    const lines = (await sluice.request('GET', '/v1/audit/entries')).text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { index: number; entry: string });
    const sent = lines.find((line) => (JSON.parse(line.entry) as { kind: string }).kind === 'message.sent')!;
    const saved = (await sluice.database.adminQuery(`SELECT idx, created_at FROM audit_entries WHERE idx < ${sent.index}`)) as { idx: number | string; created_at: string }[];
    // As if everything before the message had been sequenced a year before: the report does not read it.
    await behindTheTriggers(sluice.database, dialect, 'audit_entries', `UPDATE audit_entries SET created_at = '2025-11-01T00:00:00.000Z' WHERE idx < ${sent.index}`, []);
    try {
      const result = ropa(['--format', 'json', '--since', (JSON.parse(sent.entry) as { time: string }).time]);
      expect(result.status).toBe(0);
      expect(JSON.parse(result.stdout).records[0].counts).toMatchObject({ decisions: 0, messagesSent: 1 });
      // The decisions were written in the period below, but (here, and never in a real log) sequenced
      // long before they were written: were they read, they would count.
      const firstDecided = (JSON.parse(lines[0]!.entry) as { time: string }).time;
      expect(JSON.parse(ropa(['--format', 'json', '--since', firstDecided]).stdout).records[0].counts).toMatchObject({ decisions: 0, messagesSent: 1 });
    } finally {
      for (const { idx, created_at: createdAt } of saved) await behindTheTriggers(sluice.database, dialect, 'audit_entries', `UPDATE audit_entries SET created_at = '${createdAt}' WHERE idx = ${idx}`, []);
    }
  });

  it('reports what was processed under policies the active bundle no longer holds', () => {
    const policies = mkdtempSync(join(tmpdir(), 'sluice-policies-'));
    try {
      writeFileSync(
        join(policies, 'team-news.policy.yaml'),
        `apiVersion: sluice.policy/v1
name: team-news
purpose: team-news
lawfulBasis: consent
source: workplace.post
destination: whatsapp
recipients: { consent: { purpose: team-news } }
fields:
  - { path: message, category: user.content, transform: redact-pii }
freeText: { recognisers: [email], action: mask }
delivery: { type: text, template: "{message}" }
`,
      );
      const json = JSON.parse(ropa(['--format', 'json'], policies).stdout);
      expect(json.records.map((r: { policy: string }) => r.policy)).toEqual(['team-news']);
      expect(json.retiredPolicies).toEqual({ 'frontline-updates': expect.objectContaining({ decisions: 1, recipientsAllowed: 1, messagesSent: 1 }) });
      expect(ropa([], policies).stdout).toContain('Under policies no longer active (their records are in the bundles of the period): frontline-updates: 1 decisions, 1 recipients allowed, 1 messages sent.');
    } finally {
      rmSync(policies, { recursive: true, force: true });
    }
  });

  it('writes Markdown by default and refuses a bad period', () => {
    const markdown = ropa([]);
    expect(markdown.status).toBe(0);
    expect(markdown.stdout).toContain('# Records of processing activities (GDPR Art. 30)');
    expect(markdown.stdout).toContain('- **Lawful basis:** consent, GDPR Art. 6(1)(a)');
    expect(ropa(['--since', '2030-01-01', '--until', '2020-01-01']).status).toBe(2);
  });

  it('counts a message sent again after WhatsApp reported its copy failed once, not once per copy', async () => {
    const transactions = sluice.app.get(TransactionRunner);
    const [message] = await transactions.dataSource.getRepository(OutboxMessageEntity).findBy({ state: 'sent' });
    const records = sluice.app.get(DeliveryRecords);
    // WhatsApp reported the copy failed with a retryable code; a second copy went out.
    await transactions.run(async (manager) =>
      sluice.app.get(AuditLogService).append(manager, [
        await records.entry(manager, 'message.status', message!, { status: 'failed', whatsappMessage: 'wamid.first-copy', error: 'whatsapp.131056', final: false }),
        await records.entry(manager, 'message.sent', message!, { attempt: 2, whatsappMessage: 'wamid.second-copy' }),
      ]),
    );
    await sluice.app.get(AuditSequencer).sequenceNow();
    expect(JSON.parse(ropa(['--format', 'json']).stdout).records[0].counts).toMatchObject({ recipientsAllowed: 1, messagesSent: 1 });
  });

  /** Appends entries about the sent message, in their own transaction, and sequences them; returns the last one's time. */
  const appendAbout = async (entries: { kind: 'message.status' | 'message.sent' | 'subject.erased'; details: Record<string, unknown> }[]): Promise<string> => {
    const transactions = sluice.app.get(TransactionRunner);
    const [message] = await transactions.dataSource.getRepository(OutboxMessageEntity).findBy({ state: 'sent' });
    const records = sluice.app.get(DeliveryRecords);
    const queued = await transactions.run(async (manager) => {
      const drafts = [];
      for (const { kind, details } of entries) drafts.push(kind === 'subject.erased' ? { kind, body: details } : await records.entry(manager, kind, message!, details));
      return sluice.app.get(AuditLogService).append(manager, drafts);
    });
    await sluice.app.get(AuditSequencer).sequenceNow();
    const [row] = (await sluice.database.adminQuery(`SELECT entry FROM audit_entries WHERE id = '${queued.at(-1)!.id}'`)) as { entry: string }[];
    return (JSON.parse(row!.entry) as { time: string }).time;
  };

  it('counts no copy sent again in a period whose failure report came before it', async () => {
    await appendAbout([{ kind: 'message.status', details: { status: 'failed', whatsappMessage: 'wamid.third-copy', error: 'whatsapp.131056', final: false } }]);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const copySent = await appendAbout([{ kind: 'message.sent', details: { attempt: 3, whatsappMessage: 'wamid.fourth-copy', copy: 4 } }]);
    expect(JSON.parse(ropa(['--format', 'json', '--since', copySent]).stdout).records[0].counts).toMatchObject({ messagesSent: 0 });
  });

  it('counts a message whose timed-out copy WhatsApp reported failed once, when its next attempt is sent', async () => {
    const before = JSON.parse(ropa(['--format', 'json']).stdout).records[0].counts.messagesSent as number;
    const transactions = sluice.app.get(TransactionRunner);
    const [message] = await transactions.dataSource.getRepository(OutboxMessageEntity).findBy({ state: 'sent' });
    const lost = { ...message!, id: 'out_lostcopy00000000000000000000' };
    const records = sluice.app.get(DeliveryRecords);
    await transactions.run(async (manager) =>
      sluice.app.get(AuditLogService).append(manager, [
        await records.entry(manager, 'message.failed', lost, { attempt: 1, delivered: 'unknown', error: 'transport.timeout', final: false }),
        await records.entry(manager, 'message.status', lost, { status: 'failed', whatsappMessage: 'wamid.lost-copy', error: 'whatsapp.131000', final: false }),
        await records.entry(manager, 'message.sent', lost, { attempt: 2, whatsappMessage: 'wamid.next-copy' }),
      ]),
    );
    await sluice.app.get(AuditSequencer).sequenceNow();
    expect(JSON.parse(ropa(['--format', 'json']).stdout).records[0].counts.messagesSent).toBe(before + 1);
  });

  it('counts a message whose entry names its decision by log index, as older entries do', async () => {
    const before = JSON.parse(ropa(['--format', 'json']).stdout).records[0].counts.messagesSent as number;
    const [decided] = (await sluice.database.adminQuery(`SELECT idx FROM audit_entries WHERE kind = 'share.decided' ORDER BY idx LIMIT 1`)) as { idx: number | string }[];
    const transactions = sluice.app.get(TransactionRunner);
    const [message] = await transactions.dataSource.getRepository(OutboxMessageEntity).findBy({ state: 'sent' });
    await transactions.run(async (manager) => {
      const entry = await sluice.app.get(DeliveryRecords).entry(manager, 'message.sent', { ...message!, id: 'out_olderentry0000000000000000000' }, { attempt: 1 });
      return sluice.app.get(AuditLogService).append(manager, [{ ...entry, body: { ...entry.body, decision: Number(decided!.idx) } }]);
    });
    await sluice.app.get(AuditSequencer).sequenceNow();
    expect(JSON.parse(ropa(['--format', 'json']).stdout).records[0].counts.messagesSent).toBe(before + 1);
  });

  it('counts erasures on request, not the keys a retention sweep destroyed', async () => {
    const erasures = () => JSON.parse(ropa(['--format', 'json']).stdout).outsidePolicies.erasures as number;
    const before = erasures();
    await appendAbout([{ kind: 'subject.erased', details: { reason: 'retention', cutoff: '2024-01-01T00:00:00.000Z', keys: { whatsapp: 3 } } }]);
    expect(erasures()).toBe(before);
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', '31687000041') });
    expect((await sluice.request('POST', '/v1/subjects/whatsapp/31687000041/erase')).json.erased).toBe(true);
    await sluice.app.get(AuditSequencer).sequenceNow();
    expect(erasures()).toBe(before + 1);
  });
});
