/*
 * The block ring: blocks the sequencer thread has cut, in order, read on the main
 * thread, which answers their batches and hands them to the history, the listeners and the sinks.
 *
 *   fields   [ number firstSeq entries txs ringStart sequencedAtNs sequencedAtMs verifiedAtNs flags | ... ]  Float64 × 9
 *   hashes   [ hash 32 | prevHash 32 | bodiesDigest 32 | ... ]                                              96 B a slot
 *   results  [ r0 | r1 | ... ]   one result byte per INPUT-ring slot, indexed like the input ring
 *
 *   cursors: released <= published, published - released <= slotsCount   (slot = (number - 1) & mask)
 *
 * The sequencer writes a block's fields and its results, then publishes; the main thread reads up
 * to `published` and moves `released` once the block is durable (or at once without sinks). A
 * batch's results live where its bodies live, so they are kept exactly as long as its input-ring
 * slots. Cost: ~200 B and one cursor store a block; results are written once, copied once.
 */

import { HASH_BYTES } from '../core/block.js';

const F_NUMBER = 0;
const F_FIRST_SEQ = 1;
const F_ENTRIES = 2;
const F_TXS = 3;
const F_RING_START = 4;
const F_SEQUENCED_AT_NS = 5;
const F_SEQUENCED_AT_MS = 6;
const F_VERIFIED_AT_NS = 7;
const F_FLAGS = 8;
const FIELDS = 9;
const HASHES_BYTES = 3 * HASH_BYTES;

export const BLOCK_HAS_APPROVALS = 1; // approval changes follow as a message (rare, may allocate)

export interface BlockRingBuffers {
  slotsCount: number;
  inputSlotsCount: number;
  fields: SharedArrayBuffer;
  hashes: SharedArrayBuffer;
  results: SharedArrayBuffer;
}

export function createBlockRingBuffers(slotsCount: number, inputSlotsCount: number): BlockRingBuffers {
  if (slotsCount < 2 || (slotsCount & (slotsCount - 1)) !== 0) throw new Error(`block ring slotsCount must be a power of two >= 2, got ${slotsCount}`);
  return {
    slotsCount, inputSlotsCount,
    fields: new SharedArrayBuffer(slotsCount * FIELDS * 8),
    hashes: new SharedArrayBuffer(slotsCount * HASHES_BYTES),
    results: new SharedArrayBuffer(inputSlotsCount),
  };
}

/** A block as the ring carries it; `results` is filled by the reader. */
export interface BlockHeader {
  number: number;
  firstSeq: number;
  entries: number;
  txs: number;
  ringStart: number;
  sequencedAtNs: number;
  sequencedAtMs: number;
  verifiedAtNs: number;
  flags: number;
  hash: Buffer;
  prevHash: Buffer;
  bodiesDigest: Buffer;
}

export class BlockRing {
  readonly slotsCount: number;
  private readonly mask: number;
  private readonly inputMask: number;
  private readonly fields: Float64Array;
  private readonly hashes: Buffer;
  private readonly results: Uint8Array;

  constructor(readonly buffers: BlockRingBuffers) {
    this.slotsCount = buffers.slotsCount;
    this.mask = buffers.slotsCount - 1;
    this.inputMask = buffers.inputSlotsCount - 1;
    this.fields = new Float64Array(buffers.fields);
    this.hashes = Buffer.from(buffers.hashes);
    this.results = new Uint8Array(buffers.results);
  }

  /** The sequencer thread: writes block `h.number` (published by the caller afterwards). */
  write(h: BlockHeader, results: Uint8Array): void {
    if (results.length !== h.txs) throw new Error(`block ${h.number}: ${results.length} results for ${h.txs} txs`);
    const slot = (h.number - 1) & this.mask;
    const f = slot * FIELDS;
    this.fields[f + F_NUMBER] = h.number;
    this.fields[f + F_FIRST_SEQ] = h.firstSeq;
    this.fields[f + F_ENTRIES] = h.entries;
    this.fields[f + F_TXS] = h.txs;
    this.fields[f + F_RING_START] = h.ringStart;
    this.fields[f + F_SEQUENCED_AT_NS] = h.sequencedAtNs;
    this.fields[f + F_SEQUENCED_AT_MS] = h.sequencedAtMs;
    this.fields[f + F_VERIFIED_AT_NS] = h.verifiedAtNs;
    this.fields[f + F_FLAGS] = h.flags;
    h.hash.copy(this.hashes, slot * HASHES_BYTES);
    h.prevHash.copy(this.hashes, slot * HASHES_BYTES + HASH_BYTES);
    h.bodiesDigest.copy(this.hashes, slot * HASHES_BYTES + 2 * HASH_BYTES);
    const first = h.ringStart & this.inputMask;
    const head = Math.min(h.txs, this.inputMask + 1 - first);
    this.results.set(results.subarray(0, head), first);
    if (head < h.txs) this.results.set(results.subarray(head), 0);
  }

  /** The main thread: reads published block `number`, its results copied out (txs bytes). */
  read(number: number): { header: BlockHeader; results: Uint8Array } {
    const slot = (number - 1) & this.mask;
    const f = slot * FIELDS;
    if (this.fields[f + F_NUMBER] !== number) throw new Error(`block ring slot ${slot} holds block ${this.fields[f + F_NUMBER]}, expected ${number}`);
    const at = slot * HASHES_BYTES;
    const header: BlockHeader = {
      number, firstSeq: this.fields[f + F_FIRST_SEQ], entries: this.fields[f + F_ENTRIES], txs: this.fields[f + F_TXS],
      ringStart: this.fields[f + F_RING_START], sequencedAtNs: this.fields[f + F_SEQUENCED_AT_NS], sequencedAtMs: this.fields[f + F_SEQUENCED_AT_MS],
      verifiedAtNs: this.fields[f + F_VERIFIED_AT_NS], flags: this.fields[f + F_FLAGS],
      hash: Buffer.from(this.hashes.subarray(at, at + HASH_BYTES)),
      prevHash: Buffer.from(this.hashes.subarray(at + HASH_BYTES, at + 2 * HASH_BYTES)),
      bodiesDigest: Buffer.from(this.hashes.subarray(at + 2 * HASH_BYTES, at + HASHES_BYTES)),
    };
    const results = new Uint8Array(header.txs);
    const first = header.ringStart & this.inputMask;
    const head = Math.min(header.txs, this.inputMask + 1 - first);
    results.set(this.results.subarray(first, first + head), 0);
    if (head < header.txs) results.set(this.results.subarray(0, header.txs - head), head);
    return { header, results };
  }
}
