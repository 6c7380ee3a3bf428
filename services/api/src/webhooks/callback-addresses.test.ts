import { describe, expect, it } from 'vitest';
import { callbackAddressPolicy, invalidNetworks } from './callback-addresses.js';

describe('callback addresses', () => {
  it('allows public addresses and refuses loopback, private, link-local and other non-public ones, IPv4-mapped too', () => {
    const policy = callbackAddressPolicy('');
    for (const address of ['93.184.215.14', '8.8.8.8', '2606:4700:4700::1111', '::ffff:8.8.8.8']) expect(policy.allows(address), address).toBe(true);
    const refused = ['127.0.0.1', '127.8.9.1', '0.0.0.0', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '224.0.0.1', '255.255.255.255'];
    const refusedV6 = ['::1', '::', 'fe80::1', 'fd00::1', 'fc12::3', 'ff02::1', '::ffff:127.0.0.1', '::ffff:a9fe:a9fe', '64:ff9b::a9fe:a9fe'];
    for (const address of [...refused, ...refusedV6]) expect(policy.allows(address), address).toBe(false);
  });

  it('allows the non-public networks and addresses listed', () => {
    const policy = callbackAddressPolicy('10.20.0.0/16, 192.168.5.7 ,fd00:1::/32');
    for (const address of ['10.20.3.4', '192.168.5.7', '::ffff:10.20.0.1', 'fd00:1::9']) expect(policy.allows(address), address).toBe(true);
    for (const address of ['10.21.0.1', '192.168.5.8', '127.0.0.1', 'fd00:2::9']) expect(policy.allows(address), address).toBe(false);
  });

  it('names the entries that are not an address or a CIDR range', () => {
    expect(invalidNetworks('')).toEqual([]);
    expect(invalidNetworks('10.0.0.0/8, ::1, fd00::/8, 192.168.1.1/32')).toEqual([]);
    expect(invalidNetworks('10.0.0.0/33, localhost, 10.0.0.0/8/1, fd00::/129, 10.0.0.0/x')).toEqual(['10.0.0.0/33', 'localhost', '10.0.0.0/8/1', 'fd00::/129', '10.0.0.0/x']);
  });
});
