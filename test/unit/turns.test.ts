// Turns: the bound on StreamCommits readers reading PostgreSQL at once (storeReadersMax). A taker
// past the bound waits, in order, and a turn given back goes to the next waiter.
import { describe, expect, it } from 'vitest';
import { Turns } from '../../engine/stages/commit/pg/pg-reads.js';

describe('Turns', () => {
  it('lets max holders in at once and the rest in order as turns are given back', async () => {
    const turns = new Turns(2);
    const order: string[] = [];
    const hold = (name: string) => turns.take().then(() => { order.push(name); });
    await hold('a');
    await hold('b');
    const c = hold('c');
    const d = hold('d');
    await new Promise((r) => setTimeout(r, 10));
    expect(order).toEqual(['a', 'b']); // c and d wait
    turns.give();
    await c;
    expect(order).toEqual(['a', 'b', 'c']);
    turns.give();
    await d;
    turns.give();
    turns.give();
    await hold('e'); // all free again: no wait
    expect(order).toEqual(['a', 'b', 'c', 'd', 'e']);
  });
});
