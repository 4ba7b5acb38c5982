// Proves the sequencer's rules one by one on hand-made batches in a real ring (no workers: verdicts
// are stored as the workers would store them), including u64 amounts past 2^32 and 2^53, approval
// holds, full tables, and the block hash chain.
import { describe, expect, it } from 'vitest';
import { InputRing, VERDICT_REJECTED_FLAG, VERDICT_VALID, createRingBuffers } from '../../engine/ring/input-ring.js';
import { Sequencer } from '../../engine/core/sequencer.js';
import { GENESIS_HASH, blockHash } from '../../engine/core/block.js';
import { HistoryWindow } from '../../engine/stages/history/history-window.js';
import { packBodies, batchDigest } from '../../engine/core/batch.js';
import { U64_MAX, readBody, type RecordFields } from '../../engine/core/record.js';
import { decisionBody } from '../../engine/core/decision.js';
import { Result } from '../../engine/core/result.js';
import { globalPolicy, issuer, mint, transfer, user } from '../support/fixtures.js';

const alice = user('alice').publicKey;
const bob = user('bob').publicKey;
const carol = user('carol').publicKey;

function setup(o: { accountsMax?: number; threshold?: bigint; pendingMax?: number } = {}) {
  const ring = new InputRing(createRingBuffers(64));
  const history = new HistoryWindow(64, 16);
  const seq = new Sequencer({ accountsMax: o.accountsMax ?? 16, issuers: [issuer.publicKey], approvalPolicies: o.threshold ? [globalPolicy(o.threshold)] : [], approvalsPendingMax: o.pendingMax ?? 8 });
  const run = (records: RecordFields[], rejected: Record<number, number> = {}) => {
    const txs = packBodies(records);
    const start = ring.tryClaim(records.length);
    ring.writeBodies(start, txs, records.length, 128);
    records.forEach((_, i) => Atomics.store(ring.verdicts, (start + i) & ring.mask, i in rejected ? VERDICT_REJECTED_FLAG | rejected[i] : VERDICT_VALID));
    const block = seq.sequenceBatch(ring, start, records.length, batchDigest(txs));
    history.recordBlock(block, ring);
    ring.markSequenced(start + records.length);
    ring.release(start + records.length);
    seq.checkInvariants();
    return block;
  };
  const balance = (key: Buffer) => {
    const i = seq.accounts.findKey(key);
    return i < 0 ? null : seq.accounts.state(i);
  };
  return { seq, run, balance, history };
}

describe('Sequencer rules', () => {
  it('mints, transfers, and gives accepted records consecutive seqs in batch order', () => {
    const { run, balance } = setup();
    const b1 = run([mint(alice, 1n, 100n), mint(bob, 2n, 5n)]);
    expect(Array.from(b1.results)).toEqual([Result.committed, Result.committed]);
    expect([b1.firstSeq, b1.entries]).toEqual([1, 2]);
    const b2 = run([transfer(alice, bob, 1n, 30n), transfer(alice, carol, 2n, 70n), transfer(alice, carol, 3n, 1n)]);
    expect(Array.from(b2.results)).toEqual([Result.committed, Result.committed, Result.insufficient_funds]);
    expect([b2.firstSeq, b2.entries]).toEqual([3, 2]);
    expect(balance(alice)).toEqual({ balance: 0n, held: 0n, nonce: 2n });
    expect(balance(bob)?.balance).toBe(35n);
    expect(balance(carol)?.balance).toBe(70n);
  });

  it('applies a verified mint from an issuer it was not configured with (rotated in, or retired since), tracking its nonce', () => {
    // Whether a key may mint is the verify stage's rule; replay takes it from the stored results.
    // So the sequencer must not depend on the issuer list it started with.
    const { seq, run, balance } = setup();
    const rotatedIn = user('new-issuer').publicKey;
    const from = (key: Buffer, nonce: bigint, amount: bigint) => ({ ...mint(alice, nonce, amount), sender: key });
    const b = run([from(rotatedIn, 1n, 7n), from(rotatedIn, 1n, 1n), from(rotatedIn, 2n, 3n)]);
    expect(Array.from(b.results)).toEqual([Result.committed, Result.bad_nonce, Result.committed]);
    expect(balance(rotatedIn)).toEqual({ balance: 0n, held: 0n, nonce: 2n });
    expect(balance(alice)?.balance).toBe(10n);
    expect(seq.supply).toBe(10n);
    // A mint over the u64 supply is refused and opens no account for an issuer not met yet.
    const other = user('other-issuer').publicKey;
    run([from(other, 1n, (1n << 64n) - 10n)]);
    expect(balance(other)).toBeNull();
  });

  it('reports the accounts each accepted record touched, as a lookup would find them', () => {
    const { seq, run } = setup();
    const b = run([mint(alice, 1n, 50n), transfer(alice, bob, 1n, 20n), transfer(bob, carol, 5n, 1n), transfer(alice, carol, 2n, 5n)]);
    expect(Array.from(b.results)).toEqual([Result.committed, Result.committed, Result.bad_nonce, Result.committed]);
    const touched = seq.lastTouchedAccounts;
    const pairs = [[issuer.publicKey, alice], [alice, bob], null, [alice, carol]] as const;
    pairs.forEach((pair, i) => {
      if (pair === null) return;
      expect([touched[2 * i], touched[2 * i + 1]]).toEqual([seq.accounts.findKey(pair[0]), seq.accounts.findKey(pair[1])]);
    });
  });

  it('rejects gaps, replays and duplicates as bad_nonce without consuming the nonce', () => {
    const { run, balance } = setup();
    run([mint(alice, 1n, 10n)]);
    const b = run([transfer(alice, bob, 2n, 1n), transfer(alice, bob, 1n, 1n), transfer(alice, bob, 1n, 1n), transfer(alice, bob, 2n, 1n)]);
    expect(Array.from(b.results)).toEqual([Result.bad_nonce, Result.committed, Result.bad_nonce, Result.committed]);
    expect(balance(alice)?.nonce).toBe(2n);
    const replay = run([mint(alice, 1n, 10n)]);
    expect(replay.results[0]).toBe(Result.bad_nonce);
  });

  it('treats an account that was never credited as empty', () => {
    const { run } = setup();
    const b = run([transfer(carol, bob, 1n, 1n), transfer(carol, bob, 5n, 1n)]);
    expect(Array.from(b.results)).toEqual([Result.insufficient_funds, Result.bad_nonce]);
  });

  it('passes worker verdicts through unchanged and gives them no seq', () => {
    const { run } = setup();
    const b = run([mint(alice, 1n, 10n), mint(bob, 2n, 10n)], { 0: Result.bad_signature });
    expect(Array.from(b.results)).toEqual([Result.bad_signature, Result.bad_nonce]);
    expect(b.entries).toBe(0);
  });

  it('does u64 arithmetic exactly past 2^32 and 2^53, and keeps the supply within u64', () => {
    const { run, balance } = setup();
    const big = (1n << 60n) + 12345n;
    run([mint(alice, 1n, big), mint(alice, 2n, (1n << 32n) + 1n)]);
    expect(balance(alice)?.balance).toBe(big + (1n << 32n) + 1n);
    run([transfer(alice, bob, 1n, (1n << 53n) + 1n)]);
    expect(balance(bob)?.balance).toBe((1n << 53n) + 1n);
    const over = run([mint(carol, 3n, U64_MAX)]);
    expect(over.results[0]).toBe(Result.invalid_amount);
    expect(balance(carol)).toBeNull();
  });

  it('carries and borrows between the u32 halves of u64 amounts, and accepts a supply of exactly 2^64 - 1', () => {
    const { run, balance } = setup();
    run([mint(alice, 1n, 0xffff_ffffn), mint(alice, 2n, 1n)]); // low word carries into the high word
    expect(balance(alice)?.balance).toBe(1n << 32n);
    run([transfer(alice, bob, 1n, 0xffff_fffen)]); // low word of the amount exceeds the balance's: borrow
    expect(balance(alice)?.balance).toBe(2n);
    expect(balance(bob)?.balance).toBe(0xffff_fffen);
    const rest = U64_MAX - (1n << 32n);
    const full = run([mint(carol, 3n, rest), mint(carol, 4n, 1n)]);
    expect(Array.from(full.results)).toEqual([Result.committed, Result.invalid_amount]);
    expect(balance(carol)?.balance).toBe(rest);
    const back = run([transfer(carol, alice, 1n, rest)]); // a balance near 2^64 moves whole
    expect(back.results[0]).toBe(Result.committed);
    expect(balance(alice)?.balance).toBe(rest + 2n);
  });

  it('holds transfers at or above the threshold, and counts the hold against later transfers', () => {
    const { run, balance, seq } = setup({ threshold: 50n });
    run([mint(alice, 1n, 100n)]);
    const b = run([transfer(alice, bob, 1n, 60n), transfer(alice, bob, 2n, 49n), transfer(alice, bob, 2n, 40n)]);
    expect(Array.from(b.results)).toEqual([Result.pending_approval, Result.insufficient_funds, Result.committed]);
    expect(balance(alice)).toEqual({ balance: 60n, held: 60n, nonce: 2n });
    expect(seq.pending.get(b.firstSeq)?.amountLo).toBe(60);
  });

  it('answers capacity_exceeded when the account or approval table is full', () => {
    const { run } = setup({ accountsMax: 3, threshold: 10n, pendingMax: 1 }); // issuer + 2
    const b = run([mint(alice, 1n, 100n), mint(bob, 2n, 100n), mint(carol, 3n, 100n), transfer(alice, bob, 1n, 10n), transfer(alice, bob, 2n, 10n)]);
    expect(Array.from(b.results)).toEqual([Result.committed, Result.committed, Result.capacity_exceeded, Result.pending_approval, Result.capacity_exceeded]);
  });

  it('chains block hashes from genesis and records accepted bodies in the history window', () => {
    const { run, history } = setup();
    const b1 = run([mint(alice, 1n, 10n)]);
    const b2 = run([transfer(alice, bob, 1n, 3n), transfer(alice, bob, 9n, 3n)]);
    expect(b1.prevHash.equals(GENESIS_HASH)).toBe(true);
    expect(b2.prevHash.equals(b1.hash)).toBe(true);
    expect(b2.hash.equals(blockHash(b1.hash, 2, 2, 1, b2.results, b2.bodiesDigest))).toBe(true);
    expect(history.get(2)?.block).toBe(2);
    expect(history.get(3)).toBeNull();
    expect(history.findBySenderNonce(alice, 1n)?.seq).toBe(2);
  });
});

describe('Sequencer lookups prepared ahead of the verdicts', () => {
  // The sequence stage looks up a batch's accounts while the workers still verify it
  // (Sequencer.prepare); the block must come out as if it had not.
  const keyOf = (i: number) => { const k = Buffer.alloc(32); k.writeUInt32LE(i + 1, 0); k.writeUInt32LE(0x9e3779b1 * (i + 1) >>> 0, 4); return k; };
  // 4200 new accounts minted 5 each (the table doubles on the way), then each pays the next one 1.
  const batches = () => [
    ...Array.from({ length: 6 }, (_, b) => Array.from({ length: 700 }, (_, i) => mint(keyOf(b * 700 + i), BigInt(b * 700 + i + 1), 5n))),
    ...Array.from({ length: 6 }, (_, b) => Array.from({ length: 700 }, (_, i) => transfer(keyOf(b * 700 + i), keyOf((b * 700 + i + 1) % 4200), 1n, 1n))),
  ];
  const balances = (seq: Sequencer) => Array.from({ length: 4200 }, (_, i) => seq.accounts.state(seq.accounts.findKey(keyOf(i))).balance);
  const sequence = (seq: Sequencer, ring: InputRing, records: RecordFields[], prepareFirst: (start: number) => void) => {
    const txs = packBodies(records);
    const start = ring.tryClaim(records.length);
    ring.writeBodies(start, txs, records.length, 128);
    prepareFirst(start); // before any verdict is stored, as while the workers verify
    records.forEach((_, i) => Atomics.store(ring.verdicts, (start + i) & ring.mask, VERDICT_VALID));
    const block = seq.sequenceBatch(ring, start, records.length, batchDigest(txs));
    ring.markSequenced(start + records.length);
    ring.release(start + records.length);
    return block;
  };
  const fresh = () => ({ ring: new InputRing(createRingBuffers(1024)), seq: new Sequencer({ accountsMax: 1 << 14, issuers: [issuer.publicKey], approvalPolicies: [], approvalsPendingMax: 1 }) });

  it('gives the same results and hashes as looking up while applying, while the table grows', () => {
    const plain = fresh();
    const ahead = fresh();
    const slotsBefore = ahead.seq.accounts.tableSlots;
    for (const records of batches()) {
      const expected = sequence(plain.seq, plain.ring, records, () => {});
      const got = sequence(ahead.seq, ahead.ring, records, (start) => ahead.seq.prepare(ahead.ring, start, records.length));
      expect(Array.from(got.results)).toEqual(Array.from(expected.results));
      expect(got.hash.equals(expected.hash)).toBe(true);
    }
    expect(ahead.seq.accounts.tableSlots).toBeGreaterThan(slotsBefore);
    expect(balances(ahead.seq)).toEqual(balances(plain.seq));
    ahead.seq.checkInvariants();
  });

  it('ignores lookups prepared for another range of the ring', () => {
    const plain = fresh();
    const ahead = fresh();
    for (const records of batches()) {
      const expected = sequence(plain.seq, plain.ring, records, () => {});
      // Prepared one slot off: applying with those home slots would look the wrong keys up.
      const got = sequence(ahead.seq, ahead.ring, records, (start) => ahead.seq.prepare(ahead.ring, start + 1, records.length - 1));
      expect(got.hash.equals(expected.hash)).toBe(true);
    }
    expect(balances(ahead.seq)).toEqual(balances(plain.seq));
  });
});

describe('Sequencer approval decisions', () => {
  const decision = (outcome: 'approved' | 'rejected' | 'expired', seq: Sequencer, heldSeq: number, over: Partial<{ amount: bigint; recipient: Buffer; id: Buffer }> = {}): RecordFields => {
    const p = seq.pending.get(heldSeq)!;
    const body = decisionBody({
      outcome, sender: alice, recipient: over.recipient ?? p.recipient, heldSeq, amount: over.amount ?? (BigInt(p.amountHi) << 32n) + BigInt(p.amountLo),
      decidedAtMs: 1234, id: over.id ?? p.id,
    });
    return readBody(body);
  };

  it('posts an approved hold: debit, credit, hold released, one new seq and no nonce', () => {
    const { run, balance, seq, history } = setup({ threshold: 50n });
    run([mint(alice, 1n, 100n)]);
    const held = run([transfer(alice, bob, 1n, 60n)]);
    expect(balance(bob)).toEqual({ balance: 0n, held: 0n, nonce: 0n }); // the hold opened bob's account
    const heldSeq = held.firstSeq;
    const id = seq.pending.get(heldSeq)!.id;
    expect(held.approvals).toMatchObject([{ type: 'requested', seq: heldSeq, position: 0, amount: 60n }]);
    const posted = run([decision('approved', seq, heldSeq)]);
    expect(Array.from(posted.results)).toEqual([Result.committed]);
    expect(posted.firstSeq).toBe(heldSeq + 1);
    expect(posted.approvals).toMatchObject([{ type: 'decided', heldSeq, outcome: 'approved', seq: heldSeq + 1 }]);
    expect(posted.approvals![0].id.equals(id)).toBe(true);
    expect(balance(alice)).toEqual({ balance: 40n, held: 0n, nonce: 1n });
    expect(balance(bob)?.balance).toBe(60n);
    expect(seq.pending.size).toBe(0);
    // The decision's nonce field is the held seq: a lookup by (alice, 2) must not find it.
    expect(history.findBySenderNonce(alice, BigInt(heldSeq))).toBeNull();
    expect(history.get(heldSeq + 1)?.body[1]).toBe(3);
  });

  it('voids a rejected or expired hold, and refuses a decision that does not match a pending hold', () => {
    const { run, balance, seq } = setup({ threshold: 50n });
    run([mint(alice, 1n, 100n)]);
    const b = run([transfer(alice, bob, 1n, 60n), transfer(alice, carol, 2n, 50n)]);
    expect(Array.from(b.results)).toEqual([Result.pending_approval, Result.insufficient_funds]);
    const [first] = [b.firstSeq];
    const wrong = run([
      decision('rejected', seq, first, { amount: 59n }),
      decision('rejected', seq, first, { recipient: carol }),
      decision('rejected', seq, first, { id: Buffer.alloc(32, 7) }),
    ]);
    expect(Array.from(wrong.results)).toEqual([Result.approval_not_pending, Result.approval_not_pending, Result.approval_not_pending]);
    expect(wrong.entries).toBe(0);
    const voided = run([decision('rejected', seq, first)]);
    expect(Array.from(voided.results)).toEqual([Result.committed]);
    expect(balance(alice)).toEqual({ balance: 100n, held: 0n, nonce: 1n });
    expect(balance(bob)?.balance).toBe(0n);
    const again = run([readBody(decisionBody({ outcome: 'approved', sender: alice, recipient: bob, heldSeq: first, amount: 60n, decidedAtMs: 1, id: voided.approvals![0].id }))]);
    expect(Array.from(again.results)).toEqual([Result.approval_not_pending]);
    const held = run([transfer(alice, carol, 2n, 70n)]);
    const expired = run([decision('expired', seq, held.firstSeq)]);
    expect(expired.approvals).toMatchObject([{ outcome: 'expired' }]);
    expect(balance(alice)).toEqual({ balance: 100n, held: 0n, nonce: 2n });
  });

  it('applies the sender\'s own policy over the global one', () => {
    const ring = new InputRing(createRingBuffers(64));
    const seq = new Sequencer({ accountsMax: 16, issuers: [issuer.publicKey], approvalsPendingMax: 8, approvalPolicies: [globalPolicy(50n), globalPolicy(1000n, { account: alice })] });
    const run = (records: RecordFields[]) => {
      const txs = packBodies(records);
      const start = ring.tryClaim(records.length);
      ring.writeBodies(start, txs, records.length, 128);
      records.forEach((_, i) => Atomics.store(ring.verdicts, (start + i) & ring.mask, VERDICT_VALID));
      const block = seq.sequenceBatch(ring, start, records.length, batchDigest(txs));
      ring.markSequenced(start + records.length);
      ring.release(start + records.length);
      return block;
    };
    run([mint(alice, 1n, 5000n), mint(bob, 2n, 5000n)]);
    const b = run([transfer(alice, carol, 1n, 500n), transfer(bob, carol, 1n, 500n), transfer(alice, carol, 2n, 1000n)]);
    expect(Array.from(b.results)).toEqual([Result.committed, Result.pending_approval, Result.pending_approval]);
    expect(b.approvals!.map((c) => c.type === 'requested' && c.policy.account)).toEqual([null, alice.toString('hex')]);
  });
});
