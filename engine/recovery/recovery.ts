/*
 * Start-up recovery: rebuild state from PostgreSQL, then make Kafka and PostgreSQL agree.
 *
 *   1. Load the newest durable state snapshot, if any, then replay every block after it through
 *      the sequencer; each must reproduce its stored hash, so state, next seq and the chain head
 *      come back exactly.
 *   2. Kafka ahead (a block was published, the crash came before PostgreSQL committed it): read
 *      the missing blocks from Kafka, replay them, write them to PostgreSQL.
 *   3. Kafka behind (PostgreSQL committed, the publish was lost): publish the missing blocks.
 * Along the way every block's writer epoch (stages/commit/writer-term.ts) must never go down, and
 * must be below the epoch this engine just took: a record of an older epoch after a newer one, or
 * of this epoch or above, could only come from a stale or a concurrent writer, so it is refused.
 * Blocks are written to both stores in parallel and a batch is acknowledged only when both have
 * it, so after a crash the two differ by at most the blocks of the unacknowledged tail.
 */

import type { Sequencer } from '../core/sequencer.js';
import type { HistoryWindow } from '../stages/history/history-window.js';
import type { PgSink } from '../stages/commit/pg/pg-sink.js';
import { readStoredBlocks, type StoredBlockReads } from '../stages/commit/pg/pg-history.js';
import { loadSnapshot } from '../stages/commit/pg/snapshots.js';
import type { BlockLog, StoredBlock } from '../stages/commit/stored-block.js';
import { replayBlock } from './replay.js';
import { assertEpochOrder } from '../stages/commit/writer-term.js';

export type { BlockLog } from '../stages/commit/stored-block.js';

export interface RecoveryReport { fromSnapshot: number; blocksReplayed: number; txsReplayed: number; lastBlock: number; fromKafka: number; toKafka: number; ms: number }

const RECONCILE_BLOCKS_PER_STEP = 64;

/**
 * Rebuilds `sequencer` (fresh, at genesis) and `history` (empty) from the durable stores, through
 * core/ alone: the live pipeline starts afterwards from the sequencer's exported state.
 */
export async function recover(sequencer: Sequencer, history: HistoryWindow, pgUrl: string, pg: PgSink, kafka: BlockLog | null, statementTimeoutMs: number, reads: StoredBlockReads): Promise<RecoveryReport> {
  const started = Date.now();
  const snapshot = await loadSnapshot(pgUrl, statementTimeoutMs);
  if (snapshot) {
    sequencer.importState(snapshot);
    history.startAfter(snapshot.nextSeq, snapshot.block);
  }
  let epoch = 0; // of the last block restored
  const restore = (stored: StoredBlock, store: string) => {
    assertEpochOrder(stored.number, stored.epoch, epoch, pg.epoch, `recovery from ${store}`);
    epoch = stored.epoch;
    const { block, slots } = replayBlock(sequencer, stored);
    history.recordBlock(block, slots);
    return block;
  };
  let last = snapshot?.block ?? 0;
  const report: RecoveryReport = { fromSnapshot: last, blocksReplayed: 0, txsReplayed: 0, lastBlock: 0, fromKafka: 0, toKafka: 0, ms: 0 };
  for await (const block of readStoredBlocks(pgUrl, last + 1, null, reads)) {
    restore(block, 'PostgreSQL');
    last = block.number;
    report.blocksReplayed++;
    report.txsReplayed += block.txs;
  }
  if (kafka) {
    const published = await kafka.lastBlock();
    if (published > 0 && published <= last) await sameBlock(pgUrl, published, kafka.lastPublishedHash, reads);
    for (let from = last + 1; from <= published; from += RECONCILE_BLOCKS_PER_STEP) {
      const blocks = await kafka.readStored(from, Math.min(published, from + RECONCILE_BLOCKS_PER_STEP - 1));
      const replayed = blocks.map((b) => restore(b, 'Kafka'));
      await pg.writeStored(blocks, replayed.map((b) => b.approvals));
      report.fromKafka += blocks.length;
    }
    for (let from = published + 1; from <= last; from += RECONCILE_BLOCKS_PER_STEP) {
      const blocks: StoredBlock[] = [];
      for await (const block of readStoredBlocks(pgUrl, from, Math.min(last, from + RECONCILE_BLOCKS_PER_STEP - 1), reads)) blocks.push(block);
      await kafka.publishStored(blocks);
      report.toKafka += blocks.length;
    }
  }
  report.lastBlock = sequencer.blocksCount;
  report.ms = Date.now() - started;
  return report;
}

/**
 * The two stores must agree on the history they share: the topic's last block must be the block
 * PostgreSQL holds under that number. They can differ only if the topic was written by another
 * history (a run with different sinks, or another engine); then nothing is safe to publish.
 */
async function sameBlock(pgUrl: string, number: number, kafkaHash: Buffer, reads: StoredBlockReads): Promise<void> {
  for await (const block of readStoredBlocks(pgUrl, number, number, reads)) {
    if (block.hash.equals(kafkaHash)) return;
    throw new Error(`recovery: Kafka's block ${number} has hash ${kafkaHash.toString('hex')}, PostgreSQL's ${block.hash.toString('hex')}: the topic holds another history; point the engine at the matching topic`);
  }
}
