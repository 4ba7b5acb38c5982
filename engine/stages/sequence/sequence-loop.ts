/*
 * The sequence stage's loop, on a thread of its own (workers/sequencer-worker.ts). It is the one
 * consumer of the batch ring and the one producer of the block ring:
 *
 *   the head batch ADMITTED: look up its accounts' table slots while the workers verify it
 *   wait (barrier): the head batch is VERIFIED, and the block ring has a free slot
 *   read the batch's records in place from the input ring -> core Sequencer -> block
 *   write the block and its results into the block ring, publish blocksPublished
 *
 * Nothing here calls the main thread back: the main thread waits on blocksPublished. Approval
 * changes (rare) and snapshots (when one is due, afterBlock) leave as messages. Cost: the core
 * sequencer's ~100-250 ns a record plus ~2 µs a batch for the hand-offs; at 2M TPS that is 20-50%
 * of a core that the main thread no longer spends.
 */

import { Sequencer, type PendingApproval, type SequencerOptions, type SequencerState } from '../../core/sequencer.js';
import { HASH_BYTES, type ApprovalChange } from '../../core/block.js';
import { InputRing, bodiesDigest } from '../../ring/input-ring.js';
import { BATCH_ADMITTED, BATCH_DIGEST_SET, BATCH_VERIFIED, BatchRing } from '../../ring/batch-ring.js';
import { BLOCK_HAS_APPROVALS, BlockRing } from '../../ring/block-ring.js';
import { int32ChangeFrom } from '../../ring/cursor.js';
import { CONTROL_SNAPSHOT_IDLE, CONTROL_STOP, pipelineCursors, type PipelineBuffers, type PipelineCursors } from '../../ring/shared-memory.js';

// A wait that no notify ends still returns after this long, so a lost wake-up or a stop request
// costs at most this much; it is no timer on the hot path (notifies end waits at once).
const WAIT_MS = 20;
// Batches sequenced back to back before the loop yields to its event loop, so queries and the
// stop request are answered while clients keep the engine busy: ~1-10 ms of work at 8190 a batch.
const BATCHES_PER_TURN_MAX = 8;

export interface SequenceLoopOptions {
  sequencer: SequencerOptions;
  invariantCheckEveryBlocks: number;
  // A snapshot is due after any of these since the last one (0 = that trigger is off; all 0 = no
  // snapshots). One is taken when due and the writer is idle, so a slow writer delays, never piles up.
  snapshotEveryBlocks: number;
  snapshotEveryTxs: number;
  snapshotEveryMs: number;
}

export type LoopMessage =
  | { type: 'approvals'; block: number; changes: ApprovalChange[] }
  | { type: 'snapshot'; state: SequencerState };

export class SequenceLoop {
  private sinceSnapshot = { blocks: 0, txs: 0, atMs: Date.now() };
  private readonly sequencer: Sequencer;
  private readonly ring: InputRing;
  private readonly batches: BatchRing;
  private readonly blocks: BlockRing;
  private readonly cursors: PipelineCursors;
  private readonly control: Int32Array;
  private nextInputCursor = 0; // where the next batch must start: claims are contiguous

  constructor(buffers: PipelineBuffers, private readonly options: SequenceLoopOptions, state: SequencerState | null,
    private readonly post: (message: LoopMessage, transfer?: ArrayBuffer[]) => void) {
    this.sequencer = new Sequencer(options.sequencer);
    if (state !== null) this.sequencer.importState(stateWithBuffers(state));
    this.ring = new InputRing(buffers.input);
    this.batches = new BatchRing(buffers.batches);
    this.blocks = new BlockRing(buffers.blocks);
    this.cursors = pipelineCursors(buffers);
    this.control = new Int32Array(buffers.control);
    if (this.cursors.blocksPublished.value !== this.sequencer.blocksCount) {
      throw new Error(`sequencer starts after block ${this.sequencer.blocksCount}, the block ring after ${this.cursors.blocksPublished.value}`);
    }
  }

  get state(): Sequencer { return this.sequencer; }

  /** Runs until the stop flag is set; returns the number of batches sequenced in all. */
  async run(): Promise<number> {
    let batch = this.cursors.batchesSequenced.value;
    let preparedBatch = -1;
    let turn = 0;
    while (Atomics.load(this.control, CONTROL_STOP) === 0) {
      const slot = batch & this.batches.mask;
      const state = Atomics.load(this.batches.states, slot);
      if (state === BATCH_ADMITTED && preparedBatch !== batch) {
        this.prepare(slot);
        preparedBatch = batch;
        continue;
      }
      if (state !== BATCH_VERIFIED) {
        await int32ChangeFrom(this.batches.states, slot, state, WAIT_MS);
        continue;
      }
      const released = this.cursors.blocksReleased.value;
      if (this.cursors.blocksPublished.value - released >= this.blocks.slotsCount) {
        await this.cursors.blocksReleased.changeFrom(released, WAIT_MS);
        continue;
      }
      this.sequenceOne(batch, slot);
      batch++;
      if (++turn >= BATCHES_PER_TURN_MAX) {
        turn = 0;
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    }
    return batch;
  }

  /** The head batch is admitted, not yet verified: its lookups are prepared while the workers judge it. */
  private prepare(slot: number): void {
    const { start, count } = this.batches.span(slot);
    this.checkStart(start, `admitted batch in slot ${slot}`);
    this.sequencer.prepare(this.ring, start, count);
  }

  /** Claims are contiguous: the head batch starts where the last one sequenced ended. */
  private checkStart(start: number, what: string): void {
    if (start !== this.nextInputCursor) throw new Error(`${what} starts at ring cursor ${start}, the sequencer is at ${this.nextInputCursor}`);
  }

  private sequenceOne(batch: number, slot: number): void {
    const d = this.batches.read(slot);
    this.checkStart(d.start, `batch ${batch}`);
    const digest = d.flags & BATCH_DIGEST_SET ? Buffer.from(this.batches.digests.subarray(slot * HASH_BYTES, (slot + 1) * HASH_BYTES)) : bodiesDigest(this.ring.bodies, d.start, d.count, this.ring.slotsCount);
    const block = this.sequencer.sequenceBatch(this.ring, d.start, d.count, digest);
    this.batches.free(slot);
    this.cursors.batchesSequenced.publish(batch + 1);
    this.nextInputCursor += d.count;
    if (block.approvals) this.post({ type: 'approvals', block: block.number, changes: block.approvals });
    this.blocks.write({
      number: block.number, firstSeq: block.firstSeq, entries: block.entries, txs: block.txs, ringStart: block.ringStart,
      sequencedAtNs: Number(block.sequencedAtNs), sequencedAtMs: block.sequencedAtMs, verifiedAtNs: d.verifiedAtNs,
      flags: block.approvals ? BLOCK_HAS_APPROVALS : 0, hash: block.hash, prevHash: block.prevHash, bodiesDigest: block.bodiesDigest,
    }, block.results);
    this.cursors.blocksPublished.publish(block.number);
    this.afterBlock(block.number, block.txs);
  }

  /** Full state checks (at block numbers fixed by config), and snapshots when one is due. */
  private afterBlock(number: number, txs: number): void {
    const checkEvery = this.options.invariantCheckEveryBlocks;
    if (checkEvery > 0 && number % checkEvery === 0) this.sequencer.checkInvariants();
    this.sinceSnapshot.blocks++;
    this.sinceSnapshot.txs += txs;
    if (this.snapshotDue() && Atomics.compareExchange(this.control, CONTROL_SNAPSHOT_IDLE, 1, 0) === 1) {
      const state = this.sequencer.exportState();
      this.post({ type: 'snapshot', state }, [state.accounts.buffer as ArrayBuffer]);
      this.sinceSnapshot = { blocks: 0, txs: 0, atMs: Date.now() };
    }
  }

  /** Whether the blocks, transactions or time since the last snapshot reached a limit. */
  private snapshotDue(): boolean {
    const { snapshotEveryBlocks: blocks, snapshotEveryTxs: txs, snapshotEveryMs: ms } = this.options;
    const since = this.sinceSnapshot;
    return (blocks > 0 && since.blocks >= blocks) || (txs > 0 && since.txs >= txs) || (ms > 0 && since.blocks > 0 && Date.now() - since.atMs >= ms);
  }
}

// Structured clone (workerData, postMessage) turns Buffers into plain Uint8Arrays; the engine's
// code expects Buffers, so whatever crosses between threads is given its Buffer views back.
export const asBuffer = (u: Uint8Array): Buffer => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

export function stateWithBuffers(state: SequencerState): SequencerState {
  const pending: PendingApproval[] = state.pending.map((p) => ({ ...p, recipient: asBuffer(p.recipient), id: asBuffer(p.id) }));
  return { ...state, lastHash: asBuffer(state.lastHash), pending };
}
