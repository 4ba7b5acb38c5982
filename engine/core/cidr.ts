/* CIDR notation (address/prefix), for config lists of networks. */

import net from 'node:net';

/** 'address/prefix' as its parts; throws a message naming what is wrong. */
export function parseCidr(cidr: string): [string, number, 'ipv4' | 'ipv6'] {
  const [address, prefixText, extra] = cidr.split('/');
  const family = net.isIP(address ?? '');
  const prefix = Number(prefixText);
  const max = family === 6 ? 128 : 32;
  if (family === 0 || extra !== undefined || prefixText === undefined || !Number.isInteger(prefix) || prefix < 0 || prefix > max) {
    throw new Error(`${JSON.stringify(cidr)} is not a CIDR (address/prefix, e.g. 127.0.0.1/32)`);
  }
  return [address, prefix, family === 6 ? 'ipv6' : 'ipv4'];
}
