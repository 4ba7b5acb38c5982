/*
 * Reads the durable history back out of PostgreSQL as StoredBlocks, rebuilding every body of a
 * batch from its rows (accepted transactions by seq, rejections by position), so recovery can
 * replay it and check each block hash, and StreamCommits can send history older than memory.
 * Reads at most storedBlocksPerQueryMax blocks per query (engine/config.ts says why 8), each
 * statement bounded by recoveryStatementTimeoutMs.
 *
 * The transaction rows come as COPY ... TO STDOUT (FORMAT binary), and each row's body (schema.ts
 * keeps it as hashed) is copied straight into its block: no row objects, no hex-encoded bytea, no
 * decimal strings. Read as ordinary rows they streamed at ~130k transactions a second, with the
 * engine's CPU in bytea hex parsing, strings and garbage collection (bench/stream-commits-cost.ts,
 * bench/RESULTS.md session 5).
 */

import { BODY_BYTES } from '../../../core/record.js';
import { isAccepted } from '../../../core/result.js';
import type { StoredBlock } from '../stored-block.js';
import { defaultConfig, type EngineConfig } from '../../../config.js';
import type pg from 'pg';
import { copyOut, pgClient } from './client.js';
import { forEachCopyTuple } from './copy-binary.js';
import { PG_CONNECT_TIMEOUT_MS } from './snapshots.js';

export type StoredBlockReads = Pick<EngineConfig, 'storedBlocksPerQueryMax' | 'recoveryStatementTimeoutMs'>;

/** A txe_transactions row as read back. */
export interface TxRow { seq: string; block: string; position: number; result: number; body: Buffer }
/** The select list that reads a TxRow. */
export const TX_ROW_COLUMNS = 'seq, block, position, result, body';

/** A stored row's body, checked for its length: the 128 bytes that were hashed. */
export function rowBody(row: TxRow): Buffer {
  checkBodyBytes(row.seq, row.body.length);
  return row.body;
}

function checkBodyBytes(seq: number | string, bytes: number): void {
  if (bytes !== BODY_BYTES) throw new Error(`transaction seq ${seq}: its stored body is ${bytes} bytes, not ${BODY_BYTES}`);
}

// The columns of one transaction row as COPY sends them, in this order.
const TX_COPY_COLUMNS = ['seq', 'position', 'body'];
const [C_SEQ, C_POSITION, C_BODY] = TX_COPY_COLUMNS.map((_, i) => i);

/**
 * A chunk's rows are a range of the seq index: a plan PostgreSQL thinks costly enough gets JIT
 * compiled (~20 ms a query) and parallel workers, which only compete for this machine's cores.
 */
const CHUNK_READ_SETTINGS = 'set jit = off; set max_parallel_workers_per_gather = 0';

/**
 * Blocks [from, to] (to = newest when null), in order, storedBlocksPerQueryMax at a time. The next
 * chunk is read while the caller works through this one (the connection queues its statements),
 * so PostgreSQL and the caller (a replay, a StreamCommits reader) overlap; two chunks at most are
 * held at once.
 */
export async function* readStoredBlocks(url: string, from: number, to: number | null, limits: StoredBlockReads = defaultConfig()): AsyncGenerator<StoredBlock> {
  const blocksPerQueryMax = limits.storedBlocksPerQueryMax;
  if (!Number.isSafeInteger(blocksPerQueryMax) || blocksPerQueryMax < 1) throw new RangeError(`storedBlocksPerQueryMax must be a positive integer, got ${blocksPerQueryMax}`);
  const client = pgClient(url, { connectTimeoutMs: PG_CONNECT_TIMEOUT_MS, statementTimeoutMs: limits.recoveryStatementTimeoutMs, name: 'txe-recovery' });
  await client.connect();
  await client.query(CHUNK_READ_SETTINGS);
  const chunkFrom = (next: number) => (to !== null && next > to ? Promise.resolve([]) : readChunk(client, next, to, blocksPerQueryMax));
  let pending: Promise<StoredBlock[]> = chunkFrom(from);
  try {
    for (;;) {
      const chunk = await pending;
      if (chunk.length === 0) return;
      pending = chunkFrom(chunk[chunk.length - 1].number + 1);
      pending.catch(() => undefined); // awaited next turn, or dropped with the generator
      yield* chunk;
    }
  } finally {
    await pending.catch(() => undefined);
    await client.end();
  }
}

/** Up to `blocksMax` blocks from `next` (to `to` at most), bodies rebuilt; empty past the newest. */
async function readChunk(client: pg.Client, next: number, to: number | null, blocksMax: number): Promise<StoredBlock[]> {
  const blocks = await client.query(
    `select number, first_seq, entries, txs, hash, prev_hash, bodies_digest, results, extract(epoch from sequenced_at) * 1000 as sequenced_ms, epoch
       from txe_blocks where number >= $1 and ($2::bigint is null or number <= $2) order by number limit $3`, [next, to, blocksMax]);
  if (blocks.rows.length === 0) return [];
  const first = Number(blocks.rows[0].number);
  const last = Number(blocks.rows[blocks.rows.length - 1].number);
  // By seq, the primary key: the blocks' entries hold seqs firstSeq .. firstSeq + entries - 1, one
  // range for the chunk (by block it was a scan of the whole table each time). COPY takes no
  // parameters: both numbers are safe integers read from the database just now.
  const seqFrom = Number(blocks.rows[0].first_seq);
  const seqTo = Number(blocks.rows[blocks.rows.length - 1].first_seq) + Number(blocks.rows[blocks.rows.length - 1].entries) - 1;
  const txs = await copyOut(client, `copy (select ${TX_COPY_COLUMNS.join(', ')} from txe_transactions where seq between ${seqFrom} and ${seqTo} order by seq) to stdout (format binary)`);
  const rejections = await client.query<{ block: string; position: number; body: Buffer }>(
    'select block, position, body from txe_rejections where block between $1 and $2', [first, last]);
  return [...assemble(blocks.rows, txs, rejections.rows, next)];
}

function* assemble(blockRows: Record<string, unknown>[], txs: Buffer, rejectionRows: { block: string; position: number; body: Buffer }[], expected: number): Generator<StoredBlock> {
  const blocks = blockRows.map(storedHeader);
  blocks.forEach((block, i) => {
    if (block.number !== expected + i) throw new Error(`durable history has a gap: block ${expected + i} is missing (found ${block.number})`);
  });
  writeTransactionBodies(blocks, txs);
  const rejectionsByBlock = groupBy(rejectionRows, (r) => Number(r.block));
  for (const block of blocks) {
    const rejections = rejectionsByBlock.get(block.number) ?? [];
    for (const r of rejections) r.body.copy(block.bodies, r.position * BODY_BYTES);
    const rejected = block.results.filter((c) => !isAccepted(c)).length;
    if (rejected !== rejections.length) throw new Error(`block ${block.number}: ${rejections.length} rejection rows, results say ${rejected}`);
    yield block;
  }
}

/**
 * Writes each accepted transaction's body into its block, at its position. Rows come in seq order,
 * but each finds its block from the last one's whatever the order; every block must get each of
 * its entries' seqs exactly once, each at the position of that entry among the block's accepted
 * results. Cost: one 128-byte copy and a few comparisons a row.
 */
function writeTransactionBodies(blocks: StoredBlock[], txs: Buffer): void {
  const positions = blocks.map(acceptedPositions);
  const filled = blocks.map((block) => new Uint8Array(block.entries));
  const counts = blocks.map(() => 0);
  let b = 0;
  forEachCopyTuple(txs, TX_COPY_COLUMNS.length, (data, at, length) => {
    const seq = data.readUInt32BE(at[C_SEQ]) * 2 ** 32 + data.readUInt32BE(at[C_SEQ] + 4);
    b = blockOfSeq(blocks, seq, b);
    const block = blocks[b];
    const entry = seq - block.firstSeq;
    if (filled[b][entry] === 1) throw new Error(`transaction seq ${seq} is stored twice (block ${block.number})`);
    checkBodyBytes(seq, length[C_BODY]);
    const position = data.readInt32BE(at[C_POSITION]);
    if (position !== positions[b][entry]) throw new Error(`transaction seq ${seq}: stored at position ${position}, but entry ${entry} of block ${block.number} is at position ${positions[b][entry]}`);
    data.copy(block.bodies, position * BODY_BYTES, at[C_BODY], at[C_BODY] + BODY_BYTES);
    filled[b][entry] = 1;
    counts[b]++;
  });
  blocks.forEach((block, i) => {
    if (counts[i] !== block.entries) throw new Error(`block ${block.number}: ${counts[i]} transaction rows, header says ${block.entries}`);
  });
}

/** Index of the block whose entries hold `seq`, searched from block `from` (the last row's). */
function blockOfSeq(blocks: StoredBlock[], seq: number, from: number): number {
  let b = from;
  while (b > 0 && seq < blocks[b].firstSeq) b--;
  while (b < blocks.length && seq >= blocks[b].firstSeq + blocks[b].entries) b++;
  if (b === blocks.length || seq < blocks[b].firstSeq) throw new Error(`transaction seq ${seq} belongs to none of blocks ${blocks[0].number}..${blocks[blocks.length - 1].number}`);
  return b;
}

/** The positions of a block's accepted transactions, in seq order. */
function acceptedPositions(block: StoredBlock): Int32Array {
  const out = new Int32Array(block.entries);
  let k = 0;
  for (let i = 0; i < block.txs; i++) {
    if (!isAccepted(block.results[i])) continue;
    if (k === block.entries) throw new Error(`block ${block.number}: more accepted results than its ${block.entries} entries`);
    out[k++] = i;
  }
  if (k !== block.entries) throw new Error(`block ${block.number}: ${k} accepted results, header says ${block.entries}`);
  return out;
}

function storedHeader(row: Record<string, unknown>): StoredBlock {
  const txs = Number(row.txs);
  return {
    number: Number(row.number), firstSeq: Number(row.first_seq), entries: Number(row.entries), txs,
    hash: row.hash as Buffer, prevHash: row.prev_hash as Buffer, bodiesDigest: row.bodies_digest as Buffer,
    results: row.results as Buffer, bodies: Buffer.alloc(txs * BODY_BYTES), sequencedAtMs: Math.round(Number(row.sequenced_ms)),
    epoch: Number(row.epoch),
  };
}

function groupBy<T>(rows: T[], key: (r: T) => number): Map<number, T[]> {
  const out = new Map<number, T[]>();
  for (const r of rows) {
    const k = key(r);
    const list = out.get(k);
    if (list) list.push(r);
    else out.set(k, [r]);
  }
  return out;
}
