import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { AuditSequencer } from '../../src/audit/audit-sequencer.js';
import { hashApiKey } from '../../src/platform/auth/api-key.service.js';
import { Sql } from '../../src/platform/database/sql.js';
import { TransactionRunner } from '../../src/platform/database/transaction-runner.js';
import { describeEachDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, idempotencyKey, RECIPIENT, shareRequest } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

/**
 * What the API hands out has committed. On SQLite the server's one writer connection is shared
 * by every transaction: a read there could land between the statements of a transaction still
 * open, and hand out rows it then rolls back (a signed checkpoint the log never kept, a fork for
 * the DPO who kept it). Reads go to a read-only connection instead, which sees only commits.
 */
describeEachDatabase('reads while a transaction is open', (dialect) => {
  let sluice: RunningApp;

  beforeAll(async () => {
    sluice = await startTestApp(dialect);
    for (const [type, id] of [['whatsapp', RECIPIENT], ['workplace', AUTHOR_ID]] as const) await sluice.request('POST', '/v1/consents', { body: consent(type, id) });
    expect((await sluice.request('POST', '/v1/shares', { body: shareRequest(), headers: idempotencyKey() })).status).toBe(201);
    await sluice.drainOutbox();
    // Nothing left for the background sequencer: the log does not grow during the test.
    await sluice.app.get(AuditSequencer).sequenceNow();
  });
  afterAll(async () => {
    await sluice?.close();
  });

  /** Runs `work` in a transaction that stays open until the returned rollBack is called, then rolls back. */
  async function openTransaction(work: (manager: Parameters<Parameters<TransactionRunner['run']>[0]>[0]) => Promise<void>): Promise<() => Promise<void>> {
    let rollBack!: () => void;
    const held = new Promise<void>((resolve) => (rollBack = resolve));
    let written!: () => void;
    const inserted = new Promise<void>((resolve) => (written = resolve));
    const transaction = sluice.app.get(TransactionRunner).run(async (manager) => {
      await work(manager);
      written();
      await held;
      throw new Error('rolled back');
    });
    await inserted;
    return async () => {
      rollBack();
      await expect(transaction).rejects.toThrow('rolled back');
    };
  }

  it('serve only what has committed: the rows of a transaction still open, later rolled back, are never seen', async () => {
    const size = Number((await sluice.request('GET', '/v1/audit/checkpoint')).text.split('\n')[1]);
    const before = (await sluice.request('GET', '/v1/audit/checkpoint')).text;
    const entriesBefore = (await sluice.request('GET', '/v1/audit/entries')).text;
    const reportBefore = (await sluice.request('GET', `/v1/subjects/workplace/${AUTHOR_ID}/report`)).json;
    const sandboxBefore = (await sluice.request('GET', `/v1/sandbox/messages?waId=${RECIPIENT}`)).json;
    const secret = 'slk_uncommitted-key-secret';
    const rollBack = await openTransaction(async (manager) => {
      const sql = Sql.of(manager);
      const now = new Date().toISOString();
      await sql.insert(manager, 'audit_entries', ['idx', 'id', 'kind', 'entry', 'leaf_hash', 'created_at'], [[size, 'aud_uncommitted', 'share.decided', '{}', '00'.repeat(32), now]]);
      await sql.insert(manager, 'audit_checkpoints', ['tree_size', 'root_hash', 'note', 'created_at'], [[size + 1, '00'.repeat(32), 'uncommitted\n', now]]);
      await sql.insert(manager, 'shares', ['id', 'api_key_id', 'idempotency_key', 'request_hash', 'status', 'policy_name', 'bundle_hash', 'document', 'audit_entry', 'created_at'], [
        ['shr_uncommitted00000', 'key_none', 'uncommitted', '00'.repeat(32), 'accepted', null, 'none', '{}', 'aud_uncommitted', now],
      ]);
      await sql.insert(manager, 'consent_states', ['subject_type', 'subject_id', 'purpose', 'status', 'event_id', 'updated_at'], [['whatsapp', '31699999999', 'frontline-updates', 'granted', 'cns_uncommitted', now]]);
      await sql.insert(manager, 'sandbox_messages', ['id', 'wa_id', 'outbox_id', 'body', 'media_id', 'created_at'], [['sbx_uncommitted', RECIPIENT, 'out_none', '{}', null, now]]);
      await sql.insert(manager, 'api_keys', ['id', 'name', 'key_hash', 'scopes', 'created_at'], [['key_uncommitted', 'uncommitted', hashApiKey(secret), 'audit:read', now]]);
    });
    try {
      expect((await sluice.request('GET', '/v1/audit/checkpoint')).text).toBe(before);
      expect((await sluice.request('GET', '/v1/audit/entries')).text).toBe(entriesBefore);
      expect((await sluice.request('GET', '/v1/audit/entries?from=0&to=100000')).text).toBe(entriesBefore);
      const exported = (await sluice.request('GET', '/v1/audit/export')).text;
      expect((JSON.parse(exported.split('\n')[0]!) as { checkpoint: string }).checkpoint).toBe(before);
      expect((await sluice.request('GET', `/v1/audit/proofs/inclusion?index=0&size=${size + 1}`)).status).toBe(400);
      expect((await sluice.request('GET', `/v1/audit/proofs/consistency?from=1&to=${size + 1}`)).status).toBe(400);
      expect((await sluice.request('GET', `/v1/subjects/workplace/${AUTHOR_ID}/report`)).json.log).toEqual(reportBefore.log);
      expect((await sluice.request('GET', '/v1/shares/shr_uncommitted00000')).status).toBe(404);
      expect((await sluice.request('GET', '/v1/subjects/whatsapp/31699999999/consents')).json.current).toEqual([]);
      expect((await sluice.request('GET', `/v1/sandbox/messages?waId=${RECIPIENT}`)).json).toEqual(sandboxBefore);
      expect((await sluice.request('GET', '/v1/audit/checkpoint', { key: secret })).status).toBe(401);
    } finally {
      await rollBack();
    }
    expect((await sluice.request('GET', '/v1/audit/checkpoint')).text).toBe(before);
  });
});
