/*
 * The blocks topic read before its transactions are decided (issue 13: judge while the leader's
 * transaction commits). A read_committed consumer gets a block only once the leader's transaction
 * committed and its marker reached the replicas: ~10 ms after the leader's commit returned, ~24 ms
 * after the block was sequenced at half rate (bench/RESULTS.md, session 11). Reading uncommitted,
 * a validator judges the block as soon as its records are replicated, while the commit goes on,
 * and acts on the outcome when the marker arrives, in log order:
 *
 *   record of P   judge it now (tentative: its transaction may still abort)
 *   COMMIT of P   everything judged since the last marker is committed: attest it
 *   ABORT of P    everything judged since the last marker is undone (replica.abortUncommitted)
 *
 * This is exactly the committed history as long as one transaction is open at a time, which is
 * how the blocks topic is written: one transactional.id for every leader, so a new leader's
 * InitProducerId aborts the old one's open transaction before it can write, and a producer's next
 * transaction starts only once the markers of the previous one are written. A record from another
 * producer (or outside a transaction) while one is open breaks that, e.g. a writer that is not
 * the cluster's: then read_committed order may differ from log order, and the validator undoes what
 * it judged tentatively and reads committed records only, from the first undecided offset
 * (`interleaved`). Nothing judged tentatively is attested, answered or counted before its marker.
 */

import type { LogEntry } from '../stages/commit/kafka/transaction-markers.js';

export interface OrderHandlers {
  /** Judge this record now; its transaction may still abort. */
  judge(value: Buffer, offset: string): Promise<void>;
  /** Everything judged since the last decision is committed. */
  commit(): Promise<void>;
  /** Everything judged since the last decision is aborted: undo it. */
  abort(): Promise<void>;
  /** Two writers' records interleave: undo what was judged since the last decision and read committed records from `fromOffset`. */
  interleaved(fromOffset: string, why: string): Promise<void>;
}

export class CommittedOrder {
  // The transaction whose records were judged since the last decision: its producer and first offset.
  private open: { producerId: string; fromOffset: string } | null = null;

  constructor(private readonly handlers: OrderHandlers) {}

  /** Whether records were judged whose transaction is not decided yet. */
  get undecided(): boolean { return this.open !== null; }

  /** Takes the next entry of the log; 'stop' once it fell back to committed reads (ignore the rest of the fetch). */
  async take(entry: LogEntry): Promise<'go' | 'stop'> {
    if (entry.kind === 'record') return this.record(entry);
    if (this.open === null || this.open.producerId !== entry.producerId) return 'go'; // decides nothing judged here
    this.open = null;
    if (entry.kind === 'commit') await this.handlers.commit();
    else await this.handlers.abort();
    return 'go';
  }

  private async record(entry: Extract<LogEntry, { kind: 'record' }>): Promise<'go' | 'stop'> {
    if (this.open !== null && (!entry.transactional || entry.producerId !== this.open.producerId)) {
      const from = this.open.fromOffset;
      const why = `offset ${entry.offset}: a record ${entry.transactional ? `of producer ${entry.producerId}` : 'outside any transaction'} while producer ${this.open.producerId}'s transaction from offset ${from} is open`;
      this.open = null;
      await this.handlers.interleaved(from, why);
      return 'stop';
    }
    if (!entry.transactional) {
      await this.handlers.judge(entry.value, entry.offset);
      await this.handlers.commit(); // a record outside any transaction is committed as it lands
      return 'go';
    }
    this.open ??= { producerId: entry.producerId, fromOffset: entry.offset };
    await this.handlers.judge(entry.value, entry.offset);
    return 'go';
  }
}
