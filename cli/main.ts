#!/usr/bin/env -S node --initial-old-space-size=128
/* The `txe` command: serve, bench, limits, keygen, approvals. */

import { Command, InvalidArgumentError, Option } from 'commander';
import { dropIpServernameWarning } from './quiet-warnings.js';
import { pino } from 'pino';
import { loadConfig } from '../engine/config.js';
import { ENGINE_NODE_FLAGS, Engine } from '../engine/engine.js';
import { generateKeysFile, readApproverFile, readKeysFile, writeApproverFile, writeKeysFile } from '../engine/keys-file.js';
import { generateKeypair } from '../engine/core/keys.js';
import { TxeClient, clientCredentials, clientOptions } from '../engine/client.js';
import { clientFiles, createCa, createClient, createNode, CA_DAYS_DEFAULT, LEAF_DAYS_DEFAULT } from '../engine/services/security/certs.js';
import { ROLES, isRole } from '../engine/services/security/roles.js';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runBench } from '../bench/run.js';
import { COPY_CEILING_ROUNDS, COPY_CEILING_ROWS } from '../bench/stores.js';
import { CEILING_DRIFT_WARN } from '../bench/ceilings.js';
import type { TlsCost } from '../bench/tls-cost.js';
import { HOPS, type HopWindow } from '../bench/cluster-hops.js';
import { compareReports } from '../bench/compare.js';
import { formatLimits, measureLimits } from '../bench/limits.js';
import { writeFileSync } from 'node:fs';
import crypto from 'node:crypto';
import { registerClusterCommands } from './cluster.js';
import { fail, targetTlsOf, withTlsOptions } from './client-flags.js';
import { clusterClientTls, clusterKeysFile, clusterTargets } from '../engine/cluster/cluster-file.js';

const int = (name: string) => (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer`);
  return n;
};
const positive = (name: string) => (value: string): number => {
  const n = int(name)(value);
  if (n === 0) throw new InvalidArgumentError(`${name} must be at least 1`);
  return n;
};

const nonNegative = (name: string) => (value: string): number => {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`${name} must be a non-negative number`);
  return n;
};

/** `txe serve` exits with this when another engine took its history (engine/stages/commit/writer-term.ts). */
const FENCED_EXIT_CODE = 3;

dropIpServernameWarning();

const program = new Command('txe').description('txe: a high-throughput transaction engine').showHelpAfterError();

program.command('serve')
  .description('run the engine: gRPC TransactionService, health and reflection')
  .option('--config <file>', 'JSON config file (keys as in engine/config.ts)')
  .option('--host <host>', 'listen address (default 127.0.0.1)')
  .option('--port <port>', 'gRPC port (default 50051; 0 = any free port)', int('--port'))
  .option('--metrics-port <port>', 'Prometheus metrics port, GET /metrics (default 9464; 0 = any free port)', int('--metrics-port'))
  .option('--workers <n>', 'verify worker threads (default: cores)', positive('--workers'))
  .option('--keys <file>', 'keys file from `txe keygen`: its issuer may mint, its signer may submit batch-signed')
  .addOption(new Option('--ack <mode>', 'default ack for requests that do not choose (default: durable with sinks, else ordered)').choices(['ordered', 'durable']))
  .option('--sinks <list>', 'durable sinks: none, pg or pg,kafka (default none)')
  .option('--pg-url <url>', 'PostgreSQL for the pg sink (default postgres://txe:txe@127.0.0.1:55432/txe, or TXE_PG_URL)')
  .option('--kafka-brokers <list>', 'Kafka brokers for the kafka sink (default 127.0.0.1:19092, or TXE_KAFKA_BROKERS)')
  .option('--kafka-topic <name>', 'topic of committed blocks (default txe.blocks)')
  .option('--tls-cert <file>', 'TLS 1.3 on the gRPC and metrics ports: the server certificate (PEM; re-read when it changes, or on SIGHUP)')
  .option('--tls-key <file>', 'its private key (PEM)')
  .option('--tls-client-ca <file>', 'require client certificates signed by this CA (mTLS); roles from SAN URIs txe:role/<role>')
  .action(async (flags: Record<string, string | number | undefined>) => {
    // One line per event worth knowing, never per transaction; run_id ties the lines of one run.
    const log = pino({ base: { service: 'txe', pid: process.pid, run_id: crypto.randomBytes(6).toString('hex') } });
    // Read again on SIGHUP: a new keys file (or config file) rotates the trusted batch signers and the issuers.
    const configNow = () => {
      const keys = flags.keys ? readKeysFile(String(flags.keys)) : null;
      return loadConfig({
      grpcHost: flags.host, grpcPort: flags.port, metricsPort: flags.metricsPort, workers: flags.workers, ack: flags.ack,
      sinks: flags.sinks === undefined ? undefined : String(flags.sinks).split(',').filter((x) => x && x !== 'none'),
      pgUrl: flags.pgUrl, kafkaBrokers: flags.kafkaBrokers, kafkaTopic: flags.kafkaTopic,
      tlsCertFile: flags.tlsCert, tlsKeyFile: flags.tlsKey, tlsClientCaFile: flags.tlsClientCa,
      issuers: keys ? [keys.issuer.publicKey.toString('hex')] : undefined,
      trustedSigners: keys ? [keys.signer.publicKey.toString('hex')] : undefined,
      webhookSecretsKey: keys?.secretsKey,
    }, flags.config as string | undefined);
    };
    const config = configNow();
    let fenced: Error | null = null;
    let onFenced = (error: Error) => { fenced = error; };
    const engine = await Engine.start(config, {
      // Another engine took this history (a newer writer epoch): this one stops and exits 3, so a
      // supervisor sees it, and does not restart it onto the history the other engine now writes.
      onFenced: (error) => onFenced(error),
      onSinkDown: (error) => log.warn({ error: error.message }, 'durable storage failing: refusing new batches with UNAVAILABLE, retrying'),
      onSinkUp: () => log.info('durable storage back: admitting batches again'),
      log: (level, message, fields) => log[level](fields ?? {}, message),
    });
    if (engine.recovery) log.info(engine.recovery, 'recovered');
    const missing = missingNodeFlags();
    if (missing.length > 0) log.warn({ missing }, 'node started without the engine\'s flags (the txe bin passes them): expect frequent full GCs on the main thread under load');
    log.info({ address: engine.address, metrics: engine.metrics.address, workers: config.workers, ringSlotsMax: config.ringSlotsMax, ack: config.ack, sinks: config.sinks }, 'listening');
    let stopping = false;
    const stop = async (signal: string, exitCode = 0) => {
      if (stopping) return;
      stopping = true;
      log.info({ signal }, 'stopping: finishing in-flight batches');
      await engine.stop();
      log.info({ batches: engine.pipeline.counters.batches, stages_ms: engine.pipeline.metrics.summary() }, 'stopped');
      process.exit(exitCode);
    };
    onFenced = (error) => {
      log.error({ error: error.message }, 'fenced: another txe engine writes this history now; stopping');
      void stop('fenced', FENCED_EXIT_CODE);
    };
    if (fenced !== null) onFenced(fenced);
    process.on('SIGHUP', () => {
      if (config.tlsCertFile !== '' && !engine.reloadTls()) log.warn('SIGHUP: the TLS certificate was not reloaded (see the line before)');
      try {
        const now = configNow();
        engine.rotateIssuers(now.issuers, (level, message, fields) => log[level](fields ?? {}, message));
        engine.rotateTrustedSigners(now.trustedSigners, (level, message, fields) => log[level](fields ?? {}, message));
      } catch (error) {
        log.warn({ error: (error as Error).message }, 'SIGHUP: the keys or config file could not be read again, or name keys that cannot be used; the trusted signers and issuers are unchanged');
      }
    });
    process.on('SIGTERM', () => void stop('SIGTERM'));
    process.on('SIGINT', () => void stop('SIGINT'));
  });

withTlsOptions(program.command('bench'), 'with --target: ')
  .description('drive load at an engine (its own child process unless --target) and report TPS and latency')
  .addOption(new Option('--mode <mode>', 'authentication mode').choices(['batch-signed', 'per-tx']).default('batch-signed'))
  .addOption(new Option('--ack <mode>', 'when a batch is answered (default: durable with sinks, else ordered; final: a cluster, --target LIST)').choices(['ordered', 'durable', 'final']))
  .option('--sinks <list>', 'none | pg | pg,kafka (a fresh database and topic per run, from TXE_PG_URL / TXE_KAFKA_BROKERS)', 'none')
  .option('--batch <n>', 'transactions per batch (default 8190 batch-signed, 128 per-tx)', positive('--batch'))
  .option('--streams <n>', 'concurrent SubmitStream streams', positive('--streams'), 4)
  .option('--lanes <n>', 'batches in flight at once (default 2 x streams)', positive('--lanes'))
  .option('--rate <tps|max>', 'offered transactions per second, or max', 'max')
  .option('--duration <s>', 'measured seconds', positive('--duration'), 10)
  .option('--warmup <s>', 'seconds before measuring', int('--warmup'), 1)
  .option('--json <file>', 'write the report as JSON, and the latency distribution beside it as .hgrm')
  .option('--target <host:port,...>', 'an engine already running (default: start one); several: streams spread over them (cluster validators)')
  .option('--keys <file>', 'keys file shared with the target engine (txe keygen)')
  .option('--cluster <file>', "a cluster (txe cluster init, infra/cluster-up.sh): its validators' fronts, keys file and submitter certificate; ack final unless --ack")
  .option('--workers <n>', 'verify workers of the engine this starts', positive('--workers'))
  .option('--prebuild-mb <n>', 'memory cap for pre-built batches', positive('--prebuild-mb'), 3072)
  .option('--engine-config <file>', 'a config file (txe serve --config) for the engine this starts')
  .option('--tls', 'the engine this starts serves TLS 1.3 with mTLS (development certificates made for the run)')
  .option('--loadgen-ceiling-s <s>', "seconds of the load generator's own ceiling (the same plan against a null server); 0 = skip", nonNegative('--loadgen-ceiling-s'), 3)
  .option('--compare <files...>', 'print the difference between two --json reports (A B) and exit')
  .action(async (flags: Record<string, unknown>) => {
    if (flags.compare) {
      const files = flags.compare as string[];
      if (files.length !== 2) fail('--compare takes two --json reports: A.json B.json');
      console.log(compareReports(files[0], files[1]));
      return;
    }
    if (flags.cluster) {
      if (flags.target || flags.keys || flags.tlsCa || flags.tlsCert || flags.tlsKey || flags.token) fail('--cluster gives the targets, keys and TLS files itself: leave out --target, --keys, --tls-* and --token');
      const file = String(flags.cluster);
      Object.assign(flags, { target: clusterTargets(file), keys: clusterKeysFile(file), ack: flags.ack ?? 'final' });
    }
    const sinks = String(flags.sinks).split(',').map((s) => s.trim()).filter((s) => s && s !== 'none');
    for (const s of sinks) if (s !== 'pg' && s !== 'kafka') fail(`--sinks: unknown sink ${s}; use none, pg or pg,kafka`);
    if (sinks.includes('kafka') && !sinks.includes('pg')) fail('--sinks kafka needs pg too: use --sinks pg,kafka');
    if (flags.ack === 'final' && !flags.target) fail('--ack final needs --target: the validators of a cluster (infra/cluster-up.sh prints TXE_CLUSTER_TARGETS)');
    if (flags.target && flags.engineConfig) fail('--engine-config is for the engine txe bench starts; it cannot configure a --target');
    if (flags.target && !flags.keys) fail('--target needs --keys: the issuer and signer the target engine trusts');
    const missing = missingNodeFlags();
    if (missing.length > 0) console.error(`txe bench: node was started without ${missing.join(' ')} (the txe bin and npm run bench pass it): the load generator's own full GCs will show up as batch latency`);
    const rate = flags.rate === 'max' ? 'max' : Number(flags.rate);
    if (rate !== 'max' && (!Number.isFinite(rate) || rate <= 0)) fail(`--rate must be a positive number or max, got ${String(flags.rate)}`);
    const mode = flags.mode as 'batch-signed' | 'per-tx';
    const streams = flags.streams as number;
    const report = await runBench({
      mode, ack: (flags.ack as 'ordered' | 'durable' | 'final' | undefined) ?? (sinks.length > 0 ? 'durable' : 'ordered'), sinks, batch: (flags.batch as number | undefined) ?? (mode === 'per-tx' ? 128 : 8190),
      streams, lanes: (flags.lanes as number | undefined) ?? streams * 2, rate, durationS: flags.duration as number, warmupS: flags.warmup as number,
      json: flags.json as string | undefined, target: flags.target as string | undefined, keys: flags.keys as string | undefined,
      workers: flags.workers as number | undefined, engineConfig: flags.engineConfig as string | undefined, prebuildMb: flags.prebuildMb as number, loadgenCeilingS: flags.loadgenCeilingS as number, progress: process.stderr.isTTY === true,
      tls: flags.tls === true, targetTls: flags.cluster ? clusterClientTls(String(flags.cluster), 'submitter') ?? undefined : targetTlsOf(flags),
      clusterFile: flags.cluster ? String(flags.cluster) : undefined,
      command: `txe ${process.argv.slice(2).join(' ')}`,
    });
    printSummary(report);
  });

program.command('limits')
  .description("measure this machine's ceilings: Ed25519 verify, SHA-256, loopback gRPC, PostgreSQL COPY")
  .option('--json <file>', 'also write them as JSON')
  .option('--no-pg', 'skip PostgreSQL')
  .action(async (flags: { json?: string; pg: boolean }) => {
    const limits = await measureLimits(process.stderr.isTTY === true, flags.pg);
    console.log(formatLimits(limits));
    if (flags.json) writeFileSync(flags.json, JSON.stringify(limits, null, 2) + '\n');
  });

program.command('keygen')
  .description('write a keys file: an issuer key (may mint) and a trusted batch-signer key; or, with --approver, an approver key')
  .requiredOption('--out <file>', 'where to write it (mode 0600)')
  .option('--approver', 'write one approver key instead (list its public key in an approval policy)')
  .action((flags: { out: string; approver?: boolean }) => {
    if (flags.approver) {
      const key = generateKeypair();
      writeApproverFile(flags.out, key);
      console.log(JSON.stringify({ approver: key.publicKey.toString('hex'), file: flags.out }));
      return;
    }
    const keys = generateKeysFile();
    writeKeysFile(flags.out, keys);
    console.log(JSON.stringify({ issuer: keys.issuer.publicKey.toString('hex'), signer: keys.signer.publicKey.toString('hex'), file: flags.out }));
  });

const STATUS_WIRE: Record<string, number> = { pending: 1, approved: 2, rejected: 3, expired: 4 };
const STATUS_NAME = ['unspecified', 'pending', 'approved', 'rejected', 'expired'];

/** An approval as one JSON line: ids and keys in hex, u64s as decimal strings. */
function approvalJson(a: Record<string, unknown>): string {
  const hex = (v: unknown) => Buffer.from(v as Uint8Array).toString('hex');
  return JSON.stringify({
    id: hex(a.id), seq: String(a.seq), status: STATUS_NAME[a.status as number], policy: a.policy, sender: hex(a.sender), recipient: hex(a.recipient),
    amount: String(a.amount), required: a.required, approvals: (a.votes as { decision: number }[]).filter((v) => v.decision === 1).length,
    rejections: (a.votes as { decision: number }[]).filter((v) => v.decision === 2).length,
    expires_at: new Date(Number(String(a.expiresAtMs))).toISOString(), decided_seq: String(a.decidedSeq),
  });
}

async function withClient<T>(target: string, run: (client: TxeClient) => Promise<T>, flags: Record<string, unknown> = {}): Promise<T> {
  const client = new TxeClient(target, clientOptions(), clientCredentials(targetTlsOf(flags) ?? null));
  try {
    await client.waitReady(5000);
    return await run(client);
  } finally {
    client.close();
  }
}

const approvals = program.command('approvals').description('look at approvals and vote on them (ApprovalService)');
const targetOption = () => new Option('--target <host:port>', 'the engine').default('127.0.0.1:50051');

withTlsOptions(approvals.command('list'))
  .description('one JSON line per approval, oldest first')
  .addOption(targetOption())
  .addOption(new Option('--status <status>', 'only these').choices(Object.keys(STATUS_WIRE)))
  .option('--limit <n>', 'at most this many', positive('--limit'), 100)
  .action(async (flags: { target: string; status?: string; limit: number } & Record<string, unknown>) => {
    const r = await withClient(flags.target, (c) => c.listApprovals({ status: flags.status ? STATUS_WIRE[flags.status] : 0, limit: flags.limit }), flags);
    for (const a of r.approvals as Record<string, unknown>[]) console.log(approvalJson(a));
  });

withTlsOptions(approvals.command('get'))
  .description('one approval, by id (64 hex) or by the held transaction seq')
  .argument('<id-or-seq>')
  .addOption(targetOption())
  .action(async (idOrSeq: string, flags: { target: string } & Record<string, unknown>) => {
    const key = /^[0-9a-f]{64}$/i.test(idOrSeq) ? { id: Buffer.from(idOrSeq, 'hex') } : /^\d+$/.test(idOrSeq) ? { seq: Number(idOrSeq) } : fail(`${idOrSeq} is neither a 64-hex approval id nor a seq`);
    console.log(approvalJson(await withClient(flags.target, (c) => c.getApproval(key), flags)));
  });

for (const decision of ['approve', 'reject'] as const) {
  withTlsOptions(approvals.command(decision))
    .description(`${decision} an approval: signs the vote with the approver key and sends it`)
    .argument('<id>', 'the approval id (64 hex)')
    .requiredOption('--key <file>', 'approver key file (txe keygen --approver)')
    .addOption(targetOption())
    .action(async (id: string, flags: { target: string; key: string } & Record<string, unknown>) => {
      if (!/^[0-9a-f]{64}$/i.test(id)) fail(`${id} is not a 64-hex approval id`);
      const key = readApproverFile(flags.key);
      const a = await withClient(flags.target, (c) => (decision === 'approve' ? c.approve(Buffer.from(id, 'hex'), key) : c.reject(Buffer.from(id, 'hex'), key)), flags);
      console.log(approvalJson(a));
    });
}

const certs = program.command('certs').description('development certificates for TLS 1.3 and mTLS (a CA, a server certificate, client certificates by role)');
const certsDir = () => new Option('--dir <dir>', 'where the certificates and keys go (keys mode 0600)').default('certs');

certs.command('create-ca')
  .description('a CA: ca.crt and ca.key (refuses to overwrite ca.key)')
  .addOption(certsDir())
  .option('--days <n>', 'validity', positive('--days'), CA_DAYS_DEFAULT)
  .action(async (flags: { dir: string; days: number }) => {
    mkdirSync(flags.dir, { recursive: true });
    await createCa(flags.dir, { days: flags.days });
    console.log(JSON.stringify({ ca: path.join(flags.dir, 'ca.crt') }));
  });

certs.command('create-node')
  .description('the engine\'s certificate: node.crt and node.key for the hosts clients dial (pass to txe serve --tls-cert/--tls-key)')
  .argument('<hosts...>', 'DNS names and IP addresses, for example 127.0.0.1 localhost')
  .addOption(certsDir())
  .option('--days <n>', 'validity', positive('--days'), LEAF_DAYS_DEFAULT)
  .action(async (hosts: string[], flags: { dir: string; days: number }) => {
    await createNode(flags.dir, hosts, { days: flags.days });
    console.log(JSON.stringify({ cert: path.join(flags.dir, 'node.crt'), key: path.join(flags.dir, 'node.key'), hosts }));
  });

certs.command('create-client')
  .description('a client certificate naming its roles: client.<name>.crt and .key')
  .argument('<name>', 'who it is for (letters, digits, . _ -)')
  .requiredOption('--roles <list>', `comma-separated: ${ROLES.join(', ')}`)
  .addOption(certsDir())
  .option('--days <n>', 'validity', positive('--days'), LEAF_DAYS_DEFAULT)
  .option('--accounts <list>', 'the accounts it acts for: comma-separated public keys in hex (senders, batch signers, accounts it may read), or * for all', '*')
  .action(async (name: string, flags: { roles: string; dir: string; days: number; accounts: string }) => {
    const roles = flags.roles.split(',').map((r) => r.trim()).filter(Boolean);
    const unknown = roles.filter((r) => !isRole(r));
    if (unknown.length > 0) fail(`--roles: unknown ${unknown.join(', ')}; roles are ${ROLES.join(', ')}`);
    const accounts = flags.accounts.split(',').map((a) => a.trim()).filter(Boolean);
    await createClient(flags.dir, name, roles.filter(isRole), { days: flags.days, accounts }).catch((e: Error) => fail(e.message));
    const files = clientFiles(name);
    console.log(JSON.stringify({ cert: path.join(flags.dir, files.cert), key: path.join(flags.dir, files.key), roles, accounts }));
  });

function printSummary(r: Record<string, unknown>): void {
  const l = r.latency_ms as Record<string, number>;
  const c = r.ceilings as Record<string, number>;
  const lines = [
    `mode ${r.mode}, ack ${r.ack}, sinks ${r.sinks}, batch ${r.batch_size}, streams ${r.streams}, lanes ${r.lanes}, offered ${r.offered_tps}`,
    `tps ${Number(r.tps).toLocaleString('en-US')} committed over ${r.duration_s} s (${r.txs_committed} committed, ${r.txs_rejected} rejected, ${r.errors} errors)`,
    `batch latency ms: p50 ${l.p50} p90 ${l.p90} p95 ${l.p95} p99 ${l.p99} p99.9 ${l.p999} max ${l.max}${r.latency_corrected_for_coordinated_omission ? ' (CO-corrected)' : ''}`,
    `cpu cores used: ${cpuLine(r.cpu_cores_used as Record<string, unknown>)}; engine RSS MiB ${JSON.stringify(r.engine_rss_mib)}`,
    ...eventLoopLine(r.engine_event_loop_delay_ms as Record<string, number> | null | undefined),
    `ceilings: Ed25519 verify ${c.ed25519_verify_per_s_core}/s on one core, ${c.ed25519_verify_per_s_all_cores}/s on all cores at once; SHA-256 ${(c.sha256_bytes_per_s / 1e9).toFixed(2)} GB/s`,
    `loopback gRPC ceiling ${(c.grpc_loopback_bytes_per_s / 1e6).toFixed(0)} MB/s; ingress bytes are ${r.fraction_of_grpc_ceiling} of it`,
    ...tlsCostLines(c, r.tls_cost as TlsCost | null),
    ...clusterHopLines(r.cluster_hops_ms as Record<string, Record<string, HopWindow>> | undefined),
    `fraction of ceiling: ${r.fraction_of_ceiling}${r.fraction_of_all_cores_verify === null ? ' (TPS x 128 B / SHA-256 bytes/s)' : ` of one-core rate x workers, ${r.fraction_of_all_cores_verify} of all cores verifying at once`}`,
    ...verifyDriftLines(c),
  ];
  if (c.pg_copy_binary_rows_per_s) lines.push(`PostgreSQL COPY BINARY ceiling ${c.pg_copy_binary_rows_per_s} rows/s (median of ${COPY_CEILING_ROUNDS} COPYs of ${COPY_CEILING_ROWS / 1000}k rows); durable TPS is ${r.fraction_of_copy_ceiling} of it`);
  // Last: the generator's own ceiling, and which side limited the run.
  const g = r.load_generator as { ceiling_tps: number | null; ceiling_window_s: number | null; fraction_of_ceiling: number | null };
  if (g.ceiling_tps !== null) lines.push(`load generator ceiling ${g.ceiling_tps.toLocaleString('en-US')} TPS (this run's plan against a null server for ${g.ceiling_window_s} s); committed TPS is ${g.fraction_of_ceiling} of it`);
  lines.push(String(r.verdict));
  if (r.offered_rate_verdict) lines.push(String(r.offered_rate_verdict));
  console.log(lines.join('\n'));
  if (r.plan_ran_out) console.log('note: the pre-built plan ran out before the duration ended; raise --prebuild-mb or lower --duration');
}

/** --cluster: each validator's hops over the measured window, as bucket bounds (bench/cluster-hops.ts). */
function clusterHopLines(hops: Record<string, Record<string, HopWindow>> | undefined): string[] {
  if (!hops) return [];
  const at = (ms: number | null) => (ms === null ? '?' : `<=${ms}`);
  return [
    'finality by hop over the measured window, ms from the leader sequencing a block (bucket bounds: p50 / p95 / p99):',
    ...Object.entries(hops).map(([id, row]) => `  validator ${id}: ${HOPS.map((h) => `${h} ${at(row[h].p50_ms_at_most)} / ${at(row[h].p95_ms_at_most)} / ${at(row[h].p99_ms_at_most)}`).join('; ')} (${row.final.blocks} blocks)`),
  ];
}

/** TLS runs: the transport's CPU a MB over TLS and plaintext (both ends), and TLS's share of this run (bench/tls-cost.ts). */
function tlsCostLines(c: Record<string, number | null>, t: TlsCost | null): string[] {
  if (t === null) return [];
  const line = `TLS 1.3 + mTLS: the engine's transport costs ${c.grpc_tls_loopback_cpu_ms_per_mb} ms of CPU a MB against ${c.grpc_loopback_cpu_ms_per_mb} in plaintext (client and server, loopback), +${t.extra_cpu_ms_per_mb}: ${t.cores} cores at this run's rate`;
  if (t.share_of_run_cpu === null) return [line];
  return [line, `TLS took ${t.share_of_run_cpu} of the cores the engine and load generator used: a CPU-bound plaintext run on these cores is expected ${(1 / (1 - t.share_of_run_cpu)).toFixed(2)}x faster (this run at ${t.expected_fraction_of_plain} of it)`];
}

/** per-tx: the verify ceiling read again after the run, and a warning when the machine's speed moved. */
function verifyDriftLines(c: Record<string, number | null>): string[] {
  const drift = c.ed25519_verify_drift;
  if (drift === null || drift === undefined) return [];
  const line = `Ed25519 verify after the run: ${c.ed25519_verify_per_s_core_after}/s on one core, ${c.ed25519_verify_per_s_all_cores_after}/s on all cores; the fractions divide by the mean of both readings (drift ${(drift * 100).toFixed(1)}%)`;
  if (Math.abs(drift) <= CEILING_DRIFT_WARN) return [line];
  return [line, `warning: the one-core verify rate moved ${(drift * 100).toFixed(1)}% during the run (more than ${CEILING_DRIFT_WARN * 100}%): this machine's speed changed, and the fraction is not to be trusted; run again`];
}

/** Cores by process: the engine and the load generator, and with sinks the local servers. */
function cpuLine(c: Record<string, unknown>): string {
  const n = (v: unknown, missing = 'n/a') => (v ?? missing) as string;
  const servers = 'postgres' in c ? `, PostgreSQL ${n(c.postgres, 'n/a (not on this machine)')}, Kafka ${n(c.kafka, 'n/a (not on this machine)')}` : '';
  const targets = c.targets as Record<string, number | null> | undefined;
  const here = targets ? `; ${Object.entries(targets).map(([label, cores]) => `${label} ${n(cores)}`).join(', ')}; Kafka ${n(c.kafka, 'none here')}, etcd ${n(c.etcd, 'none here')}, NGINX ${n(c.nginx, 'none here')}` : '';
  const machine = c.machine === null || c.machine === undefined ? '' : `; the machine ${c.machine} of ${os.availableParallelism()} cores busy`;
  return `engine ${n(c.engine)}, load generator ${n(c.loadgen)}${servers}${here}${machine}`;
}

/** ENGINE_NODE_FLAGS this process was started without (engine.ts says why they matter). */
function missingNodeFlags(): string[] {
  return ENGINE_NODE_FLAGS.filter((flag) => !process.execArgv.includes(flag));
}

function eventLoopLine(d: Record<string, number> | null | undefined): string[] {
  return d ? [`engine event-loop delay ms (main thread, beyond a 1 ms timer): p50 ${d.p50} p99 ${d.p99} p99.9 ${d.p999} max ${d.max}`] : [];
}


registerClusterCommands(program);

program.parseAsync().catch((error: Error & { details?: string; code?: number }) => {
  console.error(`txe: ${error.details ?? error.message}`);
  process.exit(1);
});
