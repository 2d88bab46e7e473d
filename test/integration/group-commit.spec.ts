import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { CommandBus } from '@nestjs/cqrs';
import { DataSource, type EntityManager } from 'typeorm';
import { AuditSequencer } from '../../src/audit/audit-sequencer.js';
import { sqliteConnection } from '../../src/platform/database/sql.js';
import { TransactionRunner } from '../../src/platform/database/transaction-runner.js';
import { RequestShareCommand } from '../../src/shares/request-share/request-share.command.js';
import { type DecidedShare, ShareRecorder } from '../../src/shares/request-share/share-recorder.js';
import type { RequestShareDto } from '../../src/shares/request-share/request-share.dto.js';
import { expectConsistentLog } from '../support/audit-log.js';
import { describeEachDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, RECIPIENT, shareRequest, TAGGED_ID } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

const POISON = '31699999999';

interface Answered {
  status: number;
  json: { id: string; audit: { entry: string; index: number } };
}

/**
 * Concurrent share decisions are written in shared transactions (group commit) and sequenced in
 * them. This proves what that must not cost: every answer comes after its transaction committed,
 * with the entry durable in the log at the index the answer names; a share that makes a shared
 * transaction fail fails alone, without losing or falsely confirming the others; one
 * Idempotency-Key still decides one share.
 */
describeEachDatabase('group commit of concurrent shares', (dialect) => {
  let sluice: RunningApp;
  /** Transactions begun, failed, and the shares whose transaction had committed, as they happen. */
  const seen = { transactions: 0, failed: 0, committed: new Set<string>() };

  beforeAll(async () => {
    sluice = await startTestApp(dialect);
    for (const waId of [RECIPIENT, POISON]) expect((await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId) })).status).toBe(201);
    for (const id of [AUTHOR_ID, TAGGED_ID]) expect((await sluice.request('POST', '/v1/consents', { body: consent('workplace', id) })).status).toBe(201);
    const transactions = sluice.app.get(TransactionRunner);
    const run = transactions.run.bind(transactions);
    transactions.run = async <T>(work: (manager: EntityManager) => Promise<T>): Promise<T> => {
      seen.transactions++;
      try {
        const result = await run(work);
        // A batch of shares answers with their documents: they are committed from here on.
        for (const recorded of (result as { results?: { document?: { id: string } }[] }).results ?? []) {
          if (recorded.document) seen.committed.add(recorded.document.id);
        }
        return result;
      } catch (error) {
        seen.failed++;
        throw error;
      }
    };
  });
  afterAll(async () => {
    await sluice?.close();
  });

  /** Sends the shares at once; checks each answer the moment it arrives. */
  async function shareAll(bodies: { body: unknown; key: string }[]): Promise<Answered[]> {
    return Promise.all(
      bodies.map(async ({ body, key }) => {
        const response = await sluice.request('POST', '/v1/shares', { body, headers: { 'idempotency-key': key } });
        if (response.status === 201) expect(seen.committed.has(response.json.id)).toBe(true);
        return { status: response.status, json: response.json };
      }),
    );
  }

  async function inLog(answered: Answered[]): Promise<void> {
    const p = (n: number) => (dialect === 'postgres' ? `$${n}` : '?');
    for (const { json } of answered) {
      const [entry] = await sluice.database.adminQuery<{ idx: string | number; entry: string }>(`SELECT idx, entry FROM audit_entries WHERE id = ${p(1)}`, [json.audit.entry]);
      expect(Number(entry!.idx)).toBe(json.audit.index);
      expect(JSON.parse(entry!.entry)).toMatchObject({ kind: 'share.decided', share: json.id, index: json.audit.index });
      expect(await sluice.database.adminQuery(`SELECT id FROM shares WHERE id = ${p(1)}`, [json.id])).toHaveLength(1);
    }
  }

  it('writes concurrent shares in fewer transactions, answering each only once it is durable and indexed', async () => {
    // Open the connections first, so that the shares arrive together rather than one per new connection.
    await Promise.all(Array.from({ length: 40 }, () => sluice.request('GET', '/health', { key: null })));
    const before = seen.transactions;
    const answered = await shareAll(Array.from({ length: 40 }, () => ({ body: shareRequest(), key: randomUUID() })));
    expect(answered.map((a) => a.status)).toEqual(Array(40).fill(201));
    expect(seen.transactions - before).toBeLessThan(20);
    expect(new Set(answered.map((a) => a.json.audit.index)).size).toBe(40);
    await inLog(answered);
  });

  it('fails a poisoned share alone: its neighbours in the transaction are retried and committed, it is never confirmed', async () => {
    // The database refuses the poisoned share's outbox row, failing the transaction it is in.
    if (dialect === 'sqlite') {
      await sluice.database.adminQuery(`CREATE TRIGGER poison BEFORE INSERT ON outbox_messages WHEN NEW.wa_id = '${POISON}' BEGIN SELECT RAISE(ABORT, 'poisoned'); END`);
    } else {
      await sluice.database.adminQuery(`CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'poisoned'; END $$`);
      await sluice.database.adminQuery(`CREATE TRIGGER poison BEFORE INSERT ON outbox_messages FOR EACH ROW WHEN (NEW.wa_id = '${POISON}') EXECUTE FUNCTION poison()`);
    }
    const poisonKey = randomUUID();
    const failedBefore = seen.failed;
    // Through the command bus, in one turn of the event loop: they reach the group commit together.
    const bus = sluice.app.get(CommandBus);
    const command = (body: Record<string, unknown>, key: string) => new RequestShareCommand('key_test', key, body, body as unknown as RequestShareDto);
    const outcomes = await Promise.allSettled([
      ...Array.from({ length: 9 }, () => bus.execute(command(shareRequest(), randomUUID()))),
      bus.execute(command(shareRequest({ recipients: [{ waId: POISON }] }), poisonKey)),
    ]);
    // One shared transaction failed, then each share was tried alone: the poisoned one failed again.
    expect(seen.failed - failedBefore).toBe(2);
    expect(outcomes.slice(0, 9).map((o) => o.status)).toEqual(Array(9).fill('fulfilled'));
    expect(outcomes[9]!.status).toBe('rejected');
    const answered = outcomes.slice(0, 9).map((o) => ({ status: 201, json: (o as PromiseFulfilledResult<{ document: Answered['json'] }>).value.document }));
    for (const { json } of answered) expect(seen.committed.has(json.id)).toBe(true);
    await inLog(answered);
    expect(await sluice.database.adminQuery(`SELECT id FROM shares WHERE idempotency_key = '${poisonKey}'`)).toEqual([]);

    // The log holds each index once, in order, and only entries of committed changes.
    const indices = (await sluice.database.adminQuery<{ idx: string | number }>('SELECT idx FROM audit_entries ORDER BY idx')).map((r) => Number(r.idx));
    expect(indices).toEqual(indices.map((_, i) => i));
    await sluice.database.adminQuery('DROP TRIGGER poison' + (dialect === 'postgres' ? ' ON outbox_messages' : ''));
  });

  it('decides one share per Idempotency-Key when its requests share a transaction', async () => {
    const key = randomUUID();
    const bodies = [...Array.from({ length: 6 }, () => shareRequest()), shareRequest({ purpose: 'other-purpose' })];
    const answered = await shareAll([...bodies.map((body) => ({ body, key })), ...Array.from({ length: 6 }, () => ({ body: shareRequest(), key: randomUUID() }))]);
    const withKey = answered.slice(0, 7);
    // Whichever came first decided; a request with its body replays it, one with the other body is refused.
    const first = withKey.findIndex((a) => a.status === 201);
    expect(withKey.filter((a) => a.status === 201)).toHaveLength(1);
    withKey.forEach((a, i) => {
      if (i === first) return;
      const sameBody = JSON.stringify(bodies[i]) === JSON.stringify(bodies[first]);
      expect(a.status).toBe(sameBody ? 200 : 409);
      if (sameBody) expect(a.json).toEqual(withKey[first]!.json);
    });
    expect(answered.slice(7).map((a) => a.status)).toEqual(Array(6).fill(201));
    const p = dialect === 'postgres' ? '$1' : '?';
    expect(await sluice.database.adminQuery(`SELECT id FROM shares WHERE idempotency_key = ${p}`, [key])).toHaveLength(1);
    await inLog([withKey[first]!, ...answered.slice(7)]);
  });

  it("keeps a share's recipients and outbox rows when sequencing in its transaction fails and its entry is queued instead", async () => {
    // The next row offered to the log is refused once; what refuses it must not be undone by the
    // rollback it causes (a sequence on PostgreSQL, a JavaScript function on SQLite).
    await sluice.app.get(AuditSequencer).sequenceNow();
    if (dialect === 'sqlite') {
      let refused = false;
      const writer = sqliteConnection(sluice.app.get(DataSource));
      writer.function('refuse_once', { deterministic: false }, () => (refused ? 0 : ((refused = true), 1)));
      writer.exec(`CREATE TEMP TRIGGER refuse_once BEFORE INSERT ON audit_entries WHEN refuse_once() BEGIN SELECT RAISE(ABORT, 'refused once'); END`);
    } else {
      await sluice.database.adminQuery('CREATE SEQUENCE refuse_once');
      await sluice.database.adminQuery(`CREATE FUNCTION refuse_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF nextval('refuse_once') = 1 THEN RAISE EXCEPTION 'refused once'; END IF; RETURN NEW; END $$`);
      await sluice.database.adminQuery('CREATE TRIGGER refuse_once BEFORE INSERT ON audit_entries FOR EACH ROW EXECUTE FUNCTION refuse_once()');
    }
    try {
      const [answer] = await shareAll([{ body: shareRequest(), key: randomUUID() }]);
      expect(answer!.status).toBe(201);
      // Sequenced by a later pass, after the queue: the entry is in the log at the answered index...
      await inLog([answer!]);
      // ...and what the share wrote before the sequencer's savepoint was kept by the commit.
      const p = dialect === 'postgres' ? '$1' : '?';
      expect(await sluice.database.adminQuery(`SELECT wa_id, delivery_state FROM share_recipients WHERE share_id = ${p}`, [answer!.json.id])).toEqual([{ wa_id: RECIPIENT, delivery_state: 'queued' }]);
      expect(await sluice.database.adminQuery(`SELECT wa_id, decision_entry FROM outbox_messages WHERE share_id = ${p}`, [answer!.json.id])).toEqual([{ wa_id: RECIPIENT, decision_entry: answer!.json.audit.entry }]);
      if (dialect === 'postgres') expect(await sluice.database.adminQuery<{ last_value: string }>('SELECT last_value FROM refuse_once')).toEqual([{ last_value: '2' }]);
    } finally {
      if (dialect === 'sqlite') sqliteConnection(sluice.app.get(DataSource)).exec('DROP TRIGGER refuse_once');
      else await sluice.database.adminQuery('DROP TRIGGER refuse_once ON audit_entries');
    }
  });

  it('creates and touches subject keys only for the people of shares it records, not for a refused reuse of a key', async () => {
    const recorder = sluice.app.get(ShareRecorder);
    /** A denied decision naming its recipient, as the handler would hand it over. */
    const decided = (key: string, waId: string, requestHash: string): DecidedShare => {
      const body = shareRequest({ recipients: [{ waId }] });
      return {
        command: new RequestShareCommand('key_test', key, body, body as unknown as RequestShareDto),
        requestHash: { keyed: requestHash, unkeyed: requestHash },
        decision: {
          status: 'denied',
          policy: null,
          bundle: 'sha256:the-bundle-that-decided',
          reasons: ['policy.none'],
          recipients: [{ waId, decision: 'denied', reasons: ['policy.none'] }],
          recipientConsent: null,
          crossing: { fields: [], dropped: [], redactions: [] },
          subjects: [],
          outbound: null,
          outsideWindow: null,
        },
        listedPurposes: new Set(['frontline-updates']),
        media: new Map(),
        consentsAsOf: new Date().toISOString(),
      };
    };
    // Everyone the first share names has a key from here on.
    // Recorded as decided: under the bundle that decided it, whichever is active when it is written.
    expect(await recorder.record(decided(randomUUID(), RECIPIENT, 'a'.repeat(64)))).toMatchObject({ outcome: 'recorded', document: { policy: { name: null, bundle: 'sha256:the-bundle-that-decided' } } });
    const keysBefore = await sluice.database.adminQuery<{ lookup: string; last_used_at: string }>('SELECT lookup, last_used_at FROM subject_keys ORDER BY lookup');
    // Two shares with one Idempotency-Key and different bodies, in one transaction: the first
    // submitted is recorded; the second names someone new, and is refused.
    const key = randomUUID();
    const [first, second] = await Promise.all([recorder.record(decided(key, RECIPIENT, 'b'.repeat(64))), recorder.record(decided(key, '31688877766', 'c'.repeat(64)))]);
    expect([first.outcome, second.outcome]).toEqual(['recorded', 'conflict']);
    expect(await sluice.database.adminQuery('SELECT lookup, last_used_at FROM subject_keys ORDER BY lookup')).toEqual(keysBefore);
  });

  // SQLite writes one transaction at a time: the setting needs PostgreSQL.
  if (dialect === 'postgres') it('runs group commits side by side with SHARE_COMMITS_IN_FLIGHT, one consistent log', async () => {
    // No transactions but the shares' own: no background sequencing, no delivery.
    const replica = await sluice.startReplica({ SHARE_COMMITS_IN_FLIGHT: '3', AUDIT_SEQUENCE_POLL_MS: '60000', DELIVERY_WORKER: 'off' });
    try {
      // The first batch is held inside its transaction until a second batch is being written beside
      // it (or 5 s have passed: with one transaction at a time that never happens). Wrapping a
      // private method: the test counts the shares' own transactions, not the sequencer's.
      const recorder = replica.app.get(ShareRecorder);
      const recordAll = recorder['recordAll'].bind(recorder);
      let running = 0;
      let most = 0;
      let releaseFirst: () => void = () => undefined;
      const firstHeld = new Promise<void>((resolve) => {
        releaseFirst = resolve;
        setTimeout(resolve, 5000);
      });
      recorder['recordAll'] = async (...args: Parameters<typeof recordAll>) => {
        most = Math.max(most, ++running);
        try {
          if (running === 1 && most === 1) await firstHeld;
          else releaseFirst();
          return await recordAll(...args);
        } finally {
          running--;
        }
      };
      const share = async () => {
        const response = await replica.request('POST', '/v1/shares', { body: shareRequest(), headers: { 'idempotency-key': randomUUID() } });
        return { status: response.status, json: response.json } as Answered;
      };
      // A second wave once the first batch is held: its shares cannot be in that batch.
      const first = Array.from({ length: 20 }, share);
      for (const deadline = Date.now() + 5000; running === 0 && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 2));
      const answered = await Promise.all([...first, ...Array.from({ length: 20 }, share)]);
      expect(answered.map((a) => a.status)).toEqual(Array(40).fill(201));
      expect(most).toBeGreaterThan(1);
      expect(new Set(answered.map((a) => a.json.audit.index)).size).toBe(40);
      await inLog(answered);
      // Every index once, in order, and every signed checkpoint the root of the leaves before it.
      await expectConsistentLog(sluice.database);
    } finally {
      await replica.close();
    }
  });
});
