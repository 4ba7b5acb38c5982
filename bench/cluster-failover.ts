/*
 * Leader failover of the validator cluster (issue 13): kill -9 the leader under a light ack-FINAL
 * load, and time it from the kill to the first block written after it that is final. Run against
 * a cluster of infra/cluster-up.sh:
 *
 *   node dist/bench/cluster-failover.js [--kills 5] [--json FILE] [--cluster infra/.data/cluster/cluster.json]
 *
 * Each round: wait until all four agree; a loader sends mint batches of BATCH_TXS with ack FINAL,
 * one after another, to a validator that is not the leader; kill -9 the leader; poll the
 * survivors every POLL_MS until one reports a final height above the highest height any of them
 * had applied at the kill (a block the next leader wrote); stop the loader, start the killed
 * validator again and wait until it caught up. Prints p50 and max over the rounds.
 */

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { TxeClient, clientCredentials, clientOptions, mintBatch } from '../engine/client.js';
import { repoRoot } from '../engine/paths.js';
import { readKeysFile } from '../engine/keys-file.js';
import { clusterClientTls, clusterKeysFile, clusterTargets } from '../engine/cluster/cluster-file.js';
import { Result } from '../engine/core/result.js';
import { clusterStatus, type ValidatorStatusJson } from '../cli/cluster.js';

const BATCH_TXS = 100;
const POLL_MS = 20;
const ROUND_TIMEOUT_MS = 60_000;
const GRPC_UNAVAILABLE = 14;

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : fallback; };
const kills = Number(flag('--kills', '5'));
const jsonFile = flag('--json', '');
const clusterFile = flag('--cluster', path.join(repoRoot, 'infra', '.data', 'cluster', 'cluster.json'));
const keys = readKeysFile(clusterKeysFile(clusterFile));
const targets = clusterTargets(clusterFile).split(',');
const submitter = () => new TxeClient(targets[0], clientOptions(), clientCredentials(clusterClientTls(clusterFile, 'submitter')));
const operatorTls = clusterClientTls(clusterFile, 'operator');
const infra = (script: string, ...a: string[]) => execFileSync('bash', [path.join(repoRoot, 'infra', script), ...a], { stdio: ['ignore', 'ignore', 'inherit'] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const statuses = (of: string[]) => Promise.all(of.map((t) => clusterStatus(t, operatorTls).catch(() => null)));

async function waitAgreed(): Promise<ValidatorStatusJson[]> {
  const deadline = Date.now() + ROUND_TIMEOUT_MS;
  for (;;) {
    const s = await statuses(targets);
    if (s.every((v) => v && v.height === s[0]!.height && v.state_hash === s[0]!.state_hash && v.final_height === v.height) && s.some((v) => v!.role === 'leader')) return s as ValidatorStatusJson[];
    if (Date.now() > deadline) throw new Error(`the validators did not agree within ${ROUND_TIMEOUT_MS} ms: ${JSON.stringify(s)}`);
    await sleep(200);
  }
}

/** Sends mint batches, ack FINAL, one after another, until stopped; the issuer's nonces stay contiguous. */
function loader(target: string, startNonce: bigint) {
  const client = new TxeClient(target, clientOptions(), clientCredentials(clusterClientTls(clusterFile, 'submitter')));
  let nonce = startNonce;
  let running = true;
  const done = (async () => {
    while (running) {
      try {
        const r = await client.submitBatch(mintBatch(keys, nonce + 1n, BATCH_TXS, 'final'));
        if (r.results.every((c) => c === Result.committed || c === Result.bad_nonce)) nonce += BigInt(BATCH_TXS); // bad_nonce: a retry of a batch that landed
      } catch (error) {
        if ((error as { code?: number }).code !== GRPC_UNAVAILABLE) throw error;
        await sleep(POLL_MS);
      }
    }
  })();
  return { stop: async () => { running = false; await done; client.close(); return nonce; } };
}

async function round(startNonce: bigint): Promise<{ ms: number; nonce: bigint; from: number; to: number }> {
  const before = await waitAgreed();
  const leader = before.find((v) => v.role === 'leader')!;
  const survivors = targets.filter((_, i) => i + 1 !== leader.id);
  const load = loader(survivors[0], startNonce);
  await sleep(1_000);
  infra('cluster-kill.sh', String(leader.id));
  const killedAt = Date.now();
  const heightAtKill = Math.max(...(await statuses(survivors)).map((v) => v?.height ?? 0));
  let next: ValidatorStatusJson | null = null;
  while (next === null) {
    if (Date.now() - killedAt > ROUND_TIMEOUT_MS) throw new Error(`no block final within ${ROUND_TIMEOUT_MS} ms of the kill`);
    await sleep(POLL_MS);
    next = (await statuses(survivors)).find((v) => v !== null && v.final_height > heightAtKill) ?? null;
  }
  const ms = Date.now() - killedAt;
  const nonce = await load.stop();
  infra('cluster-start.sh', String(leader.id));
  const leaderNow = (await statuses(survivors)).find((v) => v?.role === 'leader');
  return { ms, nonce, from: leader.id, to: leaderNow?.id ?? 0 };
}

async function main(): Promise<void> {
  const first = submitter();
  let nonce = BigInt(String((await first.getAccount(keys.issuer.publicKey)).nonce));
  first.close();
  const rounds: Array<{ ms: number; from: number; to: number }> = [];
  for (let i = 0; i < kills; i++) {
    const r = await round(nonce);
    nonce = r.nonce;
    rounds.push({ ms: r.ms, from: r.from, to: r.to });
    console.error(`kill ${i + 1}: leader ${r.from} killed; first block after the kill final in ${r.ms} ms (validator ${r.to} leads)`);
  }
  const sorted = rounds.map((r) => r.ms).sort((a, b) => a - b);
  const report = { kills, failover_ms: { p50: sorted[Math.floor((sorted.length - 1) / 2)], max: sorted[sorted.length - 1], all: rounds.map((r) => r.ms) }, rounds, poll_ms: POLL_MS, batch_txs: BATCH_TXS };
  console.log(JSON.stringify(report));
  if (jsonFile) writeFileSync(jsonFile, `${JSON.stringify(report, null, 2)}\n`);
}

main().then(() => process.exit(0), (error: Error) => { console.error(`cluster-failover: ${error.message}`); process.exit(1); });
