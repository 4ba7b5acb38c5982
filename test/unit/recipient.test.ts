// Proves the two recipient rules proto/README.md states: a recipient of 32 zero bytes is rejected
// as invalid_recipient by the stateless checks (transfer and mint alike, and a key with a single
// non-zero byte is not), and a transfer to oneself is accepted as a no-op move that consumes a
// nonce and a seq but needs the funds like any transfer. Records go through checkBody and a real
// sequencer on a real ring, as the workers and the pipeline run them.
import { describe, expect, it } from 'vitest';
import { CHECK_VALID, KeySet, checkBody } from '../../engine/core/checks.js';
import { InputRing, VERDICT_REJECTED_FLAG, VERDICT_VALID, createRingBuffers } from '../../engine/ring/input-ring.js';
import { Sequencer } from '../../engine/core/sequencer.js';
import { batchDigest, packBodies } from '../../engine/core/batch.js';
import type { RecordFields } from '../../engine/core/record.js';
import { Result } from '../../engine/core/result.js';
import { issuer, mint, transfer, user } from '../support/fixtures.js';

const alice = user('alice');
const issuers = new KeySet([issuer.publicKey]);

function check(record: RecordFields): number {
  const bodies = packBodies([record]);
  return checkBody(new Uint32Array(bodies.buffer, bodies.byteOffset, bodies.length / 4), bodies, 0, issuers);
}

describe('recipient rules', () => {
  it('rejects a zero recipient in a transfer or a mint, and only the all-zero key', () => {
    expect(check(transfer(alice, Buffer.alloc(32), 1n, 5n))).toBe(Result.invalid_recipient);
    expect(check(mint(Buffer.alloc(32), 1n, 5n))).toBe(Result.invalid_recipient);
    const lastByteSet = Buffer.alloc(32);
    lastByteSet[31] = 1;
    expect(check(transfer(alice, lastByteSet, 1n, 5n))).toBe(CHECK_VALID);
    expect(check(mint(alice.publicKey, 1n, 5n))).toBe(CHECK_VALID);
  });

  it('accepts a transfer to oneself as a no-op move: nonce and seq consumed, balance unchanged, funds still needed', () => {
    const ring = new InputRing(createRingBuffers(16));
    const seq = new Sequencer({ accountsMax: 8, issuers: [issuer.publicKey], approvalPolicies: [], approvalsPendingMax: 1 });
    const run = (records: RecordFields[]) => {
      const txs = packBodies(records);
      const start = ring.tryClaim(records.length);
      ring.writeBodies(start, txs, records.length, 128);
      const words = new Uint32Array(txs.buffer, txs.byteOffset, txs.length / 4);
      records.forEach((_, i) => {
        const code = checkBody(words, txs, i * 128, issuers);
        Atomics.store(ring.verdicts, (start + i) & ring.mask, code === CHECK_VALID ? VERDICT_VALID : VERDICT_REJECTED_FLAG | code);
      });
      const block = seq.sequenceBatch(ring, start, records.length, batchDigest(txs));
      ring.markSequenced(start + records.length);
      ring.release(start + records.length);
      seq.checkInvariants();
      return block;
    };
    const account = () => seq.accounts.state(seq.accounts.findKey(alice.publicKey));

    run([mint(alice.publicKey, 1n, 100n)]);
    const self = run([transfer(alice, alice.publicKey, 1n, 60n), transfer(alice, alice.publicKey, 2n, 101n)]);
    expect(Array.from(self.results)).toEqual([Result.committed, Result.insufficient_funds]);
    expect([self.firstSeq, self.entries]).toEqual([2, 1]);
    expect(account()).toMatchObject({ balance: 100n, nonce: 1n, held: 0n });
    expect(seq.supply).toBe(100n);
  });
});
