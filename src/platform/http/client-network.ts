import { isIPv6 } from 'node:net';

const IPV4_MAPPED = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i;

/**
 * Whom a limit per client counts a request against, from the peer address of its connection: an
 * IPv4 address itself (also when a dual-stack socket reports it as ::ffff:a.b.c.d), an IPv6
 * address by its /64 network. A /64 is the least a provider hands one subscriber, whose hosts
 * may take any of its 2^64 addresses: counted one by one, each would come with a fresh bucket.
 */
export function clientNetworkOf(address: string | undefined): string {
  // A connection already gone has no address; such requests share one bucket.
  if (address === undefined) return 'unknown';
  const mapped = IPV4_MAPPED.exec(address);
  if (mapped) return mapped[1]!;
  const groups = ipv6GroupsOf(address);
  return groups ? `${groups.slice(0, 4).join(':')}::/64` : address;
}

/**
 * The /48 network of an IPv6 peer address, the most a provider commonly hands one site (65,536
 * /64s): a limit per /64 alone gives whoever holds one that many fresh buckets. Undefined for an
 * IPv4 address (also IPv4-mapped) and for no address.
 */
export function ipv6SiteOf(address: string | undefined): string | undefined {
  if (address === undefined || IPV4_MAPPED.test(address)) return undefined;
  const groups = ipv6GroupsOf(address);
  return groups ? `${groups.slice(0, 3).join(':')}::/48` : undefined;
}

/** The eight 16-bit groups of an IPv6 address in hex without leading zeros (a zone left out), or undefined for any other address. */
function ipv6GroupsOf(address: string): string[] | undefined {
  if (!isIPv6(address)) return undefined;
  const [head, tail] = address.split('%')[0]!.split('::');
  const headGroups = groupsOf(head);
  const tailGroups = groupsOf(tail);
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return groups.map((group) => parseInt(group, 16).toString(16));
}

/** The 16-bit groups of one side of an IPv6 address; an IPv4 address at its end fills two (their value is past the /48 and /64). */
function groupsOf(part: string | undefined): string[] {
  return part ? part.split(':').flatMap((group) => (group.includes('.') ? ['0', '0'] : [group])) : [];
}
