// txe bench --cluster reports each validator's finality hops over the measured window only
// (bench/cluster-hops.ts): the histograms are cumulative since start, so blocks from before the
// window (max runs, funding) must not count.
import { describe, expect, it } from 'vitest';
import { hopsBetween, parseHopBuckets, type HopSnapshot } from '../../bench/cluster-hops.js';

const exposition = (counts: Record<string, number[]>) => ['# HELP txe_cluster_block_hop_seconds ...', '# TYPE txe_cluster_block_hop_seconds histogram',
  ...Object.entries(counts).flatMap(([hop, c]) => [
    `txe_cluster_block_hop_seconds_bucket{le="0.05",hop="${hop}"} ${c[0]}`,
    `txe_cluster_block_hop_seconds_bucket{le="0.1",hop="${hop}"} ${c[1]}`,
    `txe_cluster_block_hop_seconds_bucket{le="0.5",hop="${hop}"} ${c[2]}`,
    `txe_cluster_block_hop_seconds_bucket{le="+Inf",hop="${hop}"} ${c[3]}`,
    `txe_cluster_block_hop_seconds_sum{hop="${hop}"} 1.5`,
    `txe_cluster_block_hop_seconds_count{hop="${hop}"} ${c[3]}`,
  ]), 'txe_cluster_front_seconds_bucket{le="0.05",phase="forward"} 9'].join('\n');

describe('cluster hops over the measured window', () => {
  it('counts only the blocks between the two snapshots, and gives bucket bounds for p50, p95, p99', () => {
    // Before the window: 10 blocks, 8 of them slow (over 500 ms), as a max run leaves them.
    const start: HopSnapshot = new Map([[1, parseHopBuckets(exposition({ final: [1, 2, 2, 10] }))]]);
    // In the window: 100 more, 90 under 50 ms, 8 under 100, 2 under 500.
    const end: HopSnapshot = new Map([[1, parseHopBuckets(exposition({ final: [91, 100, 102, 110], read: [100, 100, 100, 100] }))]]);
    const w = hopsBetween(start, end)['1'];
    expect(w.final).toEqual({ blocks: 100, p50_ms_at_most: 50, p95_ms_at_most: 100, p99_ms_at_most: 500 });
    expect(w.read).toEqual({ blocks: 100, p50_ms_at_most: 50, p95_ms_at_most: 50, p99_ms_at_most: 50 }); // first seen in the window
    expect(w.applied).toEqual({ blocks: 0, p50_ms_at_most: null, p95_ms_at_most: null, p99_ms_at_most: null });
  });

  it('says it does not know a percentile past the last finite bucket', () => {
    const end: HopSnapshot = new Map([[2, parseHopBuckets(exposition({ final: [0, 0, 1, 4] }))]]);
    expect(hopsBetween(new Map(), end)['2'].final).toEqual({ blocks: 4, p50_ms_at_most: null, p95_ms_at_most: null, p99_ms_at_most: null });
  });
});
