/*
 * The wiring of the path of a batch (DESIGN.md section 1). Each stage lives in engine/stages/; each
 * hand-off is a ring with cursors (engine/ring/), so no stage calls another back:
 *
 *   admit   (main)        claim input-ring slots, copy the records in, fill a batch-ring slot (stages/admit/admit-stage.ts)
 *   verify  (workers)     judge every slot in place; the last task marks the batch VERIFIED
 *   sequence (its thread) wait for the head batch VERIFIED, apply it, publish a block
 *   answer  (main)        the block reader: answer ack=ordered, record history, tell listeners
 *   commit  (main, I/O)   write blocks to the sinks; release ring slots; answer ack=durable
 *
 * Everything in between is bounded: input ring (slots), batch ring and in-flight queue (batches),
 * block ring (blocks). A submission that does not fit is answered RESOURCE_EXHAUSTED at once.
 */

import { entrySlotsReserved, sequencerOptions, type AckMode, type EngineConfig } from './config.js';
import type { CommittedBlock } from './core/block.js';
import type { AccountState } from './core/accounts.js';
import { Sequencer, type SequencerState } from './core/sequencer.js';
import { RotatingKeys, type KeyRotation } from './core/rotating-keys.js';
import { InputRing } from './ring/input-ring.js';
import { BatchRing } from './ring/batch-ring.js';
import { BlockRing } from './ring/block-ring.js';
import { createPipelineBuffers, pipelineCursors, type PipelineCursors } from './ring/shared-memory.js';
import { EngineMetrics } from './metrics/metrics.js';
import type { BatchAnswer, BatchSubmission } from './stages/admit/admission.js';
import { AdmitStage } from './stages/admit/admit-stage.js';
import { VerifyStage } from './stages/verify/verify-stage.js';
import { SequenceStage } from './stages/sequence/sequence-stage.js';
import { BlockReader } from './stages/answer/block-reader.js';
import { Answers, type PipelineCounters } from './stages/answer/answers.js';
import { HistoryWindow } from './stages/history/history-window.js';
import { SinkStage } from './stages/commit/sink-stage.js';
import type { Sink } from './stages/commit/sink.js';
import type { SnapshotWriter } from './stages/commit/pg/snapshots.js';
import type { FencedError } from './stages/commit/writer-term.js';

export type { BatchAnswer, BatchSubmission, FailureCode } from './stages/admit/admission.js';

/** Events an operator wants to know about; the CLI logs them. */
export interface PipelineHooks {
  onFatal?: (error: Error) => void;
  onSinkDown?: (error: Error) => void; // first failed write of an outage
  onSinkUp?: () => void; // the first write that succeeds after it
  onFenced?: (error: FencedError) => void; // another engine took the history: this one never writes again
  log?: (level: 'info' | 'warn', message: string, fields?: Record<string, unknown>) => void; // services' events
}

/** Where the pipeline starts: genesis, or the state and history that recovery rebuilt. */
export interface PipelineStart { state: SequencerState | null; history: HistoryWindow | null; snapshots?: SnapshotWriter | null }

export class Pipeline {
  readonly ring: InputRing;
  readonly history: HistoryWindow;
  readonly metrics: EngineMetrics;
  private readonly batches: BatchRing;
  private readonly cursors: PipelineCursors;
  private readonly verifyStage: VerifyStage;
  private readonly sequenceStage: SequenceStage;
  private readonly reader: BlockReader;
  private readonly sinkStage: SinkStage;
  private readonly answers: Answers;
  private readonly admit: AdmitStage;
  private closing = false;
  private readonly snapshots: SnapshotWriter | null;
  private readonly trustedSigners: RotatingKeys;

  constructor(private readonly config: EngineConfig, private readonly sinks: Sink[] = [], private readonly hooks: PipelineHooks = {}, start: PipelineStart = { state: null, history: null }) {
    const buffers = createPipelineBuffers({ ringSlotsMax: config.ringSlotsMax, batchesInFlightMax: config.batchesInFlightMax, blockRingSlotsMax: config.blockRingSlotsMax });
    this.ring = new InputRing(buffers.input);
    this.trustedSigners = new RotatingKeys(config.trustedSigners, 'trusted signer');
    this.batches = new BatchRing(buffers.batches);
    this.cursors = pipelineCursors(buffers);
    const startBlock = start.state?.block ?? 0;
    this.cursors.blocksPublished.publish(startBlock);
    this.cursors.blocksReleased.publish(startBlock);
    this.history = start.history ?? new HistoryWindow(config.historyEntriesMax, config.historyBlocksMax);
    this.verifyStage = new VerifyStage(this.ring, this.batches, {
      workers: config.workers, batchesInFlightMax: config.batchesInFlightMax, perTxTaskTxsMax: config.perTxTaskTxsMax,
      issuers: config.issuers, keyCacheEntriesMax: config.keyCacheEntriesMax, nice: config.verifyWorkerNice,
    });
    const snapshots = start.snapshots ?? null;
    this.snapshots = snapshots;
    this.sequenceStage = new SequenceStage(buffers, {
      sequencer: sequencerOptions(config),
      invariantCheckEveryBlocks: config.invariantCheckEveryBlocks,
      snapshotEveryBlocks: snapshots ? config.snapshotEveryBlocks : 0,
      snapshotEveryTxs: snapshots ? config.snapshotEveryTxs : 0,
      snapshotEveryMs: snapshots ? config.snapshotEveryMs : 0,
    }, start.state, {
      onApprovals: () => this.reader.approvalsArrived(),
      onSnapshot: (state) => { if (snapshots) { snapshots.write(state); void snapshots.idle().then(() => this.sequenceStage.snapshotWritten()); } },
      onFatal: (error) => this.fatal(error),
    });
    this.metrics = new EngineMetrics({
      ringSlotsUsed: () => this.ring.slotsInUse, ringSlotsMax: this.ring.slotsCount,
      batchesInFlight: () => this.answers.inFlight, blockRingBlocks: () => this.cursors.blocksPublished.value - this.cursors.blocksReleased.value,
      workerUtilization: () => this.verifyStage.utilization,
      sinkLagBlocks: () => this.reader.lastReadBlock - this.sinkStage.lastDurableBlock,
      approvalsPending: () => this.answers.approvalsPending,
    });
    this.answers = new Answers(config.batchesInFlightMax, config.blockRingSlotsMax, this.metrics, start.state?.pending.length ?? 0);
    if (start.state) this.answers.startAt(start.state.block, start.state.lastHash, start.state.nextSeq);
    this.sinkStage = new SinkStage(this.ring, sinks, { blockRingSlotsMax: config.blockRingSlotsMax, blocksPerWriteMax: config.blocksPerWriteMax, writesInFlightMax: config.sinkWritesInFlightMax },
      (blocks) => this.onDurable(blocks), (error) => this.answers.sinkFailed(error, this.hooks, () => this.sinkStage.retry()),
      (sink, fromNs, toNs) => this.metrics.record(sink === 'pg' ? 'pg_write' : 'kafka_ack', fromNs, toNs));
    this.sinkStage.resetDurable(startBlock);
    this.reader = new BlockReader(new BlockRing(buffers.blocks), this.cursors.blocksPublished, (n) => this.sequenceStage.takeApprovals(n), (block) => this.onSequenced(block), startBlock);
    this.admit = new AdmitStage(config, {
      ring: this.ring, batches: this.batches, cursors: this.cursors, answers: this.answers, verifyStage: this.verifyStage,
      trusted: this.trustedSigners, closing: () => this.closing, fatal: (e) => this.fatal(e),
    });
    this.reader.start();
  }

  get counters(): PipelineCounters { return this.answers.counters; }
  get batchesInFlight(): number { return this.answers.inFlight; }
  get lastBlock(): number { return this.reader.lastReadBlock; }
  get lastDurableBlock(): number { return this.sinkStage.lastDurableBlock; }
  /** The chain head as the main thread has read it: the hash and next seq after lastBlock. */
  get head(): { block: number; hash: Buffer; nextSeq: number } { return this.answers.head; }

  /** Ring slots client batches leave free for engine entries; a batch of decisions fits in it. */
  get entrySlotsReserved(): number { return entrySlotsReserved(this.config); }

  onBlock(listener: (block: CommittedBlock) => void): () => void { return this.answers.onBlock(listener); }

  /** An account's state, read on the sequencer thread (null: the engine has no record of it). */
  account(key: Uint8Array): Promise<AccountState | null> { return this.sequenceStage.account(key); }

  /**
   * A copy of the whole state as a core Sequencer, for tests and tools: every invariant is checked
   * on the sequencer thread, and again as the copy is built.
   */
  async inspect(): Promise<Sequencer> {
    const copy = new Sequencer(sequencerOptions(this.config));
    copy.importState(await this.sequenceStage.inspect());
    return copy;
  }

  /**
   * A failed verify task or sequencer thread is a bug or a lost thread, not bad input (workers turn
   * every bad record into a result code). Batches after it cannot be sequenced in order, so by
   * default the process stops loudly rather than hang every waiting client.
   */
  private fatal(error: Error): void {
    if (this.hooks.onFatal) this.hooks.onFatal(error);
    else setImmediate(() => { throw error; });
  }

  /** Batch signers from now on; the ones dropped stay trusted for `graceMs` (core/rotating-keys.ts). */
  rotateTrustedSigners(hexes: string[], graceMs: number): KeyRotation { return this.trustedSigners.rotate(hexes, graceMs); }
  /** Issuers from now on; the ones dropped may mint for `graceMs` more (stages/verify/issuer-table.ts). */
  rotateIssuers(hexes: string[], graceMs: number): KeyRotation { return this.verifyStage.rotateIssuers(hexes, graceMs); }

  /** Admits a batch or answers at once (stages/admit/admit-stage.ts); never throws for bad input. */
  submit(batch: BatchSubmission): Promise<BatchAnswer> { return this.admit.submit(batch); }

  /** Admits entries the engine wrote itself (approval decisions); see AdmitStage.submitEntries. */
  submitEntries(bodies: Buffer, ack: AckMode): Promise<BatchAnswer> { return this.admit.submitEntries(bodies, ack); }

  /** The block reader's consumer: one sequenced block, in order. */
  private onSequenced(block: CommittedBlock): void {
    this.ring.markSequenced(block.ringStart + block.txs);
    this.history.recordBlock(block, this.ring);
    this.answers.sequenced(block);
    this.sinkStage.push(block);
  }

  private onDurable(blocks: CommittedBlock[]): void {
    this.cursors.blocksReleased.publish(blocks[blocks.length - 1].number);
    this.answers.durable(blocks, this.hooks);
  }

  /**
   * Stops admitting and waits for every admitted batch to be answered, at most `graceMs`. Then the
   * sequencer thread stops; blocks it published are answered, batches it never reached are
   * answered UNAVAILABLE (not in the history), and batches still waiting for durable storage are
   * answered UNAVAILABLE too: they are sequenced and may yet be in the history, so a client should
   * look them up by sender and nonce before resubmitting.
   */
  async close(graceMs = Number.POSITIVE_INFINITY): Promise<void> {
    this.closing = true;
    const deadline = Date.now() + graceMs;
    while ((this.answers.inFlight > 0 || this.answers.durableWaiting > 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    await this.sequenceStage.stop();
    this.reader.stop();
    this.reader.readAvailable();
    this.answers.closeAll();
    await this.verifyStage.close();
    this.metrics.close();
  }

  async closeSinks(): Promise<void> {
    await this.snapshots?.idle();
    await Promise.all(this.sinks.map((s) => s.close()));
  }
}
