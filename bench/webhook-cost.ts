/*
 * What an enabled webhook costs the durable path. For each variant, on a fresh database and topic:
 * start `txe serve --sinks pg,kafka`, optionally create a webhook to a local receiver (answers 204
 * at once), drive it with `txe bench --target` at max rate, and report TPS next to the events the
 * receiver got in the same seconds. Variants:
 *   none       no webhook: the router is paused
 *   filtered   a webhook for one account that the load never touches: every block is decoded
 *              and scanned, no event matches
 *   all        a webhook for every committed transaction: one event per transaction
 *
 *   node dist/bench/webhook-cost.js [duration_s=10] [runs=1]
 */

import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { startEngineProcess } from './engine-process.js';
import { createBenchStores } from './stores.js';
import { TxeClient } from '../engine/client.js';
import { generateKeysFile, writeKeysFile } from '../engine/keys-file.js';
import { generateKeypair } from '../engine/core/keys.js';
import { distFile } from '../engine/paths.js';

const VARIANTS = ['none', 'filtered', 'all'] as const;
const DRAIN_S = 10;

async function runVariant(variant: (typeof VARIANTS)[number], durationS: number): Promise<string> {
  const stores = await createBenchStores(['pg', 'kafka']);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'txe-whcost-'));
  const keys = path.join(dir, 'keys.json');
  writeKeysFile(keys, generateKeysFile());
  const config = path.join(dir, 'config.json'); // the receiver below is on loopback, refused unless allowed
  writeFileSync(config, JSON.stringify({ webhookTargetsAllowed: ['127.0.0.1/32'] }));
  let received = 0;
  const receiver = createServer((req, res) => { req.resume(); req.on('end', () => { received++; res.writeHead(204).end(); }); });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const engine = await startEngineProcess(['--keys', keys, '--sinks', 'pg,kafka', '--pg-url', stores.pgUrl!, '--kafka-brokers', stores.kafkaBrokers.join(','), '--kafka-topic', stores.kafkaTopic!, '--config', config]);
  try {
    if (variant !== 'none') {
      const client = new TxeClient(engine.address);
      const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
      await client.createWebhook({ url, eventTypes: [1], accounts: variant === 'filtered' ? [generateKeypair().publicKey] : [] });
      client.close();
    }
    const before = received;
    const started = Date.now();
    const out = await new Promise<string>((resolve, reject) => {
      const bench = spawn(process.execPath, [distFile('cli/main.js'), 'bench', '--target', engine.address, '--keys', keys, '--ack', 'durable', '--duration', String(durationS)], { stdio: ['ignore', 'pipe', 'inherit'] });
      let text = '';
      bench.stdout!.on('data', (d: Buffer) => { text += d.toString(); });
      bench.once('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`txe bench exited ${code}: ${text}`))));
    });
    const seconds = (Date.now() - started) / 1000;
    const during = received - before;
    await new Promise((r) => setTimeout(r, DRAIN_S * 1000)); // the queue drains with the machine to itself
    const after = received - before - during;
    const tps = /^tps ([\d,]+)/m.exec(out)?.[1] ?? '?';
    return `${variant.padEnd(9)} tps ${tps.padStart(9)}   webhook POSTs: ${during} during the run (${Math.round(during / seconds)}/s), ${after} in the ${DRAIN_S} s after it (${Math.round(after / DRAIN_S)}/s)`;
  } finally {
    await engine.stop();
    receiver.close();
    await stores.cleanup();
  }
}

async function main(): Promise<void> {
  const durationS = Number(process.argv[2] ?? 10);
  const runs = Number(process.argv[3] ?? 1);
  for (let run = 1; run <= runs; run++) {
    for (const variant of VARIANTS) console.log(`run ${run}: ${await runVariant(variant, durationS)}`);
  }
}

main().catch((error: Error) => {
  console.error(error.message);
  process.exit(1);
});
