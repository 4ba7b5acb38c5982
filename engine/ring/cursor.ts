/*
 * A cursor: a sequence number in shared memory with exactly one writer and readers on any thread,
 * as in the LMAX Disruptor. A stage publishes how far it has got; the stage downstream waits on it
 * (its barrier) and never calls the stage above back.
 *
 *   cells  [ cursor 0 | cursor 1 | ... ]   BigInt64, one per cursor, in one SharedArrayBuffer
 *
 * Cursors only grow; a publish that goes backwards is a bug and throws. 64-bit cells, because a
 * 32-bit slot cursor would wrap after 2^31 records: 18 minutes at 2M TPS. A reader on the main
 * thread waits with Atomics.waitAsync (the event loop keeps running); a worker thread may block.
 * Waits take a timeout so a missed notify costs at most that long, never a hang.
 */

const atomics = Atomics as typeof Atomics & {
  waitAsync(array: BigInt64Array | Int32Array, index: number, value: bigint | number, timeoutMs?: number): { async: boolean; value: Promise<string> | string };
};

export function createCursorCells(count: number): SharedArrayBuffer {
  return new SharedArrayBuffer(count * BigInt64Array.BYTES_PER_ELEMENT);
}

export class Cursor {
  private readonly cells: BigInt64Array;

  constructor(buffer: SharedArrayBuffer, private readonly index: number, readonly name: string) {
    this.cells = new BigInt64Array(buffer);
    if (index < 0 || index >= this.cells.length) throw new Error(`cursor ${name}: cell ${index} outside [0, ${this.cells.length})`);
  }

  get value(): number { return Number(Atomics.load(this.cells, this.index)); }

  /** The writer moves the cursor to `next` and wakes every waiter. */
  publish(next: number): void {
    const now = this.value;
    if (next < now) throw new Error(`cursor ${this.name} moved back from ${now} to ${next}`);
    Atomics.store(this.cells, this.index, BigInt(next));
    Atomics.notify(this.cells, this.index);
  }

  /** Resolves with the cursor once it differs from `seen`, or after `timeoutMs` with it unchanged. */
  async changeFrom(seen: number, timeoutMs: number): Promise<number> {
    const now = this.value;
    if (now !== seen) return now;
    const wait = atomics.waitAsync(this.cells, this.index, BigInt(seen), timeoutMs);
    if (wait.async) await wait.value;
    return this.value;
  }
}

/** Waits on an Int32 cell (a slot state) until it differs from `seen`, at most `timeoutMs`. */
export async function int32ChangeFrom(cells: Int32Array, index: number, seen: number, timeoutMs: number): Promise<number> {
  const now = Atomics.load(cells, index);
  if (now !== seen) return now;
  const wait = atomics.waitAsync(cells, index, seen, timeoutMs);
  if (wait.async) await wait.value;
  return Atomics.load(cells, index);
}
