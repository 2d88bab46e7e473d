import { afterAll, beforeAll, expect, it } from '@jest/globals';
import exifr from 'exifr';
import sharp from 'sharp';
import { DeliveryWorker } from '../../src/delivery/delivery-worker.js';
import { describeEachDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, idempotencyKey, RECIPIENT, shareRequest, TAGGED_ID, workplacePost } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';

/** A real JPEG as a phone makes it: camera details and the GPS position of where it was taken. */
async function photoWithGps(): Promise<Buffer> {
  const { data, info } = await sharp({ create: { width: 320, height: 240, channels: 3, background: { r: 200, g: 120, b: 40 } } })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } })
    .jpeg({ quality: 90 })
    .withExif({
      IFD0: { Make: 'Fairphone', Model: 'FP5', Artist: 'Anna de Vries' },
      IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '52/1 5/1 24/1', GPSLongitudeRef: 'E', GPSLongitude: '5/1 7/1 12/1' },
    })
    .toBuffer();
}

describeEachDatabase('photos over HTTP', (dialect) => {
  let sluice: RunningApp;
  let jpeg: Buffer;

  beforeAll(async () => {
    sluice = await startTestApp(dialect);
    for (const [type, id] of [['whatsapp', RECIPIENT], ['workplace', AUTHOR_ID], ['workplace', TAGGED_ID]] as const) {
      await sluice.request('POST', '/v1/consents', { body: consent(type, id) });
    }
    jpeg = await photoWithGps();
  });
  afterAll(async () => {
    await sluice?.close();
  });

  const withPhoto = (src: string) =>
    shareRequest({ post: workplacePost({ attachments: { data: [{ type: 'photo', description: 'Opening', media: { image: { src, width: 320, height: 240 } } }] } }) });

  it('sends the photo re-encoded without EXIF or GPS, with the message as caption', async () => {
    const before = await exifr.gps(jpeg);
    expect(before).toMatchObject({ latitude: expect.closeTo(52.09, 2), longitude: expect.closeTo(5.12, 2) });

    const response = await sluice.request('POST', '/v1/shares', { body: withPhoto(`data:image/jpeg;base64,${jpeg.toString('base64')}`), headers: idempotencyKey() });
    expect(response.status).toBe(201);
    expect(response.json.status).toBe('accepted');
    expect(response.json.crossing.fields).toContainEqual({ path: 'attachments.data.0.media.image.src', category: 'user.content', transform: 'reencode-without-metadata' });
    expect(response.json.crossing.dropped).toContainEqual({ path: 'attachments.data.0.description', reason: 'not_allow_listed' });
    expect(await sluice.drainOutbox()).toBe(1);

    const [message] = (await sluice.request('GET', `/v1/sandbox/messages?waId=${RECIPIENT}`)).json as { mediaId: string; request: { type: string; image: { id: string; caption: string } } }[];
    expect(message!.request.type).toBe('image');
    expect(message!.request.image.caption).toBe('Anna de Vries:\nPieter Jansen opened the new warehouse in Utrecht today!');
    expect(message!.request.image.id).toBe(message!.mediaId);

    const media = await fetch(`${sluice.baseUrl}/v1/sandbox/media/${message!.mediaId}`, { headers: { authorization: `Bearer ${sluice.apiKey}` } });
    expect(media.status).toBe(200);
    expect(media.headers.get('content-type')).toBe('image/jpeg');
    const sent = Buffer.from(await media.arrayBuffer());
    expect(await exifr.gps(sent)).toBeUndefined();
    expect(await exifr.parse(sent, { tiff: true, gps: true, xmp: true, iptc: true, icc: true })).toBeUndefined();
    const metadata = await sharp(sent).metadata();
    expect(metadata).toMatchObject({ format: 'jpeg', width: 320, height: 240 });
    expect(metadata.exif).toBeUndefined();
    expect(sent.includes(Buffer.from('Fairphone'))).toBe(false);
    expect(sent.includes(Buffer.from('Anna de Vries'))).toBe(false);

    // The minimised copy is kept for the hold after sending (should WhatsApp report the copy
    // failed, it is sent again), then released.
    expect(await sluice.database.adminQuery(`SELECT id FROM media_objects`)).toHaveLength(1);
    await sluice.app.get(DeliveryWorker).releaseHeldMedia(new Date(Date.now() + 15 * 60_000 + 1_000));
    expect(await sluice.database.adminQuery(`SELECT id FROM media_objects`)).toEqual([]);
    // The audit entry names the media by keyed digest and type, never by bytes.
    const [entry] = await sluice.database.adminQuery<{ entry: string }>(`SELECT entry FROM audit_entries WHERE kind = 'share.decided' ORDER BY idx DESC LIMIT 1`);
    expect(JSON.parse(entry!.entry).content).toMatchObject({ type: 'image', media: { digest: expect.stringMatching(/^hd_/), mimeType: 'image/jpeg' } });
  });

  it.each([
    ['bytes that are no image', `data:image/jpeg;base64,${Buffer.from('definitely not a jpeg').toString('base64')}`, 'media.unreadable'],
    ['a truncated JPEG', 'TRUNCATED', 'media.unreadable'],
    ['a video', `data:video/mp4;base64,${Buffer.from('\0\0\0\x18ftypmp42\0\0\0\0mp42isom').toString('base64')}`, 'media.type_not_allowed'],
    ['a photo over the size limit', `data:image/jpeg;base64,${'A'.repeat(7_100_000)}`, 'media.too_large'],
    ['a URL on a host media are not fetched from', 'https://scontent.example.com/photo.jpg', 'media.unreadable'],
  ])('denies a share with %s, and sends nothing', async (_label, src, reason) => {
    const source = src === 'TRUNCATED' ? `data:image/jpeg;base64,${jpeg.subarray(0, jpeg.length >> 1).toString('base64')}` : src;
    const response = await sluice.request('POST', '/v1/shares', { body: withPhoto(source), headers: idempotencyKey() });
    expect(response.status).toBe(201);
    expect(response.json).toMatchObject({ status: 'denied', reasons: [reason] });
    expect(await sluice.drainOutbox()).toBe(0);
  });

  it.each([
    ['a source that is a number', { image: { src: 5 } }, 'attachments.data.0.media.image.src'],
    ['a source that is an object', { image: { src: { x: 1 } } }, 'attachments.data.0.media.image.src'],
    ['no media at all', undefined, 'attachments.data.0'],
  ])('denies a share with a photo with %s as unreadable, rather than send the text alone', async (_label, media, path) => {
    const post = workplacePost({ attachments: { data: [{ type: 'photo', ...(media ? { media } : {}) }] } });
    const response = await sluice.request('POST', '/v1/shares', { body: shareRequest({ post }), headers: idempotencyKey() });
    expect(response.json).toMatchObject({ status: 'denied', reasons: ['media.unreadable'] });
    expect(response.json.crossing.dropped).toContainEqual({ path, reason: 'media.unreadable' });
    expect(await sluice.drainOutbox()).toBe(0);
  });
});
