/*
 * Drives a plan against an engine over SubmitStream: `streams` bidi streams on one channel, lanes
 * spread across the streams, one batch per lane in flight. Open loop at a fixed offered rate: batch k is due at t0 + k × batchTxs / rate, and its
 * latency is measured from that due time, not from when a lane was free to send it, which corrects
 * for coordinated omission. At `max`, every lane sends again as soon as it is answered (closed
 * loop), and latency is measured from the send.
 *
 * A batch goes out as the bytes the plan encoded (wire.ts) through a stream whose serializer
 * passes them through: per batch, the only copy left is grpc-js's own frame.
 */

import * as hdr from 'hdr-histogram-js';
import { performance, type EventLoopUtilization } from 'node:perf_hooks';
import type * as grpc from '@grpc/grpc-js';
import type { TxeClient } from '../../engine/client.js';
import { TransactionServiceDefinition, u64ToNumber, type SubmitBatchResponseWire } from '../../engine/services/grpc/codec.js';
import { Result } from '../../engine/core/result.js';
import { FixedQueue } from '../../engine/ring/fixed-queue.js';
import type { PlannedBatch } from './wire.js';

export interface DriveOptions {
  streams: number;
  rateTps: number | 'max';
  durationS: number;
  warmupS: number;
  retryBackoffMs: number;
  // Send each lane's rounds again from the first once they run out: only against a server without
  // state (the null server of the load generator's ceiling), where repeated nonces are harmless.
  cycle?: boolean;
  onTick?: (s: DriveProgress) => void;
  onMeasureStart?: () => void; // called once, when the warm-up ends
  onSample?: () => void; // called every 100 ms while driving
}

export interface DriveProgress { elapsedS: number; committed: number; errors: number }

export interface DriveResult {
  durationS: number;
  txsCommitted: number;
  txsRejected: number;
  rejectedByCode: Record<number, number>;
  errors: number;
  errorsByStatus: Record<number, number>;
  batches: number;
  txsSent: number; // transactions sent for the first time within the measured window (retries are not counted again)
  sendLagMsMax: number; // open loop: the longest a batch sent in the window waited past its due time
  // Share of the measured window this process's event loop was busy (not waiting for I/O): near 1,
  // the generator could not have sent any faster, whatever the other side was doing.
  eventLoopUtilization: number;
  latencyUs: hdr.Histogram;
  tpsPerSecond: number[];
  ranOut: boolean;
}

interface Lane { id: number; stream: number; rounds: PlannedBatch[]; next: number; busy: boolean }
interface Sent { lane: Lane; batch: PlannedBatch; dueNs: bigint; sentNs: bigint }

const NS_PER_S = 1_000_000_000n;

export async function drive(clients: TxeClient | TxeClient[], lanesPlan: PlannedBatch[][], o: DriveOptions): Promise<DriveResult> {
  if (o.streams < 1 || lanesPlan.length < 1 || lanesPlan[0].length < 1) throw new Error(`drive needs a stream and a lane with a batch (got ${o.streams} streams, ${lanesPlan.length} lanes)`);
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  const lanes: Lane[] = lanesPlan.map((rounds, id) => ({ id, stream: id % o.streams, rounds, next: 0, busy: false }));
  const batchTxs = lanes[0].rounds[0].txs;
  const idle = new FixedQueue<Lane>(pow2AtLeast(lanes.length));
  for (const lane of lanes) idle.push(lane);
  // Bounded by the lanes: each lane has at most one batch in flight.
  const sent = new Map<number, Sent>();
  const r: DriveResult = { durationS: 0, txsCommitted: 0, txsRejected: 0, rejectedByCode: {}, errors: 0, errorsByStatus: {}, batches: 0, txsSent: 0, sendLagMsMax: 0, eventLoopUtilization: 0, latencyUs: histogram, tpsPerSecond: [], ranOut: false };
  const t0 = process.hrtime.bigint();
  const warmupEnd = t0 + BigInt(Math.round(o.warmupS * 1e9));
  const end = warmupEnd + BigInt(Math.round(o.durationS * 1e9));
  const intervalNs = o.rateTps === 'max' ? 0n : BigInt(Math.round((batchTxs / o.rateTps) * 1e9));
  let due = t0;
  let done!: () => void;
  const finished = new Promise<void>((resolve) => { done = resolve; });

  // Several targets (a cluster's validators): stream i goes to target i mod n.
  const targets = Array.isArray(clients) ? clients : [clients];
  const streams = Array.from({ length: o.streams }, (_, i) => openEncodedStream(targets[i % targets.length]));
  const onResponse = (response: SubmitBatchResponseWire) => {
    const batchId = u64ToNumber(response.batchId);
    const s = sent.get(batchId);
    if (!s) throw new Error(`response for unknown batch id ${batchId}`);
    sent.delete(batchId);
    const now = process.hrtime.bigint();
    const measured = now >= warmupEnd && now <= end;
    const statusCode = response.statusCode ?? 0;
    if (statusCode !== 0) {
      if (measured) { r.errors++; r.errorsByStatus[statusCode] = (r.errorsByStatus[statusCode] ?? 0) + 1; }
      setTimeout(() => send(s.lane, s.batch, s.dueNs, s.sentNs), o.retryBackoffMs); // same batch again: nonces stay contiguous; latency counts from the first try
      return;
    }
    s.lane.next++;
    s.lane.busy = false;
    idle.push(s.lane);
    if (measured) record(response, s, now);
    pump();
  };
  for (const stream of streams) {
    stream.on('data', onResponse);
    stream.on('error', (e: grpc.ServiceError) => { r.errors++; r.errorsByStatus[e.code] = (r.errorsByStatus[e.code] ?? 0) + 1; done(); });
  }

  function record(response: SubmitBatchResponseWire, s: Sent, now: bigint): void {
    r.batches++;
    const results = response.results ?? new Uint8Array(0);
    // The engine's own counts say whether there is anything to look at: a batch with no rejection
    // is taken whole, and only a batch with rejections has its result bytes read one by one.
    let committed = response.accepted ?? 0;
    if ((response.rejected ?? 0) !== 0 || committed !== results.length) {
      committed = 0;
      for (let i = 0; i < results.length; i++) {
        const code = results[i];
        if (code === Result.committed || code === Result.pending_approval) committed++;
        else r.rejectedByCode[code] = (r.rejectedByCode[code] ?? 0) + 1;
      }
    }
    r.txsCommitted += committed;
    r.txsRejected += results.length - committed;
    const second = Number((now - warmupEnd) / NS_PER_S);
    r.tpsPerSecond[second] = (r.tpsPerSecond[second] ?? 0) + committed;
    const from = o.rateTps === 'max' ? s.sentNs : s.dueNs;
    histogram.recordValue(Math.max(1, Number((now - from) / 1000n)));
  }

  function send(lane: Lane, batch: PlannedBatch, dueNs: bigint, firstSentNs?: bigint): void {
    const now = process.hrtime.bigint();
    if (firstSentNs === undefined && now >= warmupEnd && now <= end) {
      r.txsSent += batch.txs;
      if (intervalNs > 0n) r.sendLagMsMax = Math.max(r.sendLagMsMax, Number(now - dueNs) / 1e6);
    }
    sent.set(batch.batchId, { lane, batch, dueNs, sentNs: firstSentNs ?? now });
    streams[lane.stream].write(batch.wire);
  }

  function pump(): void {
    const now = process.hrtime.bigint();
    if (now >= end) return;
    while (idle.length > 0 && (intervalNs === 0n || due <= now)) {
      const lane = idle.shift()!;
      if (lane.next >= lane.rounds.length) {
        if (!o.cycle) { r.ranOut = true; continue; }
        lane.next = 0;
      }
      lane.busy = true;
      send(lane, lane.rounds[lane.next], due);
      due += intervalNs;
    }
    if (intervalNs > 0n && idle.length > 0) schedule(Number((due - now) / 1_000_000n));
  }

  let timer: NodeJS.Timeout | null = null;
  function schedule(ms: number): void {
    if (timer === null) timer = setTimeout(() => { timer = null; pump(); }, Math.max(0, ms));
  }

  let measuring = false;
  let eluStart = performance.eventLoopUtilization();
  let eluEnd: EventLoopUtilization | null = null;
  const ticker = setInterval(() => {
    const now = process.hrtime.bigint();
    if (!measuring && now >= warmupEnd) { measuring = true; eluStart = performance.eventLoopUtilization(); o.onMeasureStart?.(); }
    if (now >= end && eluEnd === null) eluEnd = performance.eventLoopUtilization();
    o.onSample?.();
    o.onTick?.({ elapsedS: Number(now - t0) / 1e9, committed: r.txsCommitted, errors: r.errors });
    if (intervalNs > 0n) pump(); // a due batch whose lane was busy goes out as soon as one frees
    if (now >= end || (r.ranOut && sent.size === 0)) done();
  }, 100);
  pump();
  await finished;
  clearInterval(ticker);
  if (timer) clearTimeout(timer);
  r.eventLoopUtilization = Math.round(performance.eventLoopUtilization(eluEnd ?? performance.eventLoopUtilization(), eluStart).utilization * 1000) / 1000;
  const stopped = process.hrtime.bigint();
  r.durationS = Math.max(0.001, Number((stopped < end ? stopped : end) - warmupEnd) / 1e9);
  // Close the streams and wait for their status, so nothing after the window counts as an error.
  await Promise.all(streams.map((stream) => new Promise<void>((resolve) => {
    stream.removeAllListeners('data');
    stream.removeAllListeners('error');
    stream.on('error', () => resolve());
    stream.on('status', () => resolve());
    stream.end();
  })));
  return r;
}

/** A SubmitStream that writes a planned batch's bytes as they are (they are already a SubmitBatchRequest). */
function openEncodedStream(client: TxeClient): grpc.ClientDuplexStream<Buffer, SubmitBatchResponseWire> {
  const method = TransactionServiceDefinition.SubmitStream;
  return client.raw.makeBidiStreamRequest(method.path, (bytes: Buffer) => bytes, method.responseDeserialize as (b: Buffer) => SubmitBatchResponseWire);
}

function pow2AtLeast(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}
