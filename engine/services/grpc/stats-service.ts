/*
 * StatsService: the per-stage HDR histograms and counters, once (GetStats) or every interval
 * (WatchStats). A watcher whose stream buffer is full skips ticks rather than queue readings, and
 * the number of watchers is bounded by subscribersMax.
 */

import * as grpc from '@grpc/grpc-js';
import * as hdr from 'hdr-histogram-js';
import type { EngineConfig } from '../../config.js';
import type { Pipeline } from '../../pipeline.js';
import { DecodeError } from './codec.js';
import { percentilesMs } from '../../metrics/metrics.js';

const WATCH_INTERVAL_MS_DEFAULT = 1000;
const WATCH_INTERVAL_MS_MIN = 100;

export class StatsService {
  private readonly watchers = new Set<() => void>();

  constructor(private readonly pipeline: Pipeline, private readonly config: EngineConfig) {}

  handlers(): grpc.UntypedServiceImplementation {
    return { GetStats: this.getStats.bind(this), WatchStats: this.watchStats.bind(this) };
  }

  stats() {
    const p = this.pipeline;
    return {
      atMs: Date.now(),
      stages: [...p.metrics.histograms].map(([stage, h]) => stageHistogram(stage, h)),
      eventLoopDelay: stageHistogram('event_loop_delay', p.metrics.eventLoopDelay()),
      batches: p.counters.batches, txsAccepted: p.counters.txsAccepted, txsRejected: p.counters.txsRejected, ingressBytes: p.counters.bytes,
      ringSlotsUsed: p.ring.slotsInUse, batchesInFlight: p.batchesInFlight,
      lastBlock: p.lastBlock, lastDurableBlock: p.lastDurableBlock,
    };
  }

  private getStats(_call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>): void {
    callback(null, this.stats());
  }

  private watchStats(call: grpc.ServerWritableStream<unknown, unknown>): void {
    if (call.request instanceof DecodeError) return void call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: call.request.message });
    if (this.watchers.size >= this.config.subscribersMax) {
      return void call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: `${this.watchers.size} WatchStats readers already (max ${this.config.subscribersMax})` });
    }
    const asked = (call.request as { intervalMs?: number }).intervalMs || WATCH_INTERVAL_MS_DEFAULT;
    const intervalMs = Math.max(WATCH_INTERVAL_MS_MIN, asked);
    let writable = true;
    const tick = () => { if (writable) writable = call.write(this.stats()); };
    const timer = setInterval(tick, intervalMs);
    const stop = () => { clearInterval(timer); this.watchers.delete(end); };
    const end = () => { stop(); call.end(); };
    this.watchers.add(end);
    call.on('drain', () => { writable = true; });
    call.on('cancelled', stop);
    call.on('error', stop);
    tick();
  }

  /** Ends every watch (shutdown). */
  endAll(): void {
    for (const end of [...this.watchers]) end();
  }
}

/** A histogram of microseconds as the StageHistogram message: the HDR encoding and its percentiles. */
function stageHistogram(stage: string, h: hdr.Histogram) {
  const p = percentilesMs(h);
  return { stage, hdr: Buffer.from(hdr.encodeIntoCompressedBase64(h), 'base64'), count: p.count, p50Ms: p.p50, p99Ms: p.p99, p999Ms: p.p999, maxMs: p.max };
}
