// Proves the PostgreSQL sink end to end over real sockets: batches submitted with ack=durable are
// answered only once their block is in PostgreSQL; the rows read back with SQL match what was
// submitted (u64 amounts past 2^63 included) and the chained hashes; a restarted engine rebuilds
// exactly the same state from PostgreSQL and carries on with the next seq.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../engine/engine.js';
import { TxeClient } from '../../../engine/client.js';
import { Result } from '../../../engine/core/result.js';
import { issuer, mint, perTxBatch, signedBatch, testConfig, transfer, user } from '../../support/fixtures.js';
import { freshDatabaseWithClient } from '../../support/servers.js';
import { until } from '../../support/async.js';
import { HISTORY_FORMAT_MIN, MIGRATIONS } from '../../../engine/stages/commit/pg/schema.js';
import { readStoredBlocks } from '../../../engine/stages/commit/pg/pg-history.js';
import { BODY_BYTES, KIND_MINT, KIND_TRANSFER, MEMO_BYTES, OFFSET_TIMESTAMP_MS, writeBody } from '../../../engine/core/record.js';

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

const alice = user('alice');
const bob = user('bob');
let url: string;
let db: pg.Client;
let drop: () => Promise<void>;

beforeAll(async () => { ({ url, db, drop } = await freshDatabaseWithClient('pg_sink')); });
afterAll(async () => { await drop(); });

/** An engine on the test database; snapshots only by the triggers given (none by default). */
async function start(snapshotEveryBlocks = 0, more: { snapshotEveryTxs?: number; snapshotEveryMs?: number } = {}) {
  const engine = await Engine.start(testConfig({ sinks: ['pg'], pgUrl: url, ack: 'durable', snapshotEveryBlocks, snapshotEveryTxs: 0, snapshotEveryMs: 0, ...more }));
  const client = new TxeClient(engine.address);
  return { engine, client, stop: async () => { client.close(); await engine.stop(); } };
}

describe('PostgreSQL sink', () => {
  it('answers ack=durable after the block is in PostgreSQL, with every row as submitted', async () => {
    const { client, stop } = await start();
    try {
      const big = (1n << 63n) + 5n;
      const m = await client.submitBatch({ ...signedBatch([mint(alice.publicKey, 1n, big), mint(bob.publicKey, 2n, 7n)]), ack: 'durable' });
      expect(Array.from(m.results)).toEqual([Result.committed, Result.committed]);
      // Visible in PostgreSQL the moment the answer arrives: that is what ack=durable means.
      const rows = await db.query('select seq, block, position, kind, result, sender, recipient, nonce::text, amount::text from txe_transaction_fields order by seq');
      expect(rows.rows.map((r) => [Number(r.seq), Number(r.block), r.position, r.kind, r.amount])).toEqual([[1, 1, 0, 2, big.toString()], [2, 1, 1, 2, '7']]);
      expect(Buffer.compare(rows.rows[0].recipient, alice.publicKey)).toBe(0);
      const t = await client.submitBatch(perTxBatch([transfer(alice, bob.publicKey, 1n, 10n), transfer(alice, bob.publicKey, 5n, 1n)], [alice]));
      expect(Array.from(t.results)).toEqual([Result.committed, Result.bad_nonce]);
      const rejections = await db.query('select block, position, result, body from txe_rejections');
      expect(rejections.rows.map((r) => [Number(r.block), r.position, r.result])).toEqual([[2, 1, Result.bad_nonce]]);
      const blocks = await db.query('select number, first_seq, entries, txs, hash, prev_hash from txe_blocks order by number');
      expect(blocks.rows.map((b) => [Number(b.number), Number(b.first_seq), b.entries, b.txs])).toEqual([[1, 1, 2, 2], [2, 3, 1, 2]]);
      expect(Buffer.compare(blocks.rows[1].prev_hash, blocks.rows[0].hash)).toBe(0);
    } finally {
      await stop();
    }
  });

  it('recovers the same state, seq and chain head after a restart, and continues from them', async () => {
    const first = await start();
    const before = { bob: await first.client.getAccount(bob.publicKey), head: first.engine.pipeline.head.hash, seq: first.engine.pipeline.head.nextSeq };
    await first.stop();
    const second = await start();
    try {
      expect(second.engine.recovery).toMatchObject({ fromSnapshot: 0, blocksReplayed: 2, lastBlock: 2 });
      expect(second.engine.pipeline.head.hash.equals(before.head)).toBe(true);
      expect(second.engine.pipeline.head.nextSeq).toBe(before.seq);
      expect(await second.client.getAccount(bob.publicKey)).toEqual(before.bob);
      const replay = await second.client.submitBatch(perTxBatch([transfer(alice, bob.publicKey, 1n, 10n)], [alice]));
      expect(Array.from(replay.results)).toEqual([Result.bad_nonce]); // applied once, never twice
      const next = await second.client.submitBatch(perTxBatch([transfer(alice, bob.publicKey, 2n, 10n)], [alice]));
      expect(next).toMatchObject({ firstSeq: 4, block: 4 });
      await second.engine.pipeline.inspect();
    } finally {
      await second.stop();
    }
  });

  it('restarts from the newest durable snapshot and replays only the blocks after it', async () => {
    const first = await start(2);
    let nonce = BigInt(String((await first.client.getAccount(alice.publicKey)).nonce));
    for (let i = 0; i < 4; i++) await first.client.submitBatch(perTxBatch([transfer(alice, bob.publicKey, ++nonce, 1n)], [alice]));
    const head = first.engine.pipeline.head.hash;
    const accounts = [await first.client.getAccount(alice.publicKey), await first.client.getAccount(bob.publicKey)];
    // Snapshots are written in the background, every 2 blocks unless the last is still being
    // written; wait until one of a block past the first test's (4) is in.
    let snapshot = await until('a snapshot past block 4', async () => {
      const b = Number((await db.query('select coalesce(max(block), 0) as b from txe_snapshots')).rows[0].b);
      return b > 4 ? b : null;
    });
    await first.client.submitBatch(perTxBatch([transfer(alice, bob.publicKey, ++nonce, 1n)], [alice])); // block 9
    await first.stop(); // waits for a snapshot still being written
    snapshot = Number((await db.query('select max(block) as b from txe_snapshots')).rows[0].b);
    expect(snapshot).toBeLessThan(9 + 1);
    const second = await start(0);
    try {
      expect(second.engine.recovery).toMatchObject({ fromSnapshot: snapshot, blocksReplayed: 9 - snapshot, lastBlock: 9 });
      expect(String((await second.client.getAccount(alice.publicKey)).nonce)).toBe(String(nonce));
      expect(String((await second.client.getAccount(bob.publicKey)).balance)).toBe(String(BigInt(String(accounts[1].balance)) + 1n));
      expect(second.engine.pipeline.head.hash.equals(head)).toBe(false); // block 9 moved the head on
      await second.engine.pipeline.inspect();
      const rows = await db.query('select count(*)::int as n from txe_snapshots');
      expect(rows.rows[0].n).toBeLessThanOrEqual(2);
    } finally {
      await second.stop();
    }
  });

  it('takes a snapshot once snapshotEveryTxs transactions, or snapshotEveryMs, have passed since the last', async () => {
    const newest = async () => Number((await db.query('select coalesce(max(block), 0) as b from txe_snapshots')).rows[0].b);
    const byTxs = await start(0, { snapshotEveryTxs: 25 });
    try {
      let nonce = BigInt(String((await byTxs.client.getAccount(issuer.publicKey)).nonce));
      const blocks: number[] = [];
      for (let i = 0; i < 3; i++) { // 10 transactions a block: the 25th is in the third
        const records = Array.from({ length: 10 }, () => mint(bob.publicKey, ++nonce, 1n));
        blocks.push(Number((await byTxs.client.submitBatch({ ...signedBatch(records), ack: 'durable' })).block));
      }
      expect(await until('a snapshot by transactions', async () => ((await newest()) === blocks[2] ? true : null))).toBe(true);
    } finally {
      await byTxs.stop();
    }
    const byTime = await start(0, { snapshotEveryMs: 300 });
    try {
      const before = await newest();
      await new Promise((r) => setTimeout(r, 400)); // the trigger under test is time itself
      const nonce = BigInt(String((await byTime.client.getAccount(issuer.publicKey)).nonce));
      const block = Number((await byTime.client.submitBatch({ ...signedBatch([mint(bob.publicKey, nonce + 1n, 1n)]), ack: 'durable' })).block);
      expect(block).toBeGreaterThan(before);
      expect(await until('a snapshot by time', async () => ((await newest()) === block ? true : null))).toBe(true);
    } finally {
      await byTime.stop();
    }
  });

  it('refuses to start on a history written in an older format, and says why', async () => {
    const { url: old, db: oldDb, drop: dropOld } = await freshDatabaseWithClient('pg_sink_old_format');
    try {
      for (const statement of MIGRATIONS) await oldDb.query(statement);
      await oldDb.query('delete from txe_schema where version >= $1', [HISTORY_FORMAT_MIN]);
      await oldDb.query('insert into txe_schema (version) values (2)'); // as the txe before the result-code change left it
      await oldDb.query(`insert into txe_blocks (number, first_seq, entries, txs, hash, prev_hash, bodies_digest, results, sequenced_at)
        values (1, 1, 1, 1, $1, $1, $1, '\\x00', now())`, [Buffer.alloc(32)]); // result 0: committed, before the change
      await expect(Engine.start(testConfig({ sinks: ['pg'], pgUrl: old }))).rejects.toThrow(/history in format 2, written by an older txe.*refuses to start/);
      expect(Number((await oldDb.query('select max(version) as v from txe_schema')).rows[0].v)).toBe(2); // nothing was migrated over it
      // A version-2 history written after the codes moved has no result 0: the check lets it through
      // (and replay then fails on this hand-made block, which has no transaction rows).
      await oldDb.query(`update txe_blocks set results = '\\x01' where number = 1`);
      const error = await Engine.start(testConfig({ sinks: ['pg'], pgUrl: old })).then(async (e) => { await e.stop(); return null; }, (e: Error) => e);
      expect(error?.message).toMatch(/block 1/);
      expect(error?.message).not.toMatch(/older txe/);
    } finally {
      await dropOld();
    }
  });

  it('rewrites a version-4 history, whose rows kept each field in a column, into rows of bodies, byte for byte', async () => {
    const { db: oldDb, drop: dropOld } = await freshDatabaseWithClient('pg_sink_v4_rows');
    try {
      await oldDb.query(`create table txe_transactions (seq bigint primary key, block bigint not null, position int not null, kind smallint not null,
        result smallint not null, sender bytea not null, recipient bytea not null, nonce numeric(20,0) not null, amount numeric(20,0) not null,
        client_timestamp_ms numeric(20,0) not null, memo bytea not null)`);
      await oldDb.query('create index txe_transactions_sender_nonce on txe_transactions (sender, nonce)');
      const rows = [
        { kind: KIND_MINT, sender: issuer.publicKey, recipient: alice.publicKey, nonce: (1n << 64n) - 1n, amount: 1n << 63n, timestampMs: 0n, memo: Buffer.alloc(MEMO_BYTES, 7) },
        { kind: KIND_TRANSFER, sender: alice.publicKey, recipient: bob.publicKey, nonce: 1n, amount: (1n << 63n) - 1n, timestampMs: 1_700_000_000_123n, memo: Buffer.from('abc') },
      ];
      for (const [i, r] of rows.entries()) {
        await oldDb.query('insert into txe_transactions values ($1, 1, $2, $3, 1, $4, $5, $6, $7, $8, $9)',
          [i + 1, i, r.kind, r.sender, r.recipient, r.nonce.toString(), r.amount.toString(), r.timestampMs.toString(), r.memo]);
      }
      for (const statement of MIGRATIONS) await oldDb.query(statement);
      const migrated = await oldDb.query('select seq, body from txe_transactions order by seq');
      expect(migrated.rows.map((row) => row.body.toString('hex'))).toEqual(rows.map((r) => {
        const body = Buffer.alloc(BODY_BYTES);
        writeBody(body, 0, r);
        return body.toString('hex');
      }));
      const fields = await oldDb.query('select nonce::text, amount::text, client_timestamp_ms::text as t, kind from txe_transaction_fields order by seq');
      expect(fields.rows).toEqual(rows.map((r) => ({ nonce: r.nonce.toString(), amount: r.amount.toString(), t: r.timestampMs.toString(), kind: r.kind })));
      const leftovers = await oldDb.query(`select to_regclass('txe_transactions_v4') as t, to_regclass('txe_transactions_sender_nonce') as i`);
      expect(leftovers.rows[0]).toEqual({ t: null, i: null }); // the old index is on columns that are gone; pgSenderNonceIndex makes the new one
      for (const statement of MIGRATIONS) await oldDb.query(statement); // and a second start changes nothing
      expect((await oldDb.query('select body from txe_transactions order by seq')).rows).toEqual(migrated.rows.map((r) => ({ body: r.body })));
    } finally {
      await dropOld();
    }
  });

  it('keeps every u64 exact in SQL and read back for replay: 0, 2^63 - 1, 2^63, 2^64 - 1', async () => {
    const edges = [0n, (1n << 63n) - 1n, 1n << 63n, (1n << 64n) - 1n];
    const { engine, client, stop } = await start();
    let block: number;
    try {
      const issuerNonce = BigInt(String((await client.getAccount(issuer.publicKey)).nonce));
      const records = edges.map((t, i) => ({ ...mint(user(`u64-${i}`).publicKey, issuerNonce + BigInt(i) + 1n, 1n), timestampMs: t }));
      const r = await client.submitBatch({ ...signedBatch(records), ack: 'durable' });
      expect(Array.from(r.results)).toEqual(edges.map(() => Result.committed));
      block = r.block;
      const sql = await db.query('select client_timestamp_ms::text as t from txe_transaction_fields where block = $1 order by seq', [block]);
      expect(sql.rows.map((row) => BigInt(row.t))).toEqual(edges);
      const head = engine.pipeline.head.hash;
      await stop();
      const [stored] = await collect(readStoredBlocks(url, block, block));
      expect(edges.map((_, i) => stored.bodies.readBigUInt64LE(i * 128 + OFFSET_TIMESTAMP_MS))).toEqual(edges);
      const again = await start(); // replays the block: its hash covers every byte of every body
      expect(again.engine.pipeline.head.hash.equals(head)).toBe(true);
      await again.stop();
    } catch (error) {
      await stop().catch(() => undefined);
      throw error;
    }
  });
});
