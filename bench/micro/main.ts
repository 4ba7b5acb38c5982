/*
 * `npm run bench:micro`: each stage of the path on its own (tinybench), per transaction, printed
 * next to this machine's ceiling for that kind of work: protobuf decode, ring hand-off, verify
 * checks and SHA-256, sequencer apply, and the sink's COPY BINARY encoding. Run alone: on 2 cores anything else
 * running skews it.
 */

import crypto from 'node:crypto';
import { Bench } from 'tinybench';
import { InputRing, VERDICT_VALID, createRingBuffers } from '../../engine/ring/input-ring.js';
import { Sequencer } from '../../engine/core/sequencer.js';
import { TransactionServiceDefinition } from '../../engine/services/grpc/codec.js';
import { toWireRequest } from '../../engine/client.js';
import { BODY_BYTES, KIND_MINT, KIND_TRANSFER, writeBody } from '../../engine/core/record.js';
import { KeySet, checkBody } from '../../engine/core/checks.js';
import { keypairFromLabel } from '../../engine/core/keys.js';
import { measureCeilings } from '../ceilings.js';
import { defaultConfig } from '../../engine/config.js';
import { CopyWriter } from '../../engine/stages/commit/pg/copy-binary.js';
import { writeTransaction } from '../../engine/stages/commit/pg/pg-sink.js';

const BATCH = 8190;
const SENDERS = 65_536;
const issuer = keypairFromLabel('micro-issuer');
const ids = Array.from({ length: SENDERS }, (_, i) => crypto.createHash('sha256').update(`micro-${i}`).digest());

function transfers(round: number): Buffer {
  const out = Buffer.alloc(BATCH * BODY_BYTES);
  for (let j = 0; j < BATCH; j++) {
    const s = (round * BATCH + j) % SENDERS;
    writeBody(out, j * BODY_BYTES, { kind: KIND_TRANSFER, sender: ids[s], recipient: ids[(s + 1) % SENDERS], nonce: BigInt(Math.floor((round * BATCH + j) / SENDERS) + 1), amount: 1n, timestampMs: 0n });
  }
  return out;
}

function funded(): { seq: Sequencer; ring: InputRing } {
  const ring = new InputRing(createRingBuffers(1 << 16));
  const seq = new Sequencer({ accountsMax: defaultConfig().accountsMax, issuers: [issuer.publicKey], approvalPolicies: [], approvalsPendingMax: 1 });
  for (let first = 0; first < SENDERS; first += BATCH) {
    const n = Math.min(BATCH, SENDERS - first);
    const bodies = Buffer.alloc(n * BODY_BYTES);
    for (let j = 0; j < n; j++) writeBody(bodies, j * BODY_BYTES, { kind: KIND_MINT, sender: issuer.publicKey, recipient: ids[first + j], nonce: BigInt(first + j + 1), amount: 1n << 40n, timestampMs: 0n });
    sequence(seq, ring, bodies, n);
  }
  return { seq, ring };
}

function sequence(seq: Sequencer, ring: InputRing, bodies: Buffer, n: number): void {
  const start = ring.tryClaim(n);
  ring.writeBodies(start, bodies, n, BODY_BYTES);
  for (let i = 0; i < n; i++) Atomics.store(ring.verdicts, (start + i) & ring.mask, VERDICT_VALID);
  seq.sequenceBatch(ring, start, n, Buffer.alloc(32));
  ring.markSequenced(start + n);
  ring.release(start + n);
}

async function main(): Promise<void> {
  const ceilings = await measureCeilings(1);
  const rounds = Array.from({ length: 64 }, (_, r) => transfers(r));
  const { seq, ring } = funded();
  let round = 0;
  const copyRing = new InputRing(createRingBuffers(1 << 16));
  const issuers = new KeySet([issuer.publicKey]);
  const words0 = new Uint32Array(rounds[0].buffer, rounds[0].byteOffset, rounds[0].length / 4);
  const method = TransactionServiceDefinition.SubmitBatch;
  const request = method.requestSerialize(toWireRequest({ auth: 'batch-signed', txs: rounds[0], signer: Buffer.alloc(32), signature: Buffer.alloc(64) }));

  const bench = new Bench({ time: 1000, warmupTime: 200 });
  bench
    .add('codec: decode a SubmitBatchRequest of 8190 bodies', () => { method.requestDeserialize(request); })
    .add('ring: claim + copy 8190 bodies + release', () => {
      const start = copyRing.tryClaim(BATCH);
      copyRing.writeBodies(start, rounds[0], BATCH, BODY_BYTES);
      copyRing.markSequenced(start + BATCH);
      copyRing.release(start + BATCH);
    })
    .add('verify: structure checks of 8190 bodies', () => { for (let j = 0; j < BATCH; j++) checkBody(words0, rounds[0], j * BODY_BYTES, issuers); })
    .add('verify: SHA-256 of 8190 bodies (batch-signed digest)', () => { crypto.createHash('sha256').update(rounds[0]).digest(); })
    .add('sequencer: apply 8190 transfers + cut a block', () => { sequence(seq, ring, rounds[round % 64], BATCH); round++; })
    .add('sink: COPY BINARY encoding of 8190 transaction rows', () => {
      const out = new CopyWriter(BATCH * 220);
      for (let j = 0; j < BATCH; j++) writeTransaction(out, rounds[1], j * BODY_BYTES, j + 1, 1, j, 0);
      out.finish();
    });
  await bench.run();
  console.log(`ceilings: SHA-256 ${(ceilings.sha256BytesPerS / 1e9).toFixed(2)} GB/s = ${Math.round(ceilings.sha256BytesPerS / BODY_BYTES / 1e6)}M bodies/s; Ed25519 verify ${Math.round(ceilings.ed25519VerifyPerSCore)}/s/core; ring copy ~90M slots/s (DESIGN.md)`);
  for (const task of bench.tasks) {
    const meanMs = (task.result as unknown as { latency: { mean: number } }).latency.mean;
    const perTxNs = (meanMs * 1e6) / BATCH;
    console.log(`${task.name.padEnd(58)} ${meanMs.toFixed(3).padStart(8)} ms/batch  ${perTxNs.toFixed(1).padStart(7)} ns/tx  ${(1e3 / perTxNs).toFixed(1).padStart(6)} M tx/s`);
  }
  seq.checkInvariants();
}

void main();
