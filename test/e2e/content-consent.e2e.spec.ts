import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { AuditSequencer } from '../../src/audit/audit-sequencer.js';
import { describeEachDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, idempotencyKey, shareRequest, TAGGED_ID, workplacePost } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

/**
 * Consent is checked again just before each send, and a withdrawal wins over any queued message
 * (DESIGN, invariant 5): not only the recipient's, but that of everyone whose data crosses in the
 * message because they consented, its author and the people tagged in it.
 */
describeEachDatabase('a withdrawal by someone a queued message names stops it', (dialect) => {
  let sluice: RunningApp;
  let next = 0;

  beforeAll(async () => {
    sluice = await startTestApp(dialect);
  });
  afterAll(async () => {
    await sluice?.close();
  });

  /** A fresh recipient, author and tagged person, with the consents given. */
  async function people(consenting: { author: boolean; tagged: boolean }) {
    const n = String(++next).padStart(3, '0');
    const them = { waId: `31687100${n}`, author: `${AUTHOR_ID}${n}`, tagged: `${TAGGED_ID}${n}` };
    const grants: ['whatsapp' | 'workplace', string][] = [['whatsapp', them.waId]];
    if (consenting.author) grants.push(['workplace', them.author]);
    if (consenting.tagged) grants.push(['workplace', them.tagged]);
    for (const [type, id] of grants) expect((await sluice.request('POST', '/v1/consents', { body: consent(type, id) })).status).toBe(201);
    return them;
  }

  async function queue(them: { waId: string; author: string; tagged: string }) {
    const post = workplacePost({
      message: 'Pieter Jansen opened the new warehouse today!',
      from: { id: them.author, name: 'Anna de Vries' },
      message_tags: [{ id: them.tagged, name: 'Pieter Jansen', type: 'user', offset: 0, length: 13 }],
    });
    const share = await sluice.request('POST', '/v1/shares', { body: shareRequest({ sharedBy: { workplaceUserId: them.author }, post, recipients: [{ waId: them.waId }] }), headers: idempotencyKey() });
    expect([share.status, share.json.status]).toEqual([201, 'accepted']);
    return share.json.id as string;
  }

  const delivery = async (shareId: string) => (await sluice.request('GET', `/v1/shares/${shareId}`)).json.recipients[0].delivery;
  const sent = async (waId: string) => ((await sluice.request('GET', `/v1/sandbox/messages?waId=${waId}`)).json as { request: { text: { body: string } } }[]).map((m) => m.request.text.body);
  const cancellationReasons = async (shareId: string) => {
    // Delivery outcomes are sequenced in the background.
    await sluice.app.get(AuditSequencer).sequenceNow();
    return (await sluice.request('GET', '/v1/audit/entries')).text
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse((JSON.parse(line) as { entry: string }).entry) as { kind: string; share?: string; reason?: string })
      .filter((entry) => entry.kind === 'message.cancelled' && entry.share === shareId)
      .map((entry) => entry.reason);
  };

  it.each([
    ['its author, whose name it carries', 'author'],
    ['a person tagged in it, whose name it carries', 'tagged'],
  ] as const)('cancels a queued message when %s withdraws consent', async (_label, who) => {
    const them = await people({ author: true, tagged: true });
    const shareId = await queue(them);
    expect((await sluice.request('POST', '/v1/consents', { body: consent('workplace', them[who], 'withdrawn') })).json.current).toBe('withdrawn');
    await sluice.drainOutbox();
    expect(await delivery(shareId)).toBe('cancelled');
    expect(await sent(them.waId)).toEqual([]);
    expect(await cancellationReasons(shareId)).toEqual(['subject.consent_withdrawn']);
  });

  it('sends a message that carries nothing of the person who withdrew: their name was already left out', async () => {
    const them = await people({ author: false, tagged: false });
    const shareId = await queue(them);
    for (const id of [them.author, them.tagged]) await sluice.request('POST', '/v1/consents', { body: consent('workplace', id, 'withdrawn') });
    await sluice.drainOutbox();
    expect(await delivery(shareId)).toBe('sent');
    expect(await sent(them.waId)).toEqual(['[person] opened the new warehouse today!']);
  });

  it('sends when everyone it names still consents, and a withdrawal for another purpose changes nothing', async () => {
    const them = await people({ author: true, tagged: true });
    const shareId = await queue(them);
    await sluice.request('POST', '/v1/consents', { body: consent('workplace', them.author, 'withdrawn', 'another-purpose') });
    await sluice.drainOutbox();
    expect(await delivery(shareId)).toBe('sent');
    expect(await sent(them.waId)).toEqual(['Anna de Vries:\nPieter Jansen opened the new warehouse today!']);
  });
});
