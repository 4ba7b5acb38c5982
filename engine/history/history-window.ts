/*
 * The recent history kept in memory for queries (GetTransaction) and for StreamCommits replay: the
 * last `entriesMax` entries and the last `blocksMax` blocks, each a ring overwritten oldest first.
 *
 *   bodies  [ body of seq s & mask | ... ]   entriesMax × 128 B (32 MB at the 2^18 default)
 *   blockOf [ block number per entry ]       entriesMax × 8 B
 *   resultOf[ result code per entry ]        entriesMax × 1 B
 *
 * Older history is served by the PostgreSQL sink, not from memory. Cost: accepted bodies are copied
 * in runs of consecutive slots, ~1-2 ns a byte-slot at ring-copy speed.
 */

import { BODY_BYTES, OFFSET_NONCE, OFFSET_SENDER, PUBLIC_KEY_BYTES } from '../wire/record.js';
import type { CommittedBlock } from '../sequencer/block.js';

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
  private readonly blockOf: Float64Array;
  private readonly resultOf: Uint8Array;
  private readonly blocks: (CommittedBlock | undefined)[];
  private readonly blocksMax: number;
  private nextSeq = 1;
  private blocksCount = 0;

  constructor(entriesMax: number, blocksMax: number) {
    if ((entriesMax & (entriesMax - 1)) !== 0 || entriesMax < 2) throw new Error(`history entriesMax must be a power of two, got ${entriesMax}`);
    this.entriesMax = entriesMax;
    this.mask = entriesMax - 1;
    this.bodies = Buffer.alloc(entriesMax * BODY_BYTES);
    this.blockOf = new Float64Array(entriesMax);
    this.resultOf = new Uint8Array(entriesMax);
    this.blocksMax = blocksMax;
    this.blocks = new Array(blocksMax);
  }

  get oldestSeq(): number { return Math.max(1, this.nextSeq - this.entriesMax); }
  get newestSeq(): number { return this.nextSeq - 1; }

  /** Appends `count` entries whose bodies lie contiguous in `source` from `offset`. */
  appendRun(seq: number, source: Buffer, offset: number, count: number, block: number, results: Uint8Array, resultsAt: number): void {
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

  appendBlock(block: CommittedBlock): void {
    this.blocks[(block.number - 1) % this.blocksMax] = block;
    this.blocksCount = block.number;
  }

  get(seq: number): HistoryEntry | null {
    if (seq < this.oldestSeq || seq > this.newestSeq) return null;
    const slot = seq & this.mask;
    const body = Buffer.from(this.bodies.subarray(slot * BODY_BYTES, (slot + 1) * BODY_BYTES));
    return { seq, block: this.blockOf[slot], result: this.resultOf[slot], body };
  }

  /** Newest-first scan for (sender, nonce); O(window), for the query path only. */
  findBySenderNonce(sender: Uint8Array, nonce: bigint): HistoryEntry | null {
    const senderKey = Buffer.from(sender);
    for (let seq = this.newestSeq; seq >= this.oldestSeq; seq--) {
      const at = (seq & this.mask) * BODY_BYTES;
      if (this.bodies.readBigUInt64LE(at + OFFSET_NONCE) !== nonce) continue;
      if (this.bodies.compare(senderKey, 0, PUBLIC_KEY_BYTES, at + OFFSET_SENDER, at + OFFSET_SENDER + PUBLIC_KEY_BYTES) === 0) return this.get(seq);
    }
    return null;
  }

  /** Blocks still in the window whose entries reach `fromSeq` or later, oldest first. */
  blocksFrom(fromSeq: number): CommittedBlock[] | null {
    const oldestNumber = Math.max(1, this.blocksCount - this.blocksMax + 1);
    const oldest = this.blocks[(oldestNumber - 1) % this.blocksMax];
    if (oldest && fromSeq < oldest.firstSeq && oldestNumber > 1) return null;
    const out: CommittedBlock[] = [];
    for (let n = oldestNumber; n <= this.blocksCount; n++) {
      const block = this.blocks[(n - 1) % this.blocksMax]!;
      if (block.firstSeq + block.entries > fromSeq) out.push(block);
    }
    return out;
  }

  /** The accepted bodies of a block, if all of them are still in the window. */
  blockEntries(block: CommittedBlock): Buffer | null {
    if (block.entries === 0) return Buffer.alloc(0);
    if (block.firstSeq < this.oldestSeq) return null;
    const out = Buffer.allocUnsafe(block.entries * BODY_BYTES);
    for (let i = 0; i < block.entries; i++) {
      const slot = (block.firstSeq + i) & this.mask;
      this.bodies.copy(out, i * BODY_BYTES, slot * BODY_BYTES, (slot + 1) * BODY_BYTES);
    }
    return out;
  }
}
