/*
 * The PostgreSQL schema, applied at start (idempotent). The history is append-only and keyed so
 * that a repeated write can never duplicate a row: blocks by number, transactions by seq,
 * rejections by (block, position). u64 fields are numeric(20,0); int8 cannot hold 2^63 and above.
 *
 * Secondary indexes cost COPY throughput on the hot path. txe_blocks (one row a block) is indexed
 * by first_seq, for StreamCommits from a seq. The (sender, nonce) index that GetTransaction needs
 * for history older than the in-memory window halves the COPY ceiling of txe_transactions
 * (pg-reads.ts), so it is created only with pgSenderNonceIndex (SENDER_NONCE_INDEX below).
 *
 * A block's bodies can be rebuilt from its rows (every body field is a column), so bodies_digest
 * and the hash chain can be re-verified from SQL alone, rejected transactions included.
 */

// 2: approvals, votes, webhooks, deliveries. 3: result codes moved up by one (0 is UNSPECIFIED,
// committed is 1). The move shipped while the version was still 2, so a version-2 history is older
// only if its first block has a result byte 0 (no code is 0 now; committed, the commonest, was):
// it would replay to other block hashes, so it is refused. 4: the writer epoch (txe_writer, and the
// epoch each block was written under; blocks of older histories read as epoch 0).
export const SCHEMA_VERSION = 4;
export const HISTORY_FORMAT_MIN = 3;

/** Whether the database has a history yet (run before the migrations, which would create it). */
export const HISTORY_EXISTS = `select to_regclass('txe_schema') is not null and to_regclass('txe_blocks') is not null as tables`;
/** The history's format, and whether its first block has a result code 0; only where HISTORY_EXISTS. */
export const HISTORY_FORMAT = `select (select max(version) from txe_schema) as version,
  coalesce((select position('\\x00'::bytea in results) > 0 from txe_blocks order by number limit 1), false) as old_codes`;

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
export const SENDER_NONCE_INDEX = 'create index if not exists txe_transactions_sender_nonce on txe_transactions (sender, nonce)';
