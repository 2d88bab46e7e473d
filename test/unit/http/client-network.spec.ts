import { describe, expect, it } from '@jest/globals';
import { clientNetworkOf, ipv6SiteOf } from '../../../src/platform/http/client-network.js';

describe('clientNetworkOf', () => {
  it('counts an IPv4 address as itself, also as a dual-stack socket reports it', () => {
    expect(clientNetworkOf('203.0.113.7')).toBe('203.0.113.7');
    expect(clientNetworkOf('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(clientNetworkOf('::FFFF:203.0.113.7')).toBe('203.0.113.7');
  });

  it('counts every address of an IPv6 /64 as one, however it is written', () => {
    const network = '2001:db8:aa:1::/64';
    for (const address of ['2001:db8:aa:1::1', '2001:db8:aa:1:ffff:ffff:ffff:ffff', '2001:0DB8:00AA:0001:0:0:0:2', '2001:db8:aa:1::', '2001:db8:aa:1:5::1.2.3.4', '2001:db8:aa:1::9%eth0']) {
      expect([address, clientNetworkOf(address)]).toEqual([address, network]);
    }
    expect(clientNetworkOf('2001:db8:aa:2::1')).toBe('2001:db8:aa:2::/64');
    expect(clientNetworkOf('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(clientNetworkOf('::1')).toBe('0:0:0:0::/64');
    expect(clientNetworkOf('::')).toBe('0:0:0:0::/64');
    expect(clientNetworkOf('::1:2:3:4:5:1.2.3.4')).toBe('0:1:2:3::/64');
    expect(clientNetworkOf('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
  });

  it('puts requests whose connection has no address left into one bucket', () => {
    expect(clientNetworkOf(undefined)).toBe('unknown');
  });
});

describe('ipv6SiteOf', () => {
  it('counts every address of an IPv6 /48 as one, across its /64s, however it is written', () => {
    const site = '2001:db8:aa::/48';
    for (const address of ['2001:db8:aa:1::1', '2001:db8:aa:ffff:ffff:ffff:ffff:ffff', '2001:0DB8:00AA::2', '2001:db8:aa::', '2001:db8:aa:1:5::1.2.3.4', '2001:db8:aa:9::9%eth0']) {
      expect([address, ipv6SiteOf(address)]).toEqual([address, site]);
    }
    expect(ipv6SiteOf('2001:db8:ab:1::1')).toBe('2001:db8:ab::/48');
    expect(ipv6SiteOf('::1')).toBe('0:0:0::/48');
  });

  it('has none for an IPv4 address, also as a dual-stack socket reports it, nor for no address', () => {
    for (const address of ['203.0.113.7', '::ffff:203.0.113.7', undefined]) expect(ipv6SiteOf(address)).toBeUndefined();
  });
});
