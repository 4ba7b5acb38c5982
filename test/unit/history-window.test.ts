// The in-memory history window on its own: it keeps the accepted bodies of contiguous blocks by
// seq (rejected ones take no seq), overwrites the oldest first, refuses a gap, answers lookups by
// seq and by sender and nonce inside the window only, and finds the block a StreamCommits from a
// seq starts at.
import { describe, expect, it } from 'vitest';
import { HistoryWindow } from '../../engine/stages/history/history-window.js';
import { InputRing, createRingBuffers } from '../../engine/ring/input-ring.js';
import { packBodies } from '../../engine/core/batch.js';
import { Result } from '../../engine/core/result.js';
import type { CommittedBlock } from '../../engine/core/block.js';
import { transfer, user } from '../support/fixtures.js';

const alice = user('alice');
const bob = user('bob').publicKey;

function setup(entriesMax: number, blocksMax: number) {
  const ring = new InputRing(createRingBuffers(16));
  const history = new HistoryWindow(entriesMax, blocksMax);
  let nextSeq = 1;
  let number = 0;
  let nonce = 0n;
  /** A block of `results.length` transfers from alice; results[i] is the i-th one's result code. */
  const block = (results: number[]) => {
    const records = results.map(() => transfer(alice, bob, ++nonce, 1n));
    const ringStart = ring.tryClaim(records.length);
    ring.writeBodies(ringStart, packBodies(records), records.length, 128);
    const entries = results.filter((r) => r <= Result.pending_approval).length;
    const b = { number: ++number, firstSeq: nextSeq, entries, txs: records.length, ringStart, results: Uint8Array.from(results) } as CommittedBlock;
    nextSeq += entries;
    history.recordBlock(b, ring);
    ring.markSequenced(ringStart + records.length);
    ring.release(ringStart + records.length);
    return b;
  };
  return { history, block };
}

const C = Result.committed;
const BAD = Result.bad_nonce;

describe('HistoryWindow', () => {
  it('gives accepted bodies consecutive seqs and skips rejected ones', () => {
    const { history, block } = setup(16, 4);
    block([C, BAD, C, C]); // nonces 1..4; nonce 2 rejected
    expect(history.newestSeq).toBe(3);
    expect(history.get(2)!.body.readBigUInt64LE(72)).toBe(3n); // seq 2 is the third record (nonce 3)
    expect(history.get(2)!.block).toBe(1);
    expect(history.get(4)).toBeNull();
    expect(history.findBySenderNonce(alice.publicKey, 4n)!.seq).toBe(3);
    expect(history.findBySenderNonce(alice.publicKey, 2n)).toBeNull(); // rejected: not history
  });

  it('overwrites the oldest entries and blocks first, and answers only inside the window', () => {
    const { history, block } = setup(8, 2);
    for (let i = 0; i < 4; i++) block([C, C, C]); // 12 entries into a window of 8
    expect(history.oldestSeq).toBe(5);
    expect(history.get(4)).toBeNull();
    expect(history.get(5)!.block).toBe(2);
    expect(history.findBySenderNonce(alice.publicKey, 1n)).toBeNull(); // seq 1: overwritten
    expect(history.block(2)).toBeNull(); // only the last 2 blocks are kept
    expect(history.block(4)!.firstSeq).toBe(10);
    expect(history.blockEntries(history.block(3)!)!.length).toBe(3 * 128);
  });

  it('refuses a block that does not follow the one before', () => {
    const { history, block } = setup(16, 4);
    const first = block([C]);
    expect(() => history.recordBlock({ ...first, number: 3, firstSeq: 2 }, new InputRing(createRingBuffers(16)))).toThrow(/history gap: block 3 after block 1/);
  });

  it('finds the block a StreamCommits from a seq starts at', () => {
    const { history, block } = setup(16, 8);
    block([C, C]); // seqs 1-2
    block([BAD]); // no entries
    block([C, C, C]); // seqs 3-5
    expect(history.firstBlockReaching(1)).toBe(1);
    expect(history.firstBlockReaching(3)).toBe(3);
    expect(history.firstBlockReaching(5)).toBe(3);
    expect(history.firstBlockReaching(6)).toBe(4); // newer than every entry: the next block to be cut
  });
});
