/*
 * Waiters for a height that only grows (the final height, the replica's applied height): each
 * resolves once the height reaches its own, or rejects after its timeout and is dropped then, so a
 * height that stalls holds no more waiters than are still within their time.
 */

interface Waiter { resolve: () => void; timer: NodeJS.Timeout }

export class HeightWaiters {
  private heightValue = 0;
  private readonly byHeight = new Map<number, Set<Waiter>>();

  get height(): number { return this.heightValue; }

  /** Resolves once the height reaches `height`; rejects with `timeoutMessage` after `timeoutMs`. */
  wait(height: number, timeoutMs: number, timeoutMessage: string): Promise<void> {
    if (height <= this.heightValue) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const set = this.byHeight.get(height) ?? new Set<Waiter>();
      this.byHeight.set(height, set);
      const waiter: Waiter = {
        resolve: () => { clearTimeout(waiter.timer); resolve(); },
        timer: setTimeout(() => {
          set.delete(waiter);
          if (set.size === 0) this.byHeight.delete(height);
          reject(new Error(timeoutMessage));
        }, timeoutMs),
      };
      set.add(waiter);
    });
  }

  /** The height moved to `height` (never down): every waiter at or below it resolves. */
  reached(height: number): void {
    if (height < this.heightValue) throw new Error(`height would go from ${this.heightValue} down to ${height}`);
    for (let h = this.heightValue + 1; h <= height; h++) {
      for (const waiter of this.byHeight.get(h) ?? []) waiter.resolve();
      this.byHeight.delete(h);
    }
    this.heightValue = height;
  }
}
