/*
 * Runs async tasks one after another, in the order they were handed over. A task that fails does
 * not stop the ones queued behind it: each runs and fails (or not) on its own, so a sink's caller
 * sees every write's outcome, in order.
 */

export class Serial {
  private tail: Promise<void> = Promise.resolve();

  run<T>(task: () => Promise<T>): Promise<T> {
    const run = this.tail.then(task);
    this.tail = run.then(() => undefined, () => undefined);
    return run;
  }
}
