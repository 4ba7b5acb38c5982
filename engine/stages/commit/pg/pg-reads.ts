/*
 * Queries of the durable history, for what is older than the in-memory window: GetTransaction by
 * seq (the primary key) or by sender and nonce (index txe_transactions_sender_nonce), and the
 * blocks a StreamCommits reader replays before it catches up with memory. A small pool of its own,
 * so queries never wait behind the sink's group commits, and every statement bounded by
 * sinkStatementTimeoutMs.
 *
 * Costs, measured (bench/RESULTS.md, sessions 4 and 8): a lookup is one index probe, ~1 ms; the
 * sender and nonce index cuts the COPY ceiling of txe_transactions to a third (677k -> 221k rows/s
 * with 65k senders, on the body's bytes; 563k -> 280k with the older columns) and halved durable
 * TPS (194k -> 101k), so it is config (pgSenderNonceIndex, off by default); without
 * it a lookup by sender and nonce older than the window answers FAILED_PRECONDITION instead of
 * scanning the table. Blocks stream at ~560k transactions/s here (pg-history.ts reads them with
 * binary COPY; bench/stream-commits-cost.ts), storeReadersMax readers at a time.
 */

import type pg from 'pg';
import { BODY_BYTES, KIND_MINT, KIND_TRANSFER, U64_BYTES } from '../../../core/record.js';
import type { StoredBlock } from '../stored-block.js';
import type { EngineConfig } from '../../../config.js';
import { pgPool } from './client.js';
import { TX_ROW_COLUMNS, readStoredBlocks, rowBody, type TxRow } from './pg-history.js';
import { KIND_SQL, NONCE_BYTES_SQL, SENDER_SQL } from './schema.js';

export interface StoredTransaction { seq: number; block: number; result: number; body: Buffer }

const QUERY_CONNECTIONS_MAX = 2;

export class PgReads {
  private readonly pool: pg.Pool;

  private readonly turns: Turns;

  constructor(private readonly url: string, private readonly config: Pick<EngineConfig, 'sinkConnectTimeoutMs' | 'sinkStatementTimeoutMs' | 'pgSenderNonceIndex' | 'storedBlocksPerQueryMax' | 'recoveryStatementTimeoutMs' | 'storeReadersMax'>) {
    this.turns = new Turns(config.storeReadersMax);
    this.pool = pgPool(url, { connectTimeoutMs: config.sinkConnectTimeoutMs, statementTimeoutMs: config.sinkStatementTimeoutMs, name: 'txe-queries', max: QUERY_CONNECTIONS_MAX });
  }

  get senderNonceIndexed(): boolean { return this.config.pgSenderNonceIndex; }

  async transactionBySeq(seq: number): Promise<StoredTransaction | null> {
    const r = await this.pool.query<TxRow>(`select ${TX_ROW_COLUMNS} from txe_transactions where seq = $1`, [seq]);
    return r.rows.length === 0 ? null : stored(r.rows[0]);
  }

  /** The accepted transfer or mint from `sender` with `nonce` (approval decisions carry a seq there, not a nonce). */
  async transactionBySenderNonce(sender: Buffer, nonce: bigint): Promise<StoredTransaction | null> {
    if (!this.config.pgSenderNonceIndex) throw new Error('lookups by sender and nonce need pgSenderNonceIndex');
    const nonceBytes = Buffer.alloc(U64_BYTES);
    nonceBytes.writeBigUInt64LE(nonce);
    const r = await this.pool.query<TxRow>(
      `select ${TX_ROW_COLUMNS} from txe_transactions where ${SENDER_SQL} = $1 and ${NONCE_BYTES_SQL} = $2 and ${KIND_SQL} in (${KIND_TRANSFER}, ${KIND_MINT})`, [sender, nonceBytes]);
    return r.rows.length === 0 ? null : stored(r.rows[0]);
  }

  /** The durable block a stream from `seq` starts at (the one holding it, or before it); null when none. */
  async blockFromSeq(seq: number): Promise<number | null> {
    const r = await this.pool.query<{ number: string }>('select number from txe_blocks where first_seq <= $1 order by first_seq desc, number desc limit 1', [seq]);
    return r.rows.length === 0 ? null : Number(r.rows[0].number);
  }

  /**
   * Durable blocks [from, to] in order, read storedBlocksPerQueryMax at a time on a connection of
   * their own, once one of storeReadersMax turns is free.
   */
  async *blocks(from: number, to: number): AsyncGenerator<StoredBlock> {
    await this.turns.take();
    try {
      yield* readStoredBlocks(this.url, from, to, this.config);
    } finally {
      this.turns.give();
    }
  }

  async newestBlock(): Promise<number> {
    const r = await this.pool.query<{ n: string | null }>('select max(number) as n from txe_blocks');
    return Number(r.rows[0].n ?? 0);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

function stored(row: TxRow): StoredTransaction {
  return { seq: Number(row.seq), block: Number(row.block), result: row.result, body: rowBody(row) };
}

/** The accepted bodies of a stored block, in seq order: what StreamCommits sends as entry_bodies. */
export function storedEntries(block: StoredBlock, acceptedMax: number): Buffer {
  if (block.entries === block.txs) return block.bodies; // every transaction accepted: the bodies as they are
  const out = Buffer.allocUnsafe(block.entries * BODY_BYTES);
  let k = 0;
  for (let i = 0; i < block.txs; i++) {
    if (block.results[i] > acceptedMax) continue;
    block.bodies.copy(out, k * BODY_BYTES, i * BODY_BYTES, (i + 1) * BODY_BYTES);
    k++;
  }
  if (k !== block.entries) throw new Error(`block ${block.number}: ${k} accepted bodies, the header says ${block.entries}`);
  return out;
}

/** At most `max` holders at once; the others wait in order. */
export class Turns {
  private held = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly max: number) {}

  async take(): Promise<void> {
    if (this.held < this.max) {
      this.held++;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  /** Hands the turn to the next waiter, if any (held stays the same), or frees it. */
  give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.held--;
  }
}
