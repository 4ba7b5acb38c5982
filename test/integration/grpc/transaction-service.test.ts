// Proves TransactionService end to end over a real loopback socket: both auth modes, many batches
// in flight on one SubmitStream matched by batch id, queries by seq and by sender+nonce, account
// state, StreamCommits replay then live blocks with a chained hash, health and reflection.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath as healthProto } from 'grpc-health-check';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fromWireResponse, toWireRequest, type TxeClient } from '../../../engine/client.js';
import { u64ToNumber, type SubmitBatchResponseWire, type U64 } from '../../../engine/services/grpc/codec.js';
import { Result } from '../../../engine/core/result.js';
import { mint, perTxBatch, signedBatch, transfer, user } from '../../support/fixtures.js';
import { startTestEngine } from '../../support/engine.js';
import { until } from '../../support/async.js';
import type { Engine } from '../../../engine/engine.js';

const alice = user('alice');
const bob = user('bob');
let engine: Engine;
let client: TxeClient;
let stop: () => Promise<void>;

beforeAll(async () => ({ engine, client, stop } = await startTestEngine()));
afterAll(async () => stop());

const n = (v: unknown) => u64ToNumber(v as U64);

describe('TransactionService over a socket', () => {
  it('commits a batch-signed mint and a per-tx transfer, with seqs, blocks and results', async () => {
    const m = await client.submitBatch({ ...signedBatch([mint(alice.publicKey, 1n, 1000n), mint(bob.publicKey, 2n, 10n)]), ack: 'ordered', batchId: 7 });
    expect(m).toMatchObject({ batchId: 7, firstSeq: 1, block: 1, accepted: 2, rejected: 0, statusCode: 0 });
    expect(Array.from(m.results)).toEqual([Result.committed, Result.committed]);
    const t = await client.submitBatch(perTxBatch([transfer(alice, bob.publicKey, 1n, 250n), transfer(alice, bob.publicKey, 2n, 5000n)], [alice]));
    expect(t).toMatchObject({ firstSeq: 3, block: 2, accepted: 1, rejected: 1 });
    expect(Array.from(t.results)).toEqual([Result.committed, Result.insufficient_funds]);
    const acct = await client.getAccount(bob.publicKey);
    expect(acct.exists).toBe(true);
    expect(n(acct.balance)).toBe(260);
    const a = await client.getAccount(alice.publicKey);
    expect([n(a.balance), n(a.nonce), n(a.held)]).toEqual([750, 1, 0]);
    const nobody = await client.getAccount(user('nobody').publicKey);
    expect(nobody.exists).toBe(false);
  });

  it('finds a transaction by seq and by sender and nonce', async () => {
    const bySeq = await client.getTransaction({ seq: 3 });
    expect([n(bySeq.seq), n(bySeq.block), n(bySeq.amount), n(bySeq.nonce)]).toEqual([3, 2, 250, 1]);
    expect(Buffer.from(bySeq.sender as Uint8Array).equals(alice.publicKey)).toBe(true);
    const byNonce = await client.getTransaction({ sender: alice.publicKey, nonce: 1n });
    expect(n(byNonce.seq)).toBe(3);
    await expect(client.getTransaction({ seq: 999 })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND, details: expect.stringMatching(/no transaction has seq 999 yet/) });
    await expect(client.getTransaction({ sender: alice.publicKey, nonce: 2n })).rejects.toMatchObject({ code: grpc.status.NOT_FOUND });
  });

  it('keeps many batches in flight on one stream and matches every response by batch id', async () => {
    const stream = client.submitStream();
    const responses = new Map<number, ReturnType<typeof fromWireResponse>>();
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (w: SubmitBatchResponseWire) => { const r = fromWireResponse(w); responses.set(r.batchId, r); if (responses.size === 20) resolve(); });
      stream.on('error', reject);
    });
    const first = n((await client.getAccount(bob.publicKey)).nonce) + 1;
    for (let i = 0; i < 20; i++) {
      // Each batch is one transfer from bob with the next nonce; ids are deliberately not in order.
      stream.write(toWireRequest({ ...perTxBatch([transfer(bob, alice.publicKey, BigInt(first + i), 1n)], [bob]), batchId: 1000 - i * 7, ack: 'ordered' }));
    }
    await done;
    const closed = new Promise((resolve) => stream.on('status', resolve));
    stream.end();
    expect(await closed).toMatchObject({ code: grpc.status.OK });
    const blocks = [...Array(20).keys()].map((i) => responses.get(1000 - i * 7)!);
    expect(blocks.every((r) => r.statusCode === 0 && r.results[0] === Result.committed)).toBe(true);
    const seqs = blocks.map((r) => r.firstSeq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y)); // arrival order on the stream = history order
  });

  it('streams committed blocks from a seq, then live ones, with a chained hash', async () => {
    const call = client.streamCommits(1);
    call.on('error', (e: grpc.ServiceError) => expect(e.code).toBe(grpc.status.CANCELLED));
    const blocks: Record<string, unknown>[] = [];
    call.on('data', (b: Record<string, unknown>) => blocks.push(b));
    // The 22 blocks cut so far are replayed first; the one submitted after that arrives live.
    await until('the 22 blocks replayed', () => (blocks.length >= 22 ? true : null));
    await client.submitBatch(signedBatch([mint(user('carol').publicKey, 3n, 1n)]));
    await until('the new block streamed', () => (blocks.length >= 23 ? true : null));
    call.cancel();
    expect(blocks.map((b) => n(b.number))).toEqual([...Array(23).keys()].map((i) => i + 1));
    for (let i = 1; i < blocks.length; i++) expect(Buffer.from(blocks[i].prevHash as Uint8Array).equals(Buffer.from(blocks[i - 1].hash as Uint8Array))).toBe(true);
    expect((blocks[0].entryBodies as Uint8Array).length).toBe(2 * 128);
    expect(Buffer.from(blocks[22].hash as Uint8Array).equals(engine.pipeline.head.hash)).toBe(true);
  });

  it('answers grpc.health.v1 Check with SERVING and lists the service through reflection', async () => {
    const healthDef = grpc.loadPackageDefinition(protoLoader.loadSync(healthProto, { enums: String })) as any;
    const health = new healthDef.grpc.health.v1.Health(engine.address, grpc.credentials.createInsecure());
    const status = await new Promise<any>((res, rej) => health.Check({ service: 'txe.v1.TransactionService' }, (e: Error, r: unknown) => (e ? rej(e) : res(r))));
    expect(status.status).toBe('SERVING');
    health.close();
    const reflectionProto = path.join(path.dirname(createRequire(import.meta.url).resolve('@grpc/reflection')), '..', 'proto/grpc/reflection/v1/reflection.proto');
    const reflDef = grpc.loadPackageDefinition(protoLoader.loadSync(reflectionProto)) as any;
    const refl = new reflDef.grpc.reflection.v1.ServerReflection(engine.address, grpc.credentials.createInsecure());
    const call = refl.ServerReflectionInfo();
    const listed = new Promise<any>((res) => call.on('data', res));
    call.write({ listServices: '*' });
    const answer = await listed;
    call.end();
    refl.close();
    expect(answer.listServicesResponse.service.map((s: { name: string }) => s.name)).toContain('txe.v1.TransactionService');
  });
});
