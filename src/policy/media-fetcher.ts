import { lookup } from 'node:dns/promises';
import { request } from 'node:https';
import { BlockList, isIP } from 'node:net';
import { rootCertificates } from 'node:tls';

export interface MediaFetchSettings {
  /** Host names (or parent domains) media may be fetched from, e.g. fbcdn.net for Workplace's CDN. */
  hosts: string[];
  /** Let a host resolve to a loopback or private address (tests, on-premises CDNs); off by default. */
  allowPrivateAddresses: boolean;
  /** Extra trusted certificate authorities (PEM), besides Node's bundled roots. */
  extraCa?: string;
  timeoutMs: number;
}

export type FetchedMedia = { ok: true; bytes: Buffer } | { ok: false; reason: 'media.too_large' | 'media.unreadable' };

/** Addresses a fetch must never reach: a post's URL must not turn sluice against its own network. */
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv6');
}

export function isPrivateAddress(address: string): boolean {
  // An IPv4-mapped IPv6 address (::ffff:127.0.0.1) is the IPv4 address it maps.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address)?.[1];
  // The same in hex (::ffff:7f00:1) is rare enough to refuse outright.
  if (!mapped && /^::ffff:/i.test(address)) return true;
  const candidate = mapped ?? address;
  const family = isIP(candidate);
  return family === 0 || PRIVATE.check(candidate, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Fetches a post's media by https URL: only from the configured hosts, only to public addresses
 * (the address checked is the one connected to, so a DNS answer cannot change in between), no
 * redirects, at most `maxBytes` (the download stops there), within the timeout. Never throws.
 */
export async function fetchMedia(url: string, maxBytes: number, settings: MediaFetchSettings): Promise<FetchedMedia> {
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return { ok: false, reason: 'media.unreadable' };
  }
  const host = target.hostname.toLowerCase();
  const allowedHost = settings.hosts.some((h) => host === h || host.endsWith(`.${h}`));
  if (target.protocol !== 'https:' || target.username || target.password || !allowedHost) return { ok: false, reason: 'media.unreadable' };

  let address: { address: string; family: number };
  try {
    address = isIP(host) ? { address: host, family: isIP(host) } : await lookup(host, { verbatim: true });
  } catch {
    return { ok: false, reason: 'media.unreadable' };
  }
  if (!settings.allowPrivateAddresses && isPrivateAddress(address.address)) return { ok: false, reason: 'media.unreadable' };

  return new Promise<FetchedMedia>((resolve) => {
    let settled = false;
    // The socket timeout catches a silent server; this one a server that trickles bytes.
    const deadline = setTimeout(() => req.destroy(new Error('media fetch took too long')), settings.timeoutMs);
    const finish = (result: FetchedMedia) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      resolve(result);
    };
    const req = request(
      target,
      {
        method: 'GET',
        headers: { accept: 'image/*, video/*', 'user-agent': 'sluice-media-fetch' },
        // Connect to the address that was checked, with the host name for TLS.
        lookup: ((_hostname: string, options: { all?: boolean }, callback: (...args: unknown[]) => void) =>
          options.all ? callback(null, [address]) : callback(null, address.address, address.family)) as never,
        servername: isIP(host) ? undefined : host,
        ...(settings.extraCa ? { ca: [...rootCertificates, settings.extraCa] } : {}),
        timeout: settings.timeoutMs,
      },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          finish({ ok: false, reason: 'media.unreadable' });
          req.destroy();
          return;
        }
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > maxBytes) {
          finish({ ok: false, reason: 'media.too_large' });
          req.destroy();
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) {
            finish({ ok: false, reason: 'media.too_large' });
            req.destroy();
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => finish({ ok: true, bytes: Buffer.concat(chunks) }));
        res.on('error', () => finish({ ok: false, reason: 'media.unreadable' }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('media fetch timed out')));
    req.on('error', () => finish({ ok: false, reason: 'media.unreadable' }));
    req.end();
  });
}
