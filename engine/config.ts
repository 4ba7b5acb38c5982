/*
 * The one config object: every limit of the engine with its default, validated at start-up.
 * Sources, later ones winning: these defaults, a JSON file (--config), TXE_* environment variables
 * (read here and nowhere else), then command-line flags.
 */

import { readFileSync } from 'node:fs';
import os from 'node:os';
import { parseApprovalPolicies, type ApprovalPolicy } from './core/policy.js';
import { parseCidr } from './core/cidr.js';
import type { SequencerOptions } from './core/sequencer.js';
import { ISSUERS_MAX } from './core/rotating-keys.js';
import { isPublicKeyHex } from './core/keys.js';

export type AckMode = 'ordered' | 'durable';

export interface EngineConfig {
  grpcHost: string; // default 127.0.0.1
  grpcPort: number; // default 50051; 0 picks a free port
  flowControlWindowBytes: number; // HTTP/2 connection and stream receive window, default 16 MiB
  grpcConcurrentStreamsMax: number; // calls open at once on one client connection, streams included; default 1024
  // Largest HTTP/2 frame the server takes: 2^24 - 1 (the protocol's largest, default) lets a 1 MB
  // batch arrive in a few frames instead of 64 of the 16 KiB minimum.
  grpcFrameBytesMax: number;
  grpcKeepaliveTimeMs: number; // ping a client connection after this long without traffic, default 7200000 (2 h)
  grpcKeepaliveTimeoutMs: number; // close a connection whose ping is not answered within this, default 20000
  grpcConnectionsMax: number; // client connections open at once; one more is closed as it arrives; default 1024
  // With mTLS: connections one client certificate may hold at once, so one client cannot take the
  // others' share of grpcConnectionsMax (each connection carries up to grpcConcurrentStreamsMax
  // calls and grpcPartialMessageBytesPerConnectionMax). Default 64.
  grpcConnectionsPerClientMax: number;
  // Calls one client may have open at once on all its connections (its certificate, else its IP
  // address); one more is refused (REFUSED_STREAM). Default 4096.
  grpcStreamsPerClientMax: number;
  grpcConnectionIdleMsMax: number; // a connection with no call open this long is closed (GOAWAY), default 300000
  // Bytes of gRPC messages begun and not finished that one connection, one client (its certificate,
  // else its IP address, on all its connections), and all of them, may hold; the stream that would
  // pass any is reset (services/grpc/partial-messages.ts). Defaults 64 MiB, 128 MiB, 512 MiB.
  grpcPartialMessageBytesPerConnectionMax: number;
  grpcPartialMessageBytesPerClientMax: number;
  grpcPartialMessageBytesMax: number;
  // TLS 1.3 on the gRPC and metrics ports (services/security/): a certificate and key file ('' =
  // plaintext, allowed only on loopback). The files are re-read when they change, so certificates
  // rotate without a restart. A client CA file ('' = none) makes client certificates required
  // (mTLS); a caller's roles are the SAN URIs txe:role/<role> of its certificate.
  tlsCertFile: string;
  tlsKeyFile: string;
  tlsClientCaFile: string;
  // Without mTLS: bearer tokens by role, for example {"submitter": ["<32+ characters>"]}; needs TLS.
  // A token may name its accounts: {"token": "...", "accounts": ["<key hex>", ...]} (else all).
  // With neither, on loopback, every caller has every role. Default {}.
  authTokens: Record<string, AuthTokenEntry[]>;
  metricsHost: string; // Prometheus endpoint, default 127.0.0.1
  metricsPort: number; // default 9464; 0 picks a free port
  workers: number; // verify threads, default = cores
  ringSlotsMax: number; // input ring, power of two; default 2^19 = 524288 slots (~100 MB)
  batchTxsMax: number; // records per batch, default 8190
  batchesInFlightMax: number; // batches claimed but not yet answered, power of two; default 256
  streamBatchesInFlightMax: number; // per SubmitStream, default 64
  perTxTaskTxsMax: number; // per-tx verify task size, default 512
  blockRingSlotsMax: number; // block ring of committed blocks, power of two; default 1024
  blocksPerWriteMax: number; // sink group commit, default 64
  sinkWritesInFlightMax: number; // groups being written at once (pipelining), default 2
  historyEntriesMax: number; // in-memory history window, power of two; default 2^18
  historyBlocksMax: number; // blocks kept for StreamCommits replay, default 4096
  subscribersMax: number; // concurrent StreamCommits readers, default 64
  // A StreamCommits reader whose stream takes nothing this long is dropped with RESOURCE_EXHAUSTED
  // (it holds at most 16 blocks meanwhile). Default 30000.
  subscriberStallMsMax: number;
  accountsMax: number; // default 2^22
  keyCacheEntriesMax: number; // verify workers' KeyObject cache, default 65536
  // The verify workers' nice value on Linux (0-19; 0 leaves them as they start). Default 5: on a
  // busy machine the I/O thread and the sequencer keep their cores when a worker wakes, and a
  // worker verifies on what is left (bench/RESULTS.md, session 10: at half rate p95 -26%, p99 -44%).
  verifyWorkerNice: number;
  issuers: string[]; // hex Ed25519 public keys allowed to mint
  trustedSigners: string[]; // hex public keys allowed to submit batch-signed batches
  // After a rotation (SIGHUP re-reads the keys and config files), a signer no longer listed stays
  // trusted this long, so clients can move to the new key. Default 3600000 (1 h).
  trustedSignerGraceMs: number;
  // The same for an issuer no longer listed: it may still mint this long. Default 3600000 (1 h).
  issuerGraceMs: number;
  approvalPolicies: ApprovalPolicy[]; // approvals/policy.ts; [] = no transfer is held (default)
  approvalsPendingMax: number; // holds waiting at once, default 65536
  approvalsDecidedKeptMax: number; // decided approvals kept in memory for Get/List/Watch, default 65536
  approvalSweepMs: number; // how often expiries and undelivered decisions are looked for, default 1000
  webhooks: boolean; // deliver webhooks (needs sinks pg and kafka), default true where they are set
  // Kafka topics <prefix>.events, .retries, .dead-letters and consumer groups <prefix>.router,
  // .delivery, .retry; default '' = '<kafkaTopic>.webhooks', so each history has its own
  webhookTopicPrefix: string;
  webhookAttemptsMax: number; // tries of one event before it is dead-lettered, default 8
  webhookBackoffMs: number; // first retry delay; doubles each try, +-20% jitter; default 5000
  webhookBackoffMaxMs: number; // longest delay between tries, Retry-After included; default 3600000
  webhookTimeoutMs: number; // one POST, default 10000; at most 80% of webhookConsumerSessionTimeoutMs
  webhookConcurrency: number; // POSTs in flight per consumer (one per partition), default 8
  webhookSecretGraceMs: number; // RotateSecret keeps the old secret valid this long, default 86400000
  webhooksMax: number; // registered webhooks, default 1000
  // CIDRs webhooks may send to although they are loopback, private or link-local (services/webhooks/
  // targets.ts refuses those by default), e.g. ['127.0.0.1/32'] for a receiver on this machine. Default [].
  webhookTargetsAllowed: string[];
  // 32 bytes as 64 hex characters that seal webhook secrets in PostgreSQL (AES-256-GCM); also from
  // TXE_WEBHOOK_SECRETS_KEY or the keys file's secretsKey. Webhooks do not start without it. Default ''.
  webhookSecretsKey: string;
  // Partitions of <prefix>.events and <prefix>.retries when the engine creates them (an existing
  // topic keeps its count): the most webhooks delivered in parallel. Default 8.
  webhookEventTopicPartitions: number;
  webhookDeadLetterTopicPartitions: number; // partitions of <prefix>.dead-letters when created, default 1
  webhookRouteSendMessagesMax: number; // events in one produce request of the router (~0.7 KB each), default 500
  webhookLogRowsPerFlushMax: number; // delivery log rows per INSERT; offsets resolve after each; default 200
  // Events the router may be ahead of this process's delivery: a backlog waits in txe.blocks
  // (128 B a transaction), not as events (~700 B each). Default 20000.
  webhookEventsQueuedMax: number;
  webhookBackpressurePollMs: number; // how often a router held back looks at delivery again, default 50
  webhookBackpressureWaitMsMax: number; // longest the router waits for delivery (it may have moved away in a rebalance), default 30000
  // How long a crashed engine's webhook consumers keep their partitions before the group moves on;
  // one POST (webhookTimeoutMs) must fit inside with room for a heartbeat. Default 15000.
  webhookConsumerSessionTimeoutMs: number;
  webhookConsumerHeartbeatIntervalMs: number; // default 1000
  webhookFetchBytesPerPartitionMax: number; // one fetch of one partition, default 8 MiB
  webhookFetchWaitMsMax: number; // an empty fetch waits this long for a record (kafkajs's default is 5 s), default 500
  webhookAutoCommitIntervalMs: number; // consumer offsets are committed at least this often, default 5000
  // How long one partition's batch may hold its consumer (plus one POST) before the others get a
  // turn: a slow receiver delays the webhooks sharing its consumer by about one answer. Default 1000.
  webhookPartitionTurnMsMax: number;
  webhookRetryPauseMsMax: number; // a retry partition whose head is not due is paused this long at most, default 60000
  webhookPgConnectionsMax: number; // the delivery thread's PostgreSQL pool, default 4
  ack: AckMode; // default for requests that do not choose: 'durable' when sinks are configured, else 'ordered'
  sinks: string[]; // durable sinks: [] (none, default), ['pg'] or ['pg', 'kafka']
  pgUrl: string; // default postgres://txe:txe@127.0.0.1:55432/txe (infra/pg-start.sh)
  kafkaBrokers: string[]; // default ['127.0.0.1:19092'] (infra/kafka-start.sh)
  kafkaTopic: string; // default 'txe.blocks'
  sinkConnectTimeoutMs: number; // default 5000
  sinkStatementTimeoutMs: number; // one PostgreSQL statement, default 30000
  // Index txe_transactions by (sender, nonce), so GetTransaction by sender and nonce reaches history
  // older than the in-memory window. It halved durable TPS here (194k -> 101k, bench/RESULTS.md
  // session 4) and cuts COPY to a third (677k -> 221k rows/s, session 8), so it is off by default:
  // GetAccount's nonce says whether a nonce was used.
  pgSenderNonceIndex: boolean;
  // PostgreSQL sessions the sink writes groups on at once: one group's COPY runs while the group
  // before it commits; groups still commit in block order (pg-sink.ts). At most sinkWritesInFlightMax
  // are busy. Default 2.
  pgWriteConnectionsMax: number;
  // One Kafka request, and the broker's wait for acks (half of it). After a failed send the sink
  // fences its old producer (a new one with the same transactional id) instead of waiting, so this
  // bounds how long a failing request holds a group, not how long UNAVAILABLE outlasts an outage.
  // Default 5000.
  kafkaRequestTimeoutMs: number;
  // Replicas of the blocks topic when the engine creates it (an existing topic keeps its own);
  // min.insync.replicas is set to max(1, this - 1). Default 1 (infra/'s single broker); 3 in production.
  kafkaReplicationFactor: number;
  // State snapshots to PostgreSQL (pg sink only), so a restart replays a bounded tail: one is taken
  // when any of these has passed since the last (0 turns that trigger off; all 0 = never). Replay
  // runs at ~360k transactions/s here (2M in 5.1-5.6 s, bench/stream-commits-cost.ts, bench/RESULTS.md
  // session 5), so 750k transactions bound a restart's replay to ~2 s.
  snapshotEveryBlocks: number; // default 1000
  snapshotEveryTxs: number; // default 750000
  snapshotEveryMs: number; // default 60000
  // Blocks read from PostgreSQL per query, by recovery and by StreamCommits readers older than the
  // window: a full block is ~2.5 MB while it is rebuilt (1 MB of bodies, ~1.4 MB of binary COPY
  // rows), and a reader holds two chunks (the next is read ahead), ~80 MB at 16. 16 streamed 559k
  // transactions/s and replayed 360-392k/s, against 490k and 324k at 8 (bench/RESULTS.md, session 5).
  // Default 16.
  storedBlocksPerQueryMax: number;
  // StreamCommits readers catching up from PostgreSQL at once; more wait for a turn, so the memory
  // of store reads stays within storeReadersMax x 2 chunks. Default 2.
  storeReadersMax: number;
  recoveryStatementTimeoutMs: number; // one PostgreSQL statement of recovery's reads, default 60000
  invariantCheckEveryBlocks: number; // full state check every N blocks, 0 = never; default 4096
  shutdownGraceMs: number; // default 10000
}

// HTTP/2 frame sizes (RFC 9113 section 6.5.2): every peer takes 2^14, none may ask for more than 2^24 - 1.
const HTTP2_FRAME_BYTES_MIN = 16_384;
const HTTP2_FRAME_BYTES_MAX = 16_777_215;
// Node's timers take at most 2^31 - 1 ms; a longer delay fires after 1 ms instead.
export const TIMER_MS_MAX = 2 ** 31 - 1;
const NICE_MAX = 19; // the lowest priority Linux gives; raising one (below 0) needs privileges
// A POST runs inside a Kafka consumer's turn and is followed by a heartbeat: it may take at most
// this share of the session timeout (12 s of the default 15 s).
const WEBHOOK_TIMEOUT_SHARE_OF_SESSION = 0.8;
// Kafka's guidance: a heartbeat interval of at most a third of the session timeout.
const HEARTBEATS_PER_SESSION_MIN = 3;
// PostgreSQL takes at most 65535 parameters a statement; a delivery log row takes 11.
const PG_PARAMETERS_MAX = 65_535;
const DELIVERY_LOG_PARAMETERS_PER_ROW = 11;
// A store read holds two chunks of rows, each ~300 B a row while rebuilt: 2^20 rows is ~300 MB.
const STORED_ROWS_PER_QUERY_MAX = 1 << 20;

export const defaultConfig = (): EngineConfig => ({
  grpcHost: '127.0.0.1',
  tlsCertFile: '',
  tlsKeyFile: '',
  tlsClientCaFile: '',
  authTokens: {},
  grpcPort: 50051,
  flowControlWindowBytes: 16 * 1024 * 1024,
  grpcConcurrentStreamsMax: 1024,
  grpcConnectionsMax: 1024,
  grpcConnectionsPerClientMax: 64,
  grpcStreamsPerClientMax: 4096,
  grpcConnectionIdleMsMax: 300_000,
  grpcPartialMessageBytesPerConnectionMax: 64 * 1024 * 1024,
  grpcPartialMessageBytesPerClientMax: 128 * 1024 * 1024,
  grpcPartialMessageBytesMax: 512 * 1024 * 1024,
  grpcFrameBytesMax: HTTP2_FRAME_BYTES_MAX,
  grpcKeepaliveTimeMs: 7_200_000,
  grpcKeepaliveTimeoutMs: 20_000,
  metricsHost: '127.0.0.1',
  metricsPort: 9464,
  workers: Math.max(1, os.availableParallelism()),
  ringSlotsMax: 1 << 19,
  batchTxsMax: 8190,
  batchesInFlightMax: 256,
  streamBatchesInFlightMax: 64,
  perTxTaskTxsMax: 512,
  blockRingSlotsMax: 1024,
  blocksPerWriteMax: 64,
  sinkWritesInFlightMax: 2,
  historyEntriesMax: 1 << 18,
  historyBlocksMax: 4096,
  subscribersMax: 64,
  subscriberStallMsMax: 30_000,
  accountsMax: 1 << 22,
  keyCacheEntriesMax: 65536,
  verifyWorkerNice: 5,
  issuers: [],
  trustedSigners: [],
  trustedSignerGraceMs: 3_600_000,
  issuerGraceMs: 3_600_000,
  approvalPolicies: [],
  approvalsPendingMax: 65536,
  approvalsDecidedKeptMax: 65536,
  approvalSweepMs: 1000,
  webhooks: true,
  webhookTopicPrefix: '',
  webhookAttemptsMax: 8,
  webhookBackoffMs: 5000,
  webhookBackoffMaxMs: 3_600_000,
  webhookTimeoutMs: 10_000,
  webhookConcurrency: 8,
  webhookSecretGraceMs: 86_400_000,
  webhooksMax: 1000,
  webhookTargetsAllowed: [],
  webhookSecretsKey: '',
  webhookEventTopicPartitions: 8,
  webhookDeadLetterTopicPartitions: 1,
  webhookRouteSendMessagesMax: 500,
  webhookLogRowsPerFlushMax: 200,
  webhookEventsQueuedMax: 20_000,
  webhookBackpressurePollMs: 50,
  webhookBackpressureWaitMsMax: 30_000,
  webhookConsumerSessionTimeoutMs: 15_000,
  webhookConsumerHeartbeatIntervalMs: 1_000,
  webhookFetchBytesPerPartitionMax: 8 * 1024 * 1024,
  webhookFetchWaitMsMax: 500,
  webhookAutoCommitIntervalMs: 5_000,
  webhookPartitionTurnMsMax: 1_000,
  webhookRetryPauseMsMax: 60_000,
  webhookPgConnectionsMax: 4,
  ack: 'ordered',
  sinks: [],
  pgUrl: 'postgres://txe:txe@127.0.0.1:55432/txe',
  kafkaBrokers: ['127.0.0.1:19092'],
  kafkaTopic: 'txe.blocks',
  sinkConnectTimeoutMs: 5000,
  sinkStatementTimeoutMs: 30_000,
  pgSenderNonceIndex: false,
  pgWriteConnectionsMax: 2,
  kafkaRequestTimeoutMs: 5_000,
  kafkaReplicationFactor: 1,
  snapshotEveryBlocks: 1000,
  snapshotEveryTxs: 750_000,
  snapshotEveryMs: 60_000,
  storedBlocksPerQueryMax: 16,
  storeReadersMax: 2,
  recoveryStatementTimeoutMs: 60_000,
  invariantCheckEveryBlocks: 4096,
  shutdownGraceMs: 10_000,
});

/** The state machine's options: the same for the live sequencer thread and for recovery's replay. */
/**
 * min.insync.replicas for a replicated topic of `replicationFactor` (kafkaReplicationFactor): one
 * node may be lost and acks=all writes go on; 1 with a single replica.
 */
export function minInsyncReplicas(replicationFactor: number): number {
  return Math.max(1, replicationFactor - 1);
}

export function sequencerOptions(config: EngineConfig): SequencerOptions {
  return { accountsMax: config.accountsMax, issuers: config.issuers.map((h) => Buffer.from(h, 'hex')), approvalPolicies: config.approvalPolicies, approvalsPendingMax: config.approvalsPendingMax };
}

/**
 * Input-ring slots that client batches leave free for engine entries (approval decisions), so
 * holds are decided and expired even while clients keep the engine at capacity: room for one
 * batch of up to 256 decisions, and at most a 16th of a small ring.
 */
export function entrySlotsReserved(config: Pick<EngineConfig, 'ringSlotsMax' | 'batchTxsMax'>): number {
  return Math.max(1, Math.min(256, Math.floor(config.ringSlotsMax / 16), config.batchTxsMax));
}

/** The webhook topics' and groups' prefix: the configured one, else '<kafkaTopic>.webhooks'. */
export function webhookTopicPrefix(config: EngineConfig): string {
  return config.webhookTopicPrefix || `${config.kafkaTopic}.webhooks`;
}

/** Largest gRPC message: a full per-tx batch plus room for the other fields. */
export function messageBytesMax(config: EngineConfig): number {
  return config.batchTxsMax * 192 + 4096;
}

const ENV_KEYS: Record<string, keyof EngineConfig> = {
  TXE_GRPC_HOST: 'grpcHost',
  TXE_GRPC_PORT: 'grpcPort',
  TXE_METRICS_HOST: 'metricsHost',
  TXE_METRICS_PORT: 'metricsPort',
  TXE_WORKERS: 'workers',
  TXE_ISSUERS: 'issuers',
  TXE_TRUSTED_SIGNERS: 'trustedSigners',
  TXE_ACK: 'ack',
  TXE_SINKS: 'sinks',
  TXE_PG_URL: 'pgUrl',
  TXE_KAFKA_BROKERS: 'kafkaBrokers',
  TXE_WEBHOOK_SECRETS_KEY: 'webhookSecretsKey',
  TXE_TLS_CERT_FILE: 'tlsCertFile',
  TXE_TLS_KEY_FILE: 'tlsKeyFile',
  TXE_TLS_CLIENT_CA_FILE: 'tlsClientCaFile',
};

const PG_WRITE_CONNECTIONS_MAX = 16;

/** The roles a caller can hold (services/security/roles.ts says what each may call). */
export const AUTH_ROLES = ['submitter', 'approver', 'operator'] as const;
export const AUTH_TOKEN_CHARS_MIN = 32;
/** In a list of the accounts a caller acts for (a token's, a certificate's): every account. */
export const ALL_ACCOUNTS = '*';

/** Whether `value` may stand in such a list: a 32-byte public key in hex, or ALL_ACCOUNTS. */
export function isAccountEntry(value: string): boolean {
  return value === ALL_ACCOUNTS || isPublicKeyHex(value);
}

export function loadConfig(overrides: Partial<Record<keyof EngineConfig, unknown>> = {}, file?: string, env: NodeJS.ProcessEnv = process.env): EngineConfig {
  const merged: Record<string, unknown> = { ...defaultConfig() };
  if (file) Object.assign(merged, JSON.parse(readFileSync(file, 'utf8')));
  for (const [name, key] of Object.entries(ENV_KEYS)) if (env[name] !== undefined) merged[key] = env[name];
  for (const [key, value] of Object.entries(overrides)) if (value !== undefined) merged[key] = value;
  const ackChosen = overrides.ack !== undefined || env.TXE_ACK !== undefined || (file !== undefined && 'ack' in JSON.parse(readFileSync(file, 'utf8')));
  const config = validateConfig(merged);
  // ack=durable is the default wherever there is durable storage to wait for.
  if (!ackChosen && config.sinks.length > 0) config.ack = 'durable';
  return config;
}

// Keys renamed so that every limit ends in Max (2026-12); a config file with an old name is told the new one.
const RENAMED_KEYS: Record<string, keyof EngineConfig> = {
  ringSlots: 'ringSlotsMax', blockRingSlots: 'blockRingSlotsMax', historyEntries: 'historyEntriesMax',
  historyBlocks: 'historyBlocksMax', approvalsDecidedKept: 'approvalsDecidedKeptMax',
};

/** Whether any snapshot trigger is on. */
export function snapshotsOn(config: Pick<EngineConfig, 'snapshotEveryBlocks' | 'snapshotEveryTxs' | 'snapshotEveryMs'>): boolean {
  return config.snapshotEveryBlocks > 0 || config.snapshotEveryTxs > 0 || config.snapshotEveryMs > 0;
}

export function validateConfig(raw: Record<string, unknown>): EngineConfig {
  const defaults = defaultConfig();
  const renamed = Object.keys(raw).filter((k) => k in RENAMED_KEYS);
  if (renamed.length > 0) throw new Error(`renamed config keys: ${renamed.map((k) => `${k} is now ${RENAMED_KEYS[k]}`).join(', ')}`);
  const unknown = Object.keys(raw).filter((k) => !(k in defaults));
  if (unknown.length > 0) throw new Error(`unknown config keys: ${unknown.join(', ')}`);
  const c = { ...defaults } as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(raw)) c[key] = coerce(key, value, (defaults as unknown as Record<string, unknown>)[key]);
  const config = c as unknown as EngineConfig;
  const powersOfTwo: (keyof EngineConfig)[] = ['ringSlotsMax', 'batchesInFlightMax', 'blockRingSlotsMax', 'historyEntriesMax'];
  for (const key of powersOfTwo) {
    const v = config[key] as number;
    if (v < 2 || (v & (v - 1)) !== 0) throw new Error(`config ${key} must be a power of two >= 2, got ${v}`);
  }
  const zeroAllowed = new Set(['grpcPort', 'metricsPort', 'invariantCheckEveryBlocks', 'snapshotEveryBlocks', 'snapshotEveryTxs', 'snapshotEveryMs', 'trustedSignerGraceMs', 'issuerGraceMs', 'verifyWorkerNice']);
  for (const [key, value] of Object.entries(config)) {
    if (typeof value === 'number' && value < 1 && !zeroAllowed.has(key)) throw new Error(`config ${key} must be at least 1, got ${value}`);
  }
  if (config.issuers.length > ISSUERS_MAX) throw new Error(`config issuers: ${config.issuers.length} keys, at most ${ISSUERS_MAX}`);
  if (config.accountsMax <= config.issuers.length) throw new Error(`config accountsMax (${config.accountsMax}) must exceed the number of issuers (${config.issuers.length})`);
  const clientSlotsMax = config.ringSlotsMax - entrySlotsReserved(config);
  if (config.batchTxsMax < 1 || config.batchTxsMax > clientSlotsMax) throw new Error(`config batchTxsMax must be in [1, ${clientSlotsMax}] (ringSlotsMax ${config.ringSlotsMax} less ${entrySlotsReserved(config)} kept for approval decisions), got ${config.batchTxsMax}`);
  if (config.pgWriteConnectionsMax > PG_WRITE_CONNECTIONS_MAX) throw new Error(`config pgWriteConnectionsMax must be at most ${PG_WRITE_CONNECTIONS_MAX} (each is a PostgreSQL backend), got ${config.pgWriteConnectionsMax}`);
  if (config.workers < 1 || config.workers > 256) throw new Error(`config workers must be in [1, 256], got ${config.workers}`);
  if (config.verifyWorkerNice > NICE_MAX) throw new Error(`config verifyWorkerNice must be in [0, ${NICE_MAX}] (a nice value; 0 leaves the workers as they start), got ${config.verifyWorkerNice}`);
  for (const key of ['grpcPort', 'metricsPort'] as const) if (config[key] > 65535) throw new Error(`config ${key} must be a TCP port in [0, 65535], got ${config[key]}`);
  if (config.ack !== 'ordered' && config.ack !== 'durable') throw new Error(`config ack must be ordered or durable, got ${config.ack}`);
  for (const sink of config.sinks) if (sink !== 'pg' && sink !== 'kafka') throw new Error(`config sinks: unknown sink ${sink}; use pg or pg,kafka`);
  if (config.sinks.includes('kafka') && !config.sinks.includes('pg')) throw new Error('config sinks: kafka needs pg too (recovery rebuilds state from PostgreSQL)');
  if (webhookTopicPrefix(config) === config.kafkaTopic || !/^[A-Za-z0-9._-]+$/.test(webhookTopicPrefix(config))) throw new Error(`config webhookTopicPrefix must be a Kafka topic name prefix (letters, digits, . _ -), got ${config.webhookTopicPrefix}`);
  for (const key of ['issuers', 'trustedSigners'] as const) {
    for (const hex of config[key]) if (!isPublicKeyHex(hex)) throw new Error(`config ${key}: ${hex} is not a 32-byte hex public key`);
  }
  validateTransportLimits(config);
  validateWebhookLimits(config);
  validateTransportSecurity(config);
  return config;
}

/** Whether a listen address can be reached only from this machine. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** TLS or loopback; on a reachable address, a way for callers to prove who they are. */
function validateTransportSecurity(config: EngineConfig): void {
  if ((config.tlsCertFile === '') !== (config.tlsKeyFile === '')) throw new Error('config tlsCertFile and tlsKeyFile go together: set both for TLS, or neither');
  const tls = config.tlsCertFile !== '';
  if (config.tlsClientCaFile !== '' && !tls) throw new Error('config tlsClientCaFile (mTLS) needs tlsCertFile and tlsKeyFile');
  const tokens = Object.values(config.authTokens).flat().length;
  if (tokens > 0 && !tls) throw new Error('config authTokens need TLS (tlsCertFile, tlsKeyFile): a bearer token must not cross the network in plain text');
  if (tokens > 0 && config.tlsClientCaFile !== '') throw new Error('config authTokens and tlsClientCaFile: choose one way for callers to prove who they are (client certificates or bearer tokens)');
  for (const host of [config.grpcHost, config.metricsHost]) {
    if (isLoopbackHost(host)) continue;
    if (!tls) throw new Error(`config: listening on ${host} without TLS would let anyone on the network read and call the engine; set tlsCertFile and tlsKeyFile, or listen on 127.0.0.1`);
    if (config.tlsClientCaFile === '' && tokens === 0) throw new Error(`config: listening on ${host} with no way for callers to prove who they are; set tlsClientCaFile (mTLS) or authTokens`);
  }
}

function validateTransportLimits(config: EngineConfig): void {
  for (const [key, value] of Object.entries(config)) {
    if (/Ms(Max)?$/.test(key) && (value as number) > TIMER_MS_MAX) throw new Error(`config ${key} must be at most ${TIMER_MS_MAX} ms (the longest Node timer), got ${value}`);
  }
  if (config.grpcFrameBytesMax < HTTP2_FRAME_BYTES_MIN || config.grpcFrameBytesMax > HTTP2_FRAME_BYTES_MAX) {
    throw new Error(`config grpcFrameBytesMax must be in [${HTTP2_FRAME_BYTES_MIN}, ${HTTP2_FRAME_BYTES_MAX}] (HTTP/2 frame sizes), got ${config.grpcFrameBytesMax}`);
  }
  for (const key of ['grpcPartialMessageBytesPerConnectionMax', 'grpcPartialMessageBytesPerClientMax', 'grpcPartialMessageBytesMax'] as const) {
    if (config[key] < messageBytesMax(config)) throw new Error(`config ${key} must be at least one whole message, ${messageBytesMax(config)} bytes (batchTxsMax ${config.batchTxsMax}), got ${config[key]}`);
  }
  if (config.grpcConcurrentStreamsMax > 2 ** 31 - 1) throw new Error(`config grpcConcurrentStreamsMax must be at most ${2 ** 31 - 1}, got ${config.grpcConcurrentStreamsMax}`);
  const rows = config.storedBlocksPerQueryMax * config.batchTxsMax;
  if (rows > STORED_ROWS_PER_QUERY_MAX) {
    throw new Error(`config storedBlocksPerQueryMax × batchTxsMax (${config.storedBlocksPerQueryMax} × ${config.batchTxsMax}) must be at most ${STORED_ROWS_PER_QUERY_MAX} rows, which recovery holds in memory at once`);
  }
}

function validateWebhookLimits(config: EngineConfig): void {
  if (config.webhookSecretsKey !== '' && !/^[0-9a-f]{64}$/i.test(config.webhookSecretsKey)) throw new Error('config webhookSecretsKey must be 64 hex characters (32 bytes), or empty');
  for (const cidr of config.webhookTargetsAllowed) {
    try {
      parseCidr(cidr);
    } catch (error) {
      throw new Error(`config webhookTargetsAllowed: ${(error as Error).message}`);
    }
  }
  if (config.webhookBackoffMaxMs < config.webhookBackoffMs) throw new Error(`config webhookBackoffMaxMs (${config.webhookBackoffMaxMs}) must be at least webhookBackoffMs (${config.webhookBackoffMs})`);
  const postMsMax = Math.floor(config.webhookConsumerSessionTimeoutMs * WEBHOOK_TIMEOUT_SHARE_OF_SESSION);
  if (config.webhookTimeoutMs > postMsMax) {
    throw new Error(`config webhookTimeoutMs must be at most ${postMsMax} (${WEBHOOK_TIMEOUT_SHARE_OF_SESSION * 100}% of webhookConsumerSessionTimeoutMs ${config.webhookConsumerSessionTimeoutMs}: a POST must end before the consumer's session does), got ${config.webhookTimeoutMs}`);
  }
  if (config.webhookConsumerHeartbeatIntervalMs * HEARTBEATS_PER_SESSION_MIN > config.webhookConsumerSessionTimeoutMs) {
    throw new Error(`config webhookConsumerHeartbeatIntervalMs (${config.webhookConsumerHeartbeatIntervalMs}) must be at most a third of webhookConsumerSessionTimeoutMs (${config.webhookConsumerSessionTimeoutMs})`);
  }
  if (config.webhookBackpressureWaitMsMax < config.webhookBackpressurePollMs) {
    throw new Error(`config webhookBackpressureWaitMsMax (${config.webhookBackpressureWaitMsMax}) must be at least webhookBackpressurePollMs (${config.webhookBackpressurePollMs})`);
  }
  const logRowsMax = Math.floor(PG_PARAMETERS_MAX / DELIVERY_LOG_PARAMETERS_PER_ROW);
  if (config.webhookLogRowsPerFlushMax > logRowsMax) {
    throw new Error(`config webhookLogRowsPerFlushMax must be at most ${logRowsMax} (PostgreSQL takes ${PG_PARAMETERS_MAX} parameters a statement, ${DELIVERY_LOG_PARAMETERS_PER_ROW} a row), got ${config.webhookLogRowsPerFlushMax}`);
  }
}

function coerce(key: string, value: unknown, like: unknown): unknown {
  if (key === 'approvalPolicies') return parseApprovalPolicies(typeof value === 'string' ? JSON.parse(value) : value);
  if (key === 'authTokens') return parseAuthTokens(typeof value === 'string' ? JSON.parse(value) : value);
  if (typeof like === 'boolean') {
    if (value === true || value === 'true' || value === '1') return true;
    if (value === false || value === 'false' || value === '0') return false;
    throw new Error(`config ${key} must be true or false, got ${String(value)}`);
  }
  if (typeof like === 'number') {
    const n = typeof value === 'string' ? Number(value) : value;
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new Error(`config ${key} must be a non-negative integer, got ${String(value)}`);
    return n;
  }
  if (typeof like === 'bigint') {
    try {
      const n = BigInt(value as string | number | bigint);
      if (n < 0n || n >= 1n << 64n) throw new Error();
      return n;
    } catch {
      throw new Error(`config ${key} must be a u64, got ${String(value)}`);
    }
  }
  if (Array.isArray(like)) {
    if (typeof value === 'string') return value.split(',').map((s) => s.trim()).filter(Boolean);
    if (!Array.isArray(value)) throw new Error(`config ${key} must be a list`);
    return value.map(String);
  }
  if (typeof value !== 'string') throw new Error(`config ${key} must be a string`);
  return value;
}

/** authTokens as config takes them: known roles, lists of tokens of AUTH_TOKEN_CHARS_MIN or more, no spaces. */
/**
 * A bearer token as config gives it: the token alone (it acts for every account), or the token
 * with the accounts it acts for, as a submitter certificate names them (security/scope.ts):
 * `{"token": "...", "accounts": ["<64 hex>", ...]}`, `["*"]` for all.
 */
export type AuthTokenEntry = string | { token: string; accounts: string[] };

export function authTokenOf(entry: AuthTokenEntry): string {
  return typeof entry === 'string' ? entry : entry.token;
}

export function parseAuthTokens(value: unknown): Record<string, AuthTokenEntry[]> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new Error('config authTokens must be an object of role: [token, ...]');
  const out: Record<string, AuthTokenEntry[]> = {};
  for (const [role, tokens] of Object.entries(value)) {
    if (!(AUTH_ROLES as readonly string[]).includes(role)) throw new Error(`config authTokens: unknown role ${role}; roles are ${AUTH_ROLES.join(', ')}`);
    if (!Array.isArray(tokens)) throw new Error(`config authTokens.${role} must be a list of tokens`);
    out[role] = tokens.map((t: unknown) => parseAuthToken(role, t));
  }
  return out;
}

function parseAuthToken(role: string, entry: unknown): AuthTokenEntry {
  const token = typeof entry === 'string' ? entry : (entry as { token?: unknown } | null)?.token;
  if (typeof token !== 'string') throw new Error(`config authTokens.${role}: each entry is a token string or {"token": "...", "accounts": [...]}`);
  if (token.length < AUTH_TOKEN_CHARS_MIN || /\s/.test(token)) throw new Error(`config authTokens.${role}: a token must be at least ${AUTH_TOKEN_CHARS_MIN} characters without spaces (got ${token.length})`);
  if (typeof entry === 'string') return entry;
  const accounts = (entry as { accounts?: unknown }).accounts;
  if (!Array.isArray(accounts) || accounts.some((a) => typeof a !== 'string' || !isAccountEntry(a))) {
    throw new Error(`config authTokens.${role}: "accounts" must list 32-byte public keys in hex (64 digits), or "${ALL_ACCOUNTS}" for all`);
  }
  return { token, accounts: accounts.map((a: string) => a.toLowerCase()) };
}
