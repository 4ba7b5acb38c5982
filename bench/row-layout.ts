/*
 * What the row layout of txe_transactions costs to write (issue 11: measure numeric(20,0) against
 * layouts that stay readable in SQL). Each variant COPYs the same 200k transactions (65k senders,
 * as the bench sends) in one transaction into a fresh table, alternating, three rounds; it prints
 * rows/s and the engine's encode time per variant.
 *
 *   npm run build && node dist/bench/row-layout.js [rows=200000] [rounds=3]
 *
 *   numeric   today: seq, block, position, kind, result, sender, recipient, nonce/amount/timestamp numeric(20,0), memo
 *   int8      the same with the u64 fields as int8 (two's complement: a view adds 2^64 to negative values)
 *   body      seq, block, position, result, body bytea (the 128 raw bytes; SQL reads fields with substring/get_byte)
 *             (txe's layout since schema 5)
 *   body_idx  the same with the optional (sender, nonce) index on the body's bytes (pgSenderNonceIndex)
 *   block     one row a block: number, bodies bytea (8190 × 128 B) — what recovery and StreamCommits read back
 */

import crypto from 'node:crypto';
import pg from 'pg';
import { copyIn } from '../engine/stages/commit/pg/client.js';
import { CopyWriter } from '../engine/stages/commit/pg/copy-binary.js';
import { BODY_BYTES, KIND_TRANSFER, writeBody } from '../engine/core/record.js';
import { NONCE_BYTES_SQL, SENDER_SQL } from '../engine/stages/commit/pg/schema.js';

const rows = Number(process.argv[2] ?? 200_000);
const rounds = Number(process.argv[3] ?? 3);
const BLOCK_TXS = 8190;
const url = process.env.TXE_PG_URL ?? 'postgres://txe:txe@127.0.0.1:55432/txe';

const senders = Array.from({ length: 65_520 }, () => crypto.randomBytes(32));
const bodies = Buffer.alloc(rows * BODY_BYTES);
for (let i = 0; i < rows; i++) {
  writeBody(bodies, i * BODY_BYTES, { kind: KIND_TRANSFER, sender: senders[i % senders.length], recipient: senders[(i + 1) % senders.length], nonce: BigInt(Math.floor(i / senders.length) + 1), amount: 1000n + BigInt(i), timestampMs: BigInt(Date.now()) });
}

const u64 = (at: number) => [bodies.readUInt32LE(at + 4), bodies.readUInt32LE(at)] as const;
const i64 = (at: number) => Number(bodies.readBigInt64LE(at)); // exact below 2^53 here: the bench's values

const VARIANTS = {
  numeric: {
    table: 'seq int8, block int8, position int4, kind int2, result int2, sender bytea, recipient bytea, nonce numeric(20,0), amount numeric(20,0), ts numeric(20,0), memo bytea',
    encode: (out: CopyWriter, i: number, at: number) => out.tuple(11).int8(i + 1).int8(Math.floor(i / BLOCK_TXS) + 1).int4(i % BLOCK_TXS).int2(1).int2(1)
      .bytea(bodies, at + 8, at + 40).bytea(bodies, at + 40, at + 72).numericU64(...u64(at + 72)).numericU64(...u64(at + 80)).numericU64(...u64(at + 88)).bytea(bodies, at + 96, at + 128),
  },
  int8: {
    table: 'seq int8, block int8, position int4, kind int2, result int2, sender bytea, recipient bytea, nonce int8, amount int8, ts int8, memo bytea',
    encode: (out: CopyWriter, i: number, at: number) => out.tuple(11).int8(i + 1).int8(Math.floor(i / BLOCK_TXS) + 1).int4(i % BLOCK_TXS).int2(1).int2(1)
      .bytea(bodies, at + 8, at + 40).bytea(bodies, at + 40, at + 72).int8(i64(at + 72)).int8(i64(at + 80)).int8(i64(at + 88)).bytea(bodies, at + 96, at + 128),
  },
  body: {
    table: 'seq int8, block int8, position int4, result int2, body bytea',
    encode: (out: CopyWriter, i: number, at: number) => out.tuple(5).int8(i + 1).int8(Math.floor(i / BLOCK_TXS) + 1).int4(i % BLOCK_TXS).int2(1).bytea(bodies, at, at + BODY_BYTES),
  },
} as const;
const INDEXED = { body_idx: 'body' } as const; // variant -> the layout it indexes by (sender, nonce)

async function copyVariant(client: pg.Client, name: string): Promise<{ rowsPerS: number; encodeMs: number }> {
  const table = `layout_${name}_${crypto.randomBytes(3).toString('hex')}`;
  const t0 = performance.now();
  let payload: Buffer;
  if (name === 'block') {
    await client.query(`create table ${table} (number int8 primary key, bodies bytea)`);
    const out = new CopyWriter(rows * BODY_BYTES + 1024);
    for (let b = 0; b * BLOCK_TXS < rows; b++) out.tuple(2).int8(b + 1).bytea(bodies, b * BLOCK_TXS * BODY_BYTES, Math.min(rows, (b + 1) * BLOCK_TXS) * BODY_BYTES);
    payload = out.finish();
  } else {
    const layout = (INDEXED[name as keyof typeof INDEXED] ?? name) as keyof typeof VARIANTS;
    const v = VARIANTS[layout];
    await client.query(`create table ${table} (${v.table}, primary key (seq))`);
    if (layout !== name) await client.query(`create index on ${table} (${SENDER_SQL}, ${NONCE_BYTES_SQL})`);
    const out = new CopyWriter(rows * 240);
    for (let i = 0; i < rows; i++) v.encode(out, i, i * BODY_BYTES);
    payload = out.finish();
  }
  const encodeMs = performance.now() - t0;
  const t1 = performance.now();
  await client.query('begin');
  await copyIn(client, `copy ${table} from stdin (format binary)`, payload);
  await client.query('commit');
  const s = (performance.now() - t1) / 1000;
  await client.query(`drop table ${table}`);
  return { rowsPerS: rows / s, encodeMs };
}

const client = new pg.Client({ connectionString: url });
await client.connect();
const names = ['numeric', 'int8', 'body', 'body_idx', 'block'];
const results = new Map<string, { rowsPerS: number; encodeMs: number }[]>(names.map((n) => [n, []]));
for (let r = 0; r < rounds; r++) for (const name of names) results.get(name)!.push(await copyVariant(client, name));
await client.end();
for (const [name, runs] of results) {
  const rates = runs.map((x) => Math.round(x.rowsPerS)).sort((a, b) => a - b);
  const encode = runs.map((x) => Math.round(x.encodeMs)).sort((a, b) => a - b);
  console.log(`${name.padEnd(8)} transactions/s ${rates.join(', ')} (median ${rates[Math.floor(rates.length / 2)]}); engine encode ${encode[Math.floor(encode.length / 2)]} ms for ${rows} rows`);
}
