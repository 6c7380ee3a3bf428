import { BlockList, isIP } from 'node:net';

/**
 * Networks that are not the public internet (IANA special-purpose registries): loopback, private,
 * shared (CGNAT), link-local (where clouds serve instance credentials, 169.254.169.254), multicast,
 * documentation and reserved ranges, and NAT64 prefixes that reach IPv4 ones. A client's callbackUrl
 * reaches them only where the operator allows it.
 */
const NON_PUBLIC_NETWORKS = [
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.0.0.0/24',
  '192.0.2.0/24',
  '192.168.0.0/16',
  '198.18.0.0/15',
  '198.51.100.0/24',
  '203.0.113.0/24',
  '224.0.0.0/4',
  '240.0.0.0/4',
  '::/128',
  '::1/128',
  '64:ff9b::/96',
  '64:ff9b:1::/48',
  '100::/64',
  '2001:db8::/32',
  'fc00::/7',
  'fe80::/10',
  'ff00::/8',
];

/** One address or CIDR range, checked. */
interface Network {
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

function parseNetwork(entry: string): Network | undefined {
  const [address = '', prefixText, ...rest] = entry.split('/');
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return undefined;
  const bits = version === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? bits : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= bits)) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

/**
 * Parses a comma-separated list of addresses and CIDR ranges (`10.20.0.0/16, 192.168.5.7, fd00::/8`).
 *
 * @returns the entries that are neither, to report; empty when the list is valid
 */
export function invalidNetworks(text: string): string[] {
  return entries(text).filter((entry) => parseNetwork(entry) === undefined);
}

function entries(text: string): string[] {
  return text.split(',').map((entry) => entry.trim()).filter(Boolean);
}

function blockList(networks: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of networks) {
    const network = parseNetwork(entry);
    if (!network) throw new Error(`not an address or CIDR range: ${entry}`);
    list.addSubnet(network.address, network.prefix, network.family);
  }
  return list;
}

/** The IP address a URL's host names by itself (`127.0.0.1`, `[::1]` without its brackets), connected to without a DNS lookup; undefined for a host name. */
export function literalAddress(url: URL): string | undefined {
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return isIP(host) ? host : undefined;
}

/** Which addresses webhooks may be sent to. */
export interface CallbackAddressPolicy {
  /** Whether a connection to `address` (IPv4 or IPv6, IPv4-mapped included) may be made. */
  allows(address: string): boolean;
}

/**
 * Public addresses, and the non-public ones inside `allowedNetworks` (WEBHOOK_ALLOWED_NETWORKS): a
 * hospital's own receivers sit on private networks, but which ones is the operator's to say, not a
 * client's, whose callbackUrl could otherwise reach Redis, S3 or a cloud's credentials.
 */
export function callbackAddressPolicy(allowedNetworks: string): CallbackAddressPolicy {
  const nonPublic = blockList(NON_PUBLIC_NETWORKS);
  const allowed = blockList(entries(allowedNetworks));
  return {
    allows(address) {
      const family = isIP(address) === 6 ? 'ipv6' : 'ipv4';
      return allowed.check(address, family) || !nonPublic.check(address, family);
    },
  };
}
