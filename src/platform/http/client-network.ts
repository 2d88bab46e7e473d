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
  if (!isIPv6(address)) return address;
  const [head, tail] = address.split('%')[0]!.split('::');
  const headGroups = groupsOf(head);
  const tailGroups = groupsOf(tail);
  const groups = tail === undefined ? headGroups : [...headGroups, ...Array<string>(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return `${groups.slice(0, 4).map((group) => parseInt(group, 16).toString(16)).join(':')}::/64`;
}

/** The 16-bit groups of one side of an IPv6 address; an IPv4 address at its end fills two (their value is past the /64). */
function groupsOf(part: string | undefined): string[] {
  return part ? part.split(':').flatMap((group) => (group.includes('.') ? ['0', '0'] : [group])) : [];
}
