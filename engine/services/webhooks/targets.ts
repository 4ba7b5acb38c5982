/*
 * Where a webhook may send: never, unless config allows it, to an address of the engine's own
 * machine or network. A webhook is a request the engine makes on a caller's behalf, so without this
 * a caller could aim it at the metrics port, a database, a cloud metadata service, or use delivery
 * errors to scan ports (issue 12). The host is resolved and every address it resolves to is
 * checked, when the webhook is created or its URL changed, and again before each delivery (a
 * name may be re-pointed later). Redirects are not followed (post.ts), so a public receiver cannot
 * bounce a delivery inward.
 *
 * Refused: loopback, private (RFC 1918, unique local), shared (100.64/10), link-local (which holds
 * the metadata address 169.254.169.254), unspecified, multicast, reserved and benchmarking ranges,
 * and IPv4 mapped into IPv6. webhookTargetsAllowed lists CIDRs that are allowed all the same (a
 * development receiver on 127.0.0.1, an internal network that is meant to be reached); an allowed
 * IPv4 network also allows its IPv4-mapped IPv6 form (node:net BlockList), which is the same host.
 *
 * Plain http:// is only for receivers webhookTargetsAllowed lists (a development receiver on
 * loopback, an internal network): an event to anywhere else crosses networks the engine does not
 * control, so it must be https://.
 */

import dns from 'node:dns/promises';
import net from 'node:net';
import { parseCidr } from '../../core/cidr.js';

const FORBIDDEN_V4: Array<[string, number, string]> = [
  ['0.0.0.0', 8, 'unspecified'], ['10.0.0.0', 8, 'private'], ['100.64.0.0', 10, 'shared'], ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local (cloud metadata)'], ['172.16.0.0', 12, 'private'], ['192.0.0.0', 24, 'reserved'],
  ['192.0.2.0', 24, 'documentation'], ['192.168.0.0', 16, 'private'], ['198.18.0.0', 15, 'benchmarking'],
  ['198.51.100.0', 24, 'documentation'], ['203.0.113.0', 24, 'documentation'], ['224.0.0.0', 4, 'multicast'], ['240.0.0.0', 4, 'reserved'],
];
const FORBIDDEN_V6: Array<[string, number, string]> = [
  ['::', 128, 'unspecified'], ['::1', 128, 'loopback'], ['::ffff:0:0', 96, 'IPv4-mapped'], ['64:ff9b::', 96, 'IPv4-translated'],
  ['100::', 64, 'discard'], ['2001:db8::', 32, 'documentation'], ['fc00::', 7, 'unique local (private)'], ['fe80::', 10, 'link-local'], ['ff00::', 8, 'multicast'],
];

export class WebhookTargets {
  private readonly allowed = new net.BlockList();

  /** `allowedCidrs`: 'a.b.c.d/n' or 'ipv6/n'; config validation has checked them (parseCidr). */
  constructor(allowedCidrs: readonly string[]) {
    for (const cidr of allowedCidrs) {
      const [address, prefix, family] = parseCidr(cidr);
      this.allowed.addSubnet(address, prefix, family);
    }
  }

  /** Null when every address `url`'s host resolves to may be sent to; otherwise why not. */
  async refusal(url: URL): Promise<string | null> {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    let addresses: { address: string; family: number }[];
    if (net.isIP(host)) addresses = [{ address: host, family: net.isIP(host) }];
    else {
      try {
        addresses = await dns.lookup(host, { all: true, verbatim: true });
      } catch (error) {
        return `host ${host} does not resolve (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`;
      }
    }
    for (const { address, family } of addresses) {
      const type = family === 6 ? 'ipv6' : 'ipv4';
      if (this.allowed.check(address, type)) continue;
      const kind = forbiddenKind(address, type);
      if (kind !== null) return `host ${host} resolves to ${address}, a ${kind} address; webhooks may not send there unless webhookTargetsAllowed lists it`;
      if (url.protocol === 'http:') return `host ${host} resolves to ${address}, which webhookTargetsAllowed does not list: plain http:// is only for such receivers (development, internal networks); use https://`;
    }
    return null;
  }
}

const FORBIDDEN = [...FORBIDDEN_V4.map((r) => [...r, 'ipv4'] as const), ...FORBIDDEN_V6.map((r) => [...r, 'ipv6'] as const)].map(([address, prefix, kind, type]) => {
  const list = new net.BlockList();
  list.addSubnet(address, prefix, type);
  return { list, kind, type };
});

function forbiddenKind(address: string, type: 'ipv4' | 'ipv6'): string | null {
  for (const range of FORBIDDEN) if (range.type === type && range.list.check(address, type)) return range.kind;
  return null;
}
