// Proves the durable path end to end with real PostgreSQL, real Kafka and a real `txe serve`:
//   1. under load with ack=durable, PostgreSQL and Kafka hold the same blocks in the same order
//      with the same hashes, and the hash chain is unbroken;
//   2. kill -9 in the middle of that load, restart on the same stores: every batch that was
//      acknowledged as durable is in PostgreSQL and in Kafka exactly once, balances equal a replay
//      of the log, the chain is unbroken, and the engine carries on from the next seq.
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TxeClient, fromWireResponse, toWireRequest } from '../../../engine/client.js';
import type { SubmitBatchResponseWire } from '../../../engine/services/grpc/codec.js';
import { Result } from '../../../engine/core/result.js';
import { issuer, mint, signedBatch } from '../../support/fixtures.js';
import { dropDatabase, freshDatabase } from '../../support/servers.js';
import { deleteTopic, readKafkaBlocks, readPgHistory, serveDurable } from '../../support/durable.js';
import { until } from '../../support/async.js';

const BATCH = 200;
let url: string;
const topic = `txe.test.crash.${crypto.randomBytes(4).toString('hex')}`;

beforeAll(async () => { url = await freshDatabase('crash'); });
afterAll(async () => { await dropDatabase(url); await deleteTopic(topic); });

/** Mints BATCH new accounts per batch, issuer nonces in order, on one stream, many batches in flight. */
function mintBatch(b: number) {
  const recipients = Array.from({ length: BATCH }, (_, i) => crypto.createHash('sha256').update(`crash-${b}-${i}`).digest());
  return { ...signedBatch(recipients.map((r, i) => mint(r, BigInt(b * BATCH + i + 1), BigInt(1000 + i)))), recipients };
}

describe('durable history across kill -9', () => {
  it('keeps every acknowledged batch exactly once in PostgreSQL and Kafka, and recovers state', async () => {
    const first = await serveDurable(url, topic);
    const client = new TxeClient(first.address);
    const stream = client.submitStream();
    const acked = new Set<number>();
    stream.on('data', (w: SubmitBatchResponseWire) => {
      const r = fromWireResponse(w);
      if (r.statusCode === 0 && r.results.every((c) => c === Result.committed)) acked.add(r.batchId);
    });
    stream.on('error', () => undefined); // the process is killed under it
    let sent = 0;
    const sender = setInterval(() => { // ~2 ms a batch, up to 16 unanswered at once
      if (sent - acked.size < 16) { stream.write(toWireRequest({ ...mintBatch(sent), batchId: sent, ack: 'durable' })); sent++; }
    }, 2);
    await until('40 batches acknowledged as durable', () => (acked.size >= 40 ? true : null), 60_000);
    first.child.kill('SIGKILL');
    clearInterval(sender);
    await first.exited;
    client.close();
    const ackedNow = [...acked];
    expect(ackedNow.length).toBeGreaterThanOrEqual(40);

    const second = await serveDurable(url, topic);
    const client2 = new TxeClient(second.address);
    try {
      const history = await readPgHistory(url);
      const kafka = await readKafkaBlocks(topic);
      // Same blocks, same order, same hashes, in both stores; numbers contiguous; chain unbroken.
      expect(kafka.map((b) => b.number)).toEqual(history.blocks.map((b) => b.number));
      expect(history.blocks.map((b) => b.number)).toEqual(history.blocks.map((_, i) => i + 1));
      history.blocks.forEach((b, i) => {
        expect(kafka[i].hash.equals(b.hash)).toBe(true);
        if (i > 0) expect(b.prevHash.equals(history.blocks[i - 1].hash)).toBe(true);
      });
      // Every acknowledged batch is there, each transaction exactly once.
      const keys = new Map<string, number>();
      for (const t of history.txs) keys.set(`${t.sender}:${t.nonce}`, (keys.get(`${t.sender}:${t.nonce}`) ?? 0) + 1);
      expect([...keys.values()].every((n) => n === 1)).toBe(true);
      for (const b of ackedNow) {
        for (let i = 0; i < BATCH; i++) expect(keys.get(`${issuer.publicKey.toString('hex')}:${b * BATCH + i + 1}`), `batch ${b} tx ${i}`).toBe(1);
      }
      expect(history.txs.map((t) => t.seq)).toEqual(history.txs.map((_, i) => i + 1));
      // Balances equal a replay of the log: each minted account holds exactly its mints.
      const expected = new Map<string, bigint>();
      for (const t of history.txs) expected.set(t.recipient, (expected.get(t.recipient) ?? 0n) + t.amount);
      for (const [account, amount] of [...expected].slice(0, 50)) {
        expect(BigInt(String((await client2.getAccount(Buffer.from(account, 'hex'))).balance))).toBe(amount);
      }
      // The engine goes on from the recovered state: the issuer's next nonce, the next seq.
      const issuerNonce = BigInt(String((await client2.getAccount(issuer.publicKey)).nonce));
      expect(issuerNonce).toBe(BigInt(history.txs.length));
      const next = await client2.submitBatch({ ...signedBatch([mint(issuer.publicKey, issuerNonce + 1n, 5n)]), ack: 'durable' });
      expect(next).toMatchObject({ firstSeq: history.txs.length + 1, block: history.blocks.length + 1, accepted: 1 });
      const replayed = await client2.submitBatch(signedBatch([mint(issuer.publicKey, 1n, 5n)]));
      expect(Array.from(replayed.results)).toEqual([Result.bad_nonce]);
    } finally {
      client2.close();
      second.child.kill('SIGTERM');
      expect(await second.exited).toBe(0);
    }
  });
});
