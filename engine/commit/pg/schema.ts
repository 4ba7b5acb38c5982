/*
 * The PostgreSQL schema, applied at start (idempotent). The history is append-only and keyed so
 * that a repeated write can never duplicate a row: blocks by number, transactions by seq,
 * rejections by (block, position). u64 fields are numeric(20,0); int8 cannot hold 2^63 and above.
 *
 * No secondary index: each one costs COPY throughput on the hot path; lookups by (sender, nonce)
 * can get one when they are served from here.
 *
 * A block's bodies can be rebuilt from its rows (every body field is a column), so bodies_digest
 * and the hash chain can be re-verified from SQL alone, rejected transactions included.
 */

export const SCHEMA_VERSION = 1;

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
  `create table if not exists txe_transactions (
     seq bigint primary key,
     block bigint not null,
     position int not null,
     kind smallint not null,
     result smallint not null,
     sender bytea not null,
     recipient bytea not null,
     nonce numeric(20,0) not null,
     amount numeric(20,0) not null,
     client_timestamp_ms numeric(20,0) not null,
     memo bytea not null)`,
  `create table if not exists txe_rejections (
     block bigint not null,
     position int not null,
     result smallint not null,
     body bytea not null,
     primary key (block, position))`,
  `create table if not exists txe_snapshots (block bigint primary key, taken_at timestamptz not null default now(), data bytea not null)`,
  `insert into txe_schema (version) values (${SCHEMA_VERSION}) on conflict do nothing`,
];
