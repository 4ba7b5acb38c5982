// The sink stage on its own, with sinks whose writes the test settles by hand (the real PostgreSQL
// and Kafka sinks are tested against real servers in test/integration): groups are bounded, at most
// writesInFlightMax are in flight, blocks become durable strictly in order whatever order their
// writes settle in, input-ring slots are released only then, and a failed write stops everything
// behind it until retry() sends again from the oldest block that is not durable.
import { describe, expect, it } from 'vitest';
import { SinkStage } from '../../engine/stages/commit/sink-stage.js';
import { InputRing, createRingBuffers } from '../../engine/ring/input-ring.js';
import type { CommittedBlock } from '../../engine/core/block.js';
import type { Sink } from '../../engine/stages/commit/sink.js';

const TXS_PER_BLOCK = 4;

/** A sink whose writes wait until the test resolves or fails them, oldest first or by index. */
class HandSink implements Sink {
  readonly writes: { blocks: number[]; resolve: () => void; reject: (e: Error) => void }[] = [];
  constructor(readonly name: string) {}
  write(blocks: CommittedBlock[]): Promise<void> {
    return new Promise((resolve, reject) => this.writes.push({ blocks: blocks.map((b) => b.number), resolve, reject }));
  }
  async close(): Promise<void> {}
}

function setup(o: { blocksPerWriteMax: number; writesInFlightMax: number; sinks?: string[] }) {
  const ring = new InputRing(createRingBuffers(64));
  const sinks = (o.sinks ?? ['pg']).map((name) => new HandSink(name));
  const durable: number[][] = [];
  const failures: string[] = [];
  const stage = new SinkStage(ring, sinks, { blockRingSlotsMax: 8, ...o }, (blocks) => durable.push(blocks.map((b) => b.number)), (e) => failures.push(e.message));
  let number = 0;
  const push = (n: number) => {
    for (let i = 0; i < n; i++) {
      const ringStart = ring.tryClaim(TXS_PER_BLOCK);
      ring.markSequenced(ringStart + TXS_PER_BLOCK);
      stage.push({ number: ++number, ringStart, txs: TXS_PER_BLOCK } as CommittedBlock);
    }
  };
  return { ring, sinks, stage, durable, failures, push };
}

const settled = () => new Promise((r) => setTimeout(r, 0));

describe('SinkStage', () => {
  it('starts a write as soon as a block arrives, and groups what waited, up to blocksPerWriteMax, when a write frees', async () => {
    const { sinks, durable, push } = setup({ blocksPerWriteMax: 2, writesInFlightMax: 2 });
    push(5);
    expect(sinks[0].writes.map((w) => w.blocks)).toEqual([[1], [2]]); // blocks 3-5 wait for a free write
    sinks[0].writes[0].resolve();
    await settled();
    expect(durable).toEqual([[1]]);
    expect(sinks[0].writes.map((w) => w.blocks)).toEqual([[1], [2], [3, 4]]);
  });

  it('makes blocks durable in order even when a later write settles first, and only then frees their slots', async () => {
    const { ring, sinks, stage, durable, push } = setup({ blocksPerWriteMax: 2, writesInFlightMax: 2 });
    push(5);
    sinks[0].writes[1].resolve(); // block 2 lands before block 1
    await settled();
    expect(durable).toEqual([]);
    expect(stage.lastDurableBlock).toBe(0);
    expect(ring.released).toBe(0);
    sinks[0].writes[0].resolve();
    await settled();
    expect(durable).toEqual([[1, 2]]);
    expect(ring.released).toBe(2 * TXS_PER_BLOCK);
    expect(sinks[0].writes.slice(2).map((w) => w.blocks)).toEqual([[3, 4], [5]]); // both freed writes took what waited
    sinks[0].writes[3].resolve();
    sinks[0].writes[2].resolve();
    await settled();
    expect(durable).toEqual([[1, 2], [3, 4, 5]]);
    expect(stage.lastDurableBlock).toBe(5);
    expect(ring.released).toBe(5 * TXS_PER_BLOCK);
  });

  it('waits for every sink: a block is durable only when all of them have it', async () => {
    const { sinks, durable, push } = setup({ blocksPerWriteMax: 4, writesInFlightMax: 1, sinks: ['pg', 'kafka'] });
    push(1);
    sinks[0].writes[0].resolve();
    await settled();
    expect(durable).toEqual([]);
    sinks[1].writes[0].resolve();
    await settled();
    expect(durable).toEqual([[1]]);
  });

  it('lets a fast sink write on while a slow one finishes, up to a bounded lead, and frees blocks only when both have them', async () => {
    const { ring, sinks, durable, push } = setup({ blocksPerWriteMax: 1, writesInFlightMax: 2, sinks: ['pg', 'kafka'] });
    push(6); // lead bound: 2 writes x 1 block
    const [pg, kafka] = sinks;
    expect(pg.writes.map((w) => w.blocks)).toEqual([[1], [2]]);
    pg.writes[0].resolve();
    pg.writes[1].resolve();
    await settled();
    // pg has 1-2 while kafka has nothing: pg may not run further ahead than the bound
    expect(pg.writes.map((w) => w.blocks)).toEqual([[1], [2]]);
    expect(durable).toEqual([]);
    kafka.writes[0].resolve();
    await settled();
    expect(durable).toEqual([[1]]);
    expect(ring.released).toBe(TXS_PER_BLOCK);
    expect(pg.writes.map((w) => w.blocks)).toEqual([[1], [2], [3]]); // the slowest moved: pg writes on at once
    pg.writes[2].resolve();
    await settled();
    expect(kafka.writes.map((w) => w.blocks)).toEqual([[1], [2], [3]]);
    expect(pg.writes.map((w) => w.blocks).slice(3)).toEqual([]); // 3 is 2 ahead of kafka's 1
    kafka.writes[1].resolve();
    kafka.writes[2].resolve();
    await settled();
    expect(durable).toEqual([[1], [2], [3]]);
  });

  it('stops at a failed write, reports it once, and retry() sends again from the oldest block not durable', async () => {
    const { ring, sinks, stage, durable, failures, push } = setup({ blocksPerWriteMax: 2, writesInFlightMax: 2 });
    push(4);
    sinks[0].writes[0].reject(new Error('connection reset'));
    await settled();
    expect(failures).toEqual(['connection reset']);
    expect(stage.error?.message).toBe('connection reset');
    stage.retry(); // write 2 is still in flight: the retry waits for it
    expect(sinks[0].writes).toHaveLength(2);
    sinks[0].writes[1].resolve(); // block 2 landed, but it comes after a failed one: not durable
    await settled();
    expect(durable).toEqual([]);
    expect(ring.released).toBe(0);
    expect(sinks[0].writes.slice(2).map((w) => w.blocks)).toEqual([[1, 2], [3, 4]]); // sent again from block 1, in order
    sinks[0].writes[2].resolve();
    sinks[0].writes[3].resolve();
    await settled();
    expect(durable).toEqual([[1, 2], [3, 4]]);
    expect(stage.error).toBeNull();
    expect(failures).toHaveLength(1);
    expect(ring.released).toBe(4 * TXS_PER_BLOCK);
  });

  it('refuses a block past its capacity and recovery marks out of order', () => {
    const { stage, push } = setup({ blocksPerWriteMax: 1, writesInFlightMax: 1 });
    push(8);
    expect(stage.full).toBe(true);
    expect(() => push(1)).toThrow(/block ring full/);
    const fresh = setup({ blocksPerWriteMax: 1, writesInFlightMax: 1 }).stage;
    fresh.markDurable(1);
    expect(() => fresh.markDurable(3)).toThrow(/markDurable\(3\) after block 1/);
    expect(() => fresh.resetDurable(10)).toThrow(/resetDurable must come before any block/);
  });
});
