import { lookup } from 'node:dns/promises';
import { request } from 'node:https';
import { BlockList, isIP } from 'node:net';
import { rootCertificates } from 'node:tls';

export interface MediaFetchSettings {
  /**
   * Host names (or parent domains) media may be fetched from, each on the one port it is listed
   * with: e.g. fbcdn.net on 443 for Workplace's CDN.
   */
  hosts: { name: string; port: number }[];
  /** Let a host resolve to a loopback or private address (tests, on-premises CDNs); off by default. */
  allowPrivateAddresses: boolean;
  /** Extra trusted certificate authorities (PEM), besides Node's bundled roots. */
  extraCa?: string;
  timeoutMs: number;
  /** Resolves a host name to the address to connect to; DNS (getaddrinfo) unless given. */
  lookup?: (host: string) => Promise<{ address: string; family: number }>;
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
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  // IPv4-compatible (deprecated; covers :: and ::1), discard-only, local-use NAT64, Teredo,
  // documentation, unique local, site-local (deprecated), link-local, multicast.
  ['::', 96],
  ['100::', 64],
  ['64:ff9b:1::', 48],
  ['2001::', 32],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fec0::', 10],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  PRIVATE.addSubnet(net, prefix, 'ipv6');
}

/** IPv6 addresses that carry an IPv4 address the packets end up at: mapped, translated (SIIT), NAT64 (DNS64), 6to4. */
const EMBEDDED_IPV4 = [
  { subnet: ['::ffff:0:0', 96], at: 12 },
  { subnet: ['::ffff:0:0:0', 96], at: 12 },
  { subnet: ['64:ff9b::', 96], at: 12 },
  { subnet: ['2002::', 16], at: 2 },
] as const;
const EMBEDDING = EMBEDDED_IPV4.map(({ subnet: [net, prefix], at }) => {
  const list = new BlockList();
  list.addSubnet(net, prefix, 'ipv6');
  return { list, at };
});

export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return true;
  if (family === 4) return PRIVATE.check(address, 'ipv4');
  // A DNS64 answer for an allowed host with a private A record, say, is that private address.
  const embedding = EMBEDDING.find(({ list }) => list.check(address, 'ipv6'));
  if (embedding) return PRIVATE.check(ipv4At(address, embedding.at), 'ipv4');
  return PRIVATE.check(address, 'ipv6');
}

/** The IPv4 address in the four bytes from `at` of an IPv6 address. */
function ipv4At(ipv6: string, at: number): string {
  const groups = expandIpv6(ipv6);
  const bytes = groups.flatMap((group) => [group >> 8, group & 0xff]);
  return bytes.slice(at, at + 4).join('.');
}

/** The eight 16-bit groups of an IPv6 address (an IPv4 tail included). */
function expandIpv6(address: string): number[] {
  let text = address.toLowerCase();
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (tail) {
    const [a, b, c, d] = tail.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const left = head ? head.split(':') : [];
  const right = rest ? rest.split(':') : [];
  const groups = rest === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return groups.map((group) => parseInt(group, 16));
}

/**
 * Fetches a post's media by https URL: only from the configured hosts and ports, only to public addresses
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
  // The URL leaves out https's own port, 443.
  const port = target.port === '' ? 443 : Number(target.port);
  // Subdomains are a DNS name's: an IP address (IPv6 written in brackets) is listed only as itself,
  // or an entry 0.0.1 would allow 127.0.0.1.
  const ipLiteral = isIP(host) !== 0 || host.startsWith('[');
  const listed = settings.hosts.some((h) => h.port === port && (host === h.name || (!ipLiteral && host.endsWith(`.${h.name}`))));
  if (target.protocol !== 'https:' || target.username || target.password || !listed) return { ok: false, reason: 'media.unreadable' };

  // The time limit covers the name lookup too: a slow resolver must not stretch it.
  const deadlineAt = performance.now() + settings.timeoutMs;
  let address: { address: string; family: number };
  try {
    const resolve = settings.lookup ?? ((name: string) => lookup(name, { verbatim: true }));
    address = isIP(host) ? { address: host, family: isIP(host) } : await withinTime(resolve(host), settings.timeoutMs);
  } catch {
    return { ok: false, reason: 'media.unreadable' };
  }
  if (!settings.allowPrivateAddresses && isPrivateAddress(address.address)) return { ok: false, reason: 'media.unreadable' };
  const remainingMs = deadlineAt - performance.now();
  if (remainingMs <= 0) return { ok: false, reason: 'media.unreadable' };

  return new Promise<FetchedMedia>((resolve) => {
    let settled = false;
    // The socket timeout catches a silent server; this one a server that trickles bytes.
    const deadline = setTimeout(() => req.destroy(new Error('media fetch took too long')), remainingMs);
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

/** The promise's outcome, or a rejection once `ms` have passed (the work itself cannot be stopped). */
function withinTime<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('timed out')), ms);
  });
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}
