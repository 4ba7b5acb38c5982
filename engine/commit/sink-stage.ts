import { FixedQueue } from '../ring/fixed-queue.js';
import type { InputRing } from '../ring/input-ring.js';
import type { CommittedBlock } from '../sequencer/block.js';
import type { Sink } from './sink.js';

export interface SinkStageOptions {
  blockRingSlots: number; // output ring capacity, in blocks
  blocksPerWriteMax: number; // group-commit bound
}

/** Drains committed blocks through the sinks and frees their input-ring slots in order. */
export class SinkStage {
  readonly blocks: FixedQueue<CommittedBlock>;
  private writing = false;
  private lastDurable = 0;
  private failure: Error | null = null;

  constructor(
    private readonly ring: InputRing,
    private readonly sinks: Sink[],
    private readonly options: SinkStageOptions,
    private readonly onDurable: (blocks: CommittedBlock[]) => void,
    private readonly onFailure: (error: Error) => void,
  ) {
    this.blocks = new FixedQueue(options.blockRingSlots);
  }

  get full(): boolean { return this.blocks.full; }
  get lastDurableBlock(): number { return this.lastDurable; }
  get error(): Error | null { return this.failure; }

  push(block: CommittedBlock): void {
    if (!this.blocks.push(block)) throw new Error(`output ring full: the sequencer must check before pushing block ${block.number}`);
    this.pump();
  }

  /** Writes what is waiting, unless a write is under way or the last one failed (see retry). */
  private pump(): void {
    if (this.writing || this.failure !== null || this.blocks.length === 0) return;
    const batch: CommittedBlock[] = [];
    for (let i = 0; i < this.blocks.length && i < this.options.blocksPerWriteMax; i++) batch.push(this.blocks.at(i)!);
    if (this.sinks.length === 0) {
      this.complete(batch);
      return;
    }
    this.writing = true;
    Promise.all(this.sinks.map((sink) => sink.write(batch, this.ring))).then(
      () => { this.writing = false; this.complete(batch); },
      (error: Error) => { this.writing = false; this.failure = error; this.onFailure(error); },
    );
  }

  /** Recovery: blocks up to `number` are already durable (replayed from storage). */
  markDurable(number: number): void {
    if (number !== this.lastDurable + 1 || this.blocks.length > 0) throw new Error(`markDurable(${number}) after block ${this.lastDurable} with ${this.blocks.length} blocks waiting`);
    this.lastDurable = number;
  }

  /** Retries the blocks at the head after a failure; sinks must make a repeated write a no-op. */
  retry(): void {
    this.failure = null;
    this.pump();
  }

  private complete(batch: CommittedBlock[]): void {
    for (const block of batch) {
      const head = this.blocks.shift();
      if (head !== block) throw new Error(`sink stage completed block ${block.number} out of order`);
      if (block.number !== this.lastDurable + 1) throw new Error(`durable blocks not contiguous: ${this.lastDurable} then ${block.number}`);
      this.lastDurable = block.number;
      this.ring.release(block.ringStart + block.txs);
    }
    this.onDurable(batch);
    this.pump();
  }
}
