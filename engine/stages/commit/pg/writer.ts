/*
 * The writer of a history in PostgreSQL: the advisory lock its first sink session holds, and the
 * writer epoch (writer-term.ts) in the one-row table txe_writer. Taking the epoch is one statement
 * under the lock; checking it is one indexed read (~0.1 ms) with a share lock on the row, folded
 * into each group's first query.
 */

import os from 'node:os';
import type pg from 'pg';

const WRITER_LOCK_KEY = 0x7478_6501; // "txe" 1: the advisory lock of the engine that writes
const WRITER_LOCK_RETRY_MS = 100;

const EPOCH_SELECT = 'select epoch from txe_writer where id = 1';
/** The epoch PostgreSQL names now, as an SQL expression (null before any was taken). */
export const WRITER_EPOCH_SQL = `(${EPOCH_SELECT})`;
/**
 * The same, with the row locked FOR SHARE to the end of the transaction: a writer's groups share
 * it, and takeEpoch's update waits for them, so no group commits under an epoch already replaced.
 */
export const WRITER_EPOCH_SHARED_SQL = `(${EPOCH_SELECT} for share)`;

/** Who took an epoch, for an operator reading txe_writer: host and process. */
export const WRITER_HOLDER = `${os.hostname()}:${process.pid}`;

/**
 * One engine writes a database at a time: the sink's session holds an advisory lock. A session
 * that died (an engine killed) releases it as soon as PostgreSQL notices, so the lock is retried
 * until `waitMs` has passed.
 */
export async function takeWriterLock(client: pg.Client, waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const r = await client.query<{ locked: boolean }>('select pg_try_advisory_lock($1) as locked', [WRITER_LOCK_KEY]);
    if (r.rows[0].locked) return;
    if (Date.now() > deadline) throw new Error('pg sink: another txe engine holds the writer lock on this database');
    await new Promise((resolve) => setTimeout(resolve, WRITER_LOCK_RETRY_MS));
  }
}

/** Takes the next epoch; the caller's session holds the writer lock, so no other engine races it. */
export async function takeEpoch(client: pg.Client): Promise<number> {
  const r = await client.query<{ epoch: string }>(
    `insert into txe_writer (id, epoch, holder, taken_at) values (1, 1, $1, now())
       on conflict (id) do update set epoch = txe_writer.epoch + 1, holder = excluded.holder, taken_at = now()
     returning epoch`, [WRITER_HOLDER]);
  return Number(r.rows[0].epoch);
}

/** The epoch PostgreSQL names now (0: none taken yet). */
export async function currentEpoch(client: pg.Client): Promise<number> {
  const r = await client.query<{ epoch: string | null }>(`select ${WRITER_EPOCH_SQL} as epoch`);
  return Number(r.rows[0].epoch ?? 0);
}
