import { afterAll, beforeAll, expect, it } from '@jest/globals';
import exifr from 'exifr';
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { fetchMedia, isPrivateAddress } from '../../src/policy/media-fetcher.js';
import { describeEachDatabase } from '../support/databases.js';
import { AUTHOR_ID, consent, idempotencyKey, RECIPIENT, shareRequest, workplacePost } from '../support/fixtures.js';
import { type RunningApp, startTestApp } from '../support/test-app.js';
import { startTlsCdn, type TlsCdn } from '../support/tls-cdn.js';

/**
 * Media given by https URL, fetched from a real TLS server on loopback (a CDN stand-in with a
 * certificate made for the test), with the host allow-list, size limit and redirects enforced.
 */
describeEachDatabase('photos fetched by https URL', (dialect) => {
  let sluice: RunningApp;
  let cdn: TlsCdn;
  /** Another service on the same host, on a port MEDIA_FETCH_HOSTS does not list. */
  let otherPort: TlsCdn;
  let base: string;
  let photo: Buffer;
  /** Every path the CDN was asked for, to prove that a refused URL was never fetched. */
  const requested: string[] = [];
  /** What /endless.jpg has written so far. */
  let endlessBytes = 0;
  const TIMEOUT_MS = 2000;

  beforeAll(async () => {
    photo = await sharp({ create: { width: 64, height: 48, channels: 3, background: '#3366cc' } })
      .jpeg()
      .withExif({ IFD0: { Make: 'CDNCam' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '52/1 5/1 24/1', GPSLongitudeRef: 'E', GPSLongitude: '5/1 7/1 12/1' } })
      .toBuffer();
    cdn = await startTlsCdn((req, res) => {
      requested.push(req.url!);
      // Never answers: the socket's idle timeout must end the fetch.
      if (req.url === '/silent.jpg') return;
      if (req.url === '/trickle.jpg') {
        // A byte now and then keeps the socket busy: only the overall deadline ends the fetch.
        res.writeHead(200, { 'content-type': 'image/jpeg' });
        const timer = setInterval(() => res.write(Buffer.from([0xff])), 100);
        res.on('close', () => clearInterval(timer));
        return;
      }
      if (req.url === '/photo.jpg') return res.writeHead(200, { 'content-type': 'image/jpeg' }).end(photo);
      if (req.url === '/huge.jpg') {
        // No content-length: the limit must hold while streaming.
        res.writeHead(200, { 'content-type': 'image/jpeg' });
        const chunk = Buffer.alloc(1 << 20, 0xff);
        for (let i = 0; i < 8; i++) res.write(chunk);
        return res.end();
      }
      if (req.url === '/endless.jpg') {
        // Never ends: only a limit enforced while streaming stops it (not the timeout).
        res.writeHead(200, { 'content-type': 'image/jpeg' });
        const chunk = Buffer.alloc(1 << 16, 0xff);
        const more = () => {
          while (!res.destroyed && res.write(chunk)) endlessBytes += chunk.length;
          if (!res.destroyed) res.once('drain', more);
        };
        return more();
      }
      if (req.url === '/declared-huge.jpg') {
        // Says how large it is, then sends almost nothing: refused on the header alone.
        res.writeHead(200, { 'content-type': 'image/jpeg', 'content-length': String(1 << 30) });
        return res.write(Buffer.from([0xff, 0xd8]));
      }
      if (req.url === '/redirect.jpg') return res.writeHead(302, { location: '/photo.jpg' }).end();
      res.writeHead(404).end();
    });
    base = cdn.base;
    otherPort = await startTlsCdn((_req, res) => void res.writeHead(200, { 'content-type': 'image/jpeg' }).end(photo));
    sluice = await startTestApp(dialect, {
      env: { MEDIA_FETCH_HOSTS: `localhost:${cdn.port}`, MEDIA_FETCH_ALLOW_PRIVATE: 'true', MEDIA_FETCH_CA_FILE: cdn.caFile, MEDIA_FETCH_TIMEOUT_MS: String(TIMEOUT_MS) },
    });
    await sluice.request('POST', '/v1/consents', { body: consent('whatsapp', RECIPIENT) });
    await sluice.request('POST', '/v1/consents', { body: consent('workplace', AUTHOR_ID) });
  });
  afterAll(async () => {
    await sluice?.close();
    cdn?.close();
    otherPort?.close();
  });

  const share = (src: string) =>
    sluice.request('POST', '/v1/shares', { body: shareRequest({ post: workplacePost({ attachments: { data: [{ type: 'photo', media: { image: { src } } }] } }) }), headers: idempotencyKey() });

  it('fetches, minimises and sends a photo from an allowed host', async () => {
    const response = await share(`${base}/photo.jpg`);
    expect(response.json.status).toBe('accepted');
    await sluice.drainOutbox();
    const [message] = (await sluice.request('GET', `/v1/sandbox/messages?waId=${RECIPIENT}`)).json as { mediaId: string }[];
    const sent = Buffer.from(await (await fetch(`${sluice.baseUrl}/v1/sandbox/media/${message!.mediaId}`, { headers: { authorization: `Bearer ${sluice.apiKey}` } })).arrayBuffer());
    expect((await sharp(sent).metadata()).width).toBe(64);
    expect(await exifr.gps(sent)).toBeUndefined();
    expect(sent.includes(Buffer.from('CDNCam'))).toBe(false);
  });

  it.each([
    ['a download over the size limit', '/huge.jpg', 'media.too_large'],
    ['a redirect', '/redirect.jpg', 'media.unreadable'],
    ['a missing file', '/gone.jpg', 'media.unreadable'],
  ])('denies %s', async (_label, path, reason) => {
    expect((await share(`${base}${path}`)).json).toMatchObject({ status: 'denied', reasons: [reason] });
  });

  it.each([
    ['a download that never ends', '/endless.jpg'],
    ['a Content-Length over the limit', '/declared-huge.jpg'],
  ])('stops %s at the size limit, long before the time limit', async (_label, path) => {
    const started = performance.now();
    expect((await share(`${base}${path}`)).json).toMatchObject({ status: 'denied', reasons: ['media.too_large'] });
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS - 500);
  });

  it('stops reading a download that never ends once past the limit', async () => {
    endlessBytes = 0;
    await share(`${base}/endless.jpg`);
    // The policy's limit plus what socket buffers hold; a fetch that read on would go on for the whole timeout.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const afterAnswer = endlessBytes;
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(endlessBytes).toBe(afterAnswer);
    expect(endlessBytes).toBeLessThan(64 << 20);
  });

  it('fetches nothing for a post with more media than a share can carry', async () => {
    const before = requested.length;
    const album = { type: 'album', subattachments: { data: Array.from({ length: 50 }, () => ({ type: 'photo', media: { image: { src: `${base}/photo.jpg` } } })) } };
    const response = await sluice.request('POST', '/v1/shares', { body: shareRequest({ post: workplacePost({ attachments: { data: [album] } }) }), headers: idempotencyKey() });
    expect(response.json).toMatchObject({ status: 'denied', reasons: ['limits.too_many_media'] });
    expect(requested.length).toBe(before);
  });

  it.each([
    ['a host that is not allowed', () => 'https://example.org/photo.jpg'],
    ['a host that only ends like an allowed one', () => base.replace('localhost', 'evillocalhost') + '/photo.jpg'],
    ['plain http', () => base.replace('https:', 'http:') + '/photo.jpg'],
    ['credentials in the URL', () => base.replace('https://', 'https://user:pw@') + '/photo.jpg'],
  ])('refuses %s without fetching', async (_label, url) => {
    const before = requested.length;
    expect((await share(url())).json).toMatchObject({ status: 'denied', reasons: ['media.unreadable'] });
    expect(requested.length).toBe(before);
  });

  it('refuses an allowed host on a port it is not listed with, without connecting', async () => {
    expect((await share(`${otherPort.base}/photo.jpg`)).json).toMatchObject({ status: 'denied', reasons: ['media.unreadable'] });
    expect(otherPort.connections()).toBe(0);
  });

  it.each([
    ['a server that never answers', '/silent.jpg'],
    ['a server that trickles bytes', '/trickle.jpg'],
  ])('gives up on %s at the time limit and denies the share', async (_label, path) => {
    const started = performance.now();
    expect((await share(`${base}${path}`)).json).toMatchObject({ status: 'denied', reasons: ['media.unreadable'] });
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(TIMEOUT_MS - 50);
    expect(took).toBeLessThan(TIMEOUT_MS + 5000);
  });

  it('does not follow a redirect', async () => {
    const before = requested.length;
    await share(`${base}/redirect.jpg`);
    expect(requested.slice(before)).toEqual(['/redirect.jpg']);
  });

  it.each([
    ['a host name that resolves to loopback', () => ({ url: `${base}/photo.jpg`, hosts: [{ name: 'localhost', port: cdn.port }] })],
    ['a loopback address', () => ({ url: base.replace('localhost', '127.0.0.1') + '/photo.jpg', hosts: [{ name: '127.0.0.1', port: cdn.port }] })],
  ])('refuses %s unless private addresses are allowed, without connecting', async (_label, target) => {
    const { url, hosts } = target();
    const before = requested.length;
    const settings = { hosts, allowPrivateAddresses: false, extraCa: readFileSync(cdn.caFile, 'utf8'), timeoutMs: TIMEOUT_MS };
    expect(await fetchMedia(url, 1 << 20, settings)).toEqual({ ok: false, reason: 'media.unreadable' });
    expect(requested.length).toBe(before);
    // The same fetch with private addresses allowed reaches the server: the address was the reason.
    expect(await fetchMedia(url, 1 << 20, { ...settings, allowPrivateAddresses: true })).toMatchObject({ ok: true });
    expect(requested.slice(before)).toEqual(['/photo.jpg']);
  });
});

it.each([
  ['loopback, private, link-local and unspecified IPv4', ['127.0.0.1', '10.1.2.3', '172.20.0.1', '192.168.1.1', '169.254.169.254', '0.0.0.0']],
  ['shared (CGNAT), benchmarking, protocol, documentation, multicast and reserved IPv4', ['100.64.0.1', '198.18.0.1', '192.0.0.8', '192.0.2.1', '198.51.100.7', '203.0.113.9', '224.0.0.1', '239.255.255.250', '240.0.0.1', '255.255.255.255']],
  ['loopback, unique local, link-local, site-local, multicast and unspecified IPv6', ['::1', '::', 'fd00::1', 'fe80::1', 'fec0::1', 'ff02::1']],
  ['IPv4-compatible, discard-only, Teredo, documentation and local-use NAT64 IPv6', ['::7f00:1', '100::1', '2001:0:4136:e378::1', '2001:db8::1', '64:ff9b:1::a00:1']],
  ['private IPv4 behind IPv4-mapped, IPv4-translated, NAT64 and 6to4 addresses', ['::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:0:7f00:1', '::ffff:0:10.0.0.1', '64:ff9b::a00:1', '64:ff9b::169.254.169.254', '2002:a00:1::1', '2002:c0a8:101::']],
  ['anything that is not an address', ['not-an-ip', 'localhost', '']],
])('treats %s as private', (_label, addresses) => {
  expect(addresses.filter((address) => !isPrivateAddress(address))).toEqual([]);
});

it('treats public addresses as public, also behind IPv4-mapped, IPv4-translated, NAT64 and 6to4 addresses', () => {
  const addresses = ['157.240.1.35', '8.8.8.8', '::ffff:157.240.1.35', '::ffff:9df0:123', '::ffff:0:9df0:123', '64:ff9b::9df0:123', '64:ff9b::157.240.1.35', '2002:9df0:123::1', '2a03:2880:f12f:83:face:b00c:0:25de'];
  expect(addresses.filter((address) => isPrivateAddress(address))).toEqual([]);
});

it('counts a slow name lookup against the time limit', async () => {
  const started = performance.now();
  const never = () => new Promise<never>(() => undefined);
  expect(await fetchMedia('https://media.fbcdn.net/photo.jpg', 1 << 20, { hosts: [{ name: 'fbcdn.net', port: 443 }], allowPrivateAddresses: false, timeoutMs: 300, lookup: never })).toEqual({ ok: false, reason: 'media.unreadable' });
  expect(performance.now() - started).toBeGreaterThanOrEqual(290);
  expect(performance.now() - started).toBeLessThan(2000);
});
