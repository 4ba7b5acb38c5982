// Proves graceful shutdown of a real `txe serve` process: on SIGTERM with batches in flight on an
// open stream, every admitted batch is answered in full, the server closes the stream with
// UNAVAILABLE (so the client knows unanswered batches were not admitted), and the process exits 0.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { TxeClient, fromWireResponse, toWireRequest } from '../../../engine/client.js';
import type { SubmitBatchResponseWire } from '../../../engine/services/grpc/codec.js';
import { startEngineProcess } from '../../../bench/engine-process.js';
import { generateKeysFile, writeKeysFile } from '../../../engine/keys-file.js';
import { packBodies, signBatch } from '../../../engine/core/batch.js';
import { KIND_MINT } from '../../../engine/core/record.js';
import { user } from '../../support/fixtures.js';

describe('txe serve', () => {
  it('finishes in-flight batches on SIGTERM and exits 0', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'txe-shutdown-'));
    const keys = generateKeysFile();
    writeKeysFile(path.join(dir, 'keys.json'), keys);
    const { child, address, exited } = await startEngineProcess(['--keys', path.join(dir, 'keys.json')], { reportUnexpectedExit: false });
    const client = new TxeClient(address);
    const stream = client.submitStream();
    const responses: ReturnType<typeof fromWireResponse>[] = [];
    const closed = new Promise<{ code: number; details: string }>((resolve) => stream.on('error', resolve));
    let firstAnswered!: () => void;
    const first = new Promise<void>((resolve) => { firstAnswered = resolve; });
    stream.on('data', (w: SubmitBatchResponseWire) => { responses.push(fromWireResponse(w)); firstAnswered(); });
    const recipients = Array.from({ length: 50 }, (_, i) => user(`r${i}`).publicKey);
    const batches = 30;
    for (let b = 0; b < batches; b++) {
      const bodies = packBodies(Array.from({ length: 4000 }, (_, i) => ({ kind: KIND_MINT, sender: keys.issuer.publicKey, recipient: recipients[i % 50], nonce: BigInt(b * 4000 + i + 1), amount: 1n, timestampMs: 0n })));
      stream.write(toWireRequest({ auth: 'batch-signed', txs: bodies, signer: keys.signer.publicKey, signature: signBatch(bodies, keys.signer.privateKey), batchId: b + 1, ack: 'ordered' }));
    }
    await first; // the stream is open and batches are in flight
    child.kill('SIGTERM');
    expect(await closed).toMatchObject({ code: 14, details: expect.stringMatching(/shutting down: every batch answered on this stream was handled/) });
    expect(await exited).toBe(0);
    client.close();
    rmSync(dir, { recursive: true, force: true });
    // The batches that reached the server are a prefix of those written, and each got one answer:
    // a whole committed batch, or (for every later one) a refusal because shutdown had begun.
    expect(responses.map((r) => r.batchId).sort((a, b) => a - b)).toEqual([...Array(responses.length).keys()].map((i) => i + 1));
    const lastCommitted = Math.max(...responses.filter((r) => r.statusCode === 0).map((r) => r.batchId));
    expect(responses.filter((r) => r.statusCode !== 0).every((r) => r.batchId > lastCommitted)).toBe(true);
    const committed = responses.filter((r) => r.statusCode === 0);
    expect(committed.length).toBeGreaterThan(0);
    expect(committed.every((r) => r.accepted === 4000)).toBe(true);
    for (const r of responses.filter((x) => x.statusCode !== 0)) expect(r.statusMessage).toMatch(/shutting down/);
  });
});
