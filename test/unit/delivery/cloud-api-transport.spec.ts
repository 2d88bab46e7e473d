import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { createServer } from 'node:net';
import { CloudApiTransport } from '../../../src/delivery/cloud-api/cloud-api-transport.js';
import { LocalSendPacer } from '../../../src/delivery/send-pacer.js';
import { mediaMessage, templateMessage, textMessage, type WhatsAppMessageRequest } from '../../../src/delivery/whatsapp-message.js';
import type { SendContext } from '../../../src/delivery/whatsapp-transport.js';
import type { CloudApiConfig } from '../../../src/platform/config/config.js';
import { CloudApiSimulator, type Fault } from '../../simulator/cloud-api-simulator.js';

const CONTACT = '31612345678';
const STRANGER = '31699999999';

/** The Cloud API client over real HTTP against the simulator on loopback. */
describe('Cloud API client', () => {
  let simulator: CloudApiSimulator;
  let api: CloudApiConfig;
  let client: CloudApiTransport;
  let sequence = 0;
  const context = (extra: Partial<SendContext> = {}): SendContext => ({ outboxId: `out_test${++sequence}`, ...extra });

  beforeAll(async () => {
    // The refusals below are expected: keep their warnings out of the test output.
    Logger.overrideLogger(['error']);
    simulator = await CloudApiSimulator.start({ templates: [{ name: 'shift_update', language: 'nl', parameters: 2 }] });
    api = { apiBase: simulator.baseUrl, apiVersion: simulator.apiVersion, phoneNumberId: simulator.phoneNumberId, accessToken: simulator.accessToken, sendRate: 1000, timeoutMs: 2000 };
    client = new CloudApiTransport(api, new LocalSendPacer(api.sendRate));
    await simulator.receiveText(CONTACT, 'hi');
  });
  afterEach(() => simulator.clearFaults());
  afterAll(async () => {
    await simulator.close();
  });

  it('sends a text message as the Cloud API takes it and returns its message id', async () => {
    const request = textMessage(CONTACT, 'Shift starts at 7.');
    const sent = context();
    const outcome = await client.send(request, sent);
    const received = simulator.messages.at(-1)!;
    expect(outcome).toEqual({ ok: true, messageId: received.wamid });
    expect(received.body).toEqual({
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: CONTACT,
      type: 'text',
      text: { preview_url: false, body: 'Shift starts at 7.' },
      biz_opaque_callback_data: sent.outboxId,
    });
  });

  it('withholds a message whose last check, at its send slot after the upload, says no: nothing is sent', async () => {
    const media = { objectId: 'med_withheld', bytes: Buffer.from('\xff\xd8\xff\xe0 a photo', 'latin1'), mimeType: 'image/jpeg' };
    const messagesBefore = simulator.messages.length;
    let uploadsAtCheck = -1;
    const [slot] = await client.pacer.reserve(1);
    const outcome = await client.send(
      mediaMessage(CONTACT, 'image', media.objectId, 'Opening'),
      context({ media, slot: { ...slot!, latestStart: Number.POSITIVE_INFINITY }, withholdReason: async () => ((uploadsAtCheck = simulator.media.size), 'recipient.consent_withdrawn') }),
    );
    expect(outcome).toEqual({ ok: false, withheld: 'recipient.consent_withdrawn' });
    expect(simulator.messages.length).toBe(messagesBefore);
    // Asked after the upload: as late as the message allows.
    expect(uploadsAtCheck).toBe(simulator.media.size);
    expect(simulator.media.size).toBeGreaterThan(0);
  });

  it('uploads a photo once (multipart) and sends every copy by the returned media id', async () => {
    const bytes = Buffer.from('\xff\xd8\xff\xe0 a minimised photo', 'latin1');
    const media = { objectId: 'med_photo1', bytes, mimeType: 'image/jpeg' };
    const uploadsBefore = simulator.media.size;
    const outcomes = await Promise.all([CONTACT, CONTACT].map(() => client.send(mediaMessage(CONTACT, 'image', media.objectId, 'Opening'), context({ media }))));
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(simulator.media.size).toBe(uploadsBefore + 1);
    const [mediaId, uploaded] = [...simulator.media].at(-1)!;
    expect(uploaded).toEqual({ bytes, mimeType: 'image/jpeg' });
    for (const message of simulator.messages.slice(-2)) expect(message.body.image).toEqual({ id: mediaId, caption: 'Opening' });
  });

  it('uploads and sends a video', async () => {
    const media = { objectId: 'med_video1', bytes: Buffer.from('....ftypisom a minimised video'), mimeType: 'video/mp4' };
    const outcome = await client.send(mediaMessage(CONTACT, 'video', media.objectId, ''), context({ media }));
    expect(outcome.ok).toBe(true);
    const [mediaId, uploaded] = [...simulator.media].at(-1)!;
    expect(uploaded.mimeType).toBe('video/mp4');
    expect(simulator.messages.at(-1)!.body.video).toEqual({ id: mediaId });
  });

  it('sends a template to a contact outside the 24-hour window, where text is refused with 131047 (final)', async () => {
    const template = await client.send(templateMessage(STRANGER, 'shift_update', 'nl', ['Anna', 'Shift starts at 7.']), context());
    expect(template.ok).toBe(true);
    expect(simulator.messages.at(-1)!.body.template).toEqual({
      name: 'shift_update',
      language: { code: 'nl' },
      components: [{ type: 'body', parameters: [{ type: 'text', text: 'Anna' }, { type: 'text', text: 'Shift starts at 7.' }] }],
    });
    expect(await client.send(textMessage(STRANGER, 'hello'), context())).toEqual({
      ok: false,
      failure: { code: 'whatsapp.131047', retryable: false, delivered: 'no', fbtraceId: expect.any(String) },
    });
  });

  it.each<[string, Fault, { code: string; retryable: boolean; delivered: 'no' | 'unknown'; accountProblem?: true }]>([
    ['the throughput limit (130429)', { kind: 'error', httpStatus: 429, code: 130429, message: 'Rate limit hit' }, { code: 'whatsapp.130429', retryable: true, delivered: 'no' }],
    ['the pair rate limit (131056)', { kind: 'error', httpStatus: 400, code: 131056, message: 'Pair rate limit hit' }, { code: 'whatsapp.131056', retryable: true, delivered: 'no' }],
    ['a temporary WhatsApp fault (131000)', { kind: 'error', httpStatus: 500, code: 131000 }, { code: 'whatsapp.131000', retryable: true, delivered: 'unknown' }],
    ['a 503 page from a proxy', { kind: 'error', httpStatus: 503, rawBody: '<html>Service Unavailable</html>' }, { code: 'http.503', retryable: true, delivered: 'unknown' }],
    ['an invalid parameter (100)', { kind: 'error', httpStatus: 400, code: 100, message: 'Invalid parameter' }, { code: 'whatsapp.100', retryable: false, delivered: 'no' }],
    ['an undeliverable message (131026)', { kind: 'error', httpStatus: 400, code: 131026, message: 'Message undeliverable' }, { code: 'whatsapp.131026', retryable: false, delivered: 'no' }],
    ['an unsupported message type (131051)', { kind: 'error', httpStatus: 400, code: 131051, message: 'Unsupported message type' }, { code: 'whatsapp.131051', retryable: false, delivered: 'no' }],
    ['an expired access token (190): the account, not the message', { kind: 'error', httpStatus: 401, code: 190, message: 'Error validating access token: Session has expired' }, { code: 'whatsapp.190', retryable: true, delivered: 'no', accountProblem: true }],
    ['a blocked account (368)', { kind: 'error', httpStatus: 403, code: 368, message: 'Temporarily blocked for policies violations' }, { code: 'whatsapp.368', retryable: true, delivered: 'no', accountProblem: true }],
    ['a client error page without a Graph error', { kind: 'error', httpStatus: 404, rawBody: 'Not Found' }, { code: 'http.404', retryable: false, delivered: 'no' }],
  ])('maps %s', async (_label, fault, expected) => {
    simulator.inject(fault, { endpoint: 'messages' });
    const outcome = await client.send(textMessage(CONTACT, 'hello'), context());
    expect(outcome).toEqual({ ok: false, failure: expect.objectContaining(expected) });
  });

  it('passes on the fbtrace_id of a refused request, for Meta support', async () => {
    simulator.inject({ kind: 'error', httpStatus: 400, code: 131026 }, { endpoint: 'messages' });
    const outcome = await client.send(textMessage(CONTACT, 'hello'), context());
    expect(outcome).toMatchObject({ ok: false, failure: { fbtraceId: expect.stringMatching(/^[\w-]+$/) } });
  });

  it('is refused, for good, when it sends a key the Cloud API does not know (the simulator is strict)', async () => {
    const request = { ...textMessage(CONTACT, 'hello'), context_id: 'x' } as unknown as WhatsAppMessageRequest;
    expect(await client.send(request, context())).toEqual({ ok: false, failure: expect.objectContaining({ code: 'whatsapp.100', retryable: false }) });
  });

  it('counts an answer that never comes as an unknown outcome, after the time limit', async () => {
    const impatient = new CloudApiTransport({ ...api, timeoutMs: 300 }, new LocalSendPacer(api.sendRate));
    simulator.inject({ kind: 'hang', accept: true }, { endpoint: 'messages' });
    const before = simulator.messages.length;
    expect(await impatient.send(textMessage(CONTACT, 'hello'), context())).toEqual({ ok: false, failure: { code: 'transport.timeout', retryable: true, delivered: 'unknown' } });
    // WhatsApp did take it: exactly why the outcome is unknown rather than failed.
    expect(simulator.messages.length).toBe(before + 1);
  });

  it('counts a connection dropped mid-request as an unknown outcome', async () => {
    simulator.inject({ kind: 'drop' }, { endpoint: 'messages' });
    expect(await client.send(textMessage(CONTACT, 'hello'), context())).toEqual({ ok: false, failure: { code: 'transport.connection_lost', retryable: true, delivered: 'unknown' } });
  });

  it('knows that a refused connection never reached WhatsApp', async () => {
    const port = await closedPort();
    const offline = new CloudApiTransport({ ...api, apiBase: `http://127.0.0.1:${port}` }, new LocalSendPacer(api.sendRate));
    expect(await offline.send(textMessage(CONTACT, 'hello'), context())).toEqual({ ok: false, failure: { code: 'transport.unreachable', retryable: true, delivered: 'no' } });
  });

  it('waits for a slow answer within the time limit', async () => {
    simulator.inject({ kind: 'delay', ms: 200 }, { endpoint: 'messages' });
    expect((await client.send(textMessage(CONTACT, 'hello'), context())).ok).toBe(true);
  });

  it('does not send the message when its media upload fails, and uploads again next time', async () => {
    const media = { objectId: 'med_photo2', bytes: Buffer.from('photo'), mimeType: 'image/png' };
    const sentBefore = simulator.messages.length;
    simulator.inject({ kind: 'error', httpStatus: 500, code: 2 }, { endpoint: 'media' });
    expect(await client.send(mediaMessage(CONTACT, 'image', media.objectId, ''), context({ media }))).toEqual({
      ok: false,
      failure: expect.objectContaining({ code: 'whatsapp.2', retryable: true, delivered: 'no' }),
    });
    expect(simulator.messages.length).toBe(sentBefore);
    expect((await client.send(mediaMessage(CONTACT, 'image', media.objectId, ''), context({ media }))).ok).toBe(true);
  });

  it('is refused, for good, a media type WhatsApp does not take (QuickTime)', async () => {
    const media = { objectId: 'med_mov', bytes: Buffer.from('....ftypqt  '), mimeType: 'video/quicktime' };
    expect(await client.send(mediaMessage(CONTACT, 'video', media.objectId, ''), context({ media }))).toEqual({
      ok: false,
      failure: expect.objectContaining({ code: 'whatsapp.131053', retryable: false, delivered: 'no' }),
    });
  });

  it('keeps the send rate: never more than `rate` requests start within one second', async () => {
    const rate = 20;
    const paced = new CloudApiTransport({ ...api, sendRate: rate }, new LocalSendPacer(rate));
    const first = simulator.messages.length;
    const outcomes = await Promise.all(Array.from({ length: 2 * rate + 5 }, () => paced.send(textMessage(CONTACT, 'paced'), context())));
    expect(outcomes.every((o) => o.ok)).toBe(true);
    const arrivals = simulator.messages.slice(first).map((m) => m.receivedAt);
    // Slots are (1 s + 25 ms) / rate apart and a start more than 25 ms late takes a new slot, so
    // any rate + 1 consecutive starts span over a second; arrivals add loopback and event-loop jitter (allowed: 50 ms).
    for (let i = 0; i + rate < arrivals.length; i++) expect(arrivals[i + rate]! - arrivals[i]!).toBeGreaterThan(950);
  });
});

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
