/*
 * The block reader: the main thread's consumer of the block ring. It waits on the sequencer's
 * blocksPublished cursor (its barrier) with Atomics.waitAsync, so the event loop runs on while no
 * block is ready, and hands every published block, in order, to one consumer function. A block
 * that announced approval changes waits until their message from the sequencer thread arrives.
 * Cost: one wake-up per group of blocks, ~200 B read and the results copied once per block.
 */

import type { ApprovalChange, CommittedBlock } from '../../core/block.js';
import { BLOCK_HAS_APPROVALS, BlockRing } from '../../ring/block-ring.js';
import type { Cursor } from '../../ring/cursor.js';

// A wait on the cursor returns after this long even without a notify (a lost wake-up costs this).
const WAIT_MS = 50;

export class BlockReader {
  private lastRead: number;
  private running = false;
  private wake: (() => void) | null = null;

  constructor(private readonly blocks: BlockRing, private readonly published: Cursor, private readonly approvalsOf: (number: number) => ApprovalChange[] | undefined,
    private readonly consume: (block: CommittedBlock) => void, startAfter: number) {
    this.lastRead = startAfter;
  }

  get lastReadBlock(): number { return this.lastRead; }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  /** Stops waiting; readAvailable() still reads what was published. */
  stop(): void {
    this.running = false;
    this.wake?.();
  }

  /** The approval changes of a waiting block arrived. */
  approvalsArrived(): void { this.wake?.(); }

  /** Reads every published block that can be read now; returns how many. */
  readAvailable(): number {
    const published = this.published.value;
    let read = 0;
    while (this.lastRead < published) {
      const number = this.lastRead + 1;
      const { header, results } = this.blocks.read(number);
      let approvals: ApprovalChange[] | null = null;
      if (header.flags & BLOCK_HAS_APPROVALS) {
        const changes = this.approvalsOf(number);
        if (changes === undefined) break; // their message is on its way
        approvals = changes;
      }
      this.lastRead = number;
      read++;
      this.consume({
        number, firstSeq: header.firstSeq, entries: header.entries, txs: header.txs, ringStart: header.ringStart, results,
        bodiesDigest: header.bodiesDigest, prevHash: header.prevHash, hash: header.hash,
        sequencedAtNs: BigInt(Math.round(header.sequencedAtNs)), verifiedAtNs: BigInt(Math.round(header.verifiedAtNs)),
        sequencedAtMs: header.sequencedAtMs, approvals,
      });
    }
    return read;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const seen = this.published.value;
      this.readAvailable();
      if (this.lastRead < seen) {
        // A block waits for its approval changes: sleep until they arrive (or a timeout).
        await new Promise<void>((resolve) => { this.wake = resolve; setTimeout(resolve, WAIT_MS); });
        this.wake = null;
        continue;
      }
      await this.published.changeFrom(seen, WAIT_MS);
    }
  }
}
