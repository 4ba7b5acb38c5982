/*
 * The fetches of the blocks topic, judged one after another while kafkajs fetches the next.
 * kafkajs sends its next fetch only once eachBatch returned (consumer/fetcher.js), so judging a
 * fetch inside eachBatch (~10-30 ms a block under load) kept the next block, or the next fetch's
 * long poll, from starting until the judge ended. Here eachBatch hands its work over and returns;
 * the work runs in arrival order, one at a time. Bounded by bytes: past `bytesMax` waiting, push
 * waits until the queue is empty, and kafkajs's next fetch with it. After a work fails, nothing
 * later runs (blocks must be judged in log order: the validator stops following, loudly).
 */

export class JudgeQueue {
  private tail: Promise<void> = Promise.resolve();
  private queued = 0;
  private failed: Error | null = null;

  constructor(private readonly bytesMax: number, private readonly onError: (error: Error) => void) {}

  /** Bytes handed over and not judged yet. */
  get queuedBytes(): number { return this.queued; }
  /** The error that stopped the queue, if any. */
  get error(): Error | null { return this.failed; }

  /** Queues `work` (`bytes` of records) after what is queued; resolves at once unless over the bound. */
  async push(bytes: number, work: () => Promise<void>): Promise<void> {
    this.queued += bytes;
    this.tail = this.tail.then(async () => {
      try {
        if (this.failed === null) await work();
      } catch (error) {
        this.failed = error as Error;
        this.onError(this.failed);
      } finally {
        this.queued -= bytes;
      }
    });
    if (this.queued > this.bytesMax) await this.tail;
  }

  /** Resolves once everything queued so far ran. */
  drained(): Promise<void> { return this.tail; }
}
