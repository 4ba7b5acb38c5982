// txe bench's CPU accounting: cores are CPU time over wall time, a server process that started
// inside the window counts whole, and servers not on this machine read as null, not as 0. A
// target on this machine is found by the port it listens on and measured by label.
import net from 'node:net';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { coresBetween, cpuSnapshot, listeningSockets, listeningTargets, type CpuSnapshot } from '../../bench/cpu.js';

const snap = (atMs: number, selfMs: number, postgres: Record<number, number> | null, targets: Record<string, number | null> = {}, machine: { busyTicks: number; totalTicks: number } | null = null): CpuSnapshot => ({
  atNs: BigInt(atMs) * 1_000_000n, selfUs: selfMs * 1000, childUs: null,
  servers: postgres === null ? null : new Map([['postgres', new Map(Object.entries(postgres).map(([p, ms]) => [Number(p), ms * 1000]))], ['kafka', new Map()], ['etcd', new Map()], ['nginx', new Map()]]),
  targets: new Map(Object.entries(targets).map(([label, ms]) => [label, ms === null ? null : ms * 1000])),
  machine,
});

describe('bench CPU accounting', () => {
  it('sums every postgres process, a new backend whole, over the window', () => {
    const cores = coresBetween(snap(0, 0, { 10: 100 }), snap(1000, 500, { 10: 400, 11: 200 }));
    expect(cores).toEqual({ loadgen: 0.5, engine: null, postgres: 0.5, kafka: null, etcd: null, nginx: null, targets: {}, machine: null });
  });

  it('gives each target its own cores, null where its process could not be read', () => {
    const cores = coresBetween(snap(0, 0, null, { 'validator 1': 100, 'validator 2': 50 }), snap(2000, 0, null, { 'validator 1': 700, 'validator 2': null }));
    expect(cores.targets).toEqual({ 'validator 1': 0.3, 'validator 2': null });
  });

  it("reads the machine's busy share of every core", () => {
    const cores = coresBetween(snap(0, 0, null, {}, { busyTicks: 100, totalTicks: 1000 }), snap(1000, 0, null, {}, { busyTicks: 250, totalTicks: 1200 }));
    expect(cores.machine).toBe(Math.round(0.75 * os.availableParallelism() * 100) / 100); // 150 of 200 ticks busy
  });

  it("reads this machine's processes when asked, and nothing when not", () => {
    expect(cpuSnapshot(null).servers).toBeNull();
    const servers = cpuSnapshot(process.pid, true).servers!;
    expect([...servers.keys()].sort()).toEqual(['etcd', 'kafka', 'nginx', 'postgres']);
    expect(cpuSnapshot(null).machine!.totalTicks).toBeGreaterThan(0);
  });

  it('parses the listening sockets of a /proc/net/tcp table', () => {
    const table = [
      '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
      '   0: 0100007F:1BA5 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 2112994 1 0000000000000000 100 0 0 10 0',
      '   1: 0100007F:1BA6 0100007F:D888 01 00000000:00000000 00:00000000 00000000   101        0 2112995 1 0000000000000000 100 0 0 10 0',
    ].join('\n');
    expect(listeningSockets(table)).toEqual([{ port: 0x1ba5, inode: '2112994' }]);
  });
});

describe('targets found by the port they listen on', () => {
  const server = net.createServer();
  const server2 = net.createServer();
  let port = 0;
  let port2 = 0;
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    await new Promise<void>((resolve) => server2.listen(0, '127.0.0.1', resolve));
    port = (server.address() as net.AddressInfo).port;
    port2 = (server2.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await new Promise<void>((resolve) => server2.close(() => resolve()));
  });

  it('finds this process listening on a loopback target, and leaves out other hosts and closed ports', () => {
    const pids = listeningTargets(new Map([['mine', `127.0.0.1:${port}`], ['elsewhere', `10.1.2.3:${port}`], ['closed', '127.0.0.1:1']]));
    expect(Object.fromEntries(pids)).toEqual({ mine: process.pid });
    // In the order the targets were given, whatever order /proc lists their processes in.
    const both = listeningTargets(new Map([['b', `127.0.0.1:${port2}`], ['a', `127.0.0.1:${port}`]]));
    expect([...both.keys()]).toEqual(['b', 'a']);
    const before = cpuSnapshot(null, false, pids);
    let spin = 0;
    for (const until = Date.now() + 50; Date.now() < until;) spin++;
    const cores = coresBetween(before, cpuSnapshot(null, false, pids));
    expect(spin).toBeGreaterThan(0);
    expect(cores.targets.mine).toBeGreaterThan(0);
  });
});
