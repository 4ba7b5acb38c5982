/*
 * The PostgreSQL schema, applied at start (idempotent). The history is append-only and keyed so
 * that a repeated write can never duplicate a row: blocks by number, transactions by seq,
 * rejections by (block, position).
 *
 * A transaction row keeps its 128-byte record body as it was hashed (`body`), beside seq, block,
 * position and result: the engine writes it with one copy instead of eleven fields (its COPY
 * encoding went from ~1 µs to ~0.35 µs a row, and PostgreSQL takes ~18% more rows/s; bench/
 * row-layout.ts, bench/RESULTS.md session 4), and recovery and StreamCommits read bodies back
 * without rebuilding them. SQL reads the fields through the view txe_transaction_fields and the
 * function txe_u64(body, offset), which gives a little-endian u64 as an exact numeric: int8 cannot
 * hold 2^63 and above.
 *
 * Secondary indexes cost COPY throughput on the hot path. txe_blocks (one row a block) is indexed
 * by first_seq, for StreamCommits from a seq. The (sender, nonce) index that GetTransaction needs
 * for history older than the in-memory window costs COPY dearly (pg-reads.ts), so it is created
 * only with pgSenderNonceIndex (SENDER_NONCE_INDEX below).
 *
 * A block's bodies are all in its rows (accepted) and txe_rejections (rejected), so bodies_digest
 * and the hash chain can be re-verified from SQL alone, rejected transactions included.
 */

import { MEMO_BYTES, OFFSET_AMOUNT, OFFSET_KIND, OFFSET_MEMO, OFFSET_NONCE, OFFSET_RECIPIENT, OFFSET_SENDER, OFFSET_TIMESTAMP_MS, PUBLIC_KEY_BYTES, U64_BYTES } from '../../../core/record.js';

// 2: approvals, votes, webhooks, deliveries. 3: result codes moved up by one (0 is UNSPECIFIED,
// committed is 1). The move shipped while the version was still 2, so a version-2 history is older
// only if its first block has a result byte 0 (no code is 0 now; committed, the commonest, was):
// it would replay to other block hashes, so it is refused. 4: the writer epoch (txe_writer, and the
// epoch each block was written under; blocks of older histories read as epoch 0). 5: a
// transaction row keeps its record body (MIGRATE_TRANSACTION_BODIES rewrites a version-4 table).
export const SCHEMA_VERSION = 5;
export const HISTORY_FORMAT_MIN = 3;

/** Whether the database has a history yet (run before the migrations, which would create it). */
export const HISTORY_EXISTS = `select to_regclass('txe_schema') is not null and to_regclass('txe_blocks') is not null as tables`;
/** The history's format, and whether its first block has a result code 0; only where HISTORY_EXISTS. */
export const HISTORY_FORMAT = `select (select max(version) from txe_schema) as version,
  coalesce((select position('\\x00'::bytea in results) > 0 from txe_blocks order by number limit 1), false) as old_codes`;

/** Bytes of a row's body, by core/record.ts offsets (SQL's substring counts from 1, get_byte from 0). */
const bodyBytes = (offset: number, length: number) => `substring(body from ${offset + 1} for ${length})`;
/** A row's sender and its nonce's 8 little-endian bytes, as the index and its lookups spell them. */
export const SENDER_SQL = bodyBytes(OFFSET_SENDER, PUBLIC_KEY_BYTES);
export const NONCE_BYTES_SQL = bodyBytes(OFFSET_NONCE, U64_BYTES);
/** A row's kind. */
export const KIND_SQL = `get_byte(body, ${OFFSET_KIND})`;

/** txe_transactions since version 5: a row's place in the history, its result and its body. */
const TRANSACTIONS_TABLE = `txe_transactions (
     seq bigint primary key,
     block bigint not null,
     position int not null,
     result smallint not null,
     body bytea not null)`;

/**
 * Version 4 kept every body field in a column of its own (u64s as numeric(20,0)): rebuild each
 * row's body from them, in one statement, so a history is either all old or all new.
 */
const MIGRATE_TRANSACTION_BODIES = `do $$ begin
  if exists (select 1 from information_schema.columns where table_schema = current_schema() and table_name = 'txe_transactions' and column_name = 'nonce') then
    alter table txe_transactions rename to txe_transactions_v4;
    drop index if exists txe_transactions_sender_nonce;
    create table ${TRANSACTIONS_TABLE};
    insert into txe_transactions (seq, block, position, result, body)
      select seq, block, position, result,
             '\\x01'::bytea || set_byte('\\x00'::bytea, 0, kind) || decode(repeat('00', 6), 'hex') || sender || recipient
             || txe_u64_bytes(nonce) || txe_u64_bytes(amount) || txe_u64_bytes(client_timestamp_ms)
             || memo || substring(decode(repeat('00', 32), 'hex') from 1 for 32 - length(memo))
        from txe_transactions_v4 order by seq;
    drop table txe_transactions_v4;
  end if;
end $$`;

export const MIGRATIONS: string[] = [
  `create table if not exists txe_schema (version int primary key, applied_at timestamptz not null default now())`,
  `create table if not exists txe_blocks (
     number bigint primary key,
     first_seq bigint not null,
     entries int not null,
     txs int not null,
     hash bytea not null,
     prev_hash bytea not null,
     bodies_digest bytea not null,
     results bytea not null,
     sequenced_at timestamptz not null,
     written_at timestamptz not null default now())`,
  `create table if not exists ${TRANSACTIONS_TABLE}`,
  // A little-endian u64 at a byte offset of a bytea, exactly (0 .. 2^64 - 1), and its inverse.
  `create or replace function txe_u64(b bytea, at int) returns numeric(20,0) language sql immutable strict parallel safe as
     $$ select sum(get_byte(b, at + i)::numeric * (256::numeric ^ i))::numeric(20,0) from generate_series(0, 7) as i $$`,
  `create or replace function txe_u64_bytes(v numeric) returns bytea language sql immutable strict parallel safe as
     $$ select string_agg(set_byte('\\x00'::bytea, 0, (div(v, 256::numeric ^ i) % 256)::int), ''::bytea order by i) from generate_series(0, 7) as i $$`,
  MIGRATE_TRANSACTION_BODIES,
  // The fields of each transaction row, at the offsets of core/record.ts (SQL's substring counts from 1).
  `create or replace view txe_transaction_fields as
     select seq, block, position, result, ${KIND_SQL}::smallint as kind,
            ${SENDER_SQL} as sender, ${bodyBytes(OFFSET_RECIPIENT, PUBLIC_KEY_BYTES)} as recipient,
            txe_u64(body, ${OFFSET_NONCE}) as nonce, txe_u64(body, ${OFFSET_AMOUNT}) as amount,
            txe_u64(body, ${OFFSET_TIMESTAMP_MS}) as client_timestamp_ms, ${bodyBytes(OFFSET_MEMO, MEMO_BYTES)} as memo
       from txe_transactions`,
  `create table if not exists txe_rejections (
     block bigint not null,
     position int not null,
     result smallint not null,
     body bytea not null,
     primary key (block, position))`,
  'create index if not exists txe_blocks_first_seq on txe_blocks (first_seq)',
  // The writer epoch (writer-term.ts): one row, bumped by each engine that opens the history.
  `create table if not exists txe_writer (
     id smallint primary key check (id = 1),
     epoch bigint not null,
     holder text not null,
     taken_at timestamptz not null)`,
  // A constant default: PostgreSQL adds the column without rewriting the table.
  'alter table txe_blocks add column if not exists epoch bigint not null default 0',
  `create table if not exists txe_snapshots (block bigint primary key, taken_at timestamptz not null default now(), data bytea not null)`,
  // Approvals: one row per hold, written by the pg sink in the same transaction as the block that
  // held it, and updated in the transaction of the block that decided it (approvals/approval-rows.ts).
  `create table if not exists txe_approvals (
     id bytea primary key,
     seq bigint not null unique,
     block bigint not null,
     position int not null,
     sender bytea not null,
     recipient bytea not null,
     nonce numeric(20,0) not null,
     amount numeric(20,0) not null,
     policy text not null,
     required int not null,
     approvers bytea[] not null,
     requested_at timestamptz not null,
     expires_at timestamptz not null,
     status text not null,
     decided_seq bigint,
     decided_at timestamptz)`,
  `create index if not exists txe_approvals_pending on txe_approvals (seq) where status = 'pending'`,
  // Votes are written by the ApprovalService before it acts on them, one per approver.
  `create table if not exists txe_approval_votes (
     approval_id bytea not null,
     approver bytea not null,
     decision text not null,
     signature bytea not null,
     voted_at timestamptz not null,
     primary key (approval_id, approver))`,
  // Webhooks and every delivery try (webhooks/). Secrets are kept as written: HMAC signing needs
  // the key itself, so access to this table is access to the secrets.
  `create table if not exists txe_webhooks (
     id text primary key,
     url text not null,
     event_types text[] not null,
     accounts bytea[] not null,
     description text not null,
     enabled boolean not null,
     disabled_reason text not null,
     secret text not null,
     previous_secret text,
     previous_secret_expires_at timestamptz,
     secret_rotated_at timestamptz not null,
     from_block bigint not null,
     created_at timestamptz not null,
     updated_at timestamptz not null,
     deleted boolean not null default false)`,
  `create table if not exists txe_webhook_deliveries (
     id bigserial primary key,
     webhook_id text not null,
     event_id text not null,
     event_type text not null,
     block bigint not null,
     attempt int not null,
     attempted_at timestamptz not null,
     status_code int not null,
     error text not null,
     duration_ms int not null,
     outcome text not null,
     next_attempt_at timestamptz)`,
  `create index if not exists txe_webhook_deliveries_by_webhook on txe_webhook_deliveries (webhook_id, id)`,
  // At most one successful delivery of an event to a webhook: the guard against a redelivery
  // after a crash between the POST and the Kafka offset commit.
  `create unique index if not exists txe_webhook_delivered_once on txe_webhook_deliveries (webhook_id, event_id) where outcome = 'delivered'`,
  `insert into txe_schema (version) values (${SCHEMA_VERSION}) on conflict do nothing`,
];

/** Created at start when pgSenderNonceIndex is on (an existing index is kept either way). */
export const SENDER_NONCE_INDEX = `create index if not exists txe_transactions_sender_nonce on txe_transactions (${SENDER_SQL}, ${NONCE_BYTES_SQL})`;
