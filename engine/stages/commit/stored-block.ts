/*
 * A committed block as the durable stores hold it: the header, every body of the batch (rejected
 * ones included) and the results. Recovery replays these through the sequencer, and each store
 * can rebuild one from its rows or records to complete the other after a crash.
 */

import type { BlockAuth } from '../../core/block.js';

export interface StoredBlock {
  number: number;
  firstSeq: number;
  entries: number;
  txs: number;
  hash: Buffer;
  prevHash: Buffer;
  bodiesDigest: Buffer;
  results: Buffer;
  bodies: Buffer; // txs × 128 B, batch order
  sequencedAtMs: number;
  epoch: number; // the writer epoch it was written under (writer-term.ts); 0 before epochs existed
  auth?: BlockAuth; // how the batch was signed (Kafka records only; PostgreSQL keeps no signatures)
}

export type { BlockAuth } from '../../core/block.js';

/** What recovery needs of the Kafka sink. */
export interface BlockLog {
  lastBlock(): Promise<number>;
  lastPublishedHash: Buffer; // hash of the last block on the topic, as of the last lastBlock()
  readStored(from: number, to: number): Promise<StoredBlock[]>;
  publishStored(blocks: StoredBlock[]): Promise<void>;
}
