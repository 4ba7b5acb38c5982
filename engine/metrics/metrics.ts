/*
 * What the engine measures about itself: per-stage batch latency (HDR histograms, microseconds,
 * 3 significant digits, mergeable) and Prometheus metrics (prom-client) in base units.
 *
 *   stage      from                       to
 *   verify     admitted (ring claimed)    every verdict stored
 *   sequence   verified                   block cut (includes waiting for earlier batches)
 *   durable    block cut                  every sink has it (ack=durable only)
 *   pg_write   group handed to the sink   PostgreSQL committed it (per group)
 *   kafka_ack  group handed to the sink   Kafka acknowledged it (per group)
 *   e2e        admitted                   answered
 *
 * Recording costs one hrtime read and two histogram updates per batch or group: ~1 µs against a
 * batch's milliseconds.
 *
 * The main thread's event-loop delay is sampled every EVENT_LOOP_RESOLUTION_MS by Node's own timer
 * (perf_hooks, in C++, no JS per sample) and folded into an HDR histogram of the delay beyond the
 * sampling interval when it is read, so a reader can subtract two readings to get one run's delay.
 * prom-client samples at the same resolution: its default of 10 ms put a 10 ms floor under
 * txe_process_nodejs_eventloop_lag_p99_seconds (that gauge is since the last scrape, and includes
 * the 1 ms interval).
 */

import * as hdr from 'hdr-histogram-js';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const STAGES = ['verify', 'sequence', 'durable', 'pg_write', 'kafka_ack', 'e2e'] as const;
export type Stage = (typeof STAGES)[number];

const LATENCY_US_MAX = 120_000_000; // 2 minutes: anything slower is recorded at the cap
const EVENT_LOOP_RESOLUTION_MS = 1;
// Prometheus buckets in seconds, aligned to the targets: sub-millisecond to one second.
const BUCKETS_S = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5];

export interface Gauges {
  ringSlotsUsed: () => number;
  ringSlotsMax: number;
  batchesInFlight: () => number;
  blockRingBlocks: () => number;
  workerUtilization: () => number;
  sinkLagBlocks: () => number;
  approvalsPending: () => number;
}

export class EngineMetrics {
  readonly registry = new Registry();
  readonly histograms = new Map<Stage, hdr.Histogram>();
  readonly transactions: Counter<'result'>;
  readonly batches: Counter<'outcome'>;
  readonly bytes: Counter;
  readonly approvals: Counter<'event'>;
  readonly webhookDeliveries: Counter<'outcome'>;
  readonly webhookEventsRouted: Counter;
  private readonly latency: Histogram<'stage'>;
  private readonly eventLoop = new EventLoopDelay();

  constructor(gauges: Gauges) {
    for (const stage of STAGES) this.histograms.set(stage, newHistogram());
    const registers = [this.registry];
    this.transactions = new Counter({ name: 'txe_transactions_total', help: 'Transactions answered, by result code', labelNames: ['result'], registers });
    this.batches = new Counter({ name: 'txe_batches_total', help: 'Batches, by outcome (sequenced, refused_invalid, refused_exhausted, refused_unavailable)', labelNames: ['outcome'], registers });
    this.bytes = new Counter({ name: 'txe_ingress_bytes_total', help: 'Bytes of records admitted into the input ring', registers });
    this.approvals = new Counter({ name: 'txe_approvals_total', help: 'Approval holds placed (requested) and decided (approved, rejected, expired)', labelNames: ['event'], registers });
    this.webhookDeliveries = new Counter({ name: 'txe_webhook_deliveries_total', help: 'Webhook delivery tries, by outcome (delivered, retrying, dead_lettered, gone, skipped)', labelNames: ['outcome'], registers });
    this.webhookEventsRouted = new Counter({ name: 'txe_webhook_events_routed_total', help: 'Webhook events queued on the events topic (one per event and webhook)', registers });
    this.latency = new Histogram({ name: 'txe_batch_stage_seconds', help: 'Batch latency by pipeline stage', labelNames: ['stage'], buckets: BUCKETS_S, registers });
    const gauge = (name: string, help: string, read: () => number) => new Gauge({ name, help, registers, collect() { this.set(read()); } });
    gauge('txe_input_ring_slots_used', 'Input ring slots claimed and not yet released', gauges.ringSlotsUsed);
    gauge('txe_input_ring_slots', 'Input ring capacity in slots', () => gauges.ringSlotsMax);
    gauge('txe_batches_in_flight', 'Batches admitted and not yet sequenced', gauges.batchesInFlight);
    gauge('txe_block_ring_blocks', 'Committed blocks waiting for the sinks', gauges.blockRingBlocks);
    gauge('txe_verify_worker_utilization_ratio', 'Share of time the verify workers were busy (piscina)', gauges.workerUtilization);
    gauge('txe_sink_lag_blocks', 'Blocks sequenced but not yet durable', gauges.sinkLagBlocks);
    gauge('txe_approvals_pending', 'Transfers held and waiting for approvers', gauges.approvalsPending);
    collectDefaultMetrics({ register: this.registry, prefix: 'txe_process_', eventLoopMonitoringPrecision: EVENT_LOOP_RESOLUTION_MS });
  }

  record(stage: Stage, fromNs: bigint, toNs: bigint): void {
    const us = Number(toNs - fromNs) / 1000;
    this.histograms.get(stage)!.recordValue(Math.min(LATENCY_US_MAX, Math.max(1, Math.round(us))));
    this.latency.observe({ stage }, us / 1e6);
  }

  /** The main thread's event-loop delay since start, microseconds beyond the sampling interval. */
  eventLoopDelay(): hdr.Histogram {
    return this.eventLoop.read();
  }

  /** Stops sampling the event loop (engine stop). */
  close(): void {
    this.eventLoop.close();
  }

  /** The per-stage distributions as percentiles in milliseconds, for reports and logs. */
  summary(): Record<Stage, PercentilesMs> {
    const out = {} as Record<Stage, PercentilesMs>;
    for (const [stage, h] of this.histograms) out[stage] = percentilesMs(h);
    return out;
  }
}

export interface PercentilesMs { count: number; p50: number; p99: number; p999: number; max: number }

/** A histogram of microseconds as the percentiles every report gives, in milliseconds. */
export function percentilesMs(h: hdr.Histogram): PercentilesMs {
  const ms = (p: number) => h.getValueAtPercentile(p) / 1000;
  return { count: h.totalCount, p50: ms(50), p99: ms(99), p999: ms(99.9), max: h.maxValue / 1000 };
}

class EventLoopDelay {
  private readonly total = newHistogram();
  private readonly native: IntervalHistogram = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });

  constructor() {
    this.native.enable();
  }

  /**
   * Folds the samples since the last read into the total. Node's histogram can be read only as
   * percentiles, so each step between two listed percentiles becomes that many samples at the
   * step's value: HDR's own iteration points, so the total keeps the native's precision.
   */
  read(): hdr.Histogram {
    const count = this.native.count;
    if (count > 0) {
      const resolutionNs = EVENT_LOOP_RESOLUTION_MS * 1e6;
      let below = 0;
      for (const [percentile, valueNs] of this.native.percentiles) {
        const samples = Math.round((percentile / 100) * count) - below;
        if (samples <= 0) continue;
        below += samples;
        const us = Math.round(Math.max(0, valueNs - resolutionNs) / 1000);
        this.total.recordValueWithCount(Math.min(LATENCY_US_MAX, Math.max(1, us)), samples);
      }
      this.native.reset();
    }
    return this.total;
  }

  close(): void {
    this.native.disable();
  }
}

function newHistogram(): hdr.Histogram {
  return hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: LATENCY_US_MAX, numberOfSignificantValueDigits: 3 });
}
