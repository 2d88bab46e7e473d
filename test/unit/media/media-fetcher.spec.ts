import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { fetchMedia, type MediaFetchSettings } from '../../../src/policy/media-fetcher.js';
import { startTlsCdn, type TlsCdn } from '../../support/tls-cdn.js';

const PHOTO = Buffer.from('photo bytes');

describe('the ports media may be fetched from', () => {
  /** The CDN, on the port its host is listed with. */
  let cdn: TlsCdn;
  /** Another service of the same host, on a port that is not listed. */
  let otherService: TlsCdn;

  beforeAll(async () => {
    cdn = await startTlsCdn((_req, res) => void res.writeHead(200, { 'content-type': 'image/jpeg' }).end(PHOTO));
    otherService = await startTlsCdn((_req, res) => void res.writeHead(200, { 'content-type': 'image/jpeg' }).end(PHOTO));
  });
  afterAll(() => {
    cdn?.close();
    otherService?.close();
  });

  it('refuses a host on a port it is not listed with, without connecting, and fetches from the port it is listed with', async () => {
    const settings: MediaFetchSettings = { hosts: [{ name: 'localhost', port: cdn.port }], allowPrivateAddresses: true, extraCa: readFileSync(cdn.caFile, 'utf8'), timeoutMs: 2000 };
    expect(await fetchMedia(`${otherService.base}/photo.jpg`, 1 << 20, settings)).toEqual({ ok: false, reason: 'media.unreadable' });
    expect(otherService.connections()).toBe(0);
    expect(await fetchMedia(`${cdn.base}/photo.jpg`, 1 << 20, settings)).toEqual({ ok: true, bytes: PHOTO });
  });

  it('allows an IP address only as listed, never as a subdomain of an entry', async () => {
    const fromCdn = (name: string) => ({ hosts: [{ name, port: cdn.port }], allowPrivateAddresses: true, extraCa: readFileSync(cdn.caFile, 'utf8'), timeoutMs: 2000 });
    const url = `https://127.0.0.1:${cdn.port}/photo.jpg`;
    const connectionsBefore = cdn.connections();
    for (const entry of ['0.0.1', '0.1', '1']) expect([entry, await fetchMedia(url, 1 << 20, fromCdn(entry))]).toEqual([entry, { ok: false, reason: 'media.unreadable' }]);
    expect(cdn.connections()).toBe(connectionsBefore);
    expect(await fetchMedia(url, 1 << 20, fromCdn('127.0.0.1'))).toEqual({ ok: true, bytes: PHOTO });
  });

  /** The hosts of `urls` that passed the allow-list: only those are looked up (the lookup then fails, so nothing connects). */
  async function hostsLookedUp(urls: string[], hosts: MediaFetchSettings['hosts']): Promise<string[]> {
    const lookedUp: string[] = [];
    const lookup = (host: string) => {
      lookedUp.push(host);
      return Promise.reject(new Error('no network in this test'));
    };
    for (const url of urls) {
      expect(await fetchMedia(url, 1 << 20, { hosts, allowPrivateAddresses: false, timeoutMs: 1000, lookup })).toEqual({ ok: false, reason: 'media.unreadable' });
    }
    return lookedUp;
  }

  it("allows a host listed on 443, https's own port, whether the URL writes it or not, and no other port", async () => {
    const hosts = [{ name: 'fbcdn.net', port: 443 }];
    expect(await hostsLookedUp(['https://scontent.fbcdn.net/p.jpg', 'https://scontent.fbcdn.net:443/p.jpg'], hosts)).toEqual(['scontent.fbcdn.net', 'scontent.fbcdn.net']);
    const otherPorts = [8443, 22, 6379, 80, 0, 65535].map((port) => `https://scontent.fbcdn.net:${port}/p.jpg`);
    expect(await hostsLookedUp(otherPorts, hosts)).toEqual([]);
  });

  it('allows a host listed with a port on that port only, for its subdomains too', async () => {
    const hosts = [{ name: 'cdn.example.com', port: 8443 }];
    expect(await hostsLookedUp(['https://cdn.example.com:8443/p.jpg', 'https://media.cdn.example.com:8443/p.jpg'], hosts)).toEqual(['cdn.example.com', 'media.cdn.example.com']);
    expect(await hostsLookedUp(['https://cdn.example.com/p.jpg', 'https://cdn.example.com:8444/p.jpg', 'https://media.cdn.example.com:443/p.jpg', 'https://evilcdn.example.com:8443/p.jpg'], hosts)).toEqual([]);
  });

  it('allows a host listed on two ports on both', async () => {
    const hosts = [{ name: 'cdn.example.com', port: 443 }, { name: 'cdn.example.com', port: 8443 }];
    expect(await hostsLookedUp(['https://cdn.example.com/p.jpg', 'https://cdn.example.com:8443/p.jpg', 'https://cdn.example.com:9443/p.jpg'], hosts)).toEqual(['cdn.example.com', 'cdn.example.com']);
  });
});
