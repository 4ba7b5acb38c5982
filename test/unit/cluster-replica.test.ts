// A validator's replica (engine/cluster/replica.ts) and finality counting (finality.ts), without
// servers: blocks are cut by a core Sequencer as a leader would, then judged from their records.
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { Sequencer } from '../../engine/core/sequencer.js';
import { KeySet } from '../../engine/core/checks.js';
import { BODY_BYTES } from '../../engine/core/record.js';
import { Result } from '../../engine/core/result.js';
import { VERDICT_VALID } from '../../engine/core/verdict.js';
import { packBodies, signBatch } from '../../engine/core/batch.js';
import { blockHash } from '../../engine/core/block.js';
import { generateKeypair, publicKeyObject } from '../../engine/core/keys.js';
import { Replica } from '../../engine/cluster/replica.js';
import { Finality } from '../../engine/cluster/finality.js';
import { HeightWaiters } from '../../engine/cluster/height-waiters.js';
import { signAttestation, attestationValid } from '../../engine/cluster/attestation.js';
import type { StoredBlock } from '../../engine/stages/commit/stored-block.js';
import { issuer, mint, signer, transfer, user } from '../support/fixtures.js';
import type { RecordFields } from '../../engine/core/record.js';

const options = { accountsMax: 1024, issuers: [issuer.publicKey], approvalPolicies: [], approvalsPendingMax: 16 };

/** A leader: cuts each batch with a core sequencer (every body verified valid) into a log record. */
function leader(term = 7) {
  const seq = new Sequencer(options);
  return (records: RecordFields[], epoch = term): StoredBlock => {
    const bodies = packBodies(records);
    const words = new Uint32Array(new Uint8Array(bodies).buffer);
    const slots = { slotsCount: 1 << 12, mask: (1 << 12) - 1, bodies: Buffer.from(words.buffer), words, verdict: () => VERDICT_VALID };
    const digest = crypto.createHash('sha256').update(bodies).digest();
    const b = seq.sequenceBatch(slots, 0, records.length, digest);
    return { number: b.number, firstSeq: b.firstSeq, entries: b.entries, txs: b.txs, hash: b.hash, prevHash: b.prevHash, bodiesDigest: digest, results: Buffer.from(b.results), bodies, sequencedAtMs: Date.now(), epoch, auth: { mode: 'batch-signed', signer: signer.publicKey, signature: signBatch(bodies, signer.privateKey) } };
  };
}
const replica = () => new Replica({ sequencer: options, trustedSigners: () => new KeySet([signer.publicKey]) });
const alice = user('alice');

describe('a validator replica', () => {
  it('applies valid blocks, and two replicas of the same log reach the same state hash', () => {
    const cut = leader();
    const log = [cut([mint(alice.publicKey, 1n, 100n)]), cut([transfer(alice, user('bob').publicKey, 1n, 40n)])];
    const [a, b] = [replica(), replica()];
    for (const r of log) {
      expect(a.judge(r).kind).toBe('applied');
      expect(b.judge(r).kind).toBe('applied');
    }
    expect(a.head.height).toBe(2);
    expect(a.head.stateHash.equals(b.head.stateHash)).toBe(true);
    expect(a.head.hash.equals(log[1].hash)).toBe(true);
  });

  it('refuses a block whose results say an overdraft committed, and changes nothing', () => {
    const cut = leader();
    const r = replica();
    expect(r.judge(cut([mint(alice.publicKey, 1n, 10n)])).kind).toBe('applied');
    const head = r.head;
    const honest = cut([transfer(alice, user('bob').publicKey, 1n, 50n)]); // insufficient_funds
    expect(honest.results[0]).toBe(Result.insufficient_funds);
    const results = Buffer.from([Result.committed]);
    const forged = { ...honest, results, entries: 1, hash: blockHash(honest.prevHash, honest.number, honest.firstSeq, 1, results, honest.bodiesDigest) };
    const j = r.judge(forged);
    expect(j).toMatchObject({ kind: 'fault', fault: 'bad_block' });
    expect(j.kind === 'fault' && j.why).toMatch(/tx 0 is insufficient_funds here, committed in the block/);
    expect(r.head).toEqual(head);
    expect(r.judge(honest).kind).toBe('applied'); // the honest block at that height is still taken
  });

  it('rolls back through checkpoints kept up to date in place, to exactly the state of the blocks it accepted', () => {
    const cut = leader();
    const people = Array.from({ length: 6 }, (_, i) => user(`ckpt-${i}`));
    const nonces = new Map<string, bigint>();
    const next = (k: { publicKey: Buffer }) => { const h = k.publicKey.toString('hex'); const n = (nonces.get(h) ?? 0n) + 1n; nonces.set(h, n); return n; };
    let minted = 0n;
    const block = (i: number) => cut([
      mint(people[i % 6].publicKey, ++minted, 50n), // a new account in the first blocks, an old one later
      mint(user(`ckpt-new-${i}`).publicKey, ++minted, 1n), // a new account in every block
      transfer(people[(i + 1) % 6], people[(i + 2) % 6].publicKey, next(people[(i + 1) % 6]), 3n),
    ]);
    const checkpointed = new Replica({ sequencer: options, trustedSigners: () => new KeySet([signer.publicKey]), checkpointEveryBlocks: 4 });
    const plain = replica();
    const applyBoth = (r: StoredBlock) => {
      expect(checkpointed.judge(r).kind).toBe('applied');
      expect(plain.judge(r).kind).toBe('applied');
    };
    const same = () => {
      expect(checkpointed.head).toEqual(plain.head);
      const [a, b] = [checkpointed.exportState(), plain.exportState()];
      expect(Buffer.from(a.accounts.buffer, a.accounts.byteOffset, a.accounts.byteLength).equals(Buffer.from(b.accounts.buffer, b.accounts.byteOffset, b.accounts.byteLength))).toBe(true);
      expect({ ...a, accounts: null }).toEqual({ ...b, accounts: null });
    };
    for (let i = 0; i < 10; i++) applyBoth(block(i)); // checkpoints at 4 and 8, two blocks since
    // A forged block after one more honest one: a transfer of more than the sender has, its
    // results saying committed.
    const sender = people[0];
    const forgedRecords = [transfer(sender, people[1].publicKey, (nonces.get(sender.publicKey.toString('hex')) ?? 0n) + 1n, 1_000_000n)];
    const honestNext = block(10);
    applyBoth(honestNext);
    const bodies = packBodies(forgedRecords);
    const results = Buffer.from([Result.committed]);
    const digest = crypto.createHash('sha256').update(bodies).digest();
    const forged: StoredBlock = {
      ...honestNext, number: honestNext.number + 1, prevHash: honestNext.hash, firstSeq: honestNext.firstSeq + honestNext.entries, entries: 1, txs: 1,
      bodies, bodiesDigest: digest, results, hash: blockHash(honestNext.hash, honestNext.number + 1, honestNext.firstSeq + honestNext.entries, 1, results, digest),
      auth: { mode: 'batch-signed', signer: signer.publicKey, signature: signBatch(bodies, signer.privateKey) },
    };
    expect(checkpointed.judge(forged)).toMatchObject({ kind: 'fault', fault: 'bad_block' });
    same(); // rolled back to checkpoint 8, then blocks 9-11 replayed
    for (let i = 11; i < 18; i++) applyBoth(block(i)); // and on, past two more checkpoints
    same();
  });

  it('refuses a bad batch signature, an untrusted signer, an unsigned batch and a broken chain', () => {
    const cut = leader();
    const r = replica();
    const good = cut([mint(alice.publicKey, 1n, 10n)]);
    const bad = (b: Partial<StoredBlock>) => r.judge({ ...good, ...b });
    expect(bad({ auth: { mode: 'batch-signed', signer: signer.publicKey, signature: crypto.randomBytes(64) } })).toMatchObject({ fault: 'bad_block' });
    const stranger = generateKeypair();
    expect(bad({ auth: { mode: 'batch-signed', signer: stranger.publicKey, signature: signBatch(good.bodies, stranger.privateKey) } })).toMatchObject({ fault: 'bad_block', why: expect.stringMatching(/not trusted/) });
    expect(bad({ auth: undefined })).toMatchObject({ fault: 'bad_block', why: expect.stringMatching(/no signature/) });
    expect(bad({ prevHash: crypto.randomBytes(32) })).toMatchObject({ fault: 'broken_chain' });
    expect(bad({ bodies: Buffer.alloc(BODY_BYTES, 1) })).toMatchObject({ fault: 'bad_block', why: expect.stringMatching(/bodies_digest/) });
    expect(r.judge(good).kind).toBe('applied');
  });

  it('skips a deposed leader late write and a repeat, and flags a second block at one height', () => {
    const cut = leader(7);
    const r = replica();
    const b1 = cut([mint(alice.publicKey, 1n, 10n)], 7);
    expect(r.judge(b1).kind).toBe('applied');
    const later = leader(9)([mint(alice.publicKey, 1n, 11n)], 9); // a newer term, same height 1
    expect(r.judge({ ...b1 }).kind).toBe('skipped');
    expect(r.judge(later)).toMatchObject({ kind: 'fault', fault: 'two_blocks_at_height' });
    const b2new = cut([mint(alice.publicKey, 2n, 10n)], 9);
    expect(r.judge(b2new).kind).toBe('applied');
    expect(r.term).toBe(9);
    const stale = cut([mint(alice.publicKey, 3n, 10n)], 7);
    expect(r.judge(stale)).toMatchObject({ kind: 'skipped', why: expect.stringMatching(/deposed leader/) });
  });
});

describe('finality', () => {
  const keys = [1, 2, 3, 4].map(() => generateKeypair());
  const att = (v: number, height: number, block: Buffer, state: Buffer) => signAttestation({ validator: v, height, blockHash: block, stateHash: state, term: 3 }, keys[v - 1].privateKey);
  const h = (s: string) => crypto.createHash('sha256').update(s).digest();

  it('is final at 3 of 4 on the same block and state hash, in height order', () => {
    const f = new Finality();
    expect(attestationValid(att(1, 1, h('b1'), h('s1')), publicKeyObject(keys[0].publicKey))).toBe(true);
    expect(attestationValid(att(1, 1, h('b1'), h('s1')), publicKeyObject(keys[1].publicKey))).toBe(false);
    for (const v of [1, 2]) f.add(att(v, 2, h('b2'), h('s2')));
    for (const v of [1, 2, 3]) f.add(att(v, 2, h('b2'), h('s2')));
    expect(f.finalHeight).toBe(0); // height 1 is not final yet
    for (const v of [2, 3]) f.add(att(v, 1, h('b1'), h('s1')));
    f.add(att(4, 1, h('b1'), h('wrong state'))); // a wrong state hash counts for nothing
    expect(f.finalHeight).toBe(0);
    f.add(att(1, 1, h('b1'), h('s1')));
    expect(f.finalHeight).toBe(2);
    expect(f.finalHash(1)).toBe(h('b1').toString('hex'));
  });

  it('flags a validator that signs two blocks at one height', () => {
    const f = new Finality();
    expect(f.add(att(2, 5, h('x'), h('s')))).toBeNull();
    expect(f.add(att(2, 5, h('x'), h('s')))).toBeNull(); // the same again is no fault
    expect(f.add(att(2, 5, h('y'), h('s')))).toMatchObject({ fault: 'double_sign' });
  });
});

describe('height waiters', () => {
  it('resolve when the height reaches theirs, and reject and are dropped after their timeout', async () => {
    const w = new HeightWaiters();
    const order: number[] = [];
    const a = w.wait(2, 5_000, 'late').then(() => order.push(2));
    const b = w.wait(1, 5_000, 'late').then(() => order.push(1));
    const late = w.wait(9, 20, 'not final after 20 ms');
    w.reached(1);
    await b;
    expect(order).toEqual([1]);
    w.reached(3);
    await a;
    await expect(late).rejects.toThrow('not final after 20 ms');
    await expect(w.wait(3, 1, 'x')).resolves.toBeUndefined(); // at or below the height: at once
    expect(() => w.reached(2)).toThrow(/down/);
  });
});
