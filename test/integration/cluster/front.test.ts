// A validator's front (engine/cluster/front.ts) in front of a real engine, without the rest of a
// cluster, with a SubmitStream client that goes on sending but stops taking its answers (its
// stream paused). What this proves: the front forwards a bounded number of that client's batches
// (HTTP/2 flow control, and the front's own pause when its answers back up), it serves another
// client of the same front meanwhile, and once the client takes its answers again every batch it
// sent gets exactly one answer and the history holds exactly the transactions answered committed.
// Measured while writing it: 10 batches taken with the front's pause, 16 without it (flow control
// bounds this case first), so this test does not single out the pause.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Engine } from '../../../engine/engine.js';
import { TxeClient, fromWireResponse, toWireRequest } from '../../../engine/client.js';
import { ValidatorFront } from '../../../engine/cluster/front.js';
import { KeySet } from '../../../engine/core/checks.js';
import { Result } from '../../../engine/core/result.js';
import { TransportSecurity } from '../../../engine/services/security/security.js';
import type { SubmitBatchResponseWire } from '../../../engine/services/grpc/codec.js';
import { issuer, mint, signedBatch, signer, testConfig, user } from '../../support/fixtures.js';
import { until, withTimeout } from '../../support/async.js';

const BATCHES = 300;
const TXS = 2048; // ~2 KB of results an answer
const PLATEAU_MS = 1_000;

let engine: Engine;
let front: ValidatorFront;
let security: TransportSecurity;
const clients: TxeClient[] = [];
const connect = (address: string) => { const c = new TxeClient(address); clients.push(c); return c; };
const issuerNonce = async (c: TxeClient) => BigInt(String((await c.getAccount(issuer.publicKey)).nonce));

beforeAll(async () => {
  engine = await Engine.start(testConfig());
  const config = testConfig();
  security = new TransportSecurity(config);
  const trusted = new KeySet([signer.publicKey]);
  front = await ValidatorFront.start('127.0.0.1', 0, {
    leaderEngine: () => engine.address,
    trustedSigners: () => trusted,
    waitFinal: () => Promise.reject(new Error('this test sends no ack FINAL batch')),
    attestation: () => 'this test hands the front no attestation',
    status: () => ({}),
    forwardCredentials: () => grpc.credentials.createInsecure(),
    observe: () => undefined,
  }, config, security);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await front.close();
  security.close();
  await engine.stop();
});

describe('a validator front with a client that stops taking its answers', () => {
  it('forwards a bounded part of that client\'s batches, serves the others, and answers every batch once when it reads again', async () => {
    const frontAddress = `127.0.0.1:${front.port}`;
    const observer = connect(frontAddress);
    const stalled = connect(frontAddress);
    const stream = stalled.submitStream();
    const answers = new Map<number, ReturnType<typeof fromWireResponse>>();
    stream.on('data', (w: SubmitBatchResponseWire) => {
      const r = fromWireResponse(w);
      expect(answers.has(r.batchId)).toBe(false); // one answer a batch
      answers.set(r.batchId, r);
    });
    const failed = new Promise<never>((_, reject) => stream.on('error', reject));
    // One batch answered first: the stream is open through the proxy before it stalls.
    const opening = await issuerNonce(observer) + 1n;
    stream.write(toWireRequest({ ...signedBatch([mint(user('opening').publicKey, opening, 1n)]), batchId: 0, ack: 'ordered' }));
    await withTimeout(until('the opening batch answered', () => (answers.has(0) ? true : null)), 5_000, 'the opening batch');
    stream.pause(); // takes no more answers
    const first = await issuerNonce(observer);
    // All of them at once, as a client that ignores backpressure would; grpc-js keeps what the
    // front does not take in this client's memory, not the front's.
    const recipients = Array.from({ length: 64 }, (_, i) => user(`stalled-${i}`).publicKey);
    for (let b = 0; b < BATCHES; b++) {
      const records = Array.from({ length: TXS }, (_, i) => mint(recipients[i % 64], first + BigInt(b * TXS + i + 1), 1n));
      stream.write(toWireRequest({ ...signedBatch(records), batchId: b + 1, ack: 'ordered' }));
    }

    // The front takes batches until its answers back up, then stops: the history stops growing.
    let last = -1n;
    let steadySince = Date.now();
    const plateau = await until('the stalled stream stops being read', async () => {
      const now = await issuerNonce(observer);
      if (now !== last) { last = now; steadySince = Date.now(); return null; }
      return Date.now() - steadySince >= PLATEAU_MS ? now : null;
    }, 30_000);
    const taken = Number(plateau - first) / TXS;
    expect(taken).toBeGreaterThan(0);
    expect(taken).toBeLessThan(BATCHES / 2); // bounded, though the client sent them all

    // Another client of the same front is served meanwhile.
    const other = await observer.submitBatch({ ...signedBatch([mint(user('other').publicKey, plateau + 1n, 5n)]), ack: 'ordered' });
    expect(other.results[0]).toBe(Result.committed);

    // Reading again: every batch gets one answer, and the history holds exactly the committed ones.
    stream.resume();
    await Promise.race([failed, until('every batch answered', async () => (answers.size === BATCHES + 1 ? true : null), 60_000)]);
    stream.end();
    answers.delete(0);
    const committed = [...answers.values()].reduce((n, r) => n + r.results.filter((c) => c === Result.committed).length, 0);
    expect(BigInt(committed) + 1n).toBe((await issuerNonce(observer)) - first); // + the other client's mint
  }, 120_000);
});
