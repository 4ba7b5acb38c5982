/*
 * The one config object: every limit of the engine with its default, validated at start-up.
 * Sources, later ones winning: these defaults, a JSON file (--config), TXE_* environment variables
 * (read here and nowhere else), then command-line flags.
 */

import { readFileSync } from 'node:fs';
import os from 'node:os';
import { parseApprovalPolicies, type ApprovalPolicy } from './core/policy.js';
import type { SequencerOptions } from './core/sequencer.js';

export type AckMode = 'ordered' | 'durable';

export interface EngineConfig {
  grpcHost: string; // default 127.0.0.1
  grpcPort: number; // default 50051; 0 picks a free port
  flowControlWindowBytes: number; // HTTP/2 connection and stream receive window, default 16 MiB
  metricsHost: string; // Prometheus endpoint, default 127.0.0.1
  metricsPort: number; // default 9464; 0 picks a free port
  workers: number; // verify threads, default = cores
  ringSlots: number; // input ring, power of two; default 2^19 = 524288 slots (~100 MB)
  batchTxsMax: number; // records per batch, default 8190
  batchesInFlightMax: number; // batches claimed but not yet answered, power of two; default 256
  streamBatchesInFlightMax: number; // per SubmitStream, default 64
  perTxTaskTxsMax: number; // per-tx verify task size, default 512
  blockRingSlots: number; // output ring of committed blocks, power of two; default 1024
  blocksPerWriteMax: number; // sink group commit, default 64
  sinkWritesInFlightMax: number; // groups being written at once (pipelining), default 2
  historyEntries: number; // in-memory history window, power of two; default 2^18
  historyBlocks: number; // blocks kept for StreamCommits replay, default 4096
  subscribersMax: number; // concurrent StreamCommits readers, default 64
  accountsMax: number; // default 2^22
  keyCacheEntriesMax: number; // verify workers' KeyObject cache, default 65536
  issuers: string[]; // hex Ed25519 public keys allowed to mint
  trustedSigners: string[]; // hex public keys allowed to submit batch-signed batches
  approvalPolicies: ApprovalPolicy[]; // approvals/policy.ts; [] = no transfer is held (default)
  approvalsPendingMax: number; // holds waiting at once, default 65536
  approvalsDecidedKept: number; // decided approvals kept in memory for Get/List/Watch, default 65536
  approvalSweepMs: number; // how often expiries and undelivered decisions are looked for, default 1000
  webhooks: boolean; // deliver webhooks (needs sinks pg and kafka), default true where they are set
  // Kafka topics <prefix>.events, .retries, .dead-letters and consumer groups <prefix>.router,
  // .delivery, .retry; default '' = '<kafkaTopic>.webhooks', so each history has its own
  webhookTopicPrefix: string;
  webhookAttemptsMax: number; // tries of one event before it is dead-lettered, default 8
  webhookBackoffMs: number; // first retry delay; doubles each try, +-20% jitter; default 5000
  webhookBackoffMaxMs: number; // longest delay between tries, Retry-After included; default 3600000
  webhookTimeoutMs: number; // one POST, default 10000
  webhookConcurrency: number; // POSTs in flight per consumer (one per partition), default 8
  webhookSecretGraceMs: number; // RotateSecret keeps the old secret valid this long, default 86400000
  webhooksMax: number; // registered webhooks, default 1000
  ack: AckMode; // default for requests that do not choose: 'durable' when sinks are configured, else 'ordered'
  sinks: string[]; // durable sinks: [] (none, default), ['pg'] or ['pg', 'kafka']
  pgUrl: string; // default postgres://txe:txe@127.0.0.1:55432/txe (infra/pg-start.sh)
  kafkaBrokers: string[]; // default ['127.0.0.1:19092'] (infra/kafka-start.sh)
  kafkaTopic: string; // default 'txe.blocks'
  sinkConnectTimeoutMs: number; // default 5000
  sinkStatementTimeoutMs: number; // one PostgreSQL statement or Kafka request, default 30000
  snapshotEveryBlocks: number; // state snapshot to PostgreSQL every N blocks (pg sink only), default 1000; 0 = never
  invariantCheckEveryBlocks: number; // full state check every N blocks, 0 = never; default 4096
  shutdownGraceMs: number; // default 10000
}

export const defaultConfig = (): EngineConfig => ({
  grpcHost: '127.0.0.1',
  grpcPort: 50051,
  flowControlWindowBytes: 16 * 1024 * 1024,
  metricsHost: '127.0.0.1',
  metricsPort: 9464,
  workers: Math.max(1, os.availableParallelism()),
  ringSlots: 1 << 19,
  batchTxsMax: 8190,
  batchesInFlightMax: 256,
  streamBatchesInFlightMax: 64,
  perTxTaskTxsMax: 512,
  blockRingSlots: 1024,
  blocksPerWriteMax: 64,
  sinkWritesInFlightMax: 2,
  historyEntries: 1 << 18,
  historyBlocks: 4096,
  subscribersMax: 64,
  accountsMax: 1 << 22,
  keyCacheEntriesMax: 65536,
  issuers: [],
  trustedSigners: [],
  approvalPolicies: [],
  approvalsPendingMax: 65536,
  approvalsDecidedKept: 65536,
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
  ack: 'ordered',
  sinks: [],
  pgUrl: 'postgres://txe:txe@127.0.0.1:55432/txe',
  kafkaBrokers: ['127.0.0.1:19092'],
  kafkaTopic: 'txe.blocks',
  sinkConnectTimeoutMs: 5000,
  sinkStatementTimeoutMs: 30_000,
  snapshotEveryBlocks: 1000,
  invariantCheckEveryBlocks: 4096,
  shutdownGraceMs: 10_000,
});

export const WEBHOOK_TIMEOUT_MS_MAX = 12_000;

/** The state machine's options: the same for the live sequencer thread and for recovery's replay. */
export function sequencerOptions(config: EngineConfig): SequencerOptions {
  return { accountsMax: config.accountsMax, issuers: config.issuers.map((h) => Buffer.from(h, 'hex')), approvalPolicies: config.approvalPolicies, approvalsPendingMax: config.approvalsPendingMax };
}

/**
 * Input-ring slots that client batches leave free for engine entries (approval decisions), so
 * holds are decided and expired even while clients keep the engine at capacity: room for one
 * batch of up to 256 decisions, and at most a 16th of a small ring.
 */
export function entrySlotsReserved(config: Pick<EngineConfig, 'ringSlots' | 'batchTxsMax'>): number {
  return Math.max(1, Math.min(256, Math.floor(config.ringSlots / 16), config.batchTxsMax));
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
};

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

export function validateConfig(raw: Record<string, unknown>): EngineConfig {
  const defaults = defaultConfig();
  const unknown = Object.keys(raw).filter((k) => !(k in defaults));
  if (unknown.length > 0) throw new Error(`unknown config keys: ${unknown.join(', ')}`);
  const c = { ...defaults } as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(raw)) c[key] = coerce(key, value, (defaults as unknown as Record<string, unknown>)[key]);
  const config = c as unknown as EngineConfig;
  const powersOfTwo: (keyof EngineConfig)[] = ['ringSlots', 'batchesInFlightMax', 'blockRingSlots', 'historyEntries'];
  for (const key of powersOfTwo) {
    const v = config[key] as number;
    if (v < 2 || (v & (v - 1)) !== 0) throw new Error(`config ${key} must be a power of two >= 2, got ${v}`);
  }
  const zeroAllowed = new Set(['grpcPort', 'metricsPort', 'invariantCheckEveryBlocks', 'snapshotEveryBlocks']);
  for (const [key, value] of Object.entries(config)) {
    if (typeof value === 'number' && value < 1 && !zeroAllowed.has(key)) throw new Error(`config ${key} must be at least 1, got ${value}`);
  }
  if (config.accountsMax <= config.issuers.length) throw new Error(`config accountsMax (${config.accountsMax}) must exceed the number of issuers (${config.issuers.length})`);
  const clientSlotsMax = config.ringSlots - entrySlotsReserved(config);
  if (config.batchTxsMax < 1 || config.batchTxsMax > clientSlotsMax) throw new Error(`config batchTxsMax must be in [1, ${clientSlotsMax}] (ringSlots ${config.ringSlots} less ${entrySlotsReserved(config)} kept for approval decisions), got ${config.batchTxsMax}`);
  if (config.workers < 1 || config.workers > 256) throw new Error(`config workers must be in [1, 256], got ${config.workers}`);
  if (config.grpcPort < 0 || config.grpcPort > 65535) throw new Error(`config grpcPort out of range: ${config.grpcPort}`);
  if (config.ack !== 'ordered' && config.ack !== 'durable') throw new Error(`config ack must be ordered or durable, got ${config.ack}`);
  for (const sink of config.sinks) if (sink !== 'pg' && sink !== 'kafka') throw new Error(`config sinks: unknown sink ${sink}; use pg or pg,kafka`);
  if (config.sinks.includes('kafka') && !config.sinks.includes('pg')) throw new Error('config sinks: kafka needs pg too (recovery rebuilds state from PostgreSQL)');
  // A POST runs inside a Kafka consumer's turn, which must end before its session times out (15 s).
  if (config.webhookTimeoutMs > WEBHOOK_TIMEOUT_MS_MAX) throw new Error(`config webhookTimeoutMs must be at most ${WEBHOOK_TIMEOUT_MS_MAX}, got ${config.webhookTimeoutMs}`);
  if (config.webhookBackoffMaxMs < config.webhookBackoffMs) throw new Error(`config webhookBackoffMaxMs (${config.webhookBackoffMaxMs}) must be at least webhookBackoffMs (${config.webhookBackoffMs})`);
  if (webhookTopicPrefix(config) === config.kafkaTopic || !/^[A-Za-z0-9._-]+$/.test(webhookTopicPrefix(config))) throw new Error(`config webhookTopicPrefix must be a Kafka topic name prefix (letters, digits, . _ -), got ${config.webhookTopicPrefix}`);
  for (const key of ['issuers', 'trustedSigners'] as const) {
    for (const hex of config[key]) if (!/^[0-9a-f]{64}$/i.test(hex)) throw new Error(`config ${key}: ${hex} is not a 32-byte hex public key`);
  }
  return config;
}

function coerce(key: string, value: unknown, like: unknown): unknown {
  if (key === 'approvalPolicies') return parseApprovalPolicies(typeof value === 'string' ? JSON.parse(value) : value);
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
