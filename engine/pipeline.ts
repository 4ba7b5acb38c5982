/*
 * The path of a batch, without the transport (DESIGN.md section 1):
 *
 *   submit ──> input ring (claim + copy) ──> verify stage (piscina tasks on slot ranges)
 *          ──> in-flight queue, in claim order ──> sequencer (one writer) ──> block
 *          ──> output ring ──> sink stage ──> release slots, answer ack=durable
 *
 * ack=ordered batches are answered as soon as their block is cut. Everything in between is
 * bounded: the input ring (slots), the in-flight queue (batches) and the output ring (blocks); a
 * submission that does not fit is answered RESOURCE_EXHAUSTED at once and leaves no trace.
 */

import crypto from 'node:crypto';
import { entrySlotsReserved, type AckMode, type EngineConfig } from './config.js';
import { InputRing, createRingBuffers, segments } from './ring/input-ring.js';
import { FixedQueue } from './ring/fixed-queue.js';
import { VerifyStage } from './stages/verify/verify-stage.js';
import type { AuthMode } from './stages/verify/task.js';
import { Sequencer, type SequencerState } from './core/sequencer.js';
import type { SnapshotWriter } from './stages/commit/pg/snapshots.js';
import type { CommittedBlock } from './core/block.js';
import { HistoryWindow } from './stages/history/history-window.js';
import { SinkStage } from './stages/commit/sink-stage.js';
import type { Sink } from './stages/commit/sink.js';
import { BODY_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, SIGNED_RECORD_BYTES } from './core/record.js';
import { RESULT_CODE_MAX, Result, isAccepted, resultName } from './core/result.js';
import { EngineMetrics } from './metrics/metrics.js';
import { VERDICT_REJECTED_FLAG, VERDICT_VALID } from './ring/input-ring.js';
import type { StoredBlock } from './stages/commit/stored-block.js';
import { KeySet } from './core/checks.js';

export interface BatchSubmission {
  mode: AuthMode;
  txs: Buffer; // packed records: 192 B each (per-tx) or 128 B each (batch-signed)
  signer: Buffer | null;
  signature: Buffer | null;
  ack: AckMode;
}

export type FailureCode = 'INVALID_ARGUMENT' | 'RESOURCE_EXHAUSTED' | 'UNAVAILABLE';

export type BatchAnswer =
  | { ok: true; block: number; firstSeq: number; results: Uint8Array; accepted: number }
  | { ok: false; code: FailureCode; message: string };

interface InFlight {
  receivedNs: bigint;
  verifiedNs: bigint;
  start: number;
  count: number;
  ack: AckMode;
  verified: boolean;
  digest: Buffer | null;
  answer: (a: BatchAnswer) => void;
}

/** Events an operator wants to know about; the CLI logs them. */
export interface PipelineHooks {
  onFatal?: (error: Error) => void;
  onSinkDown?: (error: Error) => void; // first failed write of an outage
  onSinkUp?: () => void; // the first write that succeeds after it
  log?: (level: 'info' | 'warn', message: string, fields?: Record<string, unknown>) => void; // services' events
}

interface DurableWaiter { block: number; receivedNs: bigint; sequencedNs: bigint; answer: () => void; fail: (message: string) => void }

// Room kept for engine entries (approval decisions): one in-flight batch, and the ring slots of
// config.ts entrySlotsReserved.
const ENTRY_BATCHES_RESERVED = 1;

// Sink retry backoff: quick enough to notice a restarted server, slow enough not to hammer it.
const SINK_RETRY_MS_MIN = 100;
const SINK_RETRY_MS_MAX = 2000;

export class Pipeline {
  readonly ring: InputRing;
  readonly sequencer: Sequencer;
  readonly history: HistoryWindow;
  readonly verifyStage: VerifyStage;
  readonly sinkStage: SinkStage;
  readonly metrics: EngineMetrics;
  readonly counters = { batches: 0, txsAccepted: 0, txsRejected: 0, bytes: 0, exhausted: 0, sinkFailures: 0 };
  private readonly inFlight: FixedQueue<InFlight>;
  private readonly durableWaiters: FixedQueue<DurableWaiter>;
  private readonly trusted: KeySet;
  private readonly blockListeners = new Set<(block: CommittedBlock) => void>();
  private closing = false;
  private stopped = false;
  private draining = false;
  private sinkError: Error | null = null;
  private sinkRetryMs = SINK_RETRY_MS_MIN;
  private snapshots: SnapshotWriter | null = null;
  private readonly resultTally = new Uint32Array(RESULT_CODE_MAX + 1);

  constructor(private readonly config: EngineConfig, private readonly sinks: Sink[] = [], private readonly hooks: PipelineHooks = {}) {
    this.ring = new InputRing(createRingBuffers(config.ringSlots));
    this.history = new HistoryWindow(config.historyEntries, config.historyBlocks);
    this.sequencer = new Sequencer({
      accountsMax: config.accountsMax,
      issuers: config.issuers.map((h) => Buffer.from(h, 'hex')),
      approvalPolicies: config.approvalPolicies,
      approvalsPendingMax: config.approvalsPendingMax,
    }, this.history);
    this.verifyStage = new VerifyStage(this.ring, {
      workers: config.workers, batchesInFlightMax: config.batchesInFlightMax, perTxTaskTxsMax: config.perTxTaskTxsMax,
      issuers: config.issuers, keyCacheEntriesMax: config.keyCacheEntriesMax,
    });
    this.sinkStage = new SinkStage(this.ring, sinks, { blockRingSlots: config.blockRingSlots, blocksPerWriteMax: config.blocksPerWriteMax, writesInFlightMax: config.sinkWritesInFlightMax },
      (blocks) => this.onDurable(blocks), (error) => this.onSinkFailure(error),
      (sink, fromNs, toNs) => this.metrics.record(sink === 'pg' ? 'pg_write' : 'kafka_ack', fromNs, toNs));
    this.inFlight = new FixedQueue(config.batchesInFlightMax);
    this.metrics = new EngineMetrics({
      ringSlotsUsed: () => this.ring.slotsInUse, ringSlots: this.ring.slotsCount,
      batchesInFlight: () => this.inFlight.length, outputRingBlocks: () => this.sinkStage.blocks.length,
      workerUtilization: () => this.verifyStage.utilization,
      sinkLagBlocks: () => this.sequencer.blocksCount - this.sinkStage.lastDurableBlock,
      approvalsPending: () => this.sequencer.pending.size,
    });
    // A durable waiter's block sits in the output ring, so the output ring bounds the waiters.
    this.durableWaiters = new FixedQueue(config.blockRingSlots);
    this.trusted = new KeySet(config.trustedSigners.map((h) => Buffer.from(h, 'hex')));
  }

  get batchesInFlight(): number { return this.inFlight.length; }

  /** Ring slots client batches leave free for engine entries; a batch of decisions fits in it. */
  get entrySlotsReserved(): number { return entrySlotsReserved(this.config); }

  /**
   * A verify task that fails is a bug or a lost worker, not bad input (workers turn every bad record
   * into a result code). Batches after it cannot be sequenced in order, so by default the process
   * stops loudly rather than hang every waiting client.
   */
  private fatal(error: Error): void {
    if (this.hooks.onFatal) this.hooks.onFatal(error);
    else setImmediate(() => { throw error; });
  }

  /** Admits a batch or answers at once; never throws for bad input. */
  submit(batch: BatchSubmission): Promise<BatchAnswer> {
    const invalid = this.validate(batch);
    if (invalid !== null) return this.refuse('INVALID_ARGUMENT', invalid);
    if (this.closing) return this.refuse('UNAVAILABLE', 'engine is shutting down');
    if (this.sinkError !== null) {
      return this.refuse('UNAVAILABLE', `durable storage is failing (${this.sinkError.message}); the engine retries every ${this.sinkRetryMs} ms and keeps every acknowledged batch; resubmit later`);
    }
    const stride = batch.mode === 'per-tx' ? SIGNED_RECORD_BYTES : BODY_BYTES;
    const count = batch.txs.length / stride;
    if (batch.mode === 'batch-signed' && !this.trusted.has(batch.signer!, 0)) {
      this.counters.txsRejected += count;
      this.metrics.transactions.inc({ result: 'unauthorized_signer' }, count);
      return Promise.resolve({ ok: true, block: 0, firstSeq: 0, results: new Uint8Array(count).fill(Result.unauthorized_signer), accepted: 0 });
    }
    // Client batches leave room for engine entries (approval decisions), so holds are decided and
    // expired even while clients keep the engine at capacity.
    const inFlightFull = this.inFlight.length >= this.inFlight.capacity - ENTRY_BATCHES_RESERVED;
    const start = inFlightFull || count > this.ring.slotsFree - this.entrySlotsReserved ? -1 : this.ring.tryClaim(count);
    if (start < 0) {
      this.counters.exhausted++;
      const why = inFlightFull ? `${this.inFlight.length} batches in flight (max ${this.inFlight.capacity - ENTRY_BATCHES_RESERVED} for clients)`
        : `input ring has ${this.ring.slotsFree} of ${this.ring.slotsCount} slots free, batch needs ${count} (${this.entrySlotsReserved} are kept for approval decisions)`;
      return this.refuse('RESOURCE_EXHAUSTED', `engine is at capacity: ${why}; retry with backoff`);
    }
    this.ring.writeBodies(start, batch.txs, count, stride);
    if (batch.mode === 'per-tx') this.ring.writeSignatures(start, batch.txs, count, stride, BODY_BYTES);
    this.counters.bytes += batch.txs.length;
    this.metrics.bytes.inc(batch.txs.length);
    const receivedNs = process.hrtime.bigint();
    return new Promise<BatchAnswer>((answer) => {
      const entry: InFlight = { receivedNs, verifiedNs: 0n, start, count, ack: batch.ack, verified: false, digest: null, answer };
      this.inFlight.push(entry);
      this.verifyStage.verify(start, count, batch.mode, batch.signer, batch.signature).then((digest) => {
        entry.digest = digest ? Buffer.from(digest) : this.digestOf(start, count);
        entry.verifiedNs = process.hrtime.bigint();
        entry.verified = true;
        this.drain();
      }, (error: Error) => this.fatal(new Error(`verify worker failed on ring slots [${start}, ${start + count}): ${error.message}`)));
    });
  }

  /**
   * Admits entries the engine wrote itself (approval decisions, approvals/decision.ts): 128-byte
   * bodies that skip the verify workers but take the same ring, order and bounds as any batch, so
   * they are sequenced between client batches exactly where they arrived.
   */
  submitEntries(bodies: Buffer, ack: AckMode): Promise<BatchAnswer> {
    const count = bodies.length / BODY_BYTES;
    if (!Number.isInteger(count) || count < 1 || count > this.config.batchTxsMax) throw new Error(`engine entries: ${bodies.length} bytes is not 1..batchTxsMax bodies`);
    if (this.closing) return this.refuse('UNAVAILABLE', 'engine is shutting down');
    if (this.sinkError !== null) return this.refuse('UNAVAILABLE', `durable storage is failing (${this.sinkError.message})`);
    const start = this.inFlight.full ? -1 : this.ring.tryClaim(count);
    if (start < 0) return this.refuse('RESOURCE_EXHAUSTED', 'engine is at capacity; the decision is retried');
    this.ring.writeBodies(start, bodies, count, BODY_BYTES);
    for (let i = 0; i < count; i++) Atomics.store(this.ring.verdicts, (start + i) & this.ring.mask, VERDICT_VALID);
    const receivedNs = process.hrtime.bigint();
    return new Promise<BatchAnswer>((answer) => {
      this.inFlight.push({ receivedNs, verifiedNs: receivedNs, start, count, ack, verified: true, digest: this.digestOf(start, count), answer });
      this.drain();
    });
  }

  private refuse(code: FailureCode, message: string): Promise<BatchAnswer> {
    this.metrics.batches.inc({ outcome: code === 'INVALID_ARGUMENT' ? 'refused_invalid' : code === 'RESOURCE_EXHAUSTED' ? 'refused_exhausted' : 'refused_unavailable' });
    return Promise.resolve({ ok: false, code, message });
  }

  onBlock(listener: (block: CommittedBlock) => void): () => void {
    this.blockListeners.add(listener);
    return () => this.blockListeners.delete(listener);
  }

  private validate(batch: BatchSubmission): string | null {
    const stride = batch.mode === 'per-tx' ? SIGNED_RECORD_BYTES : batch.mode === 'batch-signed' ? BODY_BYTES : 0;
    if (stride === 0) return `unknown auth mode ${String(batch.mode)}: use PER_TX or BATCH_SIGNED`;
    if (batch.txs.length === 0) return 'batch has no transactions';
    if (batch.txs.length % stride !== 0) {
      return `txs is ${batch.txs.length} bytes, not a multiple of the ${stride}-byte ${batch.mode} record (${batch.txs.length % stride} bytes left over)`;
    }
    const count = batch.txs.length / stride;
    if (count > this.config.batchTxsMax) return `batch has ${count} transactions, more than batchTxsMax ${this.config.batchTxsMax}`;
    if (batch.mode === 'batch-signed') {
      if (batch.signer?.length !== PUBLIC_KEY_BYTES) return `batch-signed batch needs a 32-byte signer, got ${batch.signer?.length ?? 0} bytes`;
      if (batch.signature?.length !== SIGNATURE_BYTES) return `batch-signed batch needs a 64-byte signature, got ${batch.signature?.length ?? 0} bytes`;
    } else if ((batch.signer?.length ?? 0) > 0 || (batch.signature?.length ?? 0) > 0) {
      return 'per-tx batch must not carry a batch signer or signature (each record is signed itself)';
    }
    return null;
  }

  /** SHA-256 of a batch's bodies for per-tx batches (batch-signed workers hand theirs back). */
  private digestOf(start: number, count: number): Buffer {
    const hash = crypto.createHash('sha256');
    for (const [first, n] of segments(start, count, this.ring.slotsCount)) {
      hash.update(this.ring.bodies.subarray(first * BODY_BYTES, (first + n) * BODY_BYTES));
    }
    return hash.digest();
  }

  /** Sequences verified batches in claim order while the output ring has room. */
  private drain(): void {
    if (this.draining || this.stopped) return; // a synchronous sink completion re-enters through onDurable
    this.draining = true;
    try {
      this.drainVerified();
    } finally {
      this.draining = false;
    }
  }

  private drainVerified(): void {
    for (let head = this.inFlight.peek(); head?.verified && !this.sinkStage.full; head = this.inFlight.peek()) {
      this.inFlight.shift();
      const block = this.sequencer.sequenceBatch(this.ring, head.start, head.count, head.digest!);
      this.ring.markSequenced(head.start + head.count);
      this.count(block);
      this.metrics.record('verify', head.receivedNs, head.verifiedNs);
      this.metrics.record('sequence', head.verifiedNs, block.sequencedAtNs);
      const answer: BatchAnswer = { ok: true, block: block.number, firstSeq: block.entries > 0 ? block.firstSeq : 0, results: block.results, accepted: block.entries };
      if (head.ack === 'ordered') {
        head.answer(answer);
        this.metrics.record('e2e', head.receivedNs, process.hrtime.bigint());
      } else if (!this.durableWaiters.push({ block: block.number, receivedNs: head.receivedNs, sequencedNs: block.sequencedAtNs, answer: () => head.answer(answer), fail: (message) => head.answer({ ok: false, code: 'UNAVAILABLE', message }) })) {
        throw new Error('durable waiters exceed the output ring');
      }
      for (const listener of this.blockListeners) listener(block);
      this.sinkStage.push(block);
      const every = this.config.invariantCheckEveryBlocks;
      if (every > 0 && block.number % every === 0) this.sequencer.checkInvariants();
      const snapshotEvery = this.config.snapshotEveryBlocks;
      if (this.snapshots && snapshotEvery > 0 && block.number % snapshotEvery === 0 && !this.snapshots.busy) this.snapshots.write(this.sequencer.exportState());
    }
  }

  private count(block: CommittedBlock): void {
    this.counters.batches++;
    this.counters.txsAccepted += block.entries;
    this.counters.txsRejected += block.txs - block.entries;
    this.metrics.batches.inc({ outcome: 'sequenced' });
    const byCode = this.resultTally.fill(0);
    for (let i = 0; i < block.results.length; i++) byCode[block.results[i]]++;
    for (let code = 0; code < byCode.length; code++) if (byCode[code] > 0) this.metrics.transactions.inc({ result: resultName(code) }, byCode[code]);
    for (const c of block.approvals ?? []) this.metrics.approvals.inc({ event: c.type === 'requested' ? 'requested' : c.outcome });
  }

  /**
   * A sink write failed (server down, connection lost): refuse new batches with UNAVAILABLE and
   * retry the same blocks with exponential backoff. Admitted batches wait for the retry; nothing
   * sequenced is dropped, and sinks make a repeated write a no-op.
   */
  private onSinkFailure(error: Error): void {
    if (this.stopped) return;
    if (this.sinkError === null) this.hooks.onSinkDown?.(error);
    this.sinkError = error;
    this.counters.sinkFailures++;
    setTimeout(() => this.sinkStage.retry(), this.sinkRetryMs).unref();
    this.sinkRetryMs = Math.min(this.sinkRetryMs * 2, SINK_RETRY_MS_MAX);
  }

  private onDurable(blocks: CommittedBlock[]): void {
    if (this.sinkError !== null) this.hooks.onSinkUp?.();
    this.sinkError = null;
    this.sinkRetryMs = SINK_RETRY_MS_MIN;
    const last = blocks[blocks.length - 1].number;
    const now = process.hrtime.bigint();
    for (let w = this.durableWaiters.peek(); w && w.block <= last; w = this.durableWaiters.peek()) {
      this.durableWaiters.shift();
      w.answer();
      this.metrics.record('durable', w.sequencedNs, now);
      this.metrics.record('e2e', w.receivedNs, now);
    }
    this.drain(); // the output ring has room again
  }

  /**
   * Stops admitting and waits for every admitted batch to be answered, at most `graceMs`. Batches
   * still waiting for durable storage then are answered UNAVAILABLE: they are sequenced and may yet
   * be in the history, so a client should look them up by sender and nonce before resubmitting.
   */
  async close(graceMs = Number.POSITIVE_INFINITY): Promise<void> {
    this.closing = true;
    const deadline = Date.now() + graceMs;
    while ((this.inFlight.length > 0 || this.sinkStage.blocks.length > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    this.stopped = true; // nothing more is sequenced: batches not yet sequenced were never admitted to the history
    for (let b = this.inFlight.shift(); b; b = this.inFlight.shift()) {
      b.answer({ ok: false, code: 'UNAVAILABLE', message: 'engine stopped before this batch was sequenced; it is not in the history and is safe to resubmit' });
    }
    for (let w = this.durableWaiters.shift(); w; w = this.durableWaiters.shift()) {
      w.fail('engine stopped before this batch was durable; look its transactions up by sender and nonce before resubmitting');
    }
    await this.verifyStage.close();
  }

  /** Takes state snapshots in the background through this writer (pg sink). */
  useSnapshots(writer: SnapshotWriter): void {
    this.snapshots = writer;
  }

  /** Recovery: starts from a snapshot's state; blocks after it are then replayed with restore(). */
  importSnapshot(state: SequencerState): void {
    if (this.inFlight.length > 0 || this.sequencer.blocksCount > 0) throw new Error('importSnapshot must run first, on a fresh engine');
    this.sequencer.importState(state);
    this.history.startAfter(state.nextSeq, state.block);
    this.sinkStage.resetDurable(state.block);
  }

  async closeSinks(): Promise<void> {
    await this.snapshots?.idle();
    await Promise.all(this.sinks.map((s) => s.close()));
  }

  /**
   * Replays one block from durable storage (recovery, before any submit): its bodies go through
   * the ring and the sequencer as the workers once judged them, and the rebuilt block must match
   * the stored one hash for hash, or the engine refuses to start.
   */
  restore(stored: StoredBlock): CommittedBlock {
    if (this.inFlight.length > 0) throw new Error('restore must run before any batch is admitted');
    // The block hash covers the digest, not the bodies: check that the bodies rebuilt from storage
    // are the ones that were hashed, or a wrong column would replay into a different state.
    if (!crypto.createHash('sha256').update(stored.bodies).digest().equals(stored.bodiesDigest)) {
      throw new Error(`recovery: the stored bodies of block ${stored.number} do not match its bodies digest`);
    }
    const start = this.ring.tryClaim(stored.txs);
    if (start < 0) throw new Error(`block ${stored.number} (${stored.txs} txs) does not fit the input ring`);
    this.ring.writeBodies(start, stored.bodies, stored.txs, BODY_BYTES);
    for (let i = 0; i < stored.txs; i++) {
      const code = stored.results[i];
      Atomics.store(this.ring.verdicts, (start + i) & this.ring.mask, isAccepted(code) ? VERDICT_VALID : VERDICT_REJECTED_FLAG | code);
    }
    const block = this.sequencer.sequenceBatch(this.ring, start, stored.txs, stored.bodiesDigest, stored.results);
    this.ring.markSequenced(start + stored.txs);
    this.ring.release(start + stored.txs);
    const same = block.number === stored.number && block.firstSeq === stored.firstSeq && block.hash.equals(stored.hash) && Buffer.from(block.results).equals(stored.results);
    if (!same) throw new Error(`recovery: block ${stored.number} does not replay to its stored hash (got block ${block.number}, hash ${block.hash.toString('hex')}); the durable history differs from what this engine computes (another history in the same database, or a different issuer set)`);
    this.count(block);
    this.sinkStage.markDurable(block.number);
    return block;
  }
}
