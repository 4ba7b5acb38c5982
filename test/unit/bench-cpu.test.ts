// txe bench's CPU accounting: cores are CPU time over wall time, a server process that started
// inside the window counts whole, and servers not on this machine read as null, not as 0.
import { describe, expect, it } from 'vitest';
import { coresBetween, cpuSnapshot, type CpuSnapshot } from '../../bench/cpu.js';

const snap = (atMs: number, selfMs: number, postgres: Record<number, number> | null): CpuSnapshot => ({
  atNs: BigInt(atMs) * 1_000_000n, selfUs: selfMs * 1000, childUs: null,
  servers: postgres === null ? null : new Map([['postgres', new Map(Object.entries(postgres).map(([p, ms]) => [Number(p), ms * 1000]))], ['kafka', new Map()]]),
});

describe('bench CPU accounting', () => {
  it('sums every postgres process, a new backend whole, over the window', () => {
    const cores = coresBetween(snap(0, 0, { 10: 100 }), snap(1000, 500, { 10: 400, 11: 200 }));
    expect(cores).toEqual({ loadgen: 0.5, engine: null, postgres: 0.5, kafka: null });
  });

  it('reads this machine\'s processes when asked, and nothing when not', () => {
    expect(cpuSnapshot(null).servers).toBeNull();
    const servers = cpuSnapshot(process.pid, true).servers!;
    expect([...servers.keys()].sort()).toEqual(['kafka', 'postgres']);
  });
});
