/*
 * The input ring: where ingress puts packed records and where verify workers read them in place.
 *
 *   bodies      [ body 0 | body 1 | ... | body N-1 ]   128 B a slot  (SharedArrayBuffer)
 *   signatures  [ sig 0  | sig 1  | ... | sig N-1  ]    64 B a slot  (SharedArrayBuffer, per-tx only)
 *   verdicts    [ v0 v1 ... vN-1 ]                       1 B a slot  (SharedArrayBuffer, Atomics)
 *
 *   cursors, monotonic, never wrapped (slot = cursor & mask):
 *
 *     released <= sequenced <= claimed,   claimed - released <= slotsCount
 *     |  free  |  sequenced, held  |  claimed, awaiting verify+sequence  |  free ...
 *
 * Producer: ingress claims a contiguous cursor range per batch and copies the records in.
 * Verify stage: many consumers, each piscina task owns a disjoint claimed range and stores one
 * verdict byte per slot with Atomics.store. Sequencer: the single consumer that advances
 * `sequenced`, in claim order. Sinks release slots, in order, once a block is durable.
 *
 * The cursors live on the main thread, their only reader and writer (ingress, sequencer and sink
 * hand-off all run there); workers learn slot ranges from task messages, so only verdicts cross
 * threads. slotsCount is a power of two so that `cursor & mask` is the slot.
 * Cost: bulk copies into the ring run at ~90M slots/s here (DESIGN.md section 6), so the copy is
 * ~1% of a core at 1M TPS.
 */

import crypto from 'node:crypto';
import { BODY_BYTES, SIGNATURE_BYTES } from '../core/record.js';
import { VERDICT_UNVERIFIED, type RecordSlots } from '../core/verdict.js';
import type { BlockAuth } from '../core/block.js';

/** What the admit stage notes of a batch's signing; per-tx signatures stay in the ring's own slots. */
export type BatchAuthNote = { mode: 'batch-signed'; signer: Buffer; signature: Buffer } | { mode: 'per-tx' };

export { VERDICT_REJECTED_FLAG, VERDICT_UNVERIFIED, VERDICT_VALID } from '../core/verdict.js';

export interface RingBuffers {
  slotsCount: number;
  bodies: SharedArrayBuffer;
  signatures: SharedArrayBuffer;
  verdicts: SharedArrayBuffer;
}

export function createRingBuffers(slotsCount: number): RingBuffers {
  if (!Number.isInteger(slotsCount) || slotsCount < 2 || (slotsCount & (slotsCount - 1)) !== 0) {
    throw new Error(`ring slotsCount must be a power of two >= 2, got ${slotsCount}`);
  }
  return {
    slotsCount,
    bodies: new SharedArrayBuffer(slotsCount * BODY_BYTES),
    signatures: new SharedArrayBuffer(slotsCount * SIGNATURE_BYTES),
    verdicts: new SharedArrayBuffer(slotsCount),
  };
}

export class InputRing implements RecordSlots {
  readonly slotsCount: number;
  readonly mask: number;
  readonly bodies: Buffer;
  readonly signatures: Buffer;
  readonly verdicts: Uint8Array;
  readonly buffers: RingBuffers;
  /** The bodies as u32 words: fields at 4-aligned offsets are read without DataView or Buffer calls. */
  readonly words: Uint32Array;

  // Who signed each batch still in the ring, by its first cursor (main thread only): the Kafka sink
  // puts it in the block's record so that cluster validators verify the batch again. One entry a
  // batch in the ring, dropped as the ring releases it: bounded by the batches in flight.
  private readonly batchAuth = new Map<number, BatchAuthNote>();
  private claimedCursor = 0;
  private sequencedCursor = 0;
  private releasedCursor = 0;

  constructor(buffers: RingBuffers) {
    this.buffers = buffers;
    this.slotsCount = buffers.slotsCount;
    this.mask = buffers.slotsCount - 1;
    this.bodies = Buffer.from(buffers.bodies);
    this.signatures = Buffer.from(buffers.signatures);
    this.verdicts = new Uint8Array(buffers.verdicts);
    this.words = new Uint32Array(buffers.bodies);
  }

  get claimed(): number { return this.claimedCursor; }
  get sequenced(): number { return this.sequencedCursor; }
  get released(): number { return this.releasedCursor; }
  get slotsInUse(): number { return this.claimedCursor - this.releasedCursor; }
  get slotsFree(): number { return this.slotsCount - this.slotsInUse; }

  /** Claims `count` slots; returns the first cursor, or -1 when the ring cannot hold them now. */
  tryClaim(count: number): number {
    if (count <= 0 || count > this.slotsCount) throw new Error(`claim of ${count} slots is out of range`);
    if (count > this.slotsFree) return -1;
    const start = this.claimedCursor;
    this.claimedCursor += count;
    this.verdictsFill(start, count, VERDICT_UNVERIFIED);
    this.assertOrdered();
    return start;
  }

  /** Copies `count` bodies, each `stride` bytes apart in `source`, into the slots from `start`. */
  writeBodies(start: number, source: Uint8Array, count: number, stride: number): void {
    this.assertClaimed(start, count);
    if (stride === BODY_BYTES) {
      this.copyContiguous(this.bodies, BODY_BYTES, start, source, count);
      return;
    }
    for (let i = 0; i < count; i++) {
      const from = i * stride;
      this.bodies.set(source.subarray(from, from + BODY_BYTES), ((start + i) & this.mask) * BODY_BYTES);
    }
  }

  /** Copies the per-tx signatures (at `offset` within each `stride`-byte record) into the ring. */
  writeSignatures(start: number, source: Uint8Array, count: number, stride: number, offset: number): void {
    this.assertClaimed(start, count);
    for (let i = 0; i < count; i++) {
      const from = i * stride + offset;
      this.signatures.set(source.subarray(from, from + SIGNATURE_BYTES), ((start + i) & this.mask) * SIGNATURE_BYTES);
    }
  }

  /** Notes how the batch claimed at `start` was signed (admit stage); unnoted batches are engine entries. */
  noteAuth(start: number, note: BatchAuthNote): void {
    this.batchAuth.set(start, note);
  }

  /** How the batch at [start, start+count) was signed, with its per-tx signatures copied out. */
  authOf(start: number, count: number): BlockAuth {
    const note = this.batchAuth.get(start);
    if (note === undefined) return { mode: 'none' };
    if (note.mode === 'batch-signed') return note;
    const out = Buffer.allocUnsafe(count * SIGNATURE_BYTES);
    const first = start & this.mask;
    const head = Math.min(count, this.slotsCount - first);
    this.signatures.copy(out, 0, first * SIGNATURE_BYTES, (first + head) * SIGNATURE_BYTES);
    if (head < count) this.signatures.copy(out, head * SIGNATURE_BYTES, 0, (count - head) * SIGNATURE_BYTES);
    return { mode: 'per-tx', signatures: out };
  }

  /** Byte offset of a cursor's body within `bodies`. */
  bodyOffset(cursor: number): number {
    return (cursor & this.mask) * BODY_BYTES;
  }

  verdict(cursor: number): number {
    return Atomics.load(this.verdicts, cursor & this.mask);
  }

  /** Hands the sequencer's progress to the ring: slots up to `cursor` are sequenced. */
  markSequenced(cursor: number): void {
    if (cursor < this.sequencedCursor || cursor > this.claimedCursor) {
      throw new Error(`sequenced cursor ${cursor} outside [${this.sequencedCursor}, ${this.claimedCursor}]`);
    }
    this.sequencedCursor = cursor;
  }

  /** Frees slots up to `cursor` once every consumer (sequencer, sinks) is done with them. */
  release(cursor: number): void {
    if (cursor < this.releasedCursor || cursor > this.sequencedCursor) {
      throw new Error(`released cursor ${cursor} outside [${this.releasedCursor}, ${this.sequencedCursor}]`);
    }
    this.releasedCursor = cursor;
    // Notes are kept in claim order (a Map iterates in insertion order): drop those released.
    for (const start of this.batchAuth.keys()) {
      if (start >= cursor) break;
      this.batchAuth.delete(start);
    }
  }

  /** Copies the bodies of [start, start+count) out as one contiguous Buffer (for sinks, queries). */
  copyBodies(start: number, count: number): Buffer {
    const out = Buffer.allocUnsafe(count * BODY_BYTES);
    const first = start & this.mask;
    const head = Math.min(count, this.slotsCount - first);
    this.bodies.copy(out, 0, first * BODY_BYTES, (first + head) * BODY_BYTES);
    if (head < count) this.bodies.copy(out, head * BODY_BYTES, 0, (count - head) * BODY_BYTES);
    return out;
  }

  private copyContiguous(target: Buffer, slotBytes: number, start: number, source: Uint8Array, count: number): void {
    const first = start & this.mask;
    const head = Math.min(count, this.slotsCount - first);
    target.set(source.subarray(0, head * slotBytes), first * slotBytes);
    if (head < count) target.set(source.subarray(head * slotBytes, count * slotBytes), 0);
  }

  private verdictsFill(start: number, count: number, value: number): void {
    const first = start & this.mask;
    const head = Math.min(count, this.slotsCount - first);
    this.verdicts.fill(value, first, first + head);
    if (head < count) this.verdicts.fill(value, 0, count - head);
  }

  private assertClaimed(start: number, count: number): void {
    if (start < this.sequencedCursor || start + count > this.claimedCursor) {
      throw new Error(`range [${start}, ${start + count}) is not claimed and unsequenced`);
    }
  }

  private assertOrdered(): void {
    const ordered = this.releasedCursor <= this.sequencedCursor && this.sequencedCursor <= this.claimedCursor;
    if (!ordered || this.claimedCursor - this.releasedCursor > this.slotsCount) {
      throw new Error(`ring cursors out of order: released ${this.releasedCursor} sequenced ${this.sequencedCursor} claimed ${this.claimedCursor}`);
    }
  }
}

/**
 * SHA-256 over the bodies of a cursor range, read in place in at most two segments: the batch digest
 * that a batch signer signs (core/batch.ts batchDigest over the same bytes) and that the block hash
 * covers. ~0.5 ms for a full 1 MB batch at this machine's 2 GB/s.
 */
export function bodiesDigest(bodies: Uint8Array, start: number, count: number, slotsCount: number): Buffer {
  const hash = crypto.createHash('sha256');
  for (const [first, n] of segments(start, count, slotsCount)) hash.update(bodies.subarray(first * BODY_BYTES, (first + n) * BODY_BYTES));
  return hash.digest();
}

/** Iterates a cursor range as at most two contiguous slot segments (the ring may wrap inside it). */
export function segments(start: number, count: number, slotsCount: number): Array<[number, number]> {
  const first = start & (slotsCount - 1);
  const head = Math.min(count, slotsCount - first);
  return head < count ? [[first, head], [0, count - head]] : [[first, count]];
}
