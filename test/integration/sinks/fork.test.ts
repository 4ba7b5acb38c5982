// Proves that two engines cannot fork one history (issue 11). Engine A writes under durable load
// with its PostgreSQL traffic through a proxy; the proxy is cut (a network partition: A's sessions,
// and with them its writer lock, are gone) while A still reaches Kafka. Engine B starts on the same
// database and topic, takes the next writer epoch, fences A's Kafka producer, adopts whatever A had
// published, and goes on under load. Then the partition heals: A finds its epoch taken, stops
// writing, answers UNAVAILABLE and exits 3 without a block more in either store. Both stores hold
// one history: every block once, the same hashes, the chain unbroken, epochs never going down,
// the issuer's nonces contiguous and each once; and a restart of either engine on it succeeds.
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TxeClient } from '../../../engine/client.js';
import { Result } from '../../../engine/core/result.js';
import { issuer, mint, signedBatch } from '../../support/fixtures.js';
import { dropDatabase, freshDatabase } from '../../support/servers.js';
import { deleteTopic, readKafkaRecords, serveDurable, type ServeProcess } from '../../support/durable.js';
import { tcpProxy, type TcpProxy } from '../../support/tcp-proxy.js';
import { until } from '../../support/async.js';
import pg from 'pg';

const BATCH = 50;
const FENCED_EXIT_CODE = 3;
let url: string;
let proxiedUrl: string;
let proxy: TcpProxy;
const topic = `txe.test.fork.${crypto.randomBytes(4).toString('hex')}`;

beforeAll(async () => {
  url = await freshDatabase('fork');
  const target = new URL(url);
  proxy = await tcpProxy(target.hostname, Number(target.port));
  const through = new URL(url);
  through.port = String(proxy.port);
  proxiedUrl = through.toString();
});
// Every engine this file starts; one still running when it ends (a failed test) is killed, so
// it cannot go on writing into later tests' servers.
const started: ServeProcess[] = [];
const serve = async (via: string): Promise<ServeProcess> => {
  const engine = await serveDurable(via, topic);
  started.push(engine);
  return engine;
};

afterAll(async () => {
  for (const e of started) if (e.child.exitCode === null && e.child.signalCode === null) e.child.kill('SIGKILL');
  await proxy.close();
  await dropDatabase(url);
  await deleteTopic(topic);
});

/** Mint batches with the issuer's next nonces, one at a time, ack=durable, until stopped or refused. */
function loader(client: TxeClient, firstNonce: bigint) {
  const acked: bigint[] = []; // the first nonce of each batch acknowledged durable
  let running = true;
  let refusal = '';
  const done = (async () => {
    for (let nonce = firstNonce; running; nonce += BigInt(BATCH)) {
      const records = Array.from({ length: BATCH }, (_, i) => mint(crypto.randomBytes(32), nonce + BigInt(i), 1n));
      try {
        const r = await client.submitBatch({ ...signedBatch(records), ack: 'durable' });
        expect(r.results.every((c) => c === Result.committed)).toBe(true);
        acked.push(nonce);
      } catch (error) {
        refusal = String((error as { details?: string }).details ?? error);
        return;
      }
    }
  })();
  return { acked, get refusal() { return refusal; }, stop: async () => { running = false; await done; } };
}

async function issuerNonce(client: TxeClient): Promise<bigint> {
  return BigInt(String((await client.getAccount(issuer.publicKey)).nonce));
}

async function sinkSessions(): Promise<number> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const r = await client.query("select count(*)::int as n from pg_stat_activity where datname = current_database() and application_name = 'txe-sink'");
    return r.rows[0].n as number;
  } finally {
    await client.end();
  }
}

interface Block { number: number; hash: Buffer; prevHash: Buffer; epoch: number }
async function pgBlocks(): Promise<{ blocks: Block[]; nonces: bigint[] }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const blocks = await client.query('select number, hash, prev_hash, epoch from txe_blocks order by number');
    const txs = await client.query("select nonce::text from txe_transaction_fields where sender = $1 order by seq", [issuer.publicKey]);
    return {
      blocks: blocks.rows.map((b) => ({ number: Number(b.number), hash: b.hash, prevHash: b.prev_hash, epoch: Number(b.epoch) })),
      nonces: txs.rows.map((t) => BigInt(t.nonce)),
    };
  } finally {
    await client.end();
  }
}

describe('two engines on one history', () => {
  it('the deposed engine stops writing both stores; the history stays one, and either engine restarts on it', async () => {
    const a = await serve(proxiedUrl);
    const clientA = new TxeClient(a.address);
    const loadA = loader(clientA, 1n);
    await until('A acknowledges 10 batches', () => (loadA.acked.length >= 10 ? true : null), 30_000);

    proxy.cut(); // A loses PostgreSQL (its sessions end, so does its writer lock); Kafka it still reaches
    await until('A\'s sink session gone', async () => ((await sinkSessions()) === 0 ? true : null), 10_000);
    const loadAStopped = loadA.stop(); // its batch in flight waits: A cannot make it durable now

    const b = await serve(url);
    const clientB = new TxeClient(b.address);
    const bStart = (await issuerNonce(clientB)) + 1n; // includes what A had published to Kafka only
    expect(bStart).toBeGreaterThan(BigInt(loadA.acked.length * BATCH));
    const loadB = loader(clientB, bStart);
    await until('B acknowledges 10 batches', () => (loadB.acked.length >= 10 ? true : null), 30_000);

    // A cannot write, even before it learns why: Kafka fenced its producer when B opened.
    const probe = await clientA.submitBatch(signedBatch([mint(crypto.randomBytes(32), 1n, 1n)])).then(() => 'admitted', (e: { details?: string }) => String(e.details));
    expect(probe).toMatch(/durable storage is failing|fenced/);

    proxy.restore(); // the partition heals: A reconnects, finds epoch 2 in txe_writer, and stops
    const aExit = await Promise.race([a.exited, new Promise<string>((r) => setTimeout(() => r('still running after 30 s'), 30_000))]);
    expect(aExit).toBe(FENCED_EXIT_CODE);
    await loadAStopped; // its last batch was answered (UNAVAILABLE: fenced) or cut off with A
    clientA.close();

    const ackedB = loadB.acked.length;
    await until('B acknowledges 5 more', () => (loadB.acked.length >= ackedB + 5 ? true : null), 30_000); // B goes on after A is gone
    await loadB.stop();
    clientB.close();
    expect(await b.stop()).toBe(0);

    const { blocks, nonces } = await pgBlocks();
    const kafka = (await readKafkaRecords(topic)).map((r) => r.record);
    expect(blocks.map((x) => x.number)).toEqual(blocks.map((_, i) => i + 1));
    expect(kafka.map((x) => x.number)).toEqual(blocks.map((x) => x.number)); // each block once, in order
    blocks.forEach((block, i) => {
      expect(kafka[i].hash.equals(block.hash)).toBe(true);
      expect(kafka[i].epoch).toBe(block.epoch);
      if (i > 0) {
        expect(block.prevHash.equals(blocks[i - 1].hash)).toBe(true);
        expect(block.epoch).toBeGreaterThanOrEqual(blocks[i - 1].epoch);
      }
    });
    expect(new Set(blocks.map((x) => x.epoch))).toEqual(new Set([1, 2]));
    expect(nonces).toEqual(nonces.map((_, i) => BigInt(i + 1))); // none twice, none missing
    for (const first of [...loadA.acked, ...loadB.acked]) expect(nonces[Number(first) - 1]).toBe(first); // every acked batch is in

    for (const via of [proxiedUrl, url]) { // A's configuration, then B's
      const again = await serve(via);
      const client = new TxeClient(again.address);
      expect(await issuerNonce(client)).toBe(BigInt(nonces.length));
      client.close();
      expect(await again.stop()).toBe(0);
    }
    const writer = new pg.Client({ connectionString: url });
    await writer.connect();
    expect(Number((await writer.query('select epoch from txe_writer')).rows[0].epoch)).toBe(4); // each restart took the next epoch
    await writer.end();
  }, 180_000);
});
