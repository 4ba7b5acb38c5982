/*
 * Replays one stored block through the core sequencer, as the workers once judged it: its bodies
 * and verdicts (from the stored results) laid into slots of their own, not the live input ring.
 * The rebuilt block must match the stored one hash for hash, or the engine refuses to start.
 */

import crypto from 'node:crypto';
import { BODY_BYTES } from '../core/record.js';
import { isAccepted } from '../core/result.js';
import { VERDICT_REJECTED_FLAG, VERDICT_VALID, type RecordSlots } from '../core/verdict.js';
import type { CommittedBlock } from '../core/block.js';
import type { Sequencer } from '../core/sequencer.js';
import type { StoredBlock } from '../stages/commit/stored-block.js';

/**
 * A block's bodies as record slots (cursor i = the block's i-th body), in aligned memory of their
 * own (a record's bodies may be a view at any offset of a Kafka or PostgreSQL buffer), with a
 * verdict a slot for the caller to fill.
 */
export class BlockSlots implements RecordSlots {
  readonly slotsCount: number;
  readonly mask: number;
  readonly bodies: Buffer;
  readonly words: Uint32Array;
  readonly verdicts: Uint8Array;

  constructor(bodies: Buffer, txs: number) {
    let slots = 2;
    while (slots < txs) slots *= 2;
    this.slotsCount = slots;
    this.mask = slots - 1;
    const memory = new ArrayBuffer(slots * BODY_BYTES);
    this.bodies = Buffer.from(memory);
    this.words = new Uint32Array(memory);
    bodies.copy(this.bodies, 0, 0, txs * BODY_BYTES);
    this.verdicts = new Uint8Array(slots);
  }

  verdict(cursor: number): number { return this.verdicts[cursor & this.mask]; }
}

/** A stored block's bodies with the verdicts its stored results say the workers gave. */
export class StoredSlots extends BlockSlots {
  constructor(stored: StoredBlock) {
    super(stored.bodies, stored.txs);
    for (let i = 0; i < stored.txs; i++) {
      const code = stored.results[i];
      this.verdicts[i] = isAccepted(code) ? VERDICT_VALID : VERDICT_REJECTED_FLAG | code;
    }
  }
}

export function replayBlock(sequencer: Sequencer, stored: StoredBlock): { block: CommittedBlock; slots: StoredSlots } {
  // The block hash covers the digest, not the bodies: check that the bodies rebuilt from storage
  // are the ones that were hashed, or a wrong column would replay into a different state.
  if (!crypto.createHash('sha256').update(stored.bodies).digest().equals(stored.bodiesDigest)) {
    throw new Error(`recovery: the stored bodies of block ${stored.number} do not match its bodies digest`);
  }
  const slots = new StoredSlots(stored);
  const block = sequencer.sequenceBatch(slots, 0, stored.txs, stored.bodiesDigest, stored.results);
  const same = block.number === stored.number && block.firstSeq === stored.firstSeq && block.hash.equals(stored.hash) && Buffer.from(block.results).equals(stored.results);
  if (!same) throw new Error(`recovery: block ${stored.number} does not replay to its stored hash (got block ${block.number}, hash ${block.hash.toString('hex')}); the durable history differs from what this engine computes (another history in the same database, or a different issuer set)`);
  return { block, slots };
}
