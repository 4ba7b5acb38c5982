/*
 * `txe bench`: the load generator. It measures the machine's ceilings, starts an engine in a child
 * process unless --target names one, builds and funds the plan off the clock, drives it, and
 * reports TPS and CO-corrected batch latency next to the ceilings.
 */

import crypto from 'node:crypto';
import * as hdr from 'hdr-histogram-js';
import os from 'node:os';
import path from 'node:path';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { SingleBar, Presets } from 'cli-progress';
import type * as grpc from '@grpc/grpc-js';
import { TxeClient, clientCredentials, clientOptions, type ClientTls } from '../engine/client.js';
import { clientTlsFiles, createCa, createClient, createNode, CA_CERT_FILE, NODE_CERT_FILE, NODE_KEY_FILE } from '../engine/services/security/certs.js';
import { generateKeysFile, readKeysFile, writeKeysFile } from '../engine/keys-file.js';
import { Result, resultName } from '../engine/core/result.js';
import { u64ToNumber, type U64 } from '../engine/services/grpc/codec.js';
import { measureCeilings, verifyCeilingOf, type Ceilings } from './ceilings.js';
import { createBenchStores, measureCopyCeiling } from './stores.js';
import { measureGrpcCeiling, type GrpcCeiling } from './grpc-ceiling.js';
import { percentilePoints, renderReport } from './report.js';
import { coresBetween, cpuSnapshot, listeningTargets, rssMiB, type CoresUsed } from './cpu.js';
import { readClusterFile } from '../engine/cluster/cluster-file.js';
import { startEngineProcess, type EngineProcess } from './engine-process.js';
import { buildPlan, type Mode } from './loadgen/plan.js';
import { drive, type DriveResult } from './loadgen/driver.js';
import type { PlannedBatch } from './loadgen/wire.js';
import { measureLoadgenCeiling, type LoadgenCeiling } from './loadgen-ceiling.js';
import { verdictOf } from './verdict.js';
import { tlsCostOf } from './tls-cost.js';
import { hopsBetween, snapshotHops, type HopSnapshot } from './cluster-hops.js';
import { percentilesMs, type PercentilesMs } from '../engine/metrics/metrics.js';

export interface BenchOptions {
  mode: Mode;
  ack: 'ordered' | 'durable' | 'final'; // final: a cluster's validators (--target LIST)
  sinks: string[];
  batch: number;
  streams: number;
  lanes: number;
  rate: number | 'max';
  durationS: number;
  warmupS: number;
  json?: string;
  target?: string;
  keys?: string;
  workers?: number;
  engineConfig?: string; // txe serve --config, for the engine this starts
  prebuildMb: number;
  loadgenCeilingS: number; // window of the load generator's own ceiling; 0 = not measured
  // The engine this starts serves TLS 1.3 with mTLS (development certificates made for the run);
  // with --target, how to reach a TLS engine. The null server of the load generator's ceiling stays plaintext.
  tls?: boolean;
  targetTls?: ClientTls;
  clusterFile?: string; // --cluster: also the validators' finality hops over the measured window (cluster-hops.ts)
  progress: boolean;
  command: string;
}

// For --rate max the plan is sized by a guess of the max rate: batch-signed load is bounded by
// bytes and sequencing (well under 3M TPS on any box here); per-tx by verifies on all cores.
const BATCH_SIGNED_MAX_TPS_GUESS = 3_000_000;
const PER_TX_HEADROOM = 1.3;
const FUNDING_BATCH_TXS = 4096;
// Before the ceiling's window: connect, let the JIT compile the send path and fill every lane.
const LOADGEN_CEILING_WARMUP_S = 0.5;

export async function runBench(o: BenchOptions): Promise<Record<string, unknown>> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'txe-bench-'));
  let engine: EngineProcess | null = null;
  const stores = o.sinks.length > 0 && !o.target ? await createBenchStores(o.sinks) : null;
  try {
    log(o, 'measuring this machine\'s ceilings (4 s)...');
    const ceilings = await measureCeilings(1);
    const grpcPlain = await measureGrpcCeiling(1);
    // TLS runs: the same transport over TLS 1.3 + mTLS, so the report can say what TLS costs here.
    const certDir = o.tls || o.targetTls ? await benchCertificates(path.join(scratch, 'certs')) : null;
    const grpcTls = certDir === null ? null : await measureGrpcCeiling(1, certDir);
    const copyRowsPerS = stores?.pgUrl ? await measureCopyCeiling(stores.pgUrl) : null;
    const keys = o.keys ? readKeysFile(o.keys) : generateKeysFile();
    if (!o.target) {
      const keysFile = path.join(scratch, 'keys.json');
      writeKeysFile(keysFile, keys);
      const args = ['--keys', keysFile, '--ack', o.ack];
      if (stores) args.push('--sinks', o.sinks.join(','), '--pg-url', stores.pgUrl!, '--kafka-brokers', stores.kafkaBrokers.join(','), ...(stores.kafkaTopic ? ['--kafka-topic', stores.kafkaTopic] : []));
      if (o.workers) args.push('--workers', String(o.workers));
      if (o.engineConfig) args.push('--config', o.engineConfig);
      if (o.tls) args.push('--tls-cert', path.join(certDir!, NODE_CERT_FILE), '--tls-key', path.join(certDir!, NODE_KEY_FILE), '--tls-client-ca', path.join(certDir!, CA_CERT_FILE));
      engine = await startEngineProcess(args);
    }
    const address = o.target ?? engine!.address;
    const channelOptions = clientOptions(64 * 1024 * 1024);
    const tls = o.target ? o.targetTls ?? null : o.tls ? clientTlsFiles(certDir!, 'bench') : null;
    const addresses = address.split(',');
    const clients = addresses.map((a) => new TxeClient(a, channelOptions, clientCredentials(tls)));
    const client = clients[0];
    await Promise.all(clients.map((c) => c.waitReady(10_000)));
    const plan = await prepare(o, keys, client, ceilings);
    const loadgenCeiling = o.loadgenCeilingS > 0 ? await measureLoadgenCeilingOf(o, plan.lanes, channelOptions) : null;
    log(o, `driving ${o.rate === 'max' ? 'max rate' : `${o.rate} TPS`} for ${o.warmupS}+${o.durationS} s on ${o.streams} streams, ${o.lanes} lanes of ${o.batch}...`);
    const bar = o.progress ? new SingleBar({ format: '{bar} {elapsed}s {tps} TPS committed, {errors} errors', hideCursor: true }, Presets.shades_classic) : null;
    bar?.start(Math.ceil(o.warmupS + o.durationS), 0, { tps: 0, errors: 0 });
    const enginePid = engine?.child.pid ?? null;
    const targetPids = o.target ? listeningTargets(targetLabels(o)) : new Map<string, number>();
    const servers = o.sinks.length > 0 || targetPids.size > 0;
    let cpuStart = cpuSnapshot(enginePid, servers, targetPids);
    let statsAtStart: Promise<EngineStats | null> = Promise.resolve(null);
    let hopsAtStart: Promise<HopSnapshot> | null = null;
    const rss = { start: rssMiB(enginePid), max: rssMiB(enginePid), end: null as number | null };
    const result = await drive(clients, plan.lanes, {
      onMeasureStart: () => {
        cpuStart = cpuSnapshot(enginePid, servers, targetPids); rss.start = rssMiB(enginePid); statsAtStart = engineStats(client);
        if (o.clusterFile) hopsAtStart = snapshotHops(o.clusterFile);
      },
      onSample: () => { rss.max = Math.max(rss.max ?? 0, rssMiB(enginePid) ?? 0); },
      streams: o.streams, rateTps: o.rate, durationS: o.durationS, warmupS: o.warmupS, retryBackoffMs: 2,
      onTick: (p) => bar?.update(Math.floor(p.elapsedS), { tps: Math.round(p.committed / Math.max(0.1, p.elapsedS - o.warmupS)), errors: p.errors }),
    });
    const cpu = coresBetween(cpuStart, cpuSnapshot(enginePid, servers, targetPids));
    const engineWindow = engineStatsBetween(await statsAtStart, await engineStats(client));
    const hops = hopsAtStart === null ? null : hopsBetween(await hopsAtStart, await snapshotHops(o.clusterFile!));
    rss.end = rssMiB(enginePid);
    bar?.stop();
    for (const c of clients) c.close();
    const exitCode = engine ? await engine.stop() : null;
    engine = null;
    // per-tx is divided by the verify rate: read it again now the engine is gone (ceilings.ts).
    const ceilingsAfter = o.mode === 'per-tx' ? await measureCeilings(1) : null;
    const report = reportOf(o, result, ceilings, ceilingsAfter, exitCode, o.workers ?? os.availableParallelism(), cpu, rss, copyRowsPerS, { plain: grpcPlain, tls: grpcTls }, loadgenCeiling);
    report.engine_stages_ms = engineWindow?.stages ?? null;
    report.engine_event_loop_delay_ms = engineWindow?.eventLoopDelay ?? null;
    // --cluster: by validator, where each block of the measured window was, from its sequencing: read, applied, attested, final (bucket bounds).
    if (hops !== null) report.cluster_hops_ms = hops;
    if (o.json) {
      writeFileSync(o.json, JSON.stringify(report, null, 2) + '\n');
      // The standard HdrHistogram percentile distribution (values in ms), readable by its plotters.
      writeFileSync(o.json.replace(/\.json$/, '') + '.hgrm', result.latencyUs.outputPercentileDistribution(5, 1000));
      writeFileSync(o.json.replace(/\.json$/, '') + '.html', renderReport(report, percentilePoints(result.latencyUs)));
    }
    return report;
  } finally {
    if (engine) await engine.stop();
    await stores?.cleanup();
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * Where the cores went in the measured window: the engine (the child, or a single --target on this
 * machine), the load generator, the servers of this machine that the run used, each target found
 * listening here (a cluster's validators, by id), and the whole machine's busy cores.
 */
function coresReport(o: BenchOptions, cpu: CoresUsed): Record<string, unknown> {
  const targets = Object.values(cpu.targets);
  const engine = cpu.engine ?? (o.target !== undefined && !o.clusterFile && targets.length === 1 ? targets[0] : null);
  const sinks = o.sinks.length > 0;
  const here = targets.length > 0;
  return {
    engine, loadgen: cpu.loadgen, ...(sinks ? { postgres: cpu.postgres } : {}), ...(sinks || here ? { kafka: cpu.kafka } : {}),
    ...(here ? { targets: cpu.targets, etcd: cpu.etcd, nginx: cpu.nginx } : {}), machine: cpu.machine,
  };
}

/** --target's addresses by label: a cluster's fronts as "validator N", else each address itself. */
function targetLabels(o: BenchOptions): Map<string, string> {
  if (o.clusterFile) return new Map(readClusterFile(o.clusterFile).validators.map((v) => [`validator ${v.id}`, v.front]));
  return new Map(o.target!.split(',').map((a) => [a, a]));
}

/** A CA, a server certificate for 127.0.0.1 and a bench client (submitter, operator) in `dir`, which it returns. */
async function benchCertificates(dir: string): Promise<string> {
  mkdirSync(dir, { recursive: true });
  await createCa(dir);
  await createNode(dir, ['127.0.0.1', 'localhost']);
  await createClient(dir, 'bench', ['submitter', 'operator']);
  return dir;
}

async function measureLoadgenCeilingOf(o: BenchOptions, lanes: PlannedBatch[][], channelOptions: grpc.ChannelOptions): Promise<LoadgenCeiling> {
  log(o, `measuring the load generator's own ceiling against a null server (${o.loadgenCeilingS} s)...`);
  const c = await measureLoadgenCeiling(lanes, { windowS: o.loadgenCeilingS, warmupS: LOADGEN_CEILING_WARMUP_S, streams: o.streams, channelOptions });
  log(o, `load generator ceiling ${Math.round(c.ceilingTps)} TPS (generator ${c.loadgenCores} cores, event loop ${c.eventLoopUtilization} busy; null server ${c.nullServerCores} cores)`);
  return c;
}

async function prepare(o: BenchOptions, keys: ReturnType<typeof readKeysFile>, client: TxeClient, ceilings: Ceilings) {
  const perTxBytes = o.mode === 'per-tx' ? 192 : 128;
  const maxGuess = o.mode === 'per-tx' ? ceilings.ed25519VerifyPerSAllCores * PER_TX_HEADROOM : BATCH_SIGNED_MAX_TPS_GUESS;
  const wantTxs = (o.rate === 'max' ? maxGuess : o.rate * 1.1) * (o.durationS + o.warmupS);
  const capTxs = (o.prebuildMb * 1024 * 1024) / perTxBytes;
  const roundsPerLane = Math.max(1, Math.ceil(Math.min(wantTxs, capTxs) / (o.lanes * o.batch)));
  log(o, `pre-building ${roundsPerLane * o.lanes} batches of ${o.batch} (${o.mode})...`);
  const started = performance.now();
  const issuerAccount = await client.getAccount(keys.issuer.publicKey);
  const plan = await buildPlan({
    mode: o.mode, batchTxs: o.batch, lanes: o.lanes, roundsPerLane, fundingBatchTxs: FUNDING_BATCH_TXS,
    issuer: keys.issuer, issuerNonceLast: u64ToNumber(issuerAccount.nonce as U64), signer: keys.signer, amountPerTx: 1n,
    runId: crypto.randomBytes(8).toString('hex'), ack: o.ack,
  });
  log(o, `built ${plan.txsPlanned} transactions in ${((performance.now() - started) / 1000).toFixed(1)} s; funding ${o.lanes * o.batch} senders...`);
  for (const batch of plan.funding) {
    const response = await client.submitBatch(batch);
    const bad = response.results.findIndex((c) => c !== Result.committed);
    if (bad >= 0) throw new Error(`funding mint rejected: ${resultName(response.results[bad])} (is the engine configured with this issuer and trusted signer? pass --keys)`);
  }
  return plan;
}

function reportOf(o: BenchOptions, r: DriveResult, ceilings: Ceilings, ceilingsAfter: Ceilings | null, engineExit: number | null, workers: number, cpu: CoresUsed, rss: { start: number | null; max: number | null; end: number | null }, copyRowsPerS: number | null, transport: { plain: GrpcCeiling; tls: GrpcCeiling | null }, loadgen: LoadgenCeiling | null): Record<string, unknown> {
  const grpcBytesPerS = transport.plain.bytesPerS;
  const bytesPerTx = o.mode === 'per-tx' ? 192 : 128;
  const ms = (p: number) => r.latencyUs.getValueAtPercentile(p) / 1000;
  const tps = r.txsCommitted / r.durationS;
  const sentTps = r.txsSent / r.durationS;
  const verdict = verdictOf({
    tps, ceilingTps: loadgen?.ceilingTps ?? null, rateTps: o.rate, sentTps,
    eventLoopUtilization: r.eventLoopUtilization, ceilingEventLoopUtilization: loadgen?.eventLoopUtilization ?? null,
  });
  const verify = verifyCeilingOf(ceilings, ceilingsAfter);
  const perTxCeiling = verify.perSCore * workers;
  return {
    mode: o.mode, ack: o.ack, sinks: o.sinks.join(',') || 'none', tls: o.tls === true || o.targetTls !== undefined ? 'TLS 1.3' + (o.tls || o.targetTls?.certFile ? ' + mTLS' : '') : 'none', batch_size: o.batch, streams: o.streams, lanes: o.lanes,
    duration_s: round(r.durationS, 3), warmup_s: o.warmupS,
    offered_tps: o.rate === 'max' ? 'max' : o.rate,
    tps: Math.round(tps), txs_committed: r.txsCommitted, txs_rejected: r.txsRejected,
    rejected_by_result: Object.fromEntries(Object.entries(r.rejectedByCode).map(([c, n]) => [resultName(Number(c)), n])),
    errors: r.errors, errors_by_status: r.errorsByStatus, batches: r.batches, plan_ran_out: r.ranOut,
    latency_ms: { p50: ms(50), p90: ms(90), p95: ms(95), p99: ms(99), p999: ms(99.9), max: r.latencyUs.maxValue / 1000 },
    // ack final: an answer comes when 3 of 4 validators attested its block, so the batch latency is
    // the time to finality (from the send, or from the due time at a fixed rate).
    ...(o.ack === 'final' ? { finality_ms: { p50: ms(50), p90: ms(90), p95: ms(95), p99: ms(99), p999: ms(99.9), max: r.latencyUs.maxValue / 1000 } } : {}),
    latency_hdr_base64: hdr.encodeIntoCompressedBase64(r.latencyUs), // the whole distribution, mergeable
    latency_corrected_for_coordinated_omission: o.rate !== 'max',
    tps_per_second: r.tpsPerSecond.map((n) => n ?? 0),
    ceilings: {
      ed25519_verify_per_s_core: Math.round(ceilings.ed25519VerifyPerSCore),
      ed25519_verify_per_s_all_cores: Math.round(ceilings.ed25519VerifyPerSAllCores),
      // per-tx: read again after the run; the fractions below divide by the mean of both readings.
      ed25519_verify_per_s_core_after: ceilingsAfter === null ? null : Math.round(ceilingsAfter.ed25519VerifyPerSCore),
      ed25519_verify_per_s_all_cores_after: ceilingsAfter === null ? null : Math.round(ceilingsAfter.ed25519VerifyPerSAllCores),
      ed25519_verify_drift: verify.drift === null ? null : round(verify.drift, 3),
      sha256_bytes_per_s: Math.round(ceilings.sha256BytesPerS),
      per_tx_tps_ceiling: Math.round(perTxCeiling),
      pg_copy_binary_rows_per_s: copyRowsPerS === null ? null : Math.round(copyRowsPerS),
      grpc_loopback_bytes_per_s: Math.round(grpcBytesPerS),
      grpc_loopback_cpu_ms_per_mb: round(transport.plain.cpuMsPerMb, 3),
      grpc_tls_loopback_bytes_per_s: transport.tls === null ? null : Math.round(transport.tls.bytesPerS),
      grpc_tls_loopback_cpu_ms_per_mb: transport.tls === null ? null : round(transport.tls.cpuMsPerMb, 3),
      load_generator_tps: loadgen === null ? null : Math.round(loadgen.ceilingTps),
    },
    // The load generator's own ceiling (the same plan against a null server) and which side limited the run.
    load_generator: {
      ceiling_tps: loadgen === null ? null : Math.round(loadgen.ceilingTps),
      ceiling_window_s: loadgen === null ? null : round(loadgen.windowS, 3),
      ceiling_cores_used: loadgen === null ? null : { load_generator: loadgen.loadgenCores, null_server: loadgen.nullServerCores },
      ceiling_event_loop_utilization: loadgen === null ? null : loadgen.eventLoopUtilization,
      event_loop_utilization: r.eventLoopUtilization,
      fraction_of_ceiling: verdict.fractionOfCeiling,
      sent_tps: Math.round(sentTps),
      offered_rate_kept_up: verdict.keptUp,
      send_lag_ms_max: o.rate === 'max' ? null : round(r.sendLagMsMax, 3),
    },
    limited_by: verdict.limitedBy,
    verdict: verdict.line,
    offered_rate_verdict: verdict.rateLine,
    fraction_of_grpc_ceiling: round((tps * bytesPerTx) / grpcBytesPerS, 3),
    tls_cost: tlsCostOf(transport, tps * bytesPerTx, cpu),
    fraction_of_copy_ceiling: copyRowsPerS === null ? null : round(tps / copyRowsPerS, 3),
    // per-tx: against verifies/s on one core × worker cores (the target's formula), and against all
    // cores verifying at once (what the machine can really do with ingress and load on it too).
    fraction_of_ceiling: o.mode === 'per-tx' ? round(tps / perTxCeiling, 3) : round((tps * bytesPerTx) / ceilings.sha256BytesPerS, 3),
    fraction_of_all_cores_verify: o.mode === 'per-tx' ? round(tps / verify.perSAllCores, 3) : null,
    engine: { workers, target: o.target ?? 'child process', exit_code: engineExit },
    cpu_cores_used: coresReport(o, cpu),
    engine_rss_mib: { at_measure_start: rss.start, max: rss.max, at_end: rss.end },
    machine: { cpus: os.availableParallelism(), model: os.cpus()[0]?.model ?? 'unknown', node: process.version, platform: `${os.platform()} ${os.arch()}` },
    command: o.command,
    at: new Date().toISOString(),
  };
}

type StageHistogramWire = { stage: string; hdr: Uint8Array; count: unknown };
interface EngineStats { stages: StageHistogramWire[]; eventLoopDelay: StageHistogramWire | null }

/** The engine's own histograms (StatsService), or null for an engine without it. */
async function engineStats(client: TxeClient): Promise<EngineStats | null> {
  try {
    const stats = await client.getStats();
    return { stages: stats.stages as StageHistogramWire[], eventLoopDelay: (stats.eventLoopDelay as StageHistogramWire | undefined) ?? null };
  } catch {
    return null;
  }
}

/**
 * The engine's per-stage latency and event-loop delay over the measured window only: the reading at
 * its end less the reading at its start (HDR histograms subtract), in milliseconds.
 */
function engineStatsBetween(start: EngineStats | null, end: EngineStats | null): { stages: Record<string, PercentilesMs>; eventLoopDelay: PercentilesMs | null } | null {
  if (end === null) return null;
  const window = (at: StageHistogramWire, before: StageHistogramWire | undefined): PercentilesMs => {
    const h = decodeHistogram(at.hdr);
    if (before) h.subtract(decodeHistogram(before.hdr));
    return percentilesMs(h);
  };
  const stages: Record<string, PercentilesMs> = {};
  for (const at of end.stages) {
    const measured = window(at, start?.stages.find((s) => s.stage === at.stage));
    if (measured.count > 0) stages[at.stage] = measured;
  }
  const eventLoopDelay = end.eventLoopDelay ? window(end.eventLoopDelay, start?.eventLoopDelay ?? undefined) : null;
  return { stages, eventLoopDelay };
}

function decodeHistogram(bytes: Uint8Array): hdr.Histogram {
  return hdr.decodeFromCompressedBase64(Buffer.from(bytes).toString('base64'));
}

function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

function log(o: BenchOptions, message: string): void {
  if (o.progress || process.env.TXE_BENCH_VERBOSE) process.stderr.write(`txe bench: ${message}\n`);
}
