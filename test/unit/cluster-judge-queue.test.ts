// The validator's queue of fetches to judge (engine/cluster/judge-queue.ts): the fetch hands its work
// over and returns, so kafkajs fetches the next while this one is judged; work runs in order, one at
// a time; past the byte bound a push waits for the queue to empty; after a failure nothing later runs.
import { describe, expect, it } from 'vitest';
import { JudgeQueue } from '../../engine/cluster/judge-queue.js';

const deferred = () => { let resolve!: () => void; const promise = new Promise<void>((r) => { resolve = r; }); return { promise, resolve }; };

describe('the judge queue', () => {
  it('returns from push before the work ran, and runs the work in order, one at a time', async () => {
    const q = new JudgeQueue(1_000, () => undefined);
    const log: string[] = [];
    const first = deferred();
    let running = 0;
    const work = (name: string, wait?: Promise<void>) => async () => {
      running++;
      expect(running).toBe(1);
      log.push(`start ${name}`);
      if (wait) await wait;
      log.push(`end ${name}`);
      running--;
    };
    await q.push(10, work('a', first.promise)); // returned while a is still running: the next fetch can go out
    await q.push(10, work('b'));
    expect(q.queuedBytes).toBe(20);
    expect(log).toEqual(['start a']);
    first.resolve();
    await q.drained();
    expect(log).toEqual(['start a', 'end a', 'start b', 'end b']);
    expect(q.queuedBytes).toBe(0);
  });

  it('makes a push wait for the queue to empty once more than its bound waits', async () => {
    const q = new JudgeQueue(15, () => undefined);
    const gate = deferred();
    let ran = 0;
    await q.push(10, async () => { await gate.promise; ran++; });
    let returned = false;
    const second = q.push(10, async () => { ran++; }).then(() => { returned = true; });
    await new Promise((r) => setTimeout(r, 20));
    expect(returned).toBe(false); // 20 bytes waiting > 15: the fetch waits
    gate.resolve();
    await second;
    expect(ran).toBe(2);
  });

  it('stops at the first failure: reported once, and nothing after it runs', async () => {
    const errors: string[] = [];
    const q = new JudgeQueue(1_000, (e) => errors.push(e.message));
    let later = false;
    await q.push(1, async () => { throw new Error('block 7 could not be decoded'); });
    await q.push(1, async () => { later = true; });
    await q.drained();
    expect(errors).toEqual(['block 7 could not be decoded']);
    expect(q.error?.message).toBe('block 7 could not be decoded');
    expect(later).toBe(false);
    expect(q.queuedBytes).toBe(0);
  });
});
