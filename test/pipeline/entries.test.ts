// Engine entries (approval decisions) take the same ring as client batches, but client batches
// leave room for them: a hold can be decided while clients keep the engine at capacity.
import { describe, expect, it } from 'vitest';
import { Pipeline } from '../../engine/pipeline.js';
import { decisionBody } from '../../engine/core/decision.js';
import { Result } from '../../engine/core/result.js';
import { globalPolicy, mint, perTxBatch, signedBatch, testConfig, transfer, user } from '../support/fixtures.js';

describe('engine entries under client load', () => {
  it('admits a decision while client batches are refused RESOURCE_EXHAUSTED, and posts the hold', async () => {
    const alice = user('entries-alice');
    const bob = user('entries-bob').publicKey;
    const pipeline = new Pipeline(testConfig({ workers: 1, ringSlotsMax: 256, batchTxsMax: 240, approvalPolicies: [globalPolicy(100n)] }));
    try {
      expect(pipeline.entrySlotsReserved).toBe(16); // a 16th of 256
      const minted = await pipeline.submit({ mode: 'batch-signed', ...asSubmission(signedBatch([mint(alice.publicKey, 1n, 1000n)])), ack: 'ordered' });
      const held = await pipeline.submit({ mode: 'batch-signed', ...asSubmission(signedBatch([transfer(alice, bob, 1n, 500n)])), ack: 'ordered' });
      expect(minted.ok && held.ok && Array.from(held.results)).toEqual([Result.pending_approval]);
      const heldSeq = held.ok ? held.firstSeq : 0;
      const id = (await pipeline.inspect()).pending.get(heldSeq)!.id;
      // 240 signed records take the ring down to its reserve while they verify.
      const filler = user('entries-filler');
      const fill = pipeline.submit({ mode: 'per-tx', txs: perTxBatch(Array.from({ length: 240 }, (_, i) => transfer(filler, bob, BigInt(i + 1), 1n)), [filler]).txs, signer: null, signature: null, ack: 'ordered' });
      const refused = await pipeline.submit({ mode: 'batch-signed', ...asSubmission(signedBatch([transfer(alice, bob, 2n, 1n)])), ack: 'ordered' });
      expect(refused).toMatchObject({ ok: false, code: 'RESOURCE_EXHAUSTED', message: expect.stringMatching(/16 are kept for approval decisions/) });
      const decision = decisionBody({ outcome: 'approved', sender: alice.publicKey, recipient: bob, heldSeq, amount: 500n, decidedAtMs: Date.now(), id });
      const decided = await pipeline.submitEntries(decision, 'ordered');
      expect(decided.ok && Array.from(decided.results)).toEqual([Result.committed]);
      expect((await pipeline.inspect()).pending.size).toBe(0);
      await fill;
    } finally {
      await pipeline.close();
    }
  });
});

function asSubmission(b: { txs: Buffer; signer: Buffer; signature: Buffer }) {
  return { txs: b.txs, signer: b.signer, signature: b.signature };
}
