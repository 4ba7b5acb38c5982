/*
 * The hand-off from the sequencer to durable storage. Committed blocks wait in a bounded output
 * ring (a FixedQueue); the sink stage takes everything available at once (group commit, as a
 * Disruptor consumer that fell behind takes all it can), writes it through every sink, then
 * releases the blocks' input-ring slots and answers ack=durable waiters. A full block ring stops
 * the sequencer, which fills the input ring, which makes ingress answer RESOURCE_EXHAUSTED.
 */

import type { CommittedBlock } from '../../core/block.js';
import type { InputRing } from '../../ring/input-ring.js';

export interface Sink {
  readonly name: string;
  /** Makes the blocks durable, in order; the bodies stay readable in the ring until it resolves. */
  write(blocks: CommittedBlock[], ring: InputRing): Promise<void>;
  close(): Promise<void>;
}
