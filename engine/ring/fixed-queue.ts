/*
 * A bounded FIFO over a fixed array: O(1) push and shift without Array#shift's copying.
 * capacity is a power of two so `cursor & mask` is the index; head <= tail <= head + capacity.
 */

export class FixedQueue<T> {
  private readonly items: (T | undefined)[];
  private readonly mask: number;
  private head = 0;
  private tail = 0;

  constructor(readonly capacity: number) {
    if (capacity < 1 || (capacity & (capacity - 1)) !== 0) throw new Error(`queue capacity must be a power of two, got ${capacity}`);
    this.items = new Array(capacity);
    this.mask = capacity - 1;
  }

  get length(): number { return this.tail - this.head; }
  get full(): boolean { return this.length === this.capacity; }

  push(item: T): boolean {
    if (this.full) return false;
    this.items[this.tail & this.mask] = item;
    this.tail++;
    return true;
  }

  peek(): T | undefined {
    return this.head === this.tail ? undefined : this.items[this.head & this.mask];
  }

  shift(): T | undefined {
    if (this.head === this.tail) return undefined;
    const index = this.head & this.mask;
    const item = this.items[index];
    this.items[index] = undefined;
    this.head++;
    return item;
  }

  /** The item `offset` places from the head, without removing it. */
  at(offset: number): T | undefined {
    return offset < 0 || offset >= this.length ? undefined : this.items[(this.head + offset) & this.mask];
  }
}
