/*
 * The sink stage: takes committed blocks from the block ring through every sink and frees their
 * input-ring slots, in block order. Up to writesInFlightMax groups are in flight at once, so the
 * engine encodes group N+1 while PostgreSQL copies and commits group N; each sink keeps its own
 * writes in order, and groups complete strictly in order here whatever order they settle in.
 *
 *   blocks (FixedQueue)  [ in write 1 | in write 2 | waiting ... ]
 *                          ^ head: the oldest block not yet durable
 *
 * A failed group stops new writes; once every write in flight has settled, retry() sends again
 * from the head. Sinks make a repeated write a no-op, so a group that did land is not duplicated.
 */

import { FixedQueue } from '../../ring/fixed-queue.js';
import type { InputRing } from '../../ring/input-ring.js';
import type { CommittedBlock } from '../../core/block.js';
import type { Sink } from './sink.js';

export interface SinkStageOptions {
  blockRingSlotsMax: number; // block ring capacity, in blocks
  blocksPerWriteMax: number; // group-commit bound
  writesInFlightMax: number; // groups written at once
}

interface Write { blocks: CommittedBlock[]; settled: boolean; error: Error | null }

export class SinkStage {
  readonly blocks: FixedQueue<CommittedBlock>;
  private readonly writes: Write[] = [];
  private blocksInWrites = 0;
  private lastDurable = 0;
  private failure: Error | null = null;
  private retryWanted = false;

  constructor(
    private readonly ring: InputRing,
    private readonly sinks: Sink[],
    private readonly options: SinkStageOptions,
    private readonly onDurable: (blocks: CommittedBlock[]) => void,
    private readonly onFailure: (error: Error) => void,
    private readonly onWriteTimed: (sink: string, fromNs: bigint, toNs: bigint) => void = () => undefined,
  ) {
    this.blocks = new FixedQueue(options.blockRingSlotsMax);
  }

  get full(): boolean { return this.blocks.full; }
  get lastDurableBlock(): number { return this.lastDurable; }
  get error(): Error | null { return this.failure; }

  push(block: CommittedBlock): void {
    if (!this.blocks.push(block)) throw new Error(`block ring full: the sequencer must check before pushing block ${block.number}`);
    this.pump();
  }

  /** Recovery: blocks up to `number` are already durable (replayed from storage). */
  markDurable(number: number): void {
    if (number !== this.lastDurable + 1 || this.blocks.length > 0) throw new Error(`markDurable(${number}) after block ${this.lastDurable} with ${this.blocks.length} blocks waiting`);
    this.lastDurable = number;
  }

  /** Recovery from a snapshot: every block up to `number` is durable. */
  resetDurable(number: number): void {
    if (this.lastDurable !== 0 || this.blocks.length > 0) throw new Error('resetDurable must come before any block');
    this.lastDurable = number;
  }

  /** Sends again from the head after a failure, as soon as no write is in flight. */
  retry(): void {
    if (this.writes.length > 0) { this.retryWanted = true; return; }
    this.retryWanted = false;
    this.failure = null;
    this.pump();
  }

  /** Starts writes for waiting blocks while there is room and no failure. */
  private pump(): void {
    while (this.failure === null && this.writes.length < this.options.writesInFlightMax && this.blocksInWrites < this.blocks.length) {
      const group: CommittedBlock[] = [];
      for (let i = this.blocksInWrites; i < this.blocks.length && group.length < this.options.blocksPerWriteMax; i++) group.push(this.blocks.at(i)!);
      this.blocksInWrites += group.length;
      if (this.sinks.length === 0) {
        this.writes.push({ blocks: group, settled: true, error: null });
        this.settle();
        continue;
      }
      const write: Write = { blocks: group, settled: false, error: null };
      this.writes.push(write);
      const startedNs = process.hrtime.bigint();
      const timed = (sink: Sink) => sink.write(group, this.ring).then(() => this.onWriteTimed(sink.name, startedNs, process.hrtime.bigint()));
      Promise.all(this.sinks.map(timed)).then(
        () => { write.settled = true; this.settle(); },
        (error: Error) => { write.settled = true; write.error = error; this.settle(); },
      );
    }
  }

  /** Completes settled writes from the oldest; a failed one stops everything behind it. */
  private settle(): void {
    while (this.writes.length > 0 && this.writes[0].settled) {
      const write = this.writes[0];
      if (write.error !== null && this.failure === null) {
        this.failure = write.error;
        this.onFailure(write.error);
      }
      if (this.failure !== null) {
        this.writes.shift(); // its blocks stay at the head of the queue for the retry
        this.blocksInWrites -= write.blocks.length;
        continue;
      }
      this.writes.shift();
      this.blocksInWrites -= write.blocks.length;
      this.complete(write.blocks);
    }
    if (this.failure !== null && this.writes.length === 0) {
      this.blocksInWrites = 0;
      if (this.retryWanted) this.retry();
      return;
    }
    this.pump();
  }

  private complete(group: CommittedBlock[]): void {
    for (const block of group) {
      const head = this.blocks.shift();
      if (head !== block) throw new Error(`sink stage completed block ${block.number} out of order`);
      if (block.number !== this.lastDurable + 1) throw new Error(`durable blocks not contiguous: ${this.lastDurable} then ${block.number}`);
      this.lastDurable = block.number;
      this.ring.release(block.ringStart + block.txs);
    }
    this.onDurable(group);
  }
}
