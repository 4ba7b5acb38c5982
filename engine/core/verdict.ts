/*
 * The verdict byte a verify worker stores for each input-ring slot (Atomics), read by the sequencer:
 * 0 until verified, 1 when the record passed every stateless check, else 0x80 | its result code.
 * A result code is never 0 (core/result.ts), so a rejection never reads as unverified.
 */

export const VERDICT_UNVERIFIED = 0;
export const VERDICT_VALID = 1;
export const VERDICT_REJECTED_FLAG = 0x80;

/**
 * What the sequencer reads of a batch's records: the bodies as bytes and as u32 words, and one
 * verdict per slot. The input ring is one; recovery builds another over the stored bodies.
 * slotsCount is a power of two so that `cursor & mask` is the slot.
 */
export interface RecordSlots {
  readonly slotsCount: number;
  readonly mask: number;
  readonly bodies: Buffer;
  readonly words: Uint32Array;
  verdict(cursor: number): number;
}
