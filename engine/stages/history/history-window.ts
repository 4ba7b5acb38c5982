/*
 * The recent history kept in memory for queries (GetTransaction) and for StreamCommits replay: the
 * last `entriesMax` entries and the last `blocksMax` blocks, each a ring overwritten oldest first.
 *
 *   bodies  [ body of seq s & mask | ... ]   entriesMax × 128 B (32 MB at the 2^18 default)
 *   blockOf [ block number per entry ]       entriesMax × 8 B
 *   resultOf[ result code per entry ]        entriesMax × 1 B
 *
 * Older history is not kept in memory: queries for it answer NOT_FOUND or OUT_OF_RANGE (a durable
 * store is the place for it). Cost: accepted bodies are copied in runs of consecutive slots, at
 * ring-copy speed.
 */

import { BODY_BYTES, KIND_MINT, OFFSET_NONCE, OFFSET_SENDER } from '../../core/record.js';
import { Result } from '../../core/result.js';
import type { RecordSlots } from '../../core/verdict.js';

const BODY_WORDS = BODY_BYTES / 4;
const W_NONCE = OFFSET_NONCE / 4;
const W_SENDER = OFFSET_SENDER / 4;
import type { CommittedBlock } from '../../core/block.js';

export interface HistoryEntry {
  seq: number;
  block: number;
  result: number;
  body: Buffer;
}

export class HistoryWindow {
  readonly entriesMax: number;
  private readonly mask: number;
  private readonly bodies: Buffer;
  private readonly words: Uint32Array;
  private readonly blockOf: Float64Array;
  private readonly resultOf: Uint8Array;
  private readonly blocks: (CommittedBlock | undefined)[];
  private readonly blocksMax: number;
  private nextSeq = 1;
  private firstSeq = 1;
  private blocksCount = 0;

  constructor(entriesMax: number, blocksMax: number) {
    if ((entriesMax & (entriesMax - 1)) !== 0 || entriesMax < 2) throw new Error(`history entriesMax must be a power of two, got ${entriesMax}`);
    this.entriesMax = entriesMax;
    this.mask = entriesMax - 1;
    this.bodies = Buffer.alloc(entriesMax * BODY_BYTES);
    this.words = new Uint32Array(this.bodies.buffer, this.bodies.byteOffset, this.bodies.length / 4);
    this.blockOf = new Float64Array(entriesMax);
    this.resultOf = new Uint8Array(entriesMax);
    this.blocksMax = blocksMax;
    this.blocks = new Array(blocksMax);
  }

  get oldestSeq(): number { return Math.max(this.firstSeq, this.nextSeq - this.entriesMax); }
  get newestSeq(): number { return this.nextSeq - 1; }

  /** Recovery from a snapshot: the window starts empty after seq `nextSeq - 1` and block `block`. */
  startAfter(nextSeq: number, block: number): void {
    if (this.nextSeq !== 1 || this.blocksCount !== 0) throw new Error('startAfter needs an empty history window');
    this.nextSeq = nextSeq;
    this.firstSeq = nextSeq; // nothing before the snapshot is in memory
    this.blocksCount = block;
  }

  /** Appends `count` entries whose bodies lie contiguous in `source` from `offset`. */
  private appendRun(seq: number, source: Buffer, offset: number, count: number, block: number, results: Uint8Array, resultsAt: number): void {
    if (seq !== this.nextSeq) throw new Error(`history gap: expected seq ${this.nextSeq}, got ${seq}`);
    for (let i = 0; i < count; i++) {
      const slot = (seq + i) & this.mask;
      this.blockOf[slot] = block;
      this.resultOf[slot] = results[resultsAt + i];
    }
    let done = 0;
    while (done < count) {
      const slot = (seq + done) & this.mask;
      const run = Math.min(count - done, this.entriesMax - slot);
      const from = offset + done * BODY_BYTES;
      source.copy(this.bodies, slot * BODY_BYTES, from, from + run * BODY_BYTES);
      done += run;
    }
    this.nextSeq += count;
  }

  /**
   * Records a sequenced block: its accepted bodies, copied from the slots it was sequenced from in
   * runs of consecutive accepted slots, and the block itself. Blocks must come contiguous.
   */
  recordBlock(block: CommittedBlock, slots: Pick<RecordSlots, 'bodies' | 'mask' | 'slotsCount'>): void {
    if (block.number !== this.blocksCount + 1) throw new Error(`history gap: block ${block.number} after block ${this.blocksCount}`);
    const { results, txs } = block;
    let seq = block.firstSeq;
    let i = 0;
    while (i < txs) {
      if (results[i] > Result.pending_approval) { i++; continue; }
      let run = 1;
      const slot = (block.ringStart + i) & slots.mask;
      while (i + run < txs && results[i + run] <= Result.pending_approval && slot + run < slots.slotsCount) run++;
      this.appendRun(seq, slots.bodies, slot * BODY_BYTES, run, block.number, results, i);
      seq += run;
      i += run;
    }
    if (seq !== block.firstSeq + block.entries) throw new Error(`block ${block.number}: history recorded ${seq - block.firstSeq} entries, the block has ${block.entries}`);
    this.blocks[(block.number - 1) % this.blocksMax] = block;
    this.blocksCount = block.number;
  }

  get(seq: number): HistoryEntry | null {
    if (seq < this.oldestSeq || seq > this.newestSeq) return null;
    const slot = seq & this.mask;
    const body = Buffer.from(this.bodies.subarray(slot * BODY_BYTES, (slot + 1) * BODY_BYTES));
    return { seq, block: this.blockOf[slot], result: this.resultOf[slot], body };
  }

  /**
   * Newest-first scan for (sender, nonce), comparing u32 words: O(window), ~1 ms at the 2^18
   * default, on the main thread. For the query path only; a durable store indexes this properly.
   */
  findBySenderNonce(sender: Uint8Array, nonce: bigint): HistoryEntry | null {
    const key = new Uint32Array(Uint8Array.from(sender).buffer);
    const nonceLo = Number(nonce & 0xffff_ffffn);
    const nonceHi = Number(nonce >> 32n);
    const words = this.words;
    for (let seq = this.newestSeq; seq >= this.oldestSeq; seq--) {
      const w = (seq & this.mask) * BODY_WORDS;
      if (words[w + W_NONCE] !== nonceLo || words[w + W_NONCE + 1] !== nonceHi) continue;
      if (((words[w] >>> 8) & 0xff) > KIND_MINT) continue; // an approval decision: its nonce field is a seq
      let same = true;
      for (let i = 0; i < 8 && same; i++) same = words[w + W_SENDER + i] === key[i];
      if (same) return this.get(seq);
    }
    return null;
  }

  get newestBlock(): number { return this.blocksCount; }

  /** A block still in the window, by number; null when it is older than the window or not cut yet. */
  block(number: number): CommittedBlock | null {
    if (number < 1 || number > this.blocksCount || number <= this.blocksCount - this.blocksMax) return null;
    const block = this.blocks[(number - 1) % this.blocksMax];
    return block?.number === number ? block : null; // a slot never filled since a snapshot restore
  }

  /**
   * The number of the first block whose entries reach `fromSeq` or later: a block in the window,
   * the next block to be cut when `fromSeq` is newer than every entry, or null when `fromSeq` is
   * older than the window (its entries, or its block, are gone from memory).
   */
  firstBlockReaching(fromSeq: number): number | null {
    if (fromSeq > this.newestSeq) return this.blocksCount + 1;
    if (fromSeq < this.oldestSeq) return null;
    const oldest = Math.max(1, this.blocksCount - this.blocksMax + 1);
    for (let n = this.blocksCount; n >= oldest; n--) {
      const b = this.block(n)!;
      if (b.entries > 0 && b.firstSeq <= fromSeq) return b.firstSeq + b.entries > fromSeq ? n : n + 1;
    }
    return null;
  }

  /** The accepted bodies of a block, if all of them are still in the window. */
  blockEntries(block: CommittedBlock): Buffer | null {
    if (block.entries === 0) return Buffer.alloc(0);
    if (block.firstSeq < this.oldestSeq) return null; // overwritten by newer entries
    const out = Buffer.allocUnsafe(block.entries * BODY_BYTES);
    for (let i = 0; i < block.entries; i++) {
      const slot = (block.firstSeq + i) & this.mask;
      this.bodies.copy(out, i * BODY_BYTES, slot * BODY_BYTES, (slot + 1) * BODY_BYTES);
    }
    return out;
  }
}
