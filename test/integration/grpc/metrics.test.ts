// Proves the Prometheus endpoint over real HTTP: after batches go through a real engine over gRPC,
// GET /metrics reports the transactions by result, the batches by outcome, the bytes admitted,
// the ring gauges and per-stage latency histograms in seconds; the HDR summary counts the same
// batches; anything but GET /metrics is a 404.
import * as hdr from 'hdr-histogram-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TxeClient } from '../../../engine/client.js';
import type { Engine } from '../../../engine/engine.js';
import { mint, signedBatch, user } from '../../support/fixtures.js';
import { startTestEngine } from '../../support/engine.js';

let engine: Engine;
let client: TxeClient;
let stop: () => Promise<void>;

beforeAll(async () => ({ engine, client, stop } = await startTestEngine()));
afterAll(async () => stop());

const metric = (text: string, line: string): number => {
  const found = text.split('\n').find((l) => l.startsWith(line + ' '));
  if (!found) throw new Error(`no metric line ${line}`);
  return Number(found.slice(line.length + 1));
};

describe('GET /metrics', () => {
  it('reports what the engine did, in Prometheus text format', async () => {
    const alice = user('m-alice').publicKey;
    await client.submitBatch(signedBatch([mint(alice, 1n, 5n), mint(alice, 2n, 5n), mint(alice, 9n, 5n)]));
    await client.submitBatch({ auth: 'per-tx', txs: Buffer.alloc(191) }).catch(() => undefined); // refused: bad length
    const response = await fetch(`http://${engine.metrics.address}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/text\/plain/);
    const text = await response.text();
    expect(metric(text, 'txe_transactions_total{result="committed"}')).toBe(2);
    expect(metric(text, 'txe_transactions_total{result="bad_nonce"}')).toBe(1);
    expect(metric(text, 'txe_batches_total{outcome="sequenced"}')).toBe(1);
    expect(metric(text, 'txe_batches_total{outcome="refused_invalid"}')).toBe(1);
    expect(metric(text, 'txe_ingress_bytes_total')).toBe(3 * 128);
    expect(metric(text, 'txe_input_ring_slots')).toBe(engine.config.ringSlotsMax);
    expect(metric(text, 'txe_input_ring_slots_used')).toBe(0);
    expect(metric(text, 'txe_batch_stage_seconds_count{stage="e2e"}')).toBe(1);
    expect(metric(text, 'txe_batch_stage_seconds_bucket{le="5",stage="verify"}')).toBe(1);
    expect(text).toMatch(/^# TYPE txe_batch_stage_seconds histogram$/m);
    const summary = engine.pipeline.metrics.summary();
    expect(summary.e2e.count).toBe(1);
    expect(summary.verify.p50).toBeGreaterThan(0);
    expect((await fetch(`http://${engine.metrics.address}/other`)).status).toBe(404);
  });
});

describe('StatsService', () => {
  it('GetStats returns every stage as a decodable HDR histogram, and WatchStats streams readings', async () => {
    const stats = await client.getStats();
    const stages = stats.stages as { stage: string; hdr: Buffer; count: unknown; p50Ms: number }[];
    expect(stages.map((s) => s.stage)).toEqual(['verify', 'sequence', 'durable', 'pg_write', 'kafka_ack', 'e2e']);
    const e2e = stages.find((s) => s.stage === 'e2e')!;
    const decoded = hdr.decodeFromCompressedBase64(Buffer.from(e2e.hdr).toString('base64'));
    expect(decoded.totalCount).toBe(1);
    expect(decoded.getValueAtPercentile(50) / 1000).toBeCloseTo(e2e.p50Ms, 3);
    expect(Number(stats.batches)).toBe(1);
    expect(Number(stats.lastBlock)).toBe(1);
    const watch = client.watchStats(100);
    const readings: Record<string, unknown>[] = [];
    await new Promise<void>((resolve) => watch.on('data', (r: Record<string, unknown>) => { readings.push(r); if (readings.length === 3) resolve(); }));
    watch.on('error', () => undefined);
    watch.cancel();
    const at = readings.map((r) => Number(r.atMs));
    expect(at[2] - at[0]).toBeGreaterThanOrEqual(150); // one reading per 100 ms, not a burst
  });

  it('reports the main thread\'s event-loop delay: a 40 ms block shows as one late sample', async () => {
    const delayOf = async () => {
      const h = (await client.getStats()).eventLoopDelay as { stage: string; hdr: Buffer; count: unknown; maxMs: number };
      return { ...h, decoded: hdr.decodeFromCompressedBase64(Buffer.from(h.hdr).toString('base64')) };
    };
    const before = await delayOf();
    expect(before.stage).toBe('event_loop_delay');
    expect(Number(before.count)).toBeGreaterThan(0); // sampled every 1 ms since the engine started
    const blockedUntil = Date.now() + 40;
    while (Date.now() < blockedUntil) { /* the engine runs in this process: block its event loop */ }
    await new Promise((r) => setTimeout(r, 20));
    const after = await delayOf();
    after.decoded.subtract(before.decoded);
    expect(after.decoded.maxValue / 1000).toBeGreaterThanOrEqual(30); // ms beyond the 1 ms timer
    expect(after.decoded.getValueAtPercentile(50) / 1000).toBeLessThan(5); // the other samples were on time
  });
});
