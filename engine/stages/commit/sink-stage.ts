/*
 * The sink stage: takes committed blocks from the block ring through every sink and frees their
 * input-ring slots, in block order. Each sink is a consumer with a cursor of its own (a lane), as
 * in the Disruptor: it writes groups of the blocks waiting for it, up to writesInFlightMax groups
 * at once, and a block is durable, its slots freed and its ack=durable batches answered, once the
 * slowest lane has it. So one sink never waits for the other's group to finish before it writes
 * its next one: PostgreSQL was idle half the time while Kafka finished groups it had both started
 * (bench/RESULTS.md, session 4).
 *
 *   blocks (FixedQueue)  [ durable? no ........................ | waiting ... ]
 *                          ^ head: oldest block not yet durable
 *   pg lane                        written through ^      (in flight: groups after it)
 *   kafka lane               written through ^
 *
 * A lane may run at most leadBlocksMax blocks ahead of the slowest, which bounds how far the
 * stores can differ after a crash (recovery completes the one behind). A failed group stops its
 * lane; once its writes in flight have settled, retry() sends again from the lane's cursor. Sinks
 * make a repeated write a no-op, so a group that did land is not duplicated.
 */

import { FixedQueue } from '../../ring/fixed-queue.js';
import type { InputRing } from '../../ring/input-ring.js';
import type { CommittedBlock } from '../../core/block.js';
import type { Sink } from './sink.js';

export interface SinkStageOptions {
  blockRingSlotsMax: number; // block ring capacity, in blocks
  blocksPerWriteMax: number; // group-commit bound
  writesInFlightMax: number; // groups one sink writes at once
}

interface Write { last: number; settled: boolean; error: Error | null }

/** One sink's consumer: the blocks it has been handed and the ones it has written. */
interface Lane {
  sink: Sink;
  handedThrough: number; // block number of the last block handed to the sink
  writtenThrough: number; // block number of the last block the sink has, contiguously
  writes: Write[]; // in flight, oldest first
  failure: Error | null;
  retryWanted: boolean;
}

export class SinkStage {
  readonly blocks: FixedQueue<CommittedBlock>;
  private readonly lanes: Lane[];
  private readonly leadBlocksMax: number;
  private lastDurable = 0;
  private failureReported = false;

  constructor(
    private readonly ring: InputRing,
    sinks: Sink[],
    private readonly options: SinkStageOptions,
    private readonly onDurable: (blocks: CommittedBlock[]) => void,
    private readonly onFailure: (error: Error) => void,
    private readonly onWriteTimed: (sink: string, fromNs: bigint, toNs: bigint) => void = () => undefined,
  ) {
    this.blocks = new FixedQueue(options.blockRingSlotsMax);
    this.lanes = sinks.map((sink) => ({ sink, handedThrough: 0, writtenThrough: 0, writes: [], failure: null, retryWanted: false }));
    this.leadBlocksMax = options.writesInFlightMax * options.blocksPerWriteMax;
  }

  get full(): boolean { return this.blocks.full; }
  get lastDurableBlock(): number { return this.lastDurable; }
  get error(): Error | null { return this.lanes.find((l) => l.failure !== null)?.failure ?? null; }

  push(block: CommittedBlock): void {
    if (!this.blocks.push(block)) throw new Error(`block ring full: the sequencer must check before pushing block ${block.number}`);
    if (this.lanes.length === 0) return this.advance(block.number);
    for (const lane of this.lanes) this.pump(lane);
  }

  /** Recovery: blocks up to `number` are already durable (replayed from storage). */
  markDurable(number: number): void {
    if (number !== this.lastDurable + 1 || this.blocks.length > 0) throw new Error(`markDurable(${number}) after block ${this.lastDurable} with ${this.blocks.length} blocks waiting`);
    this.resetTo(number);
  }

  /** Recovery from a snapshot: every block up to `number` is durable. */
  resetDurable(number: number): void {
    if (this.lastDurable !== 0 || this.blocks.length > 0) throw new Error('resetDurable must come before any block');
    this.resetTo(number);
  }

  /** Sends again from each failed lane's cursor, as soon as that lane has no write in flight. */
  retry(): void {
    for (const lane of this.lanes) {
      if (lane.failure === null) continue;
      if (lane.writes.length > 0) { lane.retryWanted = true; continue; }
      lane.retryWanted = false;
      lane.failure = null;
      lane.handedThrough = lane.writtenThrough;
    }
    if (this.error === null) this.failureReported = false;
    for (const lane of this.lanes) this.pump(lane);
  }

  private resetTo(number: number): void {
    this.lastDurable = number;
    for (const lane of this.lanes) lane.handedThrough = lane.writtenThrough = number;
  }

  /** Starts writes of the blocks waiting for this lane, while it has room, no failure, and no lead past the bound. */
  private pump(lane: Lane): void {
    const newest = this.lastDurable + this.blocks.length;
    while (lane.failure === null && lane.writes.length < this.options.writesInFlightMax && lane.handedThrough < newest) {
      const leadEnd = this.lastDurable + this.leadBlocksMax;
      const last = Math.min(newest, lane.handedThrough + this.options.blocksPerWriteMax, leadEnd);
      if (last <= lane.handedThrough) return; // this lane is leadBlocksMax ahead of the slowest
      const group: CommittedBlock[] = [];
      for (let n = lane.handedThrough + 1; n <= last; n++) group.push(this.blocks.at(n - this.lastDurable - 1)!);
      lane.handedThrough = last;
      const write: Write = { last, settled: false, error: null };
      lane.writes.push(write);
      const startedNs = process.hrtime.bigint();
      lane.sink.write(group, this.ring).then(
        () => { this.onWriteTimed(lane.sink.name, startedNs, process.hrtime.bigint()); write.settled = true; this.settle(lane); },
        (error: Error) => { write.settled = true; write.error = error; this.settle(lane); },
      );
    }
  }

  /** Completes a lane's settled writes from its oldest; a failed one stops the lane behind it. */
  private settle(lane: Lane): void {
    while (lane.writes.length > 0 && lane.writes[0].settled) {
      const write = lane.writes.shift()!;
      if (write.error !== null && lane.failure === null) {
        lane.failure = write.error;
        if (!this.failureReported) {
          this.failureReported = true;
          this.onFailure(write.error);
        }
      }
      if (lane.failure === null) lane.writtenThrough = write.last;
    }
    if (lane.failure !== null) {
      if (lane.writes.length === 0 && lane.retryWanted) this.retry();
      return;
    }
    this.advance(Math.min(...this.lanes.map((l) => l.writtenThrough)));
    for (const other of this.lanes) this.pump(other); // the slowest moving frees the others' lead
  }

  /** Every lane has the blocks up to `durableThrough`: free them, in order, and tell the answers. */
  private advance(durableThrough: number): void {
    if (durableThrough <= this.lastDurable) return;
    const done: CommittedBlock[] = [];
    while (this.lastDurable < durableThrough) {
      const block = this.blocks.shift();
      if (block === undefined) throw new Error(`sink stage: block ${this.lastDurable + 1} durable but not waiting`);
      if (block.number !== this.lastDurable + 1) throw new Error(`durable blocks not contiguous: ${this.lastDurable} then ${block.number}`);
      this.lastDurable = block.number;
      this.ring.release(block.ringStart + block.txs);
      done.push(block);
    }
    this.onDurable(done);
  }
}
