import { afterAll, beforeAll, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { randomUUID } from 'node:crypto';
import { describeEachDatabase } from '../support/databases.js';
import { consent } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

/**
 * For random Workplace posts, nothing outside frontline-updates' allow-list ever reaches the
 * WhatsApp message: every value planted outside it carries a unique marker that must not appear
 * in the sandbox's record of the Cloud API request.
 */
describeEachDatabase('allow-list property over HTTP', (dialect) => {
  let sluice: RunningApp;
  const recipient = '31655500001';

  beforeAll(async () => {
    sluice = await startTestApp(dialect);
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', recipient) });
  });
  afterAll(async () => {
    await sluice?.close();
  });

  const marker = () => fc.uuid().map((u) => `MARK${u.replaceAll('-', '')}`);
  const word = fc.stringMatching(/^[A-Za-z]{2,10}$/);
  const extraField = fc.record({
    key: fc.stringMatching(/^[a-z_]{1,12}$/).filter((k) => !['message', 'from', 'id', 'message_tags'].includes(k)),
    depth: fc.integer({ min: 0, max: 3 }),
    value: marker(),
  });

  it('never lets a field outside the allow-list into the sent message', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          words: fc.array(word, { minLength: 1, maxLength: 8 }),
          authorName: marker(),
          authorConsents: fc.boolean(),
          taggedName: marker(),
          taggedConsents: fc.boolean(),
          extras: fc.array(extraField, { maxLength: 5 }),
          place: marker(),
          permalink: marker(),
          attachment: marker(),
        }),
        async (c) => {
          const authorId = String(100000 + Math.floor(Math.random() * 1e9));
          const taggedId = String(200000 + Math.floor(Math.random() * 1e9));
          await sluice.request('POST', '/v1/consents', { body: consent('workplace', authorId, c.authorConsents ? 'granted' : 'withdrawn') });
          await sluice.request('POST', '/v1/consents', { body: consent('workplace', taggedId, c.taggedConsents ? 'granted' : 'withdrawn') });
          const prefix = `${c.taggedName} `;
          const post: Record<string, unknown> = {
            id: `1_${Date.now()}`,
            message: `${prefix}${c.words.join(' ')}`,
            from: { id: authorId, name: c.authorName },
            message_tags: [{ id: taggedId, name: c.taggedName, type: 'user', offset: 0, length: c.taggedName.length }],
            place: { name: c.place, location: { latitude: 1, longitude: 2 } },
            permalink_url: c.permalink,
            // A link's description (a photo without its image would deny the share as unreadable).
            attachments: { data: [{ type: 'share', description: c.attachment }] },
          };
          const planted = [c.place, c.permalink, c.attachment, authorId, taggedId];
          for (const extra of c.extras) {
            let value: unknown = extra.value;
            for (let d = 0; d < extra.depth; d++) value = { nested: value };
            post[extra.key] = value;
            planted.push(extra.value);
          }
          if (!c.authorConsents) planted.push(c.authorName);
          if (!c.taggedConsents) planted.push(c.taggedName);

          const response = await sluice.request('POST', '/v1/shares', {
            body: { purpose: 'frontline-updates', sharedBy: { workplaceUserId: authorId }, post, recipients: [{ waId: recipient }] },
            headers: { 'idempotency-key': randomUUID() },
          });
          expect(response.status).toBe(201);
          await sluice.drainOutbox();
          const messages = (await sluice.request('GET', `/v1/sandbox/messages?waId=${recipient}`)).json as { request: unknown }[];
          const sent = JSON.stringify(messages.at(-1)!.request);
          expect(sent).toContain(c.words.join(' '));
          for (const value of planted) expect(sent).not.toContain(value);
          if (c.authorConsents) expect(sent).toContain(c.authorName);
          if (c.taggedConsents) expect(sent).toContain(c.taggedName);
        },
      ),
      { numRuns: 25 },
    );
  });
});
