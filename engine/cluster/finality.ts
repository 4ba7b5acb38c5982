/*
 * Finality (issue 13): a block is final when QUORUM (3) of the 4 validators attested the same block
 * hash at its height. Any two sets of 3 of 4 share 2 validators, and an honest validator never
 * signs two hashes at one height, so with at most one faulty validator two different blocks can
 * never both be final at one height. Finality is counted on attestations only, never on Kafka's
 * acks. final_height is the end of the contiguous final prefix: every block up to it is final.
 *
 * Bounded: heights more than HEIGHTS_OPEN_MAX above final_height are refused (an attestation that
 * far ahead is a faulty validator's), and final heights are forgotten past FINAL_KEPT.
 */

import type { Attestation } from './attestation.js';
import { HeightWaiters } from './height-waiters.js';

export const QUORUM = 3;
export const VALIDATORS = 4;
const HEIGHTS_OPEN_MAX = 100_000;
const FINAL_KEPT = 65_536;

export type AttestationFault = { fault: 'double_sign' | 'too_far_ahead'; why: string };

export class Finality {
  private readonly votes = new Map<number, Map<string, Set<number>>>(); // height -> hash hex -> validators
  private readonly signedBy = new Map<number, Map<number, Attestation>>(); // height -> validator -> its attestation
  private readonly finalHashes = new Map<number, string>();
  private finalHeightValue = 0;
  private readonly waiters = new HeightWaiters();

  get finalHeight(): number { return this.finalHeightValue; }
  /** The final block hash at `height` (hex), while it is among the recent ones. */
  finalHash(height: number): string | undefined { return this.finalHashes.get(height)?.slice(0, 64); }
  /** The attestations counted at `height` so far, one a validator. */
  attestationsAt(height: number): Attestation[] { return [...(this.signedBy.get(height)?.values() ?? [])]; }

  /** Whether `validator`'s attestation at `height` was counted already (it arrives by the topic and from the validator itself). */
  has(validator: number, height: number): boolean { return this.signedBy.get(height)?.has(validator) ?? false; }

  /** Counts a checked attestation; returns a fault when the validator contradicts itself. */
  add(a: Attestation): AttestationFault | null {
    if (a.height <= this.finalHeightValue - FINAL_KEPT) return null;
    if (a.height > this.finalHeightValue + HEIGHTS_OPEN_MAX) return { fault: 'too_far_ahead', why: `validator ${a.validator} attested height ${a.height}, final height is ${this.finalHeightValue}` };
    // A vote is for the pair: a validator that attests the right block with a wrong state hash
    // counts towards nothing.
    const hash = a.blockHash.toString('hex') + a.stateHash.toString('hex');
    const mine = this.signedBy.get(a.height) ?? new Map<number, Attestation>();
    this.signedBy.set(a.height, mine);
    const before = mine.get(a.validator);
    if (before !== undefined) {
      const same = before.blockHash.equals(a.blockHash) && before.stateHash.equals(a.stateHash);
      return same ? null : { fault: 'double_sign', why: `validator ${a.validator} attested two different blocks or states at height ${a.height}: ${before.blockHash.toString('hex')} and ${a.blockHash.toString('hex')}` };
    }
    mine.set(a.validator, a);
    if (this.finalHashes.has(a.height)) return null;
    const byHash = this.votes.get(a.height) ?? new Map<string, Set<number>>();
    this.votes.set(a.height, byHash);
    const voters = byHash.get(hash) ?? new Set<number>();
    byHash.set(hash, voters);
    voters.add(a.validator);
    if (voters.size >= QUORUM) this.finalize(a.height, hash);
    return null;
  }

  /** Resolves once final_height reaches `height`; rejects after `timeoutMs`. */
  waitFinal(height: number, timeoutMs: number): Promise<void> {
    return this.waiters.wait(height, timeoutMs, `not final after ${timeoutMs} ms`);
  }

  private finalize(height: number, hash: string): void {
    this.finalHashes.set(height, hash);
    this.votes.delete(height);
    while (this.finalHashes.has(this.finalHeightValue + 1)) {
      this.finalHeightValue++;
      const h = this.finalHeightValue;
      this.finalHashes.delete(h - FINAL_KEPT);
      this.signedBy.delete(h - FINAL_KEPT);
    }
    this.waiters.reached(this.finalHeightValue);
  }
}
