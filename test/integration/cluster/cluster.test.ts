// The four-validator cluster of issue 13 (engine/cluster/), as infra/cluster-up.sh starts it: etcd,
// a 3-node KRaft Kafka cluster, 4 `txe validator` processes and NGINX, all real, on loopback.
// Batches go to followers' fronts and to NGINX with ack FINAL; the validators must agree on height
// and state hash; a validator attesting wrong state hashes is caught while the cluster goes on;
// kill -9 of the leader under load elects another, and every batch answered is in the history once.

import { execFileSync, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { TxeClient, clientCredentials, clientOptions, mintBatch as mintsOf, type ClientTls } from '../../../engine/client.js';
import { repoRoot } from '../../../engine/paths.js';
import { Result } from '../../../engine/core/result.js';
import { readKeysFile, type KeysFile } from '../../../engine/keys-file.js';
import { clusterStatus, type ValidatorStatusJson } from '../../../cli/cluster.js';
import { clusterClientTls, readClusterFile } from '../../../engine/cluster/cluster-file.js';
import { getMetrics } from '../../../bench/cluster-hops.js';
import { clientFiles, createClient } from '../../../engine/services/security/certs.js';
import { ATTEST_METHOD } from '../../../engine/cluster/front.js';
import { encodeAttestation } from '../../../engine/cluster/attestation.js';
import { until, withTimeout } from '../../support/async.js';

const BATCH = 50;
const AttestClient = grpc.makeGenericClientConstructor({ Attest: ATTEST_METHOD }, 'ClusterService');
const FAILOVER_MS_MAX = 10_000;
/** Runs an infra/ script; a failure carries the end of its log (stderr) in the message. */
function infra(script: string, args: string[] = [], env: NodeJS.ProcessEnv = process.env): string {
  try {
    return execFileSync('bash', [path.join(repoRoot, 'infra', script), ...args], { encoding: 'utf8', timeout: 240_000, stdio: ['ignore', 'pipe', 'pipe'], env });
  } catch (error) {
    const stderr = String((error as { stderr?: string }).stderr ?? '').split('\n').slice(-15).join('\n');
    throw new Error(`infra/${script} ${args.join(' ')} failed:\n${stderr}`);
  }
}

let targets: string[];
let clusterFile: string;
const node = (...args: string[]) => execFileSync(process.execPath, [path.join(repoRoot, 'dist', 'cli', 'main.js'), ...args], { encoding: 'utf8', timeout: 30_000 });
let front: string;
let keys: KeysFile;
let nonce = 0; // the issuer's last nonce used: mints are numbered across the whole file
// Every port of the cluster is mTLS: clients present the cluster's submitter certificate, status
// is asked as its operator.
let submitterTls: ClientTls | null;
let operatorTls: ClientTls | null;
const clients = new Map<string, TxeClient>();
const client = (t: string) => clients.get(t) ?? clients.set(t, new TxeClient(t, clientOptions(), clientCredentials(submitterTls))).get(t)!;
const mintBatch = (firstNonce: number) => mintsOf(keys, BigInt(firstNonce), BATCH, 'final');

/** Submits the next batch of mints (ack FINAL) to `target`; retried while no leader answers. Returns whether it landed. */
async function submitNext(target: string): Promise<void> {
  const batch = mintBatch(nonce + 1);
  for (let attempt = 0; ; attempt++) {
    try {
      const r = await client(target).submitBatch(batch);
      // A retry of a batch whose first answer was lost finds its nonces taken: it is in already.
      if (attempt > 0 && r.results.every((c) => c === Result.bad_nonce)) break;
      expect(r.results.every((c) => c === Result.committed)).toBe(true);
      break;
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (code !== 14 || attempt > 200) throw error; // UNAVAILABLE: no leader, or not final yet
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  nonce += BATCH;
}

const statuses = async (of = targets): Promise<ValidatorStatusJson[]> => Promise.all(of.map((t) => clusterStatus(t, operatorTls)));
const agreed = async (of = targets) => {
  const s = await statuses(of);
  const same = s.every((v) => v.height === s[0].height && v.state_hash === s[0].state_hash && v.final_height === v.height);
  return same && s[0].height > 0 ? s : null;
};
const issuerNonce = async (target: string) => BigInt(String((await client(target).getAccount(keys.issuer.publicKey)).nonce));

/** GET /metrics of validator `index` (0-3) with `files`: the status code and the text. */
function scrapeMetrics(index: number, files: ClientTls): Promise<{ status: number; text: string }> {
  return getMetrics(readClusterFile(clusterFile).validators[index].metrics, files);
}

const counterValue = (text: string, series: string) => Number(new RegExp(`^${series.replace(/[{}]/g, '\\$&')} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);

describe('a four-validator cluster', () => {
  beforeAll(() => {
    infra('cluster-down.sh', ['--wipe']);
    // Through Toxiproxy, at 0 ms until the delay test sets 20 ms (infra/cluster-delay.sh).
    const printed = infra('cluster-up.sh', [], { ...process.env, TXE_CLUSTER_DELAY_MS: '0' });
    targets = /TXE_CLUSTER_TARGETS=(\S+)/.exec(printed)![1].split(',');
    front = /TXE_CLUSTER_FRONT=(\S+)/.exec(printed)![1];
    const dir = /TXE_CLUSTER_DIR=(\S+)/.exec(printed)![1];
    keys = readKeysFile(path.join(dir, 'keys.json'));
    clusterFile = path.join(dir, 'cluster.json');
    submitterTls = clusterClientTls(clusterFile, 'submitter');
    operatorTls = clusterClientTls(clusterFile, 'operator');
  }, 300_000);
  afterAll(() => {
    for (const c of clients.values()) c.close();
    infra('cluster-down.sh', ['--wipe']);
  }, 120_000);

  it('answers ack FINAL through any validator and through NGINX, and all four reach the same height and state hash', async () => {
    for (let i = 0; i < 8; i++) await submitNext(i % 2 === 0 ? targets[i % 4] : front);
    const s = await until('all four validators at one height and state hash', agreed, 30_000);
    expect(s.filter((v) => v.role === 'leader')).toHaveLength(1);
    expect(await issuerNonce(targets[0])).toBe(BigInt(nonce));
    // A bad batch signature is answered at the front it reached, and the history does not move.
    const bad = { ...mintBatch(nonce + 1), signature: crypto.randomBytes(64) };
    const r = await client(targets[1]).submitBatch(bad);
    expect(r.block).toBe(0);
    expect(r.results.every((c) => c === Result.bad_signature)).toBe(true);
    expect((await agreed())?.[0].height).toBe(s[0].height);
    // Each validator counted others' attestations handed straight to it, through the proxies that
    // carry the delay (attestation-peers.ts), and its own as it signed them; the topic has them too.
    for (let i = 0; i < 4; i++) {
      const { text } = await scrapeMetrics(i, operatorTls!);
      expect(counterValue(text, 'txe_cluster_attestations_received_total{via="peer"}')).toBeGreaterThan(0);
      expect(counterValue(text, 'txe_cluster_attestations_received_total{via="self"}')).toBeGreaterThan(0);
      expect(counterValue(text, 'txe_cluster_attestation_pushes_total{result="sent"}')).toBeGreaterThan(0);
    }
  }, 120_000);

  it('txe cluster status prints one JSON line a validator over mTLS, and nothing on stderr', () => {
    // grpc-js sets the TLS ServerName to the target's IP, and Node warned about it (DEP0123) on
    // every command that reaches the cluster (cli/quiet-warnings.ts).
    const run = spawnSync(process.execPath, [path.join(repoRoot, 'dist', 'cli', 'main.js'), 'cluster', 'status', '--cluster', clusterFile], { encoding: 'utf8', timeout: 30_000 });
    expect(run.status).toBe(0);
    expect(run.stderr).toBe('');
    const lines = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { id: number; role: string });
    expect(lines.map((l) => l.id).sort()).toEqual([1, 2, 3, 4]);
    expect(lines.filter((l) => l.role === 'leader')).toHaveLength(1);
  });

  it('authorizes every caller at every port by its own certificate: fronts, NGINX and metrics', async () => {
    expect(submitterTls).not.toBeNull();
    const tls = submitterTls!;
    const refusal = async (target: string, credentials: grpc.ChannelCredentials) => {
      const c = new TxeClient(target, clientOptions(), credentials);
      try {
        await c.submitBatch(mintBatch(nonce + 1));
        return null;
      } catch (error) {
        return error as grpc.ServiceError;
      } finally {
        c.close();
      }
    };
    const operator = clientCredentials(operatorTls);
    for (const target of [targets[2], front]) {
      // No client certificate, or plaintext: the TLS handshake refuses the connection.
      expect((await refusal(target, clientCredentials({ caFile: tls.caFile })))?.code).toBe(grpc.status.UNAVAILABLE);
      expect((await refusal(target, grpc.credentials.createInsecure()))?.code).toBe(grpc.status.UNAVAILABLE);
      // An operator may not submit, through NGINX either: NGINX passes the caller's own TLS through.
      const denied = await refusal(target, operator);
      expect(denied?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(denied?.details).toMatch(/needs role submitter/);
    }
    // A submitter scoped to one account (scope.ts) is held to it at the front, which forwards
    // with the validator's own certificate: not the leader's engine's job to know the caller.
    const own = crypto.randomBytes(32);
    await createClient(path.dirname(tls.caFile), 'scoped', ['submitter'], { accounts: [own.toString('hex')] });
    const scoped = new TxeClient(targets[1], clientOptions(), clientCredentials({ ...tls, certFile: path.join(path.dirname(tls.caFile), clientFiles('scoped').cert), keyFile: path.join(path.dirname(tls.caFile), clientFiles('scoped').key) }));
    await expect(scoped.submitBatch(mintBatch(nonce + 1))).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED, details: expect.stringMatching(/batch signer .* is not one of this caller's keys/) });
    await expect(scoped.getAccount(keys.issuer.publicKey)).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    expect((await scoped.getAccount(own)).exists).toBe(false);
    scoped.close();
    // A submitter may not ask for a validator's status (operator).
    await expect(clusterStatus(targets[0], submitterTls)).rejects.toMatchObject({ code: grpc.status.PERMISSION_DENIED });
    // Nor hand it an attestation; an operator may, and one that is not a validator's signed
    // attestation is refused with the reason, and counts towards nothing.
    const attest = (credentials: grpc.ChannelCredentials, bytes: Buffer) => new Promise<grpc.ServiceError | null>((resolve) => {
      const c = new AttestClient(targets[0], credentials) as unknown as grpc.Client & { Attest: (b: Buffer, cb: (e: grpc.ServiceError | null) => void) => void };
      c.Attest(bytes, (e) => { c.close(); resolve(e); });
    });
    const forged = encodeAttestation({ validator: 2, height: 1, blockHash: crypto.randomBytes(32), stateHash: crypto.randomBytes(32), term: 1, signature: crypto.randomBytes(64) });
    expect((await attest(clientCredentials(tls), forged))?.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(await attest(clientCredentials(operatorTls), forged)).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/claims validator 2 and its signature does not verify/) });
    expect(await attest(clientCredentials(operatorTls), Buffer.from([0xff, 0xff]))).toMatchObject({ code: grpc.status.INVALID_ARGUMENT, details: expect.stringMatching(/not a txe.v1.Attestation/) });
    // The metrics port: TLS, and the operator role.
    const scraped = await scrapeMetrics(0, operatorTls!);
    expect(scraped.status).toBe(200);
    expect((await scrapeMetrics(0, tls)).status).toBe(403);
    // Where finality's time goes, block by block: every block applied here was first read from the
    // topic, and read no later than it was applied (the blocks of the test before this one).
    const hop = (name: string, part: 'count' | 'sum') => counterValue(scraped.text, `txe_cluster_block_hop_seconds_${part}{hop="${name}"}`);
    expect(hop('read', 'count')).toBeGreaterThan(0);
    expect(hop('read', 'count')).toBeGreaterThanOrEqual(hop('applied', 'count')); // more when a block was skipped
    expect(hop('read', 'sum')).toBeLessThanOrEqual(hop('applied', 'sum'));
    // Nothing of the refused calls moved the history.
    expect(await issuerNonce(targets[0])).toBe(BigInt(nonce));
  }, 60_000);

  it('catches a validator that attests wrong state hashes, and finality goes on without it', async () => {
    const leader = (await statuses()).find((v) => v.role === 'leader')!.id;
    const liar = leader === 4 ? 3 : 4;
    infra('cluster-kill.sh', [String(liar)]);
    infra('cluster-start.sh', [String(liar)], { ...process.env, TXE_TEST_BYZANTINE: 'wrong-state-hash' });
    const honest = targets.filter((_, i) => i + 1 !== liar);
    const before = await statuses(honest);
    for (let i = 0; i < 4; i++) await submitNext(honest[i % 3]);
    await until('the honest validators counted the wrong attestations', async () => ((await statuses(honest)).every((v, i) => v.faults > before[i].faults) ? true : null), 30_000);
    const after = await until('the honest validators agree', () => agreed(honest), 30_000);
    expect(after[0].final_height).toBeGreaterThan(before[0].final_height);
    infra('cluster-kill.sh', [String(liar)]);
    infra('cluster-start.sh', [String(liar)]);
  }, 180_000);

  it('catches a leader that publishes an invalid block: nothing of it is final, the others depose it, and the cluster goes on', async () => {
    await until('all four agree', agreed, 30_000);
    const start = await statuses();
    const leader = start.find((v) => v.role === 'leader')!.id;
    const liar = leader === 2 ? 1 : 2;
    infra('cluster-kill.sh', [String(liar)]);
    infra('cluster-start.sh', [String(liar)], { ...process.env, TXE_TEST_BYZANTINE: 'bad-block' });
    await until('the liar back at the same height', async () => ((await clusterStatus(targets[liar - 1], operatorTls)).height === start[0].height ? true : null), 30_000);
    // The liar campaigned last: the others step down (each goes back in line behind it) until it leads.
    let term = 0;
    const liarLeads = await until('the liar leads', async () => {
      const s = await statuses();
      const now = s.find((v) => v.role === 'leader');
      if (now?.id === liar) return now;
      if (now && now.term !== term) {
        term = now.term;
        node('cluster', 'step-down', '--cluster', clusterFile);
      }
      return null;
    }, 60_000);
    // It publishes its forged block at once; the honest validators refuse it, complain, and depose it.
    const honest = targets.filter((_, i) => i + 1 !== liar);
    const honestBefore = start.filter((_, j) => j + 1 !== liar);
    const replaced = await until('a leader after the liar', async () => (await statuses(honest)).find((v) => v.role === 'leader' && v.term > liarLeads.term) ?? null, 30_000);
    await until('every honest validator counted the forged block', async () => ((await statuses(honest)).every((v, i) => v.faults > honestBefore[i].faults) ? true : null), 30_000);
    for (let i = 0; i < 4; i++) await submitNext(honest[i % 3]);
    const after = await until('the honest validators agree', () => agreed(honest), 30_000);
    expect(after[0].final_height).toBeGreaterThan(start[0].final_height);
    expect(await issuerNonce(honest[0])).toBe(BigInt(nonce)); // the forged transfer moved nothing
    infra('cluster-kill.sh', [String(liar)]);
    infra('cluster-start.sh', [String(liar)]);
    console.log(`validator ${liar} published a forged block as leader; validator ${replaced.id} leads now (term ${replaced.term})`);
  }, 240_000);

  it('elects a new leader within 10 s of kill -9 of the leader under load, and loses or repeats no answered batch', async () => {
    await until('all four agree', agreed, 30_000);
    const leader = (await statuses()).find((v) => v.role === 'leader')!;
    const survivors = targets.filter((_, i) => i + 1 !== leader.id);
    let running = true;
    const load = (async () => { for (let i = 0; running; i++) await submitNext(survivors[i % 3]); })();
    await until('some load final', async () => ((await statuses(survivors)).every((v) => v.final_height > leader.final_height) ? true : null), 30_000);
    infra('cluster-kill.sh', [String(leader.id)]);
    const killedAt = Date.now();
    const next = await until('a new leader', async () => (await statuses(survivors)).find((v) => v.role === 'leader' && v.term > leader.term) ?? null, FAILOVER_MS_MAX + 5_000);
    const failoverMs = Date.now() - killedAt;
    expect(failoverMs).toBeLessThan(FAILOVER_MS_MAX);
    const finalAtFailover = next.final_height;
    await until('blocks final under the new leader', async () => ((await statuses(survivors)).every((v) => v.final_height > finalAtFailover) ? true : null), 30_000);
    running = false;
    await withTimeout(load, 60_000, 'the last batch in flight answered');
    const end = await until('the survivors agree', () => agreed(survivors), 30_000);
    // Mint nonces are contiguous per sender: the issuer's nonce is exactly the mints in the history.
    expect(await issuerNonce(survivors[0])).toBe(BigInt(nonce));
    infra('cluster-start.sh', [String(leader.id)]);
    const all = await until('the restarted validator catches up', async () => {
      const s = await agreed();
      return s && s[0].height >= end[0].height ? s : null;
    }, 60_000);
    expect(new Set(all.map((v) => v.state_hash)).size).toBe(1);
    console.log(`leader ${leader.id} (term ${leader.term}) killed; validator ${next.id} leads with term ${next.term} after ${failoverMs} ms`);
  }, 240_000);

  it('goes on finalizing through kill -9 of a follower and of one Kafka node under load, and loses or repeats no answered batch', async () => {
    await until('all four agree', agreed, 60_000);
    const before = await statuses();
    const leader = before.find((v) => v.role === 'leader')!.id;
    const follower = leader === 4 ? 3 : 4;
    const live = targets.filter((_, i) => i + 1 !== follower);
    let running = true;
    const load = (async () => { for (let i = 0; running; i++) await submitNext(live[i % 3]); })();
    infra('cluster-kill.sh', [String(follower)]);
    infra('kafka-cluster-kill.sh', ['2']);
    try {
      const atKill = Math.max(...(await statuses(live)).map((v) => v.height));
      await until('blocks written after both kills are final', async () => ((await statuses(live)).every((v) => v.final_height > atKill + 2) ? true : null), 60_000);
      running = false;
      await withTimeout(load, 60_000, 'the last batch in flight answered');
      await until('the three agree', () => agreed(live), 30_000);
      expect(await issuerNonce(live[0])).toBe(BigInt(nonce));
    } finally {
      running = false;
      infra('kafka-cluster-start.sh', ['2']);
      infra('cluster-start.sh', [String(follower)]);
    }
    await until('the follower catches up', agreed, 60_000);
  }, 240_000);

  it('keeps finality with 20 ms of network delay between the validators, and reports its p95', async () => {
    await until('all four agree', agreed, 60_000);
    const timed = async (n: number) => {
      const ms: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await submitNext(targets[i % 4]);
        ms.push(performance.now() - t0);
      }
      return ms.sort((a, b) => a - b);
    };
    const quantile = (ms: number[], q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))];
    const without = await timed(12);
    infra('cluster-delay.sh', ['20']);
    try {
      const delayed = await timed(24);
      const s = await until('all four agree under delay', agreed, 60_000);
      expect(await issuerNonce(targets[0])).toBe(BigInt(nonce));
      expect(s[0].final_height).toBe(s[0].height);
      // A block goes leader -> Kafka -> followers, and attestations back the same way: at least
      // 20 ms more on the critical path.
      expect(quantile(delayed, 0.5)).toBeGreaterThan(quantile(without, 0.5) + 20);
      console.log(`finality of one ${BATCH}-tx batch, ms: without delay p50 ${quantile(without, 0.5).toFixed(1)} p95 ${quantile(without, 0.95).toFixed(1)}; with 20 ms between validators p50 ${quantile(delayed, 0.5).toFixed(1)} p95 ${quantile(delayed, 0.95).toFixed(1)}`);
    } finally {
      infra('cluster-delay.sh', ['0']);
    }
  }, 180_000);

  it("txe bench --cluster reports every validator's finality hops and cores over its measured window", async () => {
    const json = path.join(path.dirname(clusterFile), 'bench-hops.json');
    const out = execFileSync(process.execPath, [path.join(repoRoot, 'dist', 'cli', 'main.js'), 'bench', '--cluster', clusterFile, '--duration', '2', '--warmup', '1', '--rate', '16000',
      '--batch', '1000', '--loadgen-ceiling-s', '0', '--json', json], { encoding: 'utf8', timeout: 90_000 });
    const r = JSON.parse(fs.readFileSync(json, 'utf8')) as { errors: number; batches: number; cluster_hops_ms: Record<string, Record<string, { blocks: number; p50_ms_at_most: number | null }>>; cpu_cores_used: { targets: Record<string, number | null>; kafka: number | null; etcd: number | null; machine: number | null } };
    expect(r.errors).toBe(0);
    // How the cores were spent: each validator found by its front's port, the brokers, etcd, the machine.
    const cores = r.cpu_cores_used;
    expect(Object.keys(cores.targets).sort()).toEqual(['validator 1', 'validator 2', 'validator 3', 'validator 4']);
    for (const c of Object.values(cores.targets)) expect(c).toBeGreaterThan(0);
    expect(cores.kafka).toBeGreaterThan(0);
    expect(cores.etcd).not.toBeNull();
    expect(cores.machine).toBeGreaterThanOrEqual(Object.values(cores.targets).reduce((a, c) => a! + c!, 0)! - 0.05);
    expect(out).toMatch(/validator 1 [\d.]+, validator 2 [\d.]+, validator 3 [\d.]+, validator 4 [\d.]+; Kafka [\d.]+/);
    expect(Object.keys(r.cluster_hops_ms).sort()).toEqual(['1', '2', '3', '4']);
    for (const [id, row] of Object.entries(r.cluster_hops_ms)) {
      // Only blocks seen in the window: the bench's funding and warm-up before it, and the earlier
      // tests' blocks, are in the validator's histogram since start but not in the report.
      const sinceStart = counterValue((await scrapeMetrics(Number(id) - 1, operatorTls!)).text, 'txe_cluster_block_hop_seconds_count{hop="final"}');
      expect(row.final.blocks).toBeGreaterThan(0);
      expect(row.final.blocks).toBeLessThan(sinceStart);
      expect(row.read.blocks).toBeGreaterThan(0);
    }
    expect(out).toMatch(/^ {2}validator 1: read <=\d+ \/ /m);
  }, 120_000);
});
