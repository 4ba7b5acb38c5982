/*
 * One writer per history, fenced in both stores (issue 11). An engine that opens a durable history
 * takes the next writer epoch (a term, as a cluster leader's) in PostgreSQL, under the writer lock
 * (pg/writer.ts), and carries it into every block it writes: the epoch column of txe_blocks and
 * the writer_epoch field of every Kafka BlockRecord. PostgreSQL's txe_writer row is the truth:
 *
 *   - The pg sink compares its epoch with txe_writer in every group's transaction, and again after
 *     it reconnects: a session that dropped may find another engine took the history meanwhile.
 *   - The Kafka sink writes through a transactional producer whose transactional.id is fixed per
 *     topic, so opening a sink fences every older producer of the same history at once (its open
 *     transaction is aborted, its later sends refused). After any failed Kafka write the sink asks
 *     PostgreSQL whether its epoch still stands before it re-initialises its producer (which would
 *     fence the other engine's), so a deposed engine never writes again.
 *   - Recovery refuses a block of an older epoch after a newer one, and any block of an epoch at
 *     or above its own: such a record could only come from a stale or concurrent writer.
 *
 * A FencedError is final for the engine that gets it: it stops writing, answers UNAVAILABLE and
 * reports NOT_SERVING (the CLI exits). Any other error (a store unreachable) is retried.
 */

/** The epoch an engine writes under, and how it learns whether the epoch still stands. */
export interface WriterTerm {
  readonly epoch: number;
  /** Resolves if PostgreSQL still names this epoch; FencedError if another; other errors: unknown now. */
  confirm(): Promise<void>;
}

export class FencedError extends Error {
  override readonly name = 'FencedError';
  constructor(readonly epoch: number, readonly currentEpoch: number | null, where: string) {
    super(`writer epoch ${epoch} was fenced${currentEpoch === null ? '' : ` by epoch ${currentEpoch}`} (${where}): another txe engine writes this history now; this one stops writing`);
  }
}

/** The FencedError behind an error (itself, or down its causes), or null. */
export function fencedCause(error: unknown): FencedError | null {
  if (error instanceof FencedError) return error;
  return error instanceof Error && error.cause !== undefined ? fencedCause(error.cause) : null;
}

/** The epoch a history's blocks must show along the chain: never down, and below the writer's own. */
export function assertEpochOrder(number: number, epoch: number, previousEpoch: number, writerEpoch: number, store: string): void {
  if (epoch < previousEpoch) {
    throw new Error(`${store}: block ${number} was written under epoch ${epoch}, after a block of epoch ${previousEpoch}: a stale writer's record; refusing it`);
  }
  if (epoch >= writerEpoch) {
    throw new FencedError(writerEpoch, epoch, `${store} holds block ${number} of epoch ${epoch}`);
  }
}
