// The PostgreSQL sink writes groups on several sessions at once but commits them in block order:
// a group never commits past a group before it that failed, nor past a gap, so the table always
// holds a contiguous prefix of the history. Against real PostgreSQL, with hand-made blocks (the
// sink checks order and the writer epoch, not hashes).
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PgSink } from '../../../engine/stages/commit/pg/pg-sink.js';
import { readStoredBlocks } from '../../../engine/stages/commit/pg/pg-history.js';
import type { StoredBlock } from '../../../engine/stages/commit/stored-block.js';
import { BODY_BYTES, KIND_TRANSFER, writeBody } from '../../../engine/core/record.js';
import { Result } from '../../../engine/core/result.js';
import { freshDatabaseWithClient } from '../../support/servers.js';
import { user } from '../../support/fixtures.js';

const TXS_PER_BLOCK = 2;
const alice = user('alice');
const bob = user('bob');
let url: string;
let db: pg.Client;
let drop: () => Promise<void>;

beforeAll(async () => { ({ url, db, drop } = await freshDatabaseWithClient('pg_sessions')); });
afterAll(async () => { await drop(); });

/** Block `number` of two accepted transfers, seqs following the blocks before it. */
function block(number: number): StoredBlock {
  const bodies = Buffer.alloc(TXS_PER_BLOCK * BODY_BYTES);
  for (let i = 0; i < TXS_PER_BLOCK; i++) {
    writeBody(bodies, i * BODY_BYTES, { kind: KIND_TRANSFER, sender: alice.publicKey, recipient: bob.publicKey, nonce: BigInt((number - 1) * TXS_PER_BLOCK + i + 1), amount: 1n, timestampMs: 0n });
  }
  const hash = Buffer.alloc(32, number);
  return {
    number, firstSeq: (number - 1) * TXS_PER_BLOCK + 1, entries: TXS_PER_BLOCK, txs: TXS_PER_BLOCK, hash, prevHash: Buffer.alloc(32, number - 1),
    bodiesDigest: Buffer.alloc(32), results: Buffer.alloc(TXS_PER_BLOCK, Result.committed), bodies, sequencedAtMs: Date.now(), epoch: 0,
  };
}

const blocks = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => block(from + i));
const noApprovals = (n: number) => Array.from({ length: n }, () => null);
const storedBlocks = async () => (await db.query<{ number: string }>('select number from txe_blocks order by number')).rows.map((r) => Number(r.number));

describe('PostgreSQL sink sessions', () => {
  it('commits groups written on two sessions in block order: none past a failed group before it, none past a gap', async () => {
    const sink = await PgSink.open({ url, connectTimeoutMs: 5000, statementTimeoutMs: 10_000, writeConnectionsMax: 2 });
    try {
      // A constraint that refuses seq 1 makes the first group's COPY fail; the second group, on the
      // other session, is sound on its own and must still not commit.
      await db.query('alter table txe_transactions add constraint refuse_seq_1 check (seq <> 1)');
      const first = sink.writeStored(blocks(1, 2), noApprovals(2));
      const second = sink.writeStored(blocks(3, 4), noApprovals(2));
      await expect(first).rejects.toThrow(/refuse_seq_1/);
      await expect(second).rejects.toThrow(/the group before blocks 3\.\.4 failed/);
      expect(await storedBlocks()).toEqual([]);

      // Once both settled, the writes are sent again (as the sink stage's retry does) and land in order.
      await db.query('alter table txe_transactions drop constraint refuse_seq_1');
      await Promise.all([sink.writeStored(blocks(1, 2), noApprovals(2)), sink.writeStored(blocks(3, 4), noApprovals(2)), sink.writeStored(blocks(5, 6), noApprovals(2))]);
      expect(await storedBlocks()).toEqual([1, 2, 3, 4, 5, 6]);
      expect(Number((await db.query('select count(*) as n from txe_transactions')).rows[0].n)).toBe(6 * TXS_PER_BLOCK);

      // A group that does not follow the table's newest block is refused, whichever session has it.
      await expect(sink.writeStored(blocks(8, 9), noApprovals(2))).rejects.toThrow(/block 8 does not follow block 6 in the database/);
      // And a repeated group (a commit whose answer was lost) is a no-op.
      await sink.writeStored(blocks(5, 7), noApprovals(3));
      expect(await storedBlocks()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    } finally {
      await sink.close();
    }
  });

  it('reads blocks back whatever the rows\' order in the table, and refuses a row stored at the wrong position', async () => {
    const read = async () => { const out: StoredBlock[] = []; for await (const b of readStoredBlocks(url, 1, 7)) out.push(b); return out; };
    const written = blocks(1, 7);
    // Sessions writing side by side interleave their rows' pages: put every row in reverse order.
    // (The query asks for seq order, so this holds if a plan ever returns them as stored.)
    await db.query('create temp table backwards as select * from txe_transactions order by seq desc');
    await db.query('delete from txe_transactions');
    await db.query('insert into txe_transactions select * from backwards');
    expect((await read()).map((b) => b.bodies.toString('hex'))).toEqual(written.map((b) => b.bodies.toString('hex')));

    await db.query('delete from txe_transactions where seq = 3');
    await db.query(`insert into txe_transactions (seq, block, position, result, body) values (3, 2, 1, ${Result.committed}, $1)`, [written[1].bodies.subarray(0, BODY_BYTES)]);
    await expect(read()).rejects.toThrow(/transaction seq 3: stored at position 1, but entry 0 of block 2 is at position 0/);
  });
});
