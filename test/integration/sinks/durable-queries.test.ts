// Proves that history older than the in-memory window stays readable through the API, from real
// PostgreSQL: GetTransaction by seq and by sender and nonce, and StreamCommits from seq 1, which
// catches up from the database and then goes on live from memory without a gap or a repeat; the
// same after a restart (when memory holds nothing yet); and without the sender-nonce index a
// lookup by sender and nonce says so rather than scanning.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../engine/engine.js';
import { TxeClient } from '../../../engine/client.js';
import { u64ToNumber, type U64 } from '../../../engine/services/grpc/codec.js';
import { readBody } from '../../../engine/core/record.js';
import { issuer, mint, signedBatch, testConfig, user } from '../../support/fixtures.js';
import { dropDatabase, freshDatabase } from '../../support/servers.js';
import { withTimeout } from '../../support/async.js';
import type { EngineConfig } from '../../../engine/config.js';

const n = (v: unknown) => u64ToNumber(v as U64);
const BLOCKS = 40;
const PER_BLOCK = 10; // 400 transactions against a window of 64
const recipient = user('durable-reader').publicKey;
let url: string;

beforeAll(async () => { url = await freshDatabase('durable_queries'); });
afterAll(async () => { await dropDatabase(url); });

async function start(overrides: Partial<EngineConfig> = {}, database = url) {
  const engine = await Engine.start(testConfig({ sinks: ['pg'], pgUrl: database, ack: 'durable', historyEntriesMax: 64, historyBlocksMax: 8, pgSenderNonceIndex: true, ...overrides }));
  const client = new TxeClient(engine.address);
  return { engine, client, stop: async () => { client.close(); await engine.stop(); } };
}

/** Mints PER_BLOCK a block from issuer nonce `from`: amount = nonce, so each body names its nonce. */
async function mintBlocks(client: TxeClient, blocks: number, from: number): Promise<void> {
  for (let b = 0; b < blocks; b++) {
    const records = Array.from({ length: PER_BLOCK }, (_, i) => mint(recipient, BigInt(from + b * PER_BLOCK + i), BigInt(from + b * PER_BLOCK + i)));
    await client.submitBatch({ ...signedBatch(records), ack: 'durable' });
  }
}

function collect(call: grpc.ClientReadableStream<Record<string, unknown>>, count: number): Promise<Record<string, unknown>[]> {
  const blocks: Record<string, unknown>[] = [];
  return withTimeout(new Promise((resolve, reject) => {
    call.on('data', (b: Record<string, unknown>) => { blocks.push(b); if (blocks.length === count) resolve(blocks); });
    call.on('error', (e: grpc.ServiceError) => (e.code === grpc.status.CANCELLED ? undefined : reject(e)));
  }), 30_000, `${count} blocks`);
}

function expectChain(blocks: Record<string, unknown>[], fromNumber: number): void {
  blocks.forEach((b, i) => {
    expect(n(b.number)).toBe(fromNumber + i);
    expect(n(b.firstSeq)).toBe((fromNumber + i - 1) * PER_BLOCK + 1);
    const bodies = b.entryBodies as Uint8Array;
    expect(bodies.length).toBe(PER_BLOCK * 128);
    expect(readBody(Buffer.from(bodies.subarray(0, 128))).amount).toBe(BigInt((fromNumber + i - 1) * PER_BLOCK + 1));
    if (i > 0) expect(Buffer.from(b.prevHash as Uint8Array).equals(Buffer.from(blocks[i - 1].hash as Uint8Array))).toBe(true);
  });
}

describe('history older than the in-memory window', () => {
  it('answers GetTransaction by seq and by sender and nonce from PostgreSQL, and NOT_FOUND for what does not exist', async () => {
    const { client, engine, stop } = await start();
    try {
      await mintBlocks(client, BLOCKS, 1);
      expect(engine.pipeline.history.oldestSeq).toBeGreaterThan(1); // seq 1 left memory
      const bySeq = await client.getTransaction({ seq: 1 });
      expect(n(bySeq.seq)).toBe(1);
      expect(n(bySeq.block)).toBe(1);
      expect(readBody(Buffer.from(bySeq.body as Uint8Array))).toMatchObject({ nonce: 1n, amount: 1n });
      const byNonce = await client.getTransaction({ sender: issuer.publicKey, nonce: 7n });
      expect(n(byNonce.seq)).toBe(7);
      expect(Buffer.from(byNonce.recipient as Uint8Array).equals(recipient)).toBe(true);
      await expect(client.getTransaction({ seq: BLOCKS * PER_BLOCK + 1 })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
      await expect(client.getTransaction({ sender: user('nobody').publicKey, nonce: 1n })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
    } finally {
      await stop();
    }
  });

  it('streams commits from seq 1 out of PostgreSQL, then from memory, then live, each block once and in order', async () => {
    const { client, stop } = await start();
    try {
      const call = client.streamCommits(1);
      const first = await collect(call, BLOCKS);
      expectChain(first, 1);
      const live = collect(call, 1); // a second listener: the next block to arrive
      await mintBlocks(client, 1, BLOCKS * PER_BLOCK + 1);
      const [next] = await live;
      expect(n(next.number)).toBe(BLOCKS + 1);
      expect(Buffer.from(next.prevHash as Uint8Array).equals(Buffer.from(first[BLOCKS - 1].hash as Uint8Array))).toBe(true);
      call.cancel();
    } finally {
      await stop();
    }
  });

  it('after a restart, with nothing in memory yet, reads the same history back', async () => {
    const { client, stop } = await start();
    try {
      expect(n((await client.getTransaction({ seq: 1 })).block)).toBe(1);
      expect(n((await client.getTransaction({ sender: issuer.publicKey, nonce: 3n })).seq)).toBe(3);
      const call = client.streamCommits(25);
      const blocks = await collect(call, BLOCKS + 1 - 2);
      expectChain(blocks, 3); // seq 25 is in block 3
      call.cancel();
    } finally {
      await stop();
    }
  });

  it('without pgSenderNonceIndex, a lookup by sender and nonce older than memory is FAILED_PRECONDITION', async () => {
    const other = await freshDatabase('durable_queries_noindex');
    const { client, stop } = await start({ pgSenderNonceIndex: false }, other);
    try {
      await mintBlocks(client, 10, 1);
      await expect(client.getTransaction({ sender: issuer.publicKey, nonce: 1n })).rejects.toMatchObject({ code: grpc.status.FAILED_PRECONDITION });
      expect(n((await client.getTransaction({ seq: 1 })).seq)).toBe(1); // by seq still works
    } finally {
      await stop();
      await dropDatabase(other);
    }
  });
});
