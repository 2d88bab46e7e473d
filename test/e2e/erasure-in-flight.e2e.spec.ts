import { afterAll, beforeAll, expect, it } from '@jest/globals';
import type { ServerResponse } from 'node:http';
import pg from 'pg';
import sharp from 'sharp';
import { SubjectKeyService } from '../../src/audit/subject-keys.service.js';
import { ConsentLedger } from '../../src/consent/consent-ledger.js';
import { TransactionRunner } from '../../src/platform/database/transaction-runner.js';
import { describeEachDatabase } from '../support/databases.js';
import { eventually } from '../support/eventually.js';
import { AUTHOR_ID, consent, idempotencyKey, shareRequest, workplacePost } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';
import { startTlsCdn, type TlsCdn } from '../support/tls-cdn.js';

/**
 * A share decided before an erasure of someone it names, and recorded after it, must not put
 * back what the erasure cleared, nor send on the consent it removed. The decision is held in
 * flight by its photo: the CDN answers only when the test lets it, after the share has read the
 * consents it is decided on.
 */
describeEachDatabase('erasure of someone a share in flight names', (dialect) => {
  let sluice: RunningApp;
  let cdn: TlsCdn;
  let photo: Buffer;
  /** Fetches of /held.jpg waiting for the test to let them go. */
  const held: ServerResponse[] = [];
  let holding = false;

  beforeAll(async () => {
    photo = await sharp({ create: { width: 32, height: 24, channels: 3, background: '#cc6633' } }).jpeg().toBuffer();
    cdn = await startTlsCdn((req, res) => {
      if (req.url !== '/held.jpg') return void res.writeHead(404).end();
      if (holding) held.push(res);
      else res.writeHead(200, { 'content-type': 'image/jpeg' }).end(photo);
    });
    sluice = await startTestApp(dialect, { env: { MEDIA_FETCH_HOSTS: `localhost:${cdn.port}`, MEDIA_FETCH_ALLOW_PRIVATE: 'true', MEDIA_FETCH_CA_FILE: cdn.caFile } });
    await sluice.request('POST', '/v1/consents', { body: consent('workplace', AUTHOR_ID) });
  });
  afterAll(async () => {
    release();
    await sluice?.close();
    cdn?.close();
  });

  /** Sends a photo share to `waId` and resolves once its decision waits for the photo (its consents read). */
  async function shareHeldInFlight(waId: string) {
    holding = true;
    const answer = sluice.request('POST', '/v1/shares', {
      body: shareRequest({ post: workplacePost({ attachments: { data: [{ type: 'photo', media: { image: { src: `${cdn.base}/held.jpg` } } }] } }), recipients: [{ waId }] }),
      headers: idempotencyKey(),
    });
    await eventually(() => held.length > 0 || undefined, 'the share to fetch its photo');
    return { answer };
  }

  /** Answers the fetches waiting now; later ones wait too unless `holding` is turned off. */
  function answerHeld(): void {
    for (const res of held.splice(0)) res.writeHead(200, { 'content-type': 'image/jpeg' }).end(photo);
  }

  function release(): void {
    holding = false;
    answerHeld();
  }

  /** Whether a connection to this suite's PostgreSQL database waits for a lock, as `condition` tells which. */
  async function waitingFor(condition: string): Promise<boolean> {
    const [row] = await sluice.database.adminQuery<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND ${condition}`,
    );
    return row!.n > 0;
  }

  async function outboxHolds(waId: string): Promise<boolean> {
    return JSON.stringify(await sluice.database.adminQuery('SELECT wa_id, payload FROM outbox_messages')).includes(waId);
  }

  it.each([
    ['someone shared with before', '31611110001', true],
    ['someone who only gave consent', '31611110002', false],
  ])('decides the share again when %s is erased meanwhile: nothing is queued for them', async (_label, waId, sharedBefore) => {
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId) });
    if (sharedBefore) {
      const earlier = await sluice.request('POST', '/v1/shares', { body: shareRequest({ recipients: [{ waId }] }), headers: idempotencyKey() });
      expect(earlier.json.status).toBe('accepted');
    }
    const { answer } = await shareHeldInFlight(waId);
    const erased = await sluice.request('POST', `/v1/subjects/whatsapp/${waId}/erase`);
    expect(erased.json.erased).toBe(true);
    release();
    const share = await answer;
    expect(share.status).toBe(201);
    expect(share.json).toMatchObject({ status: 'denied', recipients: [{ waId, decision: 'denied', reasons: ['recipient.no_consent'] }] });
    expect(await outboxHolds(waId)).toBe(false);
    // A share sent now is decided on what holds now, as the repeated one was.
    const later = await sluice.request('POST', '/v1/shares', { body: shareRequest({ recipients: [{ waId }] }), headers: idempotencyKey() });
    expect(later.json).toMatchObject({ status: 'denied', recipients: [{ decision: 'denied', reasons: ['recipient.no_consent'] }] });
  });

  it('decides the share again when another share named the erased person after the erasure, giving them a new key', async () => {
    const waId = '31611110007';
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId) });
    const { answer } = await shareHeldInFlight(waId);
    expect((await sluice.request('POST', `/v1/subjects/whatsapp/${waId}/erase`)).json.erased).toBe(true);
    // Decided and recorded after the erasure: the person gets a new key.
    const after = await sluice.request('POST', '/v1/shares', { body: shareRequest({ recipients: [{ waId }] }), headers: idempotencyKey() });
    expect(after.json).toMatchObject({ status: 'denied', recipients: [{ decision: 'denied', reasons: ['recipient.no_consent'] }] });
    release();
    expect((await answer).json).toMatchObject({ status: 'denied', recipients: [{ waId, decision: 'denied', reasons: ['recipient.no_consent'] }] });
    expect(await outboxHolds(waId)).toBe(false);
  });

  it('tells an erasure from a retention sweep of the same key before it', async () => {
    const waId = '31611110006';
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId) });
    // A sweep destroys keys and leaves consent as it is.
    await sluice.database.adminQuery(`UPDATE subject_keys SET wrapped_key = NULL, destroyed_at = '2020-01-01T00:00:00.000Z' WHERE subject_type = 'whatsapp' AND destroyed_at IS NULL`);
    const { answer } = await shareHeldInFlight(waId);
    // The first decision meets the swept key when recorded and is made again; the second is held too.
    answerHeld();
    await eventually(() => held.length > 0 || undefined, 'the share to be decided again');
    expect((await sluice.request('POST', `/v1/subjects/whatsapp/${waId}/erase`)).json.erased).toBe(true);
    release();
    expect((await answer).json).toMatchObject({ status: 'denied', recipients: [{ waId, decision: 'denied', reasons: ['recipient.no_consent'] }] });
    expect(await outboxHolds(waId)).toBe(false);
  });

  it('records a share over a key that retention destroyed long before, with a new key', async () => {
    const waId = '31611110003';
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId) });
    await sluice.request('POST', '/v1/shares', { body: shareRequest({ recipients: [{ waId }] }), headers: idempotencyKey() });
    await sluice.database.adminQuery(`UPDATE subject_keys SET wrapped_key = NULL, destroyed_at = '2020-01-01T00:00:00.000Z' WHERE subject_type = 'whatsapp' AND destroyed_at IS NULL`);
    const share = await sluice.request('POST', '/v1/shares', { body: shareRequest({ recipients: [{ waId }] }), headers: idempotencyKey() });
    expect(share.json).toMatchObject({ status: 'accepted', recipients: [{ waId, decision: 'allowed' }] });
    expect(await outboxHolds(waId)).toBe(true);
  });

  // SQLite runs one writing transaction at a time; PostgreSQL runs them side by side.
  if (dialect === 'postgres') it('makes a share wait for an erasure still under way, then decides it again', async () => {
    const waId = '31611110004';
    const subject = { type: 'whatsapp' as const, id: waId };
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId) });
    const { answer } = await shareHeldInFlight(waId);
    const keys = sluice.app.get(SubjectKeyService);
    await sluice.app.get(TransactionRunner).run(async (manager) => {
      // What the erasure does, held open until the share is seen waiting for it.
      await keys.excludeHolders(manager, subject);
      await sluice.app.get(ConsentLedger).forget(manager, subject);
      await keys.destroy(manager, subject);
      release();
      await eventually(async () => (await waitingFor(`wait_event = 'advisory'`)) || undefined, 'the share to wait for the erasure', 10_000);
    });
    expect((await answer).json).toMatchObject({ status: 'denied', recipients: [{ waId, decision: 'denied', reasons: ['recipient.no_consent'] }] });
    expect(await outboxHolds(waId)).toBe(false);
  });

  if (dialect === 'postgres') it('makes an erasure wait for a share that holds the person, then clears what it wrote', async () => {
    const waId = '31611110005';
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId) });
    // The author's key is due for its daily touch and this connection holds its row: the share's
    // transaction stops there, the keys already read.
    await sluice.database.adminQuery(`UPDATE subject_keys SET last_used_at = '2020-01-01T00:00:00.000Z' WHERE subject_type = 'workplace'`);
    const holder = new pg.Client({ connectionString: (sluice.database.config as { url: string }).url });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query(`SELECT lookup FROM subject_keys WHERE subject_type = 'workplace' FOR UPDATE`);
      const share = sluice.request('POST', '/v1/shares', { body: shareRequest({ recipients: [{ waId }] }), headers: idempotencyKey() });
      await eventually(async () => (await waitingFor(`query LIKE 'UPDATE subject_keys%'`)) || undefined, 'the share to wait for the key row');
      let erasureAnswered = false;
      const erasure = sluice.request('POST', `/v1/subjects/whatsapp/${waId}/erase`).finally(() => (erasureAnswered = true));
      await eventually(async () => erasureAnswered || (await waitingFor(`wait_event = 'advisory'`)) || undefined, 'the erasure to wait for the share');
      await holder.query('ROLLBACK');
      expect((await share).json.status).toBe('accepted');
      expect((await erasure).json.erased).toBe(true);
    } finally {
      await holder.end();
    }
    for (const table of ['shares', 'share_recipients', 'outbox_messages', 'consent_states']) {
      expect(JSON.stringify(await sluice.database.adminQuery(`SELECT * FROM ${table}`))).not.toContain(waId);
    }
  });
});
