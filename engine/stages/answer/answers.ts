/*
 * The answer stage's bookkeeping on the main thread: batches in flight in admission order (each
 * answered exactly once), the batches waiting for durable storage, the counters and result
 * metrics, the block listeners, and the sinks' up/down state that admission reads.
 *
 *   inFlight       [ admitted, not yet sequenced ... ]   FixedQueue, batchesInFlightMax
 *   durableWaiters [ sequenced, not yet durable ... ]    FixedQueue, blockRingSlotsMax (a waiter's block is in the block ring)
 */

import type { AckMode } from '../../config.js';
import type { CommittedBlock } from '../../core/block.js';
import { GENESIS_HASH } from '../../core/block.js';
import { RESULT_CODE_MAX, Result, resultName } from '../../core/result.js';
import { FixedQueue } from '../../ring/fixed-queue.js';
import { fencedCause, type FencedError } from '../commit/writer-term.js';
import type { EngineMetrics } from '../../metrics/metrics.js';
import type { BatchAnswer, FailureCode } from '../admit/admission.js';

export interface PipelineCounters { batches: number; txsAccepted: number; txsRejected: number; bytes: number; exhausted: number; sinkFailures: number }

interface InFlight { receivedNs: bigint; start: number; count: number; ack: AckMode; answer: (a: BatchAnswer) => void }
interface DurableWaiter { block: number; receivedNs: bigint; sequencedNs: bigint; answer: BatchAnswer; reply: (a: BatchAnswer) => void }

// Sink retry backoff: quick enough to notice a restarted server within a second (issue 11: UNAVAILABLE
// ends within 2 s of PostgreSQL being back), slow enough not to hammer it.
const SINK_RETRY_MS_MIN = 100;
const SINK_RETRY_MS_MAX = 1000;

export class Answers {
  readonly counters: PipelineCounters = { batches: 0, txsAccepted: 0, txsRejected: 0, bytes: 0, exhausted: 0, sinkFailures: 0 };
  private readonly inFlightQueue: FixedQueue<InFlight>;
  private readonly durableWaiters: FixedQueue<DurableWaiter>;
  private readonly listeners = new Set<(block: CommittedBlock) => void>();
  private readonly resultTally = new Uint32Array(RESULT_CODE_MAX + 1);
  private headValue: { block: number; hash: Buffer; nextSeq: number } = { block: 0, hash: GENESIS_HASH, nextSeq: 1 };
  private sinkErrorValue: Error | null = null;
  private fencedValue: FencedError | null = null; // final: another engine writes the history now
  private sinkRetryMsValue = SINK_RETRY_MS_MIN;
  private pendingCount: number;

  constructor(batchesInFlightMax: number, blockRingSlotsMax: number, private readonly metrics: EngineMetrics, approvalsPending: number) {
    this.inFlightQueue = new FixedQueue(batchesInFlightMax);
    this.durableWaiters = new FixedQueue(blockRingSlotsMax);
    this.pendingCount = approvalsPending;
  }

  get capacity(): number { return this.inFlightQueue.capacity; }
  get inFlight(): number { return this.inFlightQueue.length; }
  get durableWaiting(): number { return this.durableWaiters.length; }
  get approvalsPending(): number { return this.pendingCount; }
  get head(): { block: number; hash: Buffer; nextSeq: number } { return this.headValue; }
  get sinkError(): Error | null { return this.sinkErrorValue; }
  get fenced(): FencedError | null { return this.fencedValue; }
  get sinkRetryMs(): number { return this.sinkRetryMsValue; }

  onBlock(listener: (block: CommittedBlock) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  countBytes(bytes: number): void {
    this.counters.bytes += bytes;
    this.metrics.bytes.inc(bytes);
  }

  /** A batch took ring slots: its answer comes when its block is read (or durable). */
  admit(start: number, count: number, ack: AckMode): Promise<BatchAnswer> {
    const receivedNs = process.hrtime.bigint();
    return new Promise<BatchAnswer>((resolve) => {
      let answered = false;
      const answer = (a: BatchAnswer) => {
        if (answered) throw new Error(`batch at ring cursor ${start} answered twice`);
        answered = true;
        resolve(a);
      };
      if (!this.inFlightQueue.push({ receivedNs, start, count, ack, answer })) throw new Error('in-flight queue full: admission must check first');
    });
  }

  refused(code: FailureCode, message: string): BatchAnswer {
    if (code === 'RESOURCE_EXHAUSTED') this.counters.exhausted++;
    this.metrics.batches.inc({ outcome: code === 'INVALID_ARGUMENT' ? 'refused_invalid' : code === 'RESOURCE_EXHAUSTED' ? 'refused_exhausted' : 'refused_unavailable' });
    return { ok: false, code, message };
  }

  unauthorized(count: number): BatchAnswer {
    this.counters.txsRejected += count;
    this.metrics.transactions.inc({ result: resultName(Result.unauthorized_signer) }, count);
    return { ok: true, block: 0, firstSeq: 0, results: new Uint8Array(count).fill(Result.unauthorized_signer), accepted: 0 };
  }

  /** A block was read from the block ring: it answers the oldest batch in flight. */
  sequenced(block: CommittedBlock): void {
    const head = this.inFlightQueue.shift();
    if (head === undefined || head.start !== block.ringStart || head.count !== block.txs) {
      throw new Error(`block ${block.number} (ring [${block.ringStart}, +${block.txs})) does not match the oldest batch in flight (${head ? `[${head.start}, +${head.count})` : 'none'})`);
    }
    if (block.number !== this.headValue.block + 1 || !block.prevHash.equals(this.headValue.hash)) {
      throw new Error(`block ${block.number} does not chain onto block ${this.headValue.block}`);
    }
    this.headValue = { block: block.number, hash: block.hash, nextSeq: block.firstSeq + block.entries };
    this.count(block);
    if (block.verifiedAtNs !== undefined) {
      this.metrics.record('verify', head.receivedNs, block.verifiedAtNs);
      this.metrics.record('sequence', block.verifiedAtNs, block.sequencedAtNs);
    }
    const answer: BatchAnswer = { ok: true, block: block.number, firstSeq: block.entries > 0 ? block.firstSeq : 0, results: block.results, accepted: block.entries };
    if (head.ack === 'ordered') {
      head.answer(answer);
      this.metrics.record('e2e', head.receivedNs, process.hrtime.bigint());
    } else if (this.fencedValue !== null) {
      head.answer(fencedAnswer(this.fencedValue));
    } else if (!this.durableWaiters.push({ block: block.number, receivedNs: head.receivedNs, sequencedNs: block.sequencedAtNs, answer, reply: head.answer })) {
      throw new Error('durable waiters exceed the block ring');
    }
    for (const listener of this.listeners) listener(block);
  }

  /** The chain head recovery ended on, before any live block. */
  startAt(block: number, hash: Buffer, nextSeq: number): void {
    this.headValue = { block, hash, nextSeq };
  }

  durable(blocks: CommittedBlock[], hooks: { onSinkUp?: () => void }): void {
    if (this.sinkErrorValue !== null && this.fencedValue === null) hooks.onSinkUp?.();
    if (this.fencedValue === null) this.sinkErrorValue = null;
    this.sinkRetryMsValue = SINK_RETRY_MS_MIN;
    const last = blocks[blocks.length - 1].number;
    const now = process.hrtime.bigint();
    for (let w = this.durableWaiters.peek(); w && w.block <= last; w = this.durableWaiters.peek()) {
      this.durableWaiters.shift();
      w.reply(w.answer);
      this.metrics.record('durable', w.sequencedNs, now);
      this.metrics.record('e2e', w.receivedNs, now);
    }
  }

  /**
   * A sink write failed (server down, connection lost): admission refuses new batches with
   * UNAVAILABLE while the same blocks are retried with exponential backoff. Admitted batches wait;
   * nothing sequenced is dropped, and sinks make a repeated write a no-op.
   */
  sinkFailed(error: Error, hooks: { onSinkDown?: (error: Error) => void; onFenced?: (error: FencedError) => void }, retry: () => void): void {
    const fenced = fencedCause(error);
    if (fenced !== null) return this.fence(fenced, hooks);
    if (this.fencedValue !== null) return;
    if (this.sinkErrorValue === null) hooks.onSinkDown?.(error);
    this.sinkErrorValue = error;
    this.counters.sinkFailures++;
    setTimeout(retry, this.sinkRetryMsValue).unref();
    this.sinkRetryMsValue = Math.min(this.sinkRetryMsValue * 2, SINK_RETRY_MS_MAX);
  }

  /**
   * Another engine took the history (writer-term.ts): no retry, ever. Batches waiting for durable
   * storage are answered now, and so is every later ack=durable batch as it is sequenced, until
   * the engine stops; admission refuses new ones.
   */
  private fence(fenced: FencedError, hooks: { onFenced?: (error: FencedError) => void }): void {
    if (this.fencedValue !== null) return;
    this.fencedValue = fenced;
    this.sinkErrorValue = fenced;
    this.counters.sinkFailures++;
    for (let w = this.durableWaiters.shift(); w; w = this.durableWaiters.shift()) w.reply(fencedAnswer(fenced));
    hooks.onFenced?.(fenced);
  }

  /** Shutdown: every batch still waiting is answered, with what the client should do next. */
  closeAll(): void {
    for (let b = this.inFlightQueue.shift(); b; b = this.inFlightQueue.shift()) {
      b.answer({ ok: false, code: 'UNAVAILABLE', message: 'engine stopped before this batch was sequenced; it is not in the history and is safe to resubmit' });
    }
    for (let w = this.durableWaiters.shift(); w; w = this.durableWaiters.shift()) {
      w.reply({ ok: false, code: 'UNAVAILABLE', message: 'engine stopped before this batch was durable; look its transactions up by sender and nonce before resubmitting' });
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
    for (const c of block.approvals ?? []) {
      this.metrics.approvals.inc({ event: c.type === 'requested' ? 'requested' : c.outcome });
      this.pendingCount += c.type === 'requested' ? 1 : -1;
    }
  }
}

function fencedAnswer(fenced: FencedError): BatchAnswer {
  return { ok: false, code: 'UNAVAILABLE', message: `${fenced.message}. This batch was sequenced here but may not be durable: look its transactions up by sender and nonce at the engine that writes the history now before resubmitting` };
}
