// The blocks topic read before its transactions are decided (engine/cluster/committed-order.ts):
// records are judged as they land, and each COMMIT or ABORT of their producer decides them, in log
// order; a second writer interleaving falls back to committed reads from the first undecided offset.
import { describe, expect, it } from 'vitest';
import { CommittedOrder } from '../../engine/cluster/committed-order.js';
import type { LogEntry } from '../../engine/stages/commit/kafka/transaction-markers.js';

const rec = (offset: number, producerId = 'P', transactional = true): LogEntry => ({ kind: 'record', offset: String(offset), value: Buffer.from(`b${offset}`), producerId, transactional });
const commit = (offset: number, producerId = 'P'): LogEntry => ({ kind: 'commit', offset: String(offset), producerId });
const abort = (offset: number, producerId = 'P'): LogEntry => ({ kind: 'abort', offset: String(offset), producerId });

async function run(entries: LogEntry[]): Promise<{ calls: string[]; taken: string[]; order: CommittedOrder }> {
  const calls: string[] = [];
  const order = new CommittedOrder({
    judge: async (value) => { calls.push(`judge ${value.toString()}`); },
    commit: async () => { calls.push('commit'); },
    abort: async () => { calls.push('abort'); },
    interleaved: async (from, why) => { calls.push(`interleaved from ${from}: ${why}`); },
  });
  const taken: string[] = [];
  for (const e of entries) taken.push(await order.take(e));
  return { calls, taken, order };
}

describe('the committed order of a read_uncommitted blocks topic', () => {
  it('judges a transaction as its records land and commits it at its marker', async () => {
    const { calls, order } = await run([rec(0), rec(1), commit(2), rec(3)]);
    expect(calls).toEqual(['judge b0', 'judge b1', 'commit', 'judge b3']);
    expect(order.undecided).toBe(true); // b3's transaction is still open
  });

  it('undoes an aborted transaction, then takes the next writer whose InitProducerId aborted it', async () => {
    const { calls, order } = await run([rec(0), rec(1), abort(2), rec(3, 'Q'), commit(4, 'Q')]);
    expect(calls).toEqual(['judge b0', 'judge b1', 'abort', 'judge b3', 'commit']);
    expect(order.undecided).toBe(false);
  });

  it("ignores markers that decide nothing judged here: another producer's, or one with no records since", async () => {
    const { calls } = await run([commit(0, 'Q'), rec(1), abort(2, 'Q'), commit(3), commit(4)]);
    expect(calls).toEqual(['judge b1', 'commit']);
  });

  it('commits a record written outside any transaction as it lands', async () => {
    const { calls } = await run([rec(0, 'P', false), rec(1), commit(2)]);
    expect(calls).toEqual(['judge b0', 'commit', 'judge b1', 'commit']);
  });

  it('falls back to committed reads from the first undecided offset when a second writer interleaves', async () => {
    const { calls, taken, order } = await run([rec(0), commit(1), rec(2), rec(3), rec(4, 'Q')]);
    expect(calls.slice(0, 4)).toEqual(['judge b0', 'commit', 'judge b2', 'judge b3']);
    expect(calls[4]).toMatch(/^interleaved from 2: offset 4: a record of producer Q while producer P's transaction from offset 2 is open$/);
    expect(taken.at(-1)).toBe('stop');
    expect(order.undecided).toBe(false);
    const outside = await run([rec(0), rec(1, 'P', false)]);
    expect(outside.calls[1]).toMatch(/^interleaved from 0: offset 1: a record outside any transaction/);
  });
});
