/*
 * The PostgreSQL sink: every group of committed blocks in one database transaction, written with
 * COPY BINARY (blocks, accepted transactions, rejections), so one fsync serves the whole group
 * (group commit). A repeated write is a no-op: the transaction first reads the newest block number
 * and skips blocks already there, so a commit whose answer was lost is never applied twice.
 *
 * Groups go round-robin over writeConnectionsMax sessions, so one group's COPY runs while the
 * group before it commits (or COPYs too), but they commit strictly in block order: a group waits,
 * after its COPY, for the commit of the group before it, and then checks that the block before its
 * first is in the table. So the table only ever holds a contiguous prefix of the history, and a
 * crash leaves no gap to fill. (One session spent ~30% of a group outside COPY: begin and the
 * group's first query, commit, and waiting for the next group; bench/RESULTS.md session 5.)
 *
 * Back of the envelope: a transaction row is 172 B of COPY data; at 1M TPS that is ~170 MB/s,
 * which the raw COPY ceiling (logged, with a primary key, ~0.5-0.7M rows/s a session on this
 * machine kind) does not allow: the durable rate is bounded by PostgreSQL, and groups amortise
 * the commit (~1-5 ms of fsync) over up to blocksPerWriteMax blocks.
 *
 * The writer: the first session holds the advisory lock (one engine opens a history at a time),
 * and every group's transaction reads the writer epoch FOR SHARE, so an engine taking over
 * (writer.ts takeEpoch updates that row) waits for the groups in flight and every later group of
 * this engine sees the new epoch and stops: with several sessions, a lock on one of them alone
 * would not fence the others.
 */

import pg from 'pg';
import { TRANSACTION_COLUMNS, copyIn, pgClient } from './client.js';
import { Serial } from '../serial.js';
import type { InputRing } from '../../../ring/input-ring.js';
import type { CommittedBlock } from '../../../core/block.js';
import type { Sink } from '../sink.js';
import type { StoredBlock } from '../stored-block.js';
import { CopyWriter } from './copy-binary.js';
import { HISTORY_EXISTS, HISTORY_FORMAT, HISTORY_FORMAT_MIN, MIGRATIONS, SENDER_NONCE_INDEX } from './schema.js';
import { BODY_BYTES } from '../../../core/record.js';
import { TWO_32 } from '../../../core/u64.js';
import { isAccepted } from '../../../core/result.js';
import type { ApprovalChange } from '../../../core/block.js';
import { writeApprovalChanges } from './approval-rows.js';
import { WRITER_EPOCH_SHARED_SQL, currentEpoch, takeEpoch, takeWriterLock } from './writer.js';
import { FencedError, type WriterTerm } from '../writer-term.js';

export interface PgSinkOptions {
  url: string;
  connectTimeoutMs: number;
  statementTimeoutMs: number;
  senderNonceIndex?: boolean; // create txe_transactions_sender_nonce (schema.ts); default false
  writeConnectionsMax?: number; // sessions that write groups at once; default 1
}

const PG_EPOCH_MS = Date.UTC(2000, 0, 1);
/**
 * A group's first statement: the newest block, and the writer epoch, in one round trip; the epoch
 * row locked FOR SHARE until the group commits (the fence, above).
 */
const GROUP_START = `select coalesce(max(number), 0) as last, ${WRITER_EPOCH_SHARED_SQL} as epoch from txe_blocks`;
/** Before a group commits, after the group before it did: the newest block before the group's first. */
const BLOCK_BEFORE = 'select coalesce(max(number), 0) as before from txe_blocks where number < $1';
const TX_ROW_FIELDS = 5;
const TX_ROW_BYTES = 2 + TX_ROW_FIELDS * 4 + 8 + 8 + 4 + 2 + BODY_BYTES; // 172: field count, lengths, values

/** Where a block's bodies are: in the input ring (live) or in a buffer (recovery). */
interface BodySource { bytes: Buffer; offsetOf: (position: number) => number }
type BlockHeader = Pick<CommittedBlock, 'number' | 'firstSeq' | 'entries' | 'txs' | 'hash' | 'prevHash' | 'bodiesDigest' | 'results' | 'sequencedAtMs' | 'approvals'> & { epoch?: number };
type Group = { block: BlockHeader; source: BodySource }[];
/** COPY BINARY payloads for the three tables; rejections null when the group has none. */
interface Encoded { blocks: Buffer; txs: Buffer; rejections: Buffer | null }

/** One session that writes groups, one after the other. */
interface Session { client: pg.Client | null; serial: Serial; locksWriter: boolean }

export class PgSink implements Sink {
  readonly name = 'pg';
  private readonly sessions: Session[];
  private nextSession = 0;
  private lastCommit: Promise<void> = Promise.resolve(); // the newest group handed over: commits in order
  private groupsInFlight = 0;
  private closed = false;
  private epochValue = 0; // this engine's writer epoch (writer-term.ts), taken at open
  private fenced: FencedError | null = null;

  private constructor(private readonly options: PgSinkOptions) {
    const count = options.writeConnectionsMax ?? 1;
    if (!Number.isSafeInteger(count) || count < 1) throw new RangeError(`pg sink: writeConnectionsMax must be a positive integer, got ${count}`);
    this.sessions = Array.from({ length: count }, (_, i) => ({ client: null, serial: new Serial(), locksWriter: i === 0 }));
  }

  static async open(options: PgSinkOptions): Promise<PgSink> {
    const sink = new PgSink(options);
    try {
      const client = await sink.connection(sink.sessions[0]);
      await refuseOlderHistory(client);
      for (const statement of MIGRATIONS) await client.query(statement);
      if (options.senderNonceIndex) await client.query(SENDER_NONCE_INDEX);
      sink.epochValue = await takeEpoch(client);
      return sink;
    } catch (error) {
      await sink.close().catch(() => undefined); // and the writer lock with its session
      throw error;
    }
  }

  /** The writer epoch this engine took; every block it writes carries it. */
  get epoch(): number { return this.epochValue; }

  /** The term the other sink and recovery check against: PostgreSQL's txe_writer is the truth. */
  get term(): WriterTerm {
    return { epoch: this.epochValue, confirm: () => this.confirmFromOutside() };
  }

  /**
   * Encodes the group now, on the caller's turn, and queues its database work on the next session:
   * the sink stage can hand over group N+1 while PostgreSQL still commits group N.
   */
  write(blocks: CommittedBlock[], ring: InputRing): Promise<void> {
    return this.enqueue(blocks.map((b) => ({ block: b, source: { bytes: ring.bodies, offsetOf: (i: number) => ring.bodyOffset(b.ringStart + i) } })));
  }

  /**
   * Writes blocks rebuilt from another store (recovery), with the approval changes their replay
   * produced; the same no-duplicate rule applies.
   */
  writeStored(blocks: StoredBlock[], approvals: (ApprovalChange[] | null)[]): Promise<void> {
    return this.enqueue(blocks.map((b, i) => ({ block: { ...b, approvals: approvals[i] }, source: { bytes: b.bodies, offsetOf: (at: number) => at * BODY_BYTES } })));
  }

  private enqueue(group: Group): Promise<void> {
    if (this.fenced) return Promise.reject(this.fenced);
    const encoded = encodeGroup(group, this.epochValue);
    const session = this.sessions[this.nextSession];
    this.nextSession = (this.nextSession + 1) % this.sessions.length;
    // Once every group handed over has settled (a retry comes only then), a failed one is history.
    const previous = this.groupsInFlight > 0 ? this.lastCommit : Promise.resolve();
    const committed = session.serial.run(() => this.writeGroup(session, group, encoded, previous));
    this.lastCommit = committed;
    this.groupsInFlight++;
    const settled = () => { this.groupsInFlight--; };
    committed.then(settled, settled);
    return committed;
  }

  async lastBlock(): Promise<number> {
    const client = await this.connection(this.sessions[0]);
    const r = await client.query<{ last: string }>('select coalesce(max(number), 0) as last from txe_blocks');
    return Number(r.rows[0].last);
  }

  /** One group in one transaction; it commits only after `previous` (the group before it) did. */
  private async writeGroup(session: Session, group: Group, encoded: Encoded, previous: Promise<void>): Promise<void> {
    const client = await this.connection(session);
    try {
      await client.query('begin');
      const found = (await client.query<{ last: string; epoch: string | null }>(GROUP_START)).rows[0];
      if (Number(found.epoch) !== this.epochValue) throw this.fence(Number(found.epoch), 'txe_writer, in a group\'s transaction');
      // A retry after a commit whose answer was lost: some blocks are in already, so re-encode the
      // rest. The group before may still be in flight on another session, so `last` can be older
      // than the block before this group: contiguity is checked once that group has committed.
      const fresh = group.filter((g) => g.block.number > Number(found.last));
      fresh.forEach((g, i) => {
        if (i > 0 && g.block.number !== fresh[i - 1].block.number + 1) throw new Error(`pg sink: block ${g.block.number} does not follow block ${fresh[i - 1].block.number} in its group`);
      });
      if (fresh.length > 0) await copyEncoded(client, fresh.length === group.length ? encoded : encodeGroup(fresh, this.epochValue));
      await previous.catch((error: Error) => { throw new Error(`pg sink: the group before blocks ${group[0].block.number}..${group[group.length - 1].block.number} failed, so they are not committed past it: ${error.message}`); });
      if (fresh.length > 0) await this.checkFollows(client, fresh[0].block.number);
      // After the group before committed: a decision may update an approval row that group inserted.
      for (const { block } of fresh) if (block.approvals) await writeApprovalChanges(client, block.number, block.sequencedAtMs, block.approvals);
      await client.query('commit');
    } catch (error) {
      await client.query('rollback').catch(() => undefined);
      this.drop(session, client);
      throw error;
    }
  }

  /** The table holds every block before `first`: the history stays a contiguous prefix. */
  private async checkFollows(client: pg.Client, first: number): Promise<void> {
    const before = Number((await client.query<{ before: string }>(BLOCK_BEFORE, [first])).rows[0].before);
    if (before !== first - 1) throw new Error(`pg sink: block ${first} does not follow block ${before} in the database`);
  }

  private async connection(session: Session): Promise<pg.Client> {
    if (this.closed) throw new Error('pg sink is closed');
    if (this.fenced) throw this.fenced;
    if (session.client) return session.client;
    const client = pgClient(this.options.url, { connectTimeoutMs: this.options.connectTimeoutMs, statementTimeoutMs: this.options.statementTimeoutMs, name: 'txe-sink' });
    client.on('error', () => this.drop(session, client)); // a lost connection is replaced on the next write
    try {
      await client.connect();
      // A session that dropped may come back to a history another engine took meanwhile: say so at
      // once rather than wait out that engine's lock, and check again once the lock is ours.
      if (this.epochValue > 0) await this.confirmOn(client, 'reconnecting, before the writer lock');
      if (session.locksWriter) {
        await takeWriterLock(client, this.options.connectTimeoutMs);
        if (this.epochValue > 0) await this.confirmOn(client, 'reconnecting, under the writer lock');
      }
    } catch (error) {
      await client.end().catch(() => undefined);
      throw error;
    }
    session.client = client;
    return client;
  }

  /** On a session of its own, so it never waits behind a group's COPY. */
  private async confirmFromOutside(): Promise<void> {
    if (this.fenced) throw this.fenced;
    const client = pgClient(this.options.url, { connectTimeoutMs: this.options.connectTimeoutMs, statementTimeoutMs: this.options.statementTimeoutMs, name: 'txe-writer-check' });
    try {
      await client.connect();
      await this.confirmOn(client, 'checked after a failed write of another store');
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  private async confirmOn(client: pg.Client, where: string): Promise<void> {
    const now = await currentEpoch(client);
    if (now !== this.epochValue) throw this.fence(now, where);
  }

  /** Final: every later write fails with the same error. */
  private fence(nowEpoch: number, where: string): FencedError {
    this.fenced ??= new FencedError(this.epochValue, nowEpoch, `PostgreSQL: ${where}`);
    return this.fenced;
  }

  private drop(session: Session, client: pg.Client): void {
    if (session.client === client) session.client = null;
    void client.end().catch(() => undefined);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.sessions.map(async (session) => {
      const client = session.client;
      session.client = null;
      if (client) await client.end().catch(() => undefined);
    }));
  }
}

/** A live block carries the writer's epoch; a block rebuilt from Kafka keeps the one it was written under. */
function encodeGroup(group: Group, writerEpoch: number): Encoded {
  const blocks = new CopyWriter(group.length * 256);
  const txs = new CopyWriter(group.reduce((n, g) => n + g.block.entries, 0) * TX_ROW_BYTES);
  const rejections = new CopyWriter(1024);
  let rejected = 0;
  for (const { block, source } of group) {
    blocks.tuple(10).int8(block.number).int8(block.firstSeq).int4(block.entries).int4(block.txs)
      .bytea(block.hash).bytea(block.prevHash).bytea(block.bodiesDigest).bytea(block.results)
      .int8((block.sequencedAtMs - PG_EPOCH_MS) * 1000).int8(block.epoch ?? writerEpoch);
    let seq = block.firstSeq;
    for (let i = 0; i < block.txs; i++) {
      const at = source.offsetOf(i);
      const result = block.results[i];
      if (isAccepted(result)) {
        writeTransaction(txs, source.bytes, at, seq++, block.number, i, result);
      } else {
        rejections.tuple(4).int8(block.number).int4(i).int2(result).bytea(source.bytes, at, at + BODY_BYTES);
        rejected++;
      }
    }
    if (seq !== block.firstSeq + block.entries) throw new Error(`pg sink: block ${block.number} has ${seq - block.firstSeq} accepted results, header says ${block.entries}`);
  }
  return { blocks: blocks.finish(), txs: txs.finish(), rejections: rejected > 0 ? rejections.finish() : null };
}

async function copyEncoded(client: pg.Client, e: Encoded): Promise<void> {
  await copyIn(client, 'copy txe_blocks (number, first_seq, entries, txs, hash, prev_hash, bodies_digest, results, sequenced_at, epoch) from stdin (format binary)', e.blocks);
  await copyIn(client, `copy txe_transactions (${TRANSACTION_COLUMNS}) from stdin (format binary)`, e.txs);
  if (e.rejections) await copyIn(client, 'copy txe_rejections (block, position, result, body) from stdin (format binary)', e.rejections);
}

/** A database whose blocks were written in an older history format (schema.ts) is not replayed. */
async function refuseOlderHistory(client: pg.Client): Promise<void> {
  if (!(await client.query<{ tables: boolean }>(HISTORY_EXISTS)).rows[0].tables) return;
  const found = (await client.query<{ version: number | null; old_codes: boolean }>(HISTORY_FORMAT)).rows[0];
  if (!found.old_codes || (found.version ?? 0) >= HISTORY_FORMAT_MIN) return;
  throw new Error(`pg sink: this database holds a history in format ${found.version ?? 'unknown'}, written by an older txe; this engine replays format ${HISTORY_FORMAT_MIN} and later (result codes changed in 3), so it refuses to start rather than rebuild other hashes. Point it at a new database, or run the txe that wrote it`);
}

/**
 * One accepted transaction's row: its place in the history and its 128-byte body as hashed
 * (schema.ts), laid out at once through a DataView: every row has the same field count and
 * lengths, so only the values change. Field by field with Buffer's writers it cost ~300 ns a row,
 * 16% of the engine's main thread at durable max; this way ~70 ns, most of it the body's copy
 * (bench/RESULTS.md session 8).
 *
 *   i16 5 | i32 8, i64 seq | i32 8, i64 block | i32 4, i32 position | i32 2, i16 result | i32 128, body
 */
export function writeTransaction(out: CopyWriter, bodies: Buffer, at: number, seq: number, block: number, position: number, result: number): void {
  const o = out.reserve(TX_ROW_BYTES);
  const v = out.view;
  v.setInt16(o, TX_ROW_FIELDS);
  v.setInt32(o + 2, 8);
  v.setUint32(o + 6, Math.floor(seq / TWO_32)); // seq and block are positive safe integers
  v.setUint32(o + 10, seq >>> 0);
  v.setInt32(o + 14, 8);
  v.setUint32(o + 18, Math.floor(block / TWO_32));
  v.setUint32(o + 22, block >>> 0);
  v.setInt32(o + 26, 4);
  v.setInt32(o + 30, position);
  v.setInt32(o + 34, 2);
  v.setInt16(o + 38, result);
  v.setInt32(o + 40, BODY_BYTES);
  bodies.copy(out.target, o + 44, at, at + BODY_BYTES);
}
