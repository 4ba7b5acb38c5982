/*
 * Reads the durable history back out of PostgreSQL as StoredBlocks, rebuilding every body of a
 * batch from its rows (accepted transactions by seq, rejections by position), so recovery can
 * replay it and check each block hash. Reads at most storedBlocksPerQueryMax blocks per query
 * (engine/config.ts says why 8), each statement bounded by recoveryStatementTimeoutMs.
 */

import { BODY_BYTES, KIND_TRANSFER, writeBody } from '../../../core/record.js';
import { Result } from '../../../core/result.js';
import type { StoredBlock } from '../stored-block.js';
import { defaultConfig, type EngineConfig } from '../../../config.js';
import { pgClient } from './client.js';
import { PG_CONNECT_TIMEOUT_MS } from './snapshots.js';

export type StoredBlockReads = Pick<EngineConfig, 'storedBlocksPerQueryMax' | 'recoveryStatementTimeoutMs'>;

/** A txe_transactions row as read back: u64 columns as text, so they stay exact past 2^53. */
export interface TxRow { seq: string; block: string; position: number; result: number; kind: number; sender: Buffer; recipient: Buffer; nonce: string; amount: string; client_timestamp_ms: string; memo: Buffer }
/** The select list that reads a TxRow. */
export const TX_ROW_COLUMNS = 'seq, block, position, result, kind, sender, recipient, nonce::text, amount::text, client_timestamp_ms::text, memo';

/** Rebuilds a row's 128-byte body at `offset` of `target` (every body field is a column). */
export function writeRowBody(target: Buffer, offset: number, row: TxRow): void {
  writeBody(target, offset, {
    kind: row.kind ?? KIND_TRANSFER, sender: row.sender, recipient: row.recipient, nonce: BigInt(row.nonce),
    amount: BigInt(row.amount), timestampMs: BigInt(row.client_timestamp_ms), memo: row.memo,
  });
}

/** Blocks [from, to] (to = newest when null), in order, storedBlocksPerQueryMax at a time. */
export async function* readStoredBlocks(url: string, from: number, to: number | null, limits: StoredBlockReads = defaultConfig()): AsyncGenerator<StoredBlock> {
  const blocksPerQueryMax = limits.storedBlocksPerQueryMax;
  if (!Number.isSafeInteger(blocksPerQueryMax) || blocksPerQueryMax < 1) throw new RangeError(`storedBlocksPerQueryMax must be a positive integer, got ${blocksPerQueryMax}`);
  const client = pgClient(url, { connectTimeoutMs: PG_CONNECT_TIMEOUT_MS, statementTimeoutMs: limits.recoveryStatementTimeoutMs, name: 'txe-recovery' });
  await client.connect();
  try {
    for (let next = from; ;) {
      const blocks = await client.query(
        `select number, first_seq, entries, txs, hash, prev_hash, bodies_digest, results, extract(epoch from sequenced_at) * 1000 as sequenced_ms, epoch
           from txe_blocks where number >= $1 and ($2::bigint is null or number <= $2) order by number limit $3`, [next, to, blocksPerQueryMax]);
      if (blocks.rows.length === 0) return;
      const first = Number(blocks.rows[0].number);
      const last = Number(blocks.rows[blocks.rows.length - 1].number);
      const txs = await client.query<TxRow>(`select ${TX_ROW_COLUMNS} from txe_transactions where block between $1 and $2 order by seq`, [first, last]);
      const rejections = await client.query<{ block: string; position: number; body: Buffer }>(
        'select block, position, body from txe_rejections where block between $1 and $2', [first, last]);
      yield* assemble(blocks.rows, txs.rows, rejections.rows, next);
      next = last + 1;
    }
  } finally {
    await client.end();
  }
}

function* assemble(blockRows: Record<string, unknown>[], txRows: TxRow[], rejectionRows: { block: string; position: number; body: Buffer }[], expected: number): Generator<StoredBlock> {
  const txsByBlock = groupBy(txRows, (r) => Number(r.block));
  const rejectionsByBlock = groupBy(rejectionRows, (r) => Number(r.block));
  let number = expected;
  for (const row of blockRows) {
    const block = storedHeader(row);
    if (block.number !== number) throw new Error(`durable history has a gap: block ${number} is missing (found ${block.number})`);
    fillBodies(block, txsByBlock.get(block.number) ?? [], rejectionsByBlock.get(block.number) ?? []);
    yield block;
    number++;
  }
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

function fillBodies(block: StoredBlock, txs: TxRow[], rejections: { position: number; body: Buffer }[]): void {
  if (txs.length !== block.entries) throw new Error(`block ${block.number}: ${txs.length} transaction rows, header says ${block.entries}`);
  txs.forEach((t, k) => {
    if (Number(t.seq) !== block.firstSeq + k) throw new Error(`block ${block.number}: seq ${t.seq} out of order`);
    writeRowBody(block.bodies, t.position * BODY_BYTES, t);
  });
  for (const r of rejections) r.body.copy(block.bodies, r.position * BODY_BYTES);
  const rejected = block.results.filter((c) => c !== Result.committed && c !== Result.pending_approval).length;
  if (rejected !== rejections.length) throw new Error(`block ${block.number}: ${rejections.length} rejection rows, results say ${rejected}`);
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
