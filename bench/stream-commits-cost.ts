/*
 * How fast StreamCommits sends history that is older than the engine's in-memory window, i.e. read
 * back from PostgreSQL (issue 11: at least 500k transactions a second from block 1 of a history of
 * millions, to a client that reads). Starts `txe serve --sinks pg` on a fresh database with a small
 * window, writes `txs` transactions (batches of 8190 mints, ack=durable), then streams from seq 1
 * to the head and reports transactions a second, with the engine's and PostgreSQL's CPU. Then it
 * restarts an engine on that history (in this process, snapshots off) and reports how fast
 * recovery replayed it.
 *
 *   npm run build && node --initial-old-space-size=128 dist/bench/stream-commits-cost.js [txs=2000000]
 */

import crypto from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { TxeClient, clientOptions } from '../engine/client.js';
import { generateKeysFile, writeKeysFile } from '../engine/keys-file.js';
import { packBodies, signBatch } from '../engine/core/batch.js';
import { KIND_MINT } from '../engine/core/record.js';
import { startEngineProcess } from './engine-process.js';
import { Engine } from '../engine/engine.js';
import { loadConfig } from '../engine/config.js';
import { createBenchStores } from './stores.js';
import { coresBetween, cpuSnapshot } from './cpu.js';

const TXS = Number(process.argv[2] ?? 2_000_000);
const BATCH = 8190;
const IN_FLIGHT = 8;

const stores = await createBenchStores(['pg']);
const dir = mkdtempSync(path.join(os.tmpdir(), 'txe-stream-cost-'));
const keys = generateKeysFile();
writeKeysFile(path.join(dir, 'keys.json'), keys);
// Snapshots off, so the restart below replays the whole history.
const NO_SNAPSHOTS = { snapshotEveryBlocks: 0, snapshotEveryTxs: 0, snapshotEveryMs: 0 };
writeFileSync(path.join(dir, 'txe.json'), JSON.stringify(NO_SNAPSHOTS));
const engine = await startEngineProcess(['--keys', path.join(dir, 'keys.json'), '--sinks', 'pg', '--pg-url', stores.pgUrl!, '--config', path.join(dir, 'txe.json')]);
const client = new TxeClient(engine.address, clientOptions(64 * 1024 * 1024));
try {
  const batches = Math.ceil(TXS / BATCH);
  let nonce = 0n;
  const batchOf = () => {
    const txs = packBodies(Array.from({ length: BATCH }, () => ({ kind: KIND_MINT, sender: keys.issuer.publicKey, recipient: crypto.randomBytes(32), nonce: ++nonce, amount: 1n, timestampMs: 0n })));
    return { auth: 'batch-signed' as const, txs, signer: keys.signer.publicKey, signature: signBatch(txs, keys.signer.privateKey), ack: 'durable' as const };
  };
  const writeStarted = Date.now();
  for (let b = 0; b < batches; b += IN_FLIGHT) {
    await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, batches - b) }, () => client.submitBatch(batchOf())));
  }
  console.log(`wrote ${batches * BATCH} transactions in ${((Date.now() - writeStarted) / 1000).toFixed(1)} s`);

  const head = Number(nonce);
  const cpuStart = cpuSnapshot(engine.child.pid ?? null, true);
  const started = process.hrtime.bigint();
  let entries = 0;
  let blocks = 0;
  await new Promise<void>((resolve, reject) => {
    const stream = client.streamCommits(1);
    stream.on('data', (block: { entryBodies: Buffer }) => {
      blocks++;
      entries += block.entryBodies.length / 128;
      if (entries >= head) { stream.cancel(); resolve(); }
    });
    stream.on('error', (e: { code?: number }) => (e.code === 1 ? resolve() : reject(e)));
  });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = coresBetween(cpuStart, cpuSnapshot(engine.child.pid ?? null, true));
  console.log(`streamed ${entries} transactions in ${blocks} blocks from seq 1 in ${seconds.toFixed(2)} s: ${Math.round(entries / seconds).toLocaleString('en-US')} transactions/s`);
  console.log(`cpu cores: ${JSON.stringify(cpu)}`);
  client.close();
  await engine.stop();
  const again = await Engine.start(loadConfig({ ...NO_SNAPSHOTS, sinks: ['pg'], pgUrl: stores.pgUrl!, grpcPort: 0, metricsPort: 0, issuers: [keys.issuer.publicKey.toString('hex')], trustedSigners: [keys.signer.publicKey.toString('hex')] }));
  const r = again.recovery!;
  console.log(`restart: replayed ${r.txsReplayed} transactions in ${r.blocksReplayed} blocks in ${r.ms} ms: ${Math.round(r.txsReplayed / (r.ms / 1000)).toLocaleString('en-US')} transactions/s`);
  await again.stop();
} finally {
  client.close();
  await engine.stop();
  await stores.cleanup();
  rmSync(dir, { recursive: true, force: true });
}
