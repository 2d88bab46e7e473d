import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { DataSource } from 'typeorm';
import { AuditSequencer } from '../../src/audit/audit-sequencer.js';
import { sqliteConnection } from '../../src/platform/database/sql.js';
import { describeEachDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, idempotencyKey, RECIPIENT, shareRequest } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

/**
 * An outcome the worker has (a message sent) but fails to write once is written on a second try:
 * left unwritten, its claim would lapse and another attempt send the message again.
 */
describeEachDatabase('recording delivery outcomes', (dialect) => {
  let sluice: RunningApp;

  beforeAll(async () => {
    sluice = await startTestApp(dialect);
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', RECIPIENT) });
    await sluice.request('POST', '/v1/consents', { body: consent('workplace', AUTHOR_ID) });
  });
  afterAll(async () => {
    await sluice?.close();
  });

  /** The next write that settles a message as sent fails once (what refuses it is not undone by the rollback it causes). */
  async function refuseOnce(): Promise<() => Promise<void>> {
    if (dialect === 'sqlite') {
      let refused = false;
      const writer = sqliteConnection(sluice.app.get(DataSource));
      writer.function('refuse_once', { deterministic: false }, () => (refused ? 0 : ((refused = true), 1)));
      writer.exec(`CREATE TEMP TRIGGER refuse_once BEFORE UPDATE ON outbox_messages WHEN NEW.state = 'sent' AND refuse_once() BEGIN SELECT RAISE(ABORT, 'refused once'); END`);
      return async () => void writer.exec('DROP TRIGGER refuse_once');
    }
    await sluice.database.adminQuery('CREATE SEQUENCE refuse_once');
    await sluice.database.adminQuery(`CREATE FUNCTION refuse_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN IF nextval('refuse_once') = 1 THEN RAISE EXCEPTION 'refused once'; END IF; RETURN NEW; END $$`);
    await sluice.database.adminQuery(`CREATE TRIGGER refuse_once BEFORE UPDATE ON outbox_messages FOR EACH ROW WHEN (NEW.state = 'sent') EXECUTE FUNCTION refuse_once()`);
    return async () => {
      await sluice.database.adminQuery('DROP TRIGGER refuse_once ON outbox_messages');
      await sluice.database.adminQuery('DROP FUNCTION refuse_once()');
      await sluice.database.adminQuery('DROP SEQUENCE refuse_once');
    };
  }

  it('writes a sent message on a second try: sent once, recorded once', async () => {
    const share = await sluice.request('POST', '/v1/shares', { body: shareRequest(), headers: idempotencyKey() });
    expect(share.json.status).toBe('accepted');
    const undo = await refuseOnce();
    try {
      await sluice.drainOutbox();
    } finally {
      await undo();
    }
    const p = dialect === 'postgres' ? '$1' : '?';
    expect(await sluice.database.adminQuery(`SELECT state, attempts FROM outbox_messages WHERE share_id = ${p}`, [share.json.id])).toEqual([{ state: 'sent', attempts: 1 }]);
    expect(await sluice.database.adminQuery(`SELECT wa_id FROM sandbox_messages WHERE wa_id = ${p}`, [RECIPIENT])).toHaveLength(1);
    await sluice.app.get(AuditSequencer).sequenceNow();
    const entries = (await sluice.request('GET', '/v1/audit/entries')).text.split('\n').filter(Boolean).map((line) => JSON.parse(JSON.parse(line).entry) as { kind: string; share?: string });
    expect(entries.filter((e) => e.share === share.json.id && e.kind.startsWith('message.')).map((e) => e.kind)).toEqual(['message.sent']);
  });
});
