// Proves that an outage of PostgreSQL, then of Kafka, in the middle of a durable load loses
// nothing and duplicates nothing: while a store is down, new batches are answered UNAVAILABLE with
// a message that says so, the engine keeps running, and once the store is back it resumes; every
// batch acknowledged as durable is in both stores exactly once and the chain is unbroken. The
// real servers are stopped and started with the project's infra/ scripts.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TxeClient } from '../../../engine/client.js';
import { repoRoot } from '../../../engine/paths.js';
import { Result } from '../../../engine/core/result.js';
import { issuer, mint, signedBatch, user } from '../../support/fixtures.js';

const untrusted = user('outage-probe');
import { dropDatabase, freshDatabase } from '../../support/servers.js';
import { deleteTopic, readKafkaBlocks, readPgHistory, serveDurable, type ServeProcess } from '../../support/durable.js';

const BATCH = 100;
let url: string;
const topic = `txe.test.outage.${crypto.randomBytes(4).toString('hex')}`;
const infra = (script: string) => execFileSync('bash', [path.join(repoRoot, 'infra', script)], { stdio: 'ignore', timeout: 120_000 });

beforeAll(async () => { url = await freshDatabase('outage'); });
afterAll(async () => {
  infra('pg-start.sh');
  infra('kafka-start.sh');
  await dropDatabase(url);
  await deleteTopic(topic);
});

/**
 * Sends mint batches one at a time with the issuer's next nonces, each waiting for ack=durable: a
 * batch admitted just before an outage waits it out and is answered once the store is back.
 */
function loader(client: TxeClient) {
  const acked: number[] = [];
  let running = true;
  let next = 0;
  const done = (async () => {
    while (running) {
      const records = Array.from({ length: BATCH }, (_, i) => mint(crypto.randomBytes(32), BigInt(next * BATCH + i + 1), 1n));
      const r = await client.submitBatch({ ...signedBatch(records), ack: 'durable' });
      expect(r.results.every((c) => c === Result.committed)).toBe(true);
      acked.push(next++);
    }
  })();
  return { acked, stop: async () => { running = false; await done; } };
}

/**
 * Whether the engine admits batches now. A batch signed by an untrusted key is answered at once
 * (unauthorized_signer, no block) when the engine admits, and UNAVAILABLE while a store is down.
 */
async function probe(client: TxeClient): Promise<string> {
  try {
    const r = await client.submitBatch(signedBatch([mint(crypto.randomBytes(32), 1n, 1n)], untrusted));
    return r.results[0] === Result.unauthorized_signer ? 'admitting' : `unexpected result ${r.results[0]}`;
  } catch (error) {
    return String((error as { details?: string }).details);
  }
}

async function until(what: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await what())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('store outages under durable load', () => {
  it('refuses with UNAVAILABLE while a store is down, resumes after, and loses or repeats nothing', async () => {
    const engine: ServeProcess = await serveDurable(url, topic);
    const client = new TxeClient(engine.address);
    const load = loader(client);
    try {
      for (const [stop, start] of [['pg-stop.sh', 'pg-start.sh'], ['kafka-stop.sh', 'kafka-start.sh']]) {
        await until(() => load.acked.length >= 10, 30_000);
        infra(stop);
        let answer = '';
        await until(async () => /durable storage is failing/.test(answer = await probe(client)), 30_000);
        expect(answer).toMatch(/resubmit later/);
        const ackedWhileDown = load.acked.length;
        infra(start); // returns once the server answers
        const backAtMs = Date.now();
        await until(async () => (await probe(client)) === 'admitting', 60_000);
        // Issue 11's bounds are 2 s (PostgreSQL) and 5 s (Kafka) on a quiet machine; this checks the
        // behaviour with room for a loaded one: once the Kafka sink waited 30 s after every outage.
        const unavailableAfterMs = Date.now() - backAtMs;
        console.log(`${stop.replace('-stop.sh', '')}: UNAVAILABLE ended ${unavailableAfterMs} ms after the server was back`);
        expect(unavailableAfterMs).toBeLessThan(15_000);
        await until(() => load.acked.length >= ackedWhileDown + 10, 60_000);
      }
    } finally {
      await load.stop();
      client.close();
      engine.child.kill('SIGTERM');
    }
    expect(await engine.exited).toBe(0);
    const history = await readPgHistory(url);
    const kafka = await readKafkaBlocks(topic);
    expect(kafka.map((b) => b.number)).toEqual(history.blocks.map((_, i) => i + 1));
    history.blocks.forEach((b, i) => {
      expect(kafka[i].hash.equals(b.hash)).toBe(true);
      if (i > 0) expect(b.prevHash.equals(history.blocks[i - 1].hash)).toBe(true);
    });
    const nonces = history.txs.map((t) => BigInt(t.nonce));
    expect(nonces).toEqual(nonces.map((_, i) => BigInt(i + 1))); // issuer nonces contiguous: none lost, none twice
    const issuerHex = issuer.publicKey.toString('hex');
    expect(history.txs.every((t) => t.sender === issuerHex)).toBe(true);
    expect(history.txs.length).toBe(load.acked.length * BATCH); // the loader waited for each: all acked, none extra
  }, 240_000);
});
