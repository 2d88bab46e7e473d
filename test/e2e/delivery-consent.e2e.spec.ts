import { afterAll, beforeAll, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeEachDatabase } from '../support/databases.js';
import { consent, idempotencyKey, shareRequest, workplacePost } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

const policy = (name: string, lawfulBasis: string, recipients: string) => `apiVersion: sluice.policy/v1
name: ${name}
purpose: ${name}
lawfulBasis: ${lawfulBasis}
source: workplace.post
destination: whatsapp
recipients: ${recipients}
fields:
  - { path: message, category: user.content, transform: redact-pii }
freeText: { recognisers: [email, phone], action: mask }
delivery: { type: text, template: "{message}" }
`;

/**
 * Consent is checked again just before a message is sent: the consent the policy asks of its
 * recipients (whose purpose may differ from the share's), and none where the policy's lawful basis
 * asks none.
 */
describeEachDatabase('the consent checked again before sending is the one the policy asks', (dialect) => {
  let sluice: RunningApp;
  let policies: string;

  beforeAll(async () => {
    policies = mkdtempSync(join(tmpdir(), 'sluice-policies-'));
    writeFileSync(join(policies, 'team-news.policy.yaml'), policy('team-news', 'consent', '{ consent: { purpose: whatsapp-optin } }'));
    writeFileSync(join(policies, 'site-safety.policy.yaml'), policy('site-safety', 'legitimate-interests', '{}'));
    writeFileSync(join(policies, 'site-news.policy.yaml'), policy('site-news', 'legitimate-interests', '{ consent: { purpose: site-news } }'));
    sluice = await startTestApp(dialect, { env: { POLICIES_DIR: policies } });
  });
  afterAll(async () => {
    await sluice?.close();
    rmSync(policies, { recursive: true, force: true });
  });

  async function deliveryOf(shareId: string): Promise<unknown> {
    return (await sluice.request('GET', `/v1/shares/${shareId}`)).json.recipients[0].delivery;
  }

  it("cancels a message when the recipient withdraws the policy's consent purpose, even holding one for the share's purpose", async () => {
    const waId = '31687000001';
    for (const purpose of ['whatsapp-optin', 'team-news']) expect((await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId, 'granted', purpose) })).status).toBe(201);
    const share = await sluice.request('POST', '/v1/shares', { body: shareRequest({ purpose: 'team-news', recipients: [{ waId }] }), headers: idempotencyKey() });
    expect([share.status, share.json.status]).toEqual([201, 'accepted']);
    expect((await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId, 'withdrawn', 'whatsapp-optin') })).status).toBe(201);
    await sluice.drainOutbox();
    expect(await deliveryOf(share.json.id)).toBe('cancelled');
    expect((await sluice.request('GET', `/v1/sandbox/messages?waId=${waId}`)).json).toEqual([]);
  });

  it('sends under a policy that asks no recipient consent', async () => {
    const waId = '31687000002';
    const share = await sluice.request('POST', '/v1/shares', { body: shareRequest({ purpose: 'site-safety', recipients: [{ waId }] }), headers: idempotencyKey() });
    expect([share.status, share.json.status]).toEqual([201, 'accepted']);
    await sluice.drainOutbox();
    expect(await deliveryOf(share.json.id)).toBe('sent');
    expect((await sluice.request('GET', `/v1/sandbox/messages?waId=${waId}`)).json).toHaveLength(1);
    // The recipient's report: no consent was asked of them.
    expect((await sluice.request('GET', `/v1/subjects/whatsapp/${waId}/report`)).json.crossings).toEqual([expect.objectContaining({ roles: ['recipient'], consent: null })]);
  });

  it('names the author under a policy that asks nothing of them: their report shows the post, and their erasure clears it', async () => {
    const waId = '31687000004';
    const author = '100047770001';
    const post = workplacePost({ message: 'Forklift 3 is back in service', from: { id: author, name: 'Joost Visser' }, message_tags: [] });
    const share = await sluice.request('POST', '/v1/shares', { body: shareRequest({ purpose: 'site-safety', post, recipients: [{ waId }] }), headers: idempotencyKey() });
    expect(share.json.status).toBe('accepted');
    const report = (await sluice.request('GET', `/v1/subjects/workplace/${author}/report`)).json;
    expect(report.crossings).toEqual([expect.objectContaining({ share: share.json.id, roles: ['author'], consent: null, message: 'Forklift 3 is back in service' })]);

    expect((await sluice.request('POST', `/v1/subjects/workplace/${author}/erase`)).json.erased).toBe(true);
    expect(await deliveryOf(share.json.id)).toBe('cancelled');
    const p = dialect === 'postgres' ? '$1' : '?';
    expect(await sluice.database.adminQuery(`SELECT payload FROM outbox_messages WHERE share_id = ${p}`, [share.json.id])).toEqual([{ payload: '{"erased":true}' }]);
    expect((await sluice.request('GET', `/v1/subjects/workplace/${author}/report`)).json).toMatchObject({ found: false, crossings: [] });
  });

  it("reports a recipient's consent as granted under a policy that asks it, whatever its lawful basis", async () => {
    const waId = '31687000003';
    expect((await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', waId, 'granted', 'site-news') })).status).toBe(201);
    const share = await sluice.request('POST', '/v1/shares', { body: shareRequest({ purpose: 'site-news', recipients: [{ waId }] }), headers: idempotencyKey() });
    expect(share.json.status).toBe('accepted');
    expect((await sluice.request('GET', `/v1/subjects/whatsapp/${waId}/report`)).json.crossings).toEqual([expect.objectContaining({ roles: ['recipient'], consent: 'granted' })]);
  });
});
