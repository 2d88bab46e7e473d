import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { SubjectKeyDestroyed, SubjectKeyService } from '../../src/audit/subject-keys.service.js';
import { TransactionRunner } from '../../src/platform/database/transaction-runner.js';
import { AuditRetentionService } from '../../src/subjects/audit-retention.service.js';
import { describeEachDatabase } from '../support/databases.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

describeEachDatabase('subject keys under concurrent retention', (dialect) => {
  let sluice: RunningApp;

  beforeAll(async () => {
    sluice = await startTestApp(dialect);
  });
  afterAll(async () => {
    await sluice?.close();
  });

  // SQLite runs one transaction at a time: a sweep can only come before or after another's.
  if (dialect === 'postgres') it('never uses a key a retention sweep destroyed after this transaction read it', async () => {
    const keys = sluice.app.get(SubjectKeyService);
    const transactions = sluice.app.get(TransactionRunner);
    const subject = { type: 'whatsapp', id: '31689000001' };
    await transactions.run(async (manager) => void (await keys.keysFor(manager, [subject])));
    await sluice.database.adminQuery(`UPDATE subject_keys SET last_used_at = '2020-01-01T00:00:00.000Z'`);
    const used = transactions.run(async (manager) => {
      const read = await keys.read(manager, [subject]);
      expect(await sluice.app.get(AuditRetentionService).sweep()).toMatchObject({ status: 'swept', destroyed: { whatsapp: 1 } });
      return (await keys.keysFor(manager, [subject], read)).pseudonym(subject);
    });
    await expect(used).rejects.toThrow(SubjectKeyDestroyed);
    // Tried again, it reads afresh: the person gets a new key.
    const again = await transactions.run(async (manager) => (await keys.keysFor(manager, [subject])).pseudonym(subject));
    expect(again).toMatch(/^ps_/);
  });
});
