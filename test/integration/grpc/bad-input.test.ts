// Proves that every kind of bad input gets the right gRPC status or result code with a message that
// says what was wrong, that overload answers RESOURCE_EXHAUSTED at once, and that the engine keeps
// serving good clients afterwards. All over a real loopback socket.
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromWireResponse, toWireRequest, type TxeClient } from '../../../engine/client.js';
import type { SubmitBatchResponseWire } from '../../../engine/services/grpc/codec.js';
import { packBodies, signBatch } from '../../../engine/core/batch.js';
import { sign } from '../../../engine/core/keys.js';
import { startTestEngine as startOther } from '../../support/engine.js';
import { Result } from '../../../engine/core/result.js';
import { issuer, mint, perTxBatch, signedBatch, transfer, user } from '../../support/fixtures.js';
import { startTestEngine } from '../../support/engine.js';

const alice = user('alice');
const bob = user('bob');
const mallory = user('mallory');
let client: TxeClient;
let stop: () => Promise<void>;

// A small ring (256 slots) and batch limit (100) make the limits reachable in a test.
beforeAll(async () => ({ client, stop } = await startTestEngine({ ringSlotsMax: 256, batchTxsMax: 100, streamBatchesInFlightMax: 4 })));
afterAll(async () => stop());

const status = (code: grpc.status, details: RegExp) => expect.objectContaining({ code, details: expect.stringMatching(details) });

describe('bad input', () => {
  it('garbage bytes instead of protobuf → INVALID_ARGUMENT saying why', async () => {
    await expect(client.submitRawBytes(Buffer.from('this is not protobuf at all \xff\xff\xff\xff'))).rejects.toEqual(status(grpc.status.INVALID_ARGUMENT, /not a valid SubmitBatchRequest protobuf/));
  });

  it('missing auth mode, wrong record length, empty and oversized batches → INVALID_ARGUMENT', async () => {
    const txs = signedBatch([mint(alice.publicKey, 1n, 10n)]).txs;
    const noAuth = new Promise((resolve, reject) => client.raw.SubmitBatch({ txs, auth: 0 }, (e: Error | null, r: unknown) => (e ? reject(e) : resolve(r))));
    await expect(noAuth).rejects.toEqual(status(grpc.status.INVALID_ARGUMENT, /auth must be PER_TX \(1\) or BATCH_SIGNED \(2\), got 0/));
    await expect(client.submitBatch({ auth: 'per-tx', txs: Buffer.alloc(191) })).rejects.toEqual(status(grpc.status.INVALID_ARGUMENT, /191 bytes, not a multiple of the 192-byte per-tx record/));
    await expect(client.submitBatch({ auth: 'per-tx', txs: Buffer.alloc(0) })).rejects.toEqual(status(grpc.status.INVALID_ARGUMENT, /no transactions/));
    const big = signedBatch(Array.from({ length: 101 }, (_, i) => mint(alice.publicKey, BigInt(i + 1), 1n)));
    await expect(client.submitBatch(big)).rejects.toEqual(status(grpc.status.INVALID_ARGUMENT, /101 transactions, more than batchTxsMax 100/));
    await expect(client.submitBatch({ ...signedBatch([mint(alice.publicKey, 1n, 1n)]), signer: Buffer.alloc(31) })).rejects.toEqual(status(grpc.status.INVALID_ARGUMENT, /32-byte signer, got 31/));
    await expect(client.submitBatch({ auth: 'per-tx', txs: Buffer.alloc(192), signer: Buffer.alloc(32) })).rejects.toEqual(status(grpc.status.INVALID_ARGUMENT, /must not carry a batch signer/));
  });

  it('a message over the size limit → RESOURCE_EXHAUSTED from the transport', async () => {
    await expect(client.submitBatch({ auth: 'per-tx', txs: Buffer.alloc(192 * 200) })).rejects.toEqual(expect.objectContaining({ code: grpc.status.RESOURCE_EXHAUSTED }));
  });

  it('bad records get their own result codes while good ones in the same batch commit', async () => {
    const records = [mint(alice.publicKey, 1n, 100n), mint(bob.publicKey, 2n, 0n), mint(bob.publicKey, 2n, 5n), { ...mint(bob.publicKey, 3n, 5n), sender: mallory.publicKey }, mint(Buffer.alloc(32), 2n, 5n)];
    const batch = signedBatch(records);
    batch.txs[2 * 128] = 2; // third record: unknown version
    batch.signature = signBatch(batch.txs, user('x').privateKey); // re-sign below with the trusted key
    const resigned = { ...batch, signature: signBatch(batch.txs, (await import('../../support/fixtures.js')).signer.privateKey) };
    const r = await client.submitBatch(resigned);
    expect(Array.from(r.results)).toEqual([Result.committed, Result.invalid_amount, Result.malformed, Result.not_issuer, Result.invalid_recipient]);
    const reserved = packBodies([mint(bob.publicKey, 2n, 5n)]);
    reserved[4] = 1;
    const r2 = await client.submitBatch({ ...signedBatch([]), txs: reserved, signature: signBatch(reserved, (await import('../../support/fixtures.js')).signer.privateKey) });
    expect(Array.from(r2.results)).toEqual([Result.malformed]);
  });

  it('an untrusted batch signer → unauthorized_signer; a bad batch signature → bad_signature for every record', async () => {
    const untrusted = signedBatch([mint(bob.publicKey, 2n, 5n), mint(bob.publicKey, 3n, 5n)], mallory);
    const r = await client.submitBatch(untrusted);
    expect(Array.from(r.results)).toEqual([Result.unauthorized_signer, Result.unauthorized_signer]);
    const forged = { ...signedBatch([mint(bob.publicKey, 2n, 5n)]) };
    forged.txs = Buffer.from(forged.txs);
    forged.txs[80] ^= 1; // amount changed after signing
    const r2 = await client.submitBatch(forged);
    expect(Array.from(r2.results)).toEqual([Result.bad_signature]);
  });

  it('per-tx: a tampered signature or a record signed by someone else → bad_signature; a zero recipient → invalid_recipient', async () => {
    const batch = perTxBatch([transfer(alice, bob.publicKey, 1n, 1n), transfer(alice, bob.publicKey, 1n, 2n)], [alice]);
    batch.txs[128 + 5] ^= 0xff;
    const stolen = perTxBatch([transfer(alice, bob.publicKey, 1n, 2n)], [alice]);
    sign(stolen.txs.subarray(0, 128), mallory.privateKey).copy(stolen.txs, 128); // alice's record, mallory's signature
    const r = await client.submitBatch({ auth: 'per-tx', txs: Buffer.concat([batch.txs.subarray(0, 192), stolen.txs]) });
    expect(Array.from(r.results)).toEqual([Result.bad_signature, Result.bad_signature]);
    const ok = await client.submitBatch(perTxBatch([transfer(alice, bob.publicKey, 1n, 2n)], [alice]));
    expect(Array.from(ok.results)).toEqual([Result.committed]);
    const toNobody = await client.submitBatch(perTxBatch([transfer(alice, Buffer.alloc(32), 2n, 2n)], [alice]));
    expect(Array.from(toNobody.results)).toEqual([Result.invalid_recipient]);
  });

  it('a full input ring answers RESOURCE_EXHAUSTED at once and admits again once it drains', async () => {
    const stream = client.submitStream();
    const responses: ReturnType<typeof fromWireResponse>[] = [];
    const got = new Promise<void>((resolve) => stream.on('data', (w: SubmitBatchResponseWire) => { responses.push(fromWireResponse(w)); if (responses.length === 3) resolve(); }));
    // Per-tx batches of 100 signed records: each takes milliseconds of Ed25519 verification, so
    // the first two still hold their slots when the third arrives (300 > 256 slots).
    const filler = user('fill');
    const fill = (id: number, nonceBase: number) => toWireRequest({ ...perTxBatch(Array.from({ length: 100 }, (_, i) => transfer(filler, bob.publicKey, BigInt(nonceBase + i), 1n)), [filler]), batchId: id });
    const batches = [fill(1, 1), fill(2, 101), fill(3, 201)];
    for (const b of batches) stream.write(b);
    await got;
    const closed = new Promise((resolve) => stream.on('status', resolve));
    stream.end();
    expect(await closed).toMatchObject({ code: grpc.status.OK });
    const third = responses.find((r) => r.batchId === 3)!;
    expect(third.statusCode).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(third.statusMessage).toMatch(/input ring has 56 of 256 slots free, batch needs 100/);
    const again = await client.submitBatch(perTxBatch([transfer(filler, bob.publicKey, 1n, 1n)], [filler]));
    expect(Array.from(again.results)).toEqual([Result.insufficient_funds]); // admitted and judged: the ring drained
  });

  it('a stream with too many batches in flight gets RESOURCE_EXHAUSTED for the extra ones, and bad requests on a stream do not close it', async () => {
    // Its own engine with one verify worker: a per-tx batch of 1024 signatures takes ~80 ms to
    // verify, so four written back to back are all in flight when the third and fourth arrive, even
    // on a loaded machine.
    const other = await startOther({ workers: 1, ringSlotsMax: 8192, batchTxsMax: 1024, streamBatchesInFlightMax: 2 });
    try {
      const stream = other.client.submitStream();
      const responses: ReturnType<typeof fromWireResponse>[] = [];
      const arrived: Array<() => void> = [];
      const got = (count: number) => new Promise<void>((resolve) => arrived.push(() => { if (responses.length >= count) resolve(); }));
      stream.on('data', (w: SubmitBatchResponseWire) => { responses.push(fromWireResponse(w)); for (const check of arrived) check(); });
      const firstFour = got(4);
      const slow = (id: number) => toWireRequest({ ...perTxBatch(Array.from({ length: 1024 }, (_, i) => transfer(alice, bob.publicKey, BigInt(i + 1), 1n)), [alice]), batchId: id });
      for (let id = 1; id <= 4; id++) stream.write(slow(id));
      await firstFour; // 3 and 4 are refused at once; 1 and 2 are answered once verified
      const lastTwo = got(6);
      stream.write({ batchId: 5, auth: 0, txs: Buffer.alloc(128) });
      stream.write(toWireRequest({ ...signedBatch([mint(bob.publicKey, 1n, 1n)]), batchId: 6 }));
      await lastTwo;
      const closed = new Promise((resolve) => stream.on('status', resolve));
      stream.end();
      expect(await closed).toMatchObject({ code: grpc.status.OK });
      const byId = new Map(responses.map((r) => [r.batchId, r]));
      expect([1, 2, 3, 4].map((id) => byId.get(id)!.statusCode)).toEqual([0, 0, grpc.status.RESOURCE_EXHAUSTED, grpc.status.RESOURCE_EXHAUSTED]);
      expect(byId.get(3)!.statusMessage).toMatch(/2 batches in flight \(max 2\)/);
      expect(byId.get(5)).toMatchObject({ statusCode: grpc.status.INVALID_ARGUMENT, statusMessage: expect.stringMatching(/auth must be/) });
      expect(byId.get(6)).toMatchObject({ statusCode: 0, accepted: 1 });
    } finally {
      await other.stop();
    }
  });

  it('queries: bad keys → INVALID_ARGUMENT or NOT_FOUND as documented; an unknown account is exists=false, an issuer exists from the start', async () => {
    await expect(client.getAccount(Buffer.alloc(31))).rejects.toEqual(status(grpc.status.INVALID_ARGUMENT, /account must be 32 bytes, got 31/));
    await expect(client.getTransaction({ seq: 0 })).rejects.toEqual(status(grpc.status.INVALID_ARGUMENT, /seq must be in \[1, 2\^53\)/));
    await expect(client.getTransaction({ seq: 1_000_000 })).rejects.toEqual(status(grpc.status.NOT_FOUND, /no transaction has seq 1000000 yet/));
    await expect(client.getTransaction({ sender: Buffer.alloc(31), nonce: 1n })).rejects.toEqual(status(grpc.status.INVALID_ARGUMENT, /sender must be 32 bytes/));
    await expect(client.getTransaction({ sender: user('nobody').publicKey, nonce: 1n })).rejects.toEqual(status(grpc.status.NOT_FOUND, /no accepted transaction from/));
    expect(await client.getAccount(user('nobody').publicKey)).toMatchObject({ exists: false });
    const issuerAccount = await client.getAccount(issuer.publicKey);
    expect([issuerAccount.exists, String(issuerAccount.balance)]).toEqual([true, '0']); // it mints, it is never credited
  });

  it('after all of that, a good client is served normally', async () => {
    const issuerNonce = BigInt(String((await client.getAccount(issuer.publicKey)).nonce));
    const fresh = user('fresh');
    const funded = await client.submitBatch(signedBatch([mint(fresh.publicKey, issuerNonce + 1n, 10n)]));
    expect(Array.from(funded.results)).toEqual([Result.committed]);
    const r = await client.submitBatch(perTxBatch([transfer(fresh, bob.publicKey, 1n, 4n)], [fresh]));
    expect(Array.from(r.results)).toEqual([Result.committed]);
    expect(String((await client.getAccount(fresh.publicKey)).balance)).toBe('6');
  });
});
