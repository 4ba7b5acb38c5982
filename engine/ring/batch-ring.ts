/*
 * The batch ring: one descriptor per admitted batch, in admission order, between ingress (producer),
 * the verify workers (who mark a batch verified) and the sequencer thread (the one consumer).
 *
 *   states   [ s0 | s1 | ... ]           Int32, FREE -> ADMITTED -> VERIFIED -> FREE (Atomics)
 *   chunks   [ c0 | c1 | ... ]           Int32, verify tasks still running on the batch
 *   fields   [ start count flags verifiedAtNs | ... ]   Float64 × 4 a slot
 *   digests  [ 32 B | 32 B | ... ]       SHA-256 of the bodies, when a worker computed it
 *
 *   cursors: sequenced <= admitted, admitted - sequenced <= slotsCount   (slot = batch & mask)
 *
 * Ingress writes a descriptor's fields, then stores ADMITTED; the worker that finishes a batch's
 * last verify task stores VERIFIED (compare-and-swap: a batch is verified once); the sequencer
 * reads the fields after seeing VERIFIED and frees the slot before it advances `sequenced`. A
 * store of a state with Atomics orders the plain field writes before it for the reader that loads
 * it. Cost: a few hundred bytes and three atomic operations a batch, nothing per record.
 */

import { HASH_BYTES } from '../core/block.js';

export const BATCH_FREE = 0;
export const BATCH_ADMITTED = 1;
export const BATCH_VERIFIED = 2;

/** Flags of a descriptor. */
export const BATCH_DIGEST_SET = 1; // a worker wrote the bodies' digest (batch-signed)

const F_START = 0;
const F_COUNT = 1;
const F_FLAGS = 2;
const F_VERIFIED_AT_NS = 3;
const FIELDS = 4;

export interface BatchRingBuffers {
  slotsCount: number;
  states: SharedArrayBuffer;
  chunks: SharedArrayBuffer;
  fields: SharedArrayBuffer;
  digests: SharedArrayBuffer;
}

export function createBatchRingBuffers(slotsCount: number): BatchRingBuffers {
  if (slotsCount < 2 || (slotsCount & (slotsCount - 1)) !== 0) throw new Error(`batch ring slotsCount must be a power of two >= 2, got ${slotsCount}`);
  return {
    slotsCount,
    states: new SharedArrayBuffer(slotsCount * 4),
    chunks: new SharedArrayBuffer(slotsCount * 4),
    fields: new SharedArrayBuffer(slotsCount * FIELDS * 8),
    digests: new SharedArrayBuffer(slotsCount * HASH_BYTES),
  };
}

export interface BatchDescriptor { start: number; count: number; flags: number; verifiedAtNs: number }

export class BatchRing {
  readonly slotsCount: number;
  readonly mask: number;
  readonly states: Int32Array;
  private readonly chunks: Int32Array;
  private readonly fields: Float64Array;
  readonly digests: Uint8Array;

  constructor(readonly buffers: BatchRingBuffers) {
    this.slotsCount = buffers.slotsCount;
    this.mask = buffers.slotsCount - 1;
    this.states = new Int32Array(buffers.states);
    this.chunks = new Int32Array(buffers.chunks);
    this.fields = new Float64Array(buffers.fields);
    this.digests = new Uint8Array(buffers.digests);
  }

  /** Ingress: fills a free slot and marks it admitted (or verified, for engine entries). */
  admit(batch: number, start: number, count: number, chunks: number, verified: boolean): void {
    const slot = batch & this.mask;
    if (Atomics.load(this.states, slot) !== BATCH_FREE) throw new Error(`batch ring slot ${slot} (batch ${batch}) is not free`);
    const f = slot * FIELDS;
    this.fields[f + F_START] = start;
    this.fields[f + F_COUNT] = count;
    this.fields[f + F_FLAGS] = 0;
    this.fields[f + F_VERIFIED_AT_NS] = verified ? Number(process.hrtime.bigint()) : 0;
    Atomics.store(this.chunks, slot, chunks);
    Atomics.store(this.states, slot, verified ? BATCH_VERIFIED : BATCH_ADMITTED);
    Atomics.notify(this.states, slot);
  }

  /** A verify worker: the range it was given must lie inside the admitted batch of `slot`. */
  checkTask(slot: number, start: number, count: number): void {
    const f = slot * FIELDS;
    const first = this.fields[f + F_START];
    const state = Atomics.load(this.states, slot);
    if (state !== BATCH_ADMITTED || start < first || start + count > first + this.fields[f + F_COUNT]) {
      throw new Error(`verify task [${start}, ${start + count}) is outside batch slot ${slot} (state ${state}, [${first}, ${first + this.fields[f + F_COUNT]}))`);
    }
  }

  /** A verify worker finished one task of the batch in `slot`; the last one marks it verified. */
  finishTask(slot: number, digest: Uint8Array | null): void {
    const left = Atomics.sub(this.chunks, slot, 1) - 1;
    if (left < 0) throw new Error(`batch slot ${slot} finished more verify tasks than it was given`);
    if (digest !== null) {
      this.digests.set(digest, slot * HASH_BYTES);
      this.fields[slot * FIELDS + F_FLAGS] = BATCH_DIGEST_SET;
    }
    if (left > 0) return;
    this.fields[slot * FIELDS + F_VERIFIED_AT_NS] = Number(process.hrtime.bigint());
    const was = Atomics.compareExchange(this.states, slot, BATCH_ADMITTED, BATCH_VERIFIED);
    if (was !== BATCH_ADMITTED) throw new Error(`batch slot ${slot} was ${was} when its last verify task finished, not admitted`);
    Atomics.notify(this.states, slot);
  }

  /** The sequencer: the ring range of an admitted batch (call only after seeing BATCH_ADMITTED or later). */
  span(slot: number): { start: number; count: number } {
    const f = slot * FIELDS;
    return { start: this.fields[f + F_START], count: this.fields[f + F_COUNT] };
  }

  /** The sequencer: reads a verified descriptor (call only after seeing BATCH_VERIFIED). */
  read(slot: number): BatchDescriptor {
    const f = slot * FIELDS;
    return { start: this.fields[f + F_START], count: this.fields[f + F_COUNT], flags: this.fields[f + F_FLAGS], verifiedAtNs: this.fields[f + F_VERIFIED_AT_NS] };
  }

  /** The sequencer: the slot is consumed; ingress may reuse it once `sequenced` has moved past. */
  free(slot: number): void {
    const was = Atomics.compareExchange(this.states, slot, BATCH_VERIFIED, BATCH_FREE);
    if (was !== BATCH_VERIFIED) throw new Error(`batch slot ${slot} freed while ${was}, not verified`);
  }
}

