// Which addresses a webhook may be sent to: every loopback, private, link-local (metadata), shared,
// multicast, reserved and IPv4-mapped address is refused unless a configured CIDR allows it, a name
// is judged by every address it resolves to, and a config CIDR that is not one is refused.
import { describe, expect, it } from 'vitest';
import { WebhookTargets } from '../../engine/services/webhooks/targets.js';
import { parseCidr } from '../../engine/core/cidr.js';

const refusal = (targets: WebhookTargets, url: string) => targets.refusal(new URL(url));

describe('webhook targets', () => {
  const strict = new WebhookTargets([]);

  it.each([
    ['http://127.0.0.1/', 'loopback'], ['http://127.9.9.9:8080/', 'loopback'], ['http://10.0.0.1/', 'private'], ['http://172.16.5.4/', 'private'],
    ['http://192.168.0.10/', 'private'], ['http://100.64.1.1/', 'shared'], ['http://169.254.169.254/', 'link-local'], ['http://0.0.0.0/', 'unspecified'],
    ['http://224.0.0.1/', 'multicast'], ['http://240.0.0.1/', 'reserved'], ['http://[::1]/', 'loopback'], ['http://[::]/', 'unspecified'],
    ['http://[fe80::1]/', 'link-local'], ['http://[fd12:3456::1]/', 'unique local'], ['http://[::ffff:10.0.0.1]/', 'IPv4-mapped'], ['http://[ff02::1]/', 'multicast'],
  ])('refuses %s (%s)', async (url, kind) => {
    expect(await refusal(strict, url)).toContain(kind);
  });

  it('accepts public addresses, and judges a name by every address it resolves to', async () => {
    expect(await refusal(strict, 'https://1.1.1.1/hook')).toBeNull();
    expect(await refusal(strict, 'https://[2606:4700:4700::1111]/hook')).toBeNull();
    expect(await refusal(strict, 'http://localhost:9464/metrics')).toMatch(/resolves to .*loopback/);
    expect(await refusal(strict, 'https://no-such-host.invalid/')).toMatch(/does not resolve/);
  });

  it('takes plain http:// only to receivers the config allows; anywhere else it must be https://', async () => {
    expect(await refusal(strict, 'http://1.1.1.1/hook')).toMatch(/plain http:\/\/ is only for such receivers .* use https:\/\//);
    expect(await refusal(strict, 'https://1.1.1.1/hook')).toBeNull();
    const dev = new WebhookTargets(['127.0.0.1/32']);
    expect(await refusal(dev, 'http://127.0.0.1:8080/')).toBeNull();
    expect(await refusal(dev, 'http://8.8.8.8/')).toMatch(/use https/);
  });

  it('lets configured CIDRs through and nothing next to them', async () => {
    const dev = new WebhookTargets(['127.0.0.1/32', '10.20.0.0/16']);
    expect(await refusal(dev, 'http://127.0.0.1:8080/')).toBeNull();
    expect(await refusal(dev, 'http://10.20.30.40/')).toBeNull();
    expect(await refusal(dev, 'http://127.0.0.2/')).toContain('loopback');
    expect(await refusal(dev, 'http://10.21.0.1/')).toContain('private');
  });

  it('parses CIDRs and says what is wrong with one that is not', () => {
    expect(parseCidr('10.0.0.0/8')).toEqual(['10.0.0.0', 8, 'ipv4']);
    expect(parseCidr('::1/128')).toEqual(['::1', 128, 'ipv6']);
    for (const bad of ['10.0.0.0', '10.0.0.0/33', 'ten/8', '::1/129', '1.2.3.4/8/9']) expect(() => parseCidr(bad)).toThrow(/is not a CIDR/);
  });
});
