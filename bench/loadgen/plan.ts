/*
 * The load plan, built before the clock starts: funding mints, then for each lane a run of
 * pre-built batches. A lane owns `batchTxs` senders, so its round r carries nonce r+1 for each of
 * them; one batch per lane is in flight at a time, so a batch refused with RESOURCE_EXHAUSTED is
 * simply sent again and no nonce gap cascades into rejections.
 *
 * Each planned batch is kept as the finished bytes of its SubmitBatchRequest (wire.ts), so sending
 * it costs no encoding. Memory: 128 B (batch-signed) or 192 B (per-tx) per planned transaction and
 * under 128 B per batch of head; 20M transactions of batch-signed load are ~2.6 GB, hence the
 * prebuild cap.
 * Nonces stay below 2^32 (rounds per lane are far fewer), so patching a round writes one u32 a record.
 * Cost: a 1 MB copy, 8190 u32 writes, one SHA-256 and one signature per batch (batch-signed); one Ed25519
 * signature per transaction (per-tx), spread over worker threads.
 */

import crypto from 'node:crypto';
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { BODY_BYTES, KIND_MINT, KIND_TRANSFER, OFFSET_AMOUNT, OFFSET_KIND, OFFSET_NONCE, OFFSET_RECIPIENT, OFFSET_SENDER, OFFSET_TIMESTAMP_MS, OFFSET_VERSION, RECORD_VERSION, SIGNED_RECORD_BYTES } from '../../engine/core/record.js';
import { keypairFromSeed, type Keypair } from '../../engine/core/keys.js';
import { signBatch } from '../../engine/core/batch.js';
import { distFile } from '../../engine/paths.js';
import type { SubmitRequest } from '../../engine/client.js';
import { decodeWire, sealWire, wireLayout, type PlannedBatch, type WireLayout } from './wire.js';

export type Mode = 'per-tx' | 'batch-signed';

export interface PlanOptions {
  mode: Mode;
  batchTxs: number;
  lanes: number;
  roundsPerLane: number;
  fundingBatchTxs: number;
  issuer: Keypair;
  issuerNonceLast: number; // the issuer's last used nonce on the target engine
  signer: Keypair;
  amountPerTx: bigint;
  runId: string; // fresh sender accounts for every run, so a long-lived target can be reused
  ack: 'ordered' | 'durable' | 'final'; // encoded into every planned batch
}

export interface Plan {
  funding: SubmitRequest[]; // sent in order, before the clock
  lanes: PlannedBatch[][]; // lanes[l][r]: lane l's round r, encoded
  txsPlanned: number;
}

/** A sender's seed: deterministic, so a plan can be rebuilt and its accounts looked up. */
export function senderSeed(runId: string, index: number): Buffer {
  return crypto.createHash('sha256').update(`txe-bench-${runId}-sender-${index}`).digest();
}

export async function buildPlan(o: PlanOptions): Promise<Plan> {
  const senders = o.lanes * o.batchTxs;
  const ids = senderIds(o.mode, o.runId, senders);
  const funding = fundingBatches(o, ids);
  const lanes = o.mode === 'batch-signed' ? batchSignedLanes(o, ids) : await perTxLanes(o, ids);
  assertDecodes(lanes, o.mode === 'batch-signed' ? BODY_BYTES : SIGNED_RECORD_BYTES);
  return { funding, lanes, txsPlanned: senders * o.roundsPerLane };
}

function senderIds(mode: Mode, runId: string, count: number): Buffer[] {
  const ids: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    // A trusted batch signer may submit for any sender, so batch-signed senders need no key.
    ids.push(mode === 'per-tx' ? keypairFromSeed(senderSeed(runId, i)).publicKey : senderSeed(runId, i));
  }
  return ids;
}

function writeRecord(out: Buffer, at: number, kind: number, sender: Buffer, recipient: Buffer, nonce: number, amount: bigint): void {
  out[at + OFFSET_VERSION] = RECORD_VERSION;
  out[at + OFFSET_KIND] = kind;
  sender.copy(out, at + OFFSET_SENDER);
  recipient.copy(out, at + OFFSET_RECIPIENT);
  out.writeUInt32LE(nonce >>> 0, at + OFFSET_NONCE);
  out.writeUInt32LE(Math.floor(nonce / 0x1_0000_0000), at + OFFSET_NONCE + 4);
  out.writeBigUInt64LE(amount, at + OFFSET_AMOUNT);
  out.writeUInt32LE(Date.now() % 0x1_0000_0000, at + OFFSET_TIMESTAMP_MS);
}

function fundingBatches(o: PlanOptions, ids: Buffer[]): SubmitRequest[] {
  const out: SubmitRequest[] = [];
  const amount = o.amountPerTx * BigInt(o.roundsPerLane + 1);
  for (let first = 0; first < ids.length; first += o.fundingBatchTxs) {
    const count = Math.min(o.fundingBatchTxs, ids.length - first);
    const bodies = Buffer.alloc(count * BODY_BYTES);
    for (let i = 0; i < count; i++) writeRecord(bodies, i * BODY_BYTES, KIND_MINT, o.issuer.publicKey, ids[first + i], o.issuerNonceLast + first + i + 1, amount);
    out.push({ auth: 'batch-signed', txs: bodies, signer: o.signer.publicKey, signature: signBatch(bodies, o.signer.privateKey), ack: 'ordered' });
  }
  return out;
}

/** Lane l's sender j pays lane (l+1)'s sender j, so recipients are funded accounts, never new ones. */
function recipientOf(o: PlanOptions, ids: Buffer[], lane: number, j: number): Buffer {
  return ids[((lane + 1) % o.lanes) * o.batchTxs + j];
}

/** Lane l's round 0 as a template; each later round is a copy with its nonces patched. */
function laneTemplate(o: PlanOptions, ids: Buffer[], lane: number, stride: number): Buffer {
  const template = Buffer.alloc(o.batchTxs * stride);
  for (let j = 0; j < o.batchTxs; j++) {
    writeRecord(template, j * stride, KIND_TRANSFER, ids[lane * o.batchTxs + j], recipientOf(o, ids, lane, j), 1, o.amountPerTx);
  }
  return template;
}

function patchNonces(batch: Buffer, count: number, stride: number, nonce: number): void {
  for (let j = 0; j < count; j++) batch.writeUInt32LE(nonce, j * stride + OFFSET_NONCE);
}

/** Batch ids are unique in the plan, so a response names its lane and round without a counter. */
function batchIdOf(o: PlanOptions, lane: number, round: number): number {
  return 1 + lane * o.roundsPerLane + round;
}

function batchSignedLanes(o: PlanOptions, ids: Buffer[]): PlannedBatch[][] {
  const layout = wireLayout(o.batchTxs * BODY_BYTES, 'batch-signed', batchIdOf(o, o.lanes - 1, o.roundsPerLane - 1));
  const lanes: PlannedBatch[][] = [];
  for (let l = 0; l < o.lanes; l++) {
    const template = laneTemplate(o, ids, l, BODY_BYTES);
    const rounds: PlannedBatch[] = [];
    for (let r = 0; r < o.roundsPerLane; r++) {
      const slot = Buffer.allocUnsafe(layout.slotBytes);
      const bodies = slot.subarray(layout.txsAt);
      template.copy(bodies);
      patchNonces(bodies, o.batchTxs, BODY_BYTES, r + 1);
      const batchId = batchIdOf(o, l, r);
      const wire = sealWire(slot, layout, { batchId, auth: 'batch-signed', signer: o.signer.publicKey, signature: signBatch(bodies, o.signer.privateKey), ack: o.ack });
      rounds.push({ batchId, txs: o.batchTxs, wire });
    }
    lanes.push(rounds);
  }
  return lanes;
}

/*
 * Per-tx: every slot in one SharedArrayBuffer, so the signing threads write each record's signature
 * in place; the heads are sealed after they finish.
 */
async function perTxLanes(o: PlanOptions, ids: Buffer[]): Promise<PlannedBatch[][]> {
  const layout = wireLayout(o.batchTxs * SIGNED_RECORD_BYTES, 'per-tx', batchIdOf(o, o.lanes - 1, o.roundsPerLane - 1));
  const shared = new SharedArrayBuffer(o.lanes * o.roundsPerLane * layout.slotBytes);
  const all = Buffer.from(shared);
  const slotOf = (l: number, r: number) => all.subarray((l * o.roundsPerLane + r) * layout.slotBytes, (l * o.roundsPerLane + r + 1) * layout.slotBytes);
  for (let l = 0; l < o.lanes; l++) {
    const template = laneTemplate(o, ids, l, SIGNED_RECORD_BYTES);
    for (let r = 0; r < o.roundsPerLane; r++) {
      const records = slotOf(l, r).subarray(layout.txsAt);
      template.copy(records);
      patchNonces(records, o.batchTxs, SIGNED_RECORD_BYTES, r + 1);
    }
  }
  await signInWorkers(shared, layout, o);
  const lanes: PlannedBatch[][] = [];
  for (let l = 0; l < o.lanes; l++) {
    const rounds: PlannedBatch[] = [];
    for (let r = 0; r < o.roundsPerLane; r++) {
      const batchId = batchIdOf(o, l, r);
      rounds.push({ batchId, txs: o.batchTxs, wire: sealWire(slotOf(l, r), layout, { batchId, auth: 'per-tx', ack: o.ack }) });
    }
    lanes.push(rounds);
  }
  return lanes;
}

/** Signs every per-tx record in place, lanes split across one worker thread per core. */
async function signInWorkers(shared: SharedArrayBuffer, layout: WireLayout, o: PlanOptions): Promise<void> {
  const threads = Math.max(1, Math.min(os.availableParallelism(), o.lanes));
  const lanesPer = Math.ceil(o.lanes / threads);
  const jobs: Promise<void>[] = [];
  for (let t = 0; t < threads; t++) {
    const firstLane = t * lanesPer;
    const lastLane = Math.min(o.lanes, firstLane + lanesPer);
    if (firstLane >= lastLane) break;
    const worker = new Worker(distFile('bench/loadgen/sign-worker.js'), {
      workerData: { shared, firstLane, lastLane, rounds: o.roundsPerLane, batchTxs: o.batchTxs, slotBytes: layout.slotBytes, txsAt: layout.txsAt, runId: o.runId },
    });
    jobs.push(new Promise((resolve, reject) => {
      worker.once('message', () => { void worker.terminate(); resolve(); });
      worker.once('error', reject);
    }));
  }
  await Promise.all(jobs);
}

/** The plan checks its own first and last batch: each must decode to its id and its records. */
function assertDecodes(lanes: PlannedBatch[][], recordBytes: number): void {
  const last = lanes[lanes.length - 1];
  for (const batch of [lanes[0][0], last[last.length - 1]]) {
    const decoded = decodeWire(batch.wire);
    if (decoded.batchId !== batch.batchId || decoded.txs.length !== batch.txs * recordBytes) {
      throw new Error(`planned batch ${batch.batchId} decodes as batch ${decoded.batchId} with ${decoded.txs.length} bytes of records`);
    }
  }
}
