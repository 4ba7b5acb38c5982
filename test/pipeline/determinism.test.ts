// Randomized property test of the whole pipeline (ring → real verify workers → sequencer), no
// transport. For seeded random streams of mints and transfers, in both auth modes, with bad
// nonces, overdrafts, zero amounts, malformed records, bad signatures and mints by non-issuers:
//   - every result equals the reference model's (test/support/model.ts);
//   - money is conserved and every account's state equals the model's;
//   - each sender's accepted nonces are exactly 1..n in seq order;
//   - runs with different worker counts and task sizes (so tasks finish in different orders)
//     produce identical block hashes.
import { describe, expect, it } from 'vitest';
import { Pipeline, type BatchAnswer } from '../../engine/pipeline.js';
import { KIND_MINT, KIND_TRANSFER, type RecordFields } from '../../engine/core/record.js';
import { Result } from '../../engine/core/result.js';
import { readBody } from '../../engine/core/record.js';
import { globalPolicy, issuer, perTxBatch, signedBatch, testConfig, user } from '../support/fixtures.js';
import { Model } from '../support/model.js';
import type { Keypair } from '../../engine/core/keys.js';

const THRESHOLD = 900n;
const users: Keypair[] = Array.from({ length: 8 }, (_, i) => user(`p${i}`));

function prng(seed: number) {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0; s = (s ^ (s >>> 13)) >>> 0; return s / 2 ** 32; };
}

interface Planned { mode: 'per-tx' | 'batch-signed'; submission: ReturnType<typeof signedBatch> | ReturnType<typeof perTxBatch>; expected: number[]; records: RecordFields[] }

/** Builds batches and their expected results, driving the generator from the model's state. */
function plan(seed: number, batches: number): { planned: Planned[]; model: Model } {
  const rand = prng(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rand() * xs.length)];
  const model = new Model([issuer.publicKey], THRESHOLD, 1 << 12);
  const planned: Planned[] = [];
  for (let b = 0; b < batches; b++) {
    const mode = rand() < 0.5 ? 'per-tx' as const : 'batch-signed' as const;
    const records: RecordFields[] = [];
    const verdicts: (number | null)[] = [];
    const size = 1 + Math.floor(rand() * 150);
    const nextNonce = new Map<string, bigint>();
    const nonceOf = (k: Buffer) => nextNonce.get(k.toString('hex')) ?? (model.account(k)?.nonce ?? 0n) + 1n;
    for (let i = 0; i < size; i++) {
      const isMint = mode === 'batch-signed' && rand() < 0.3;
      const from = isMint ? issuer : pick(users);
      const to = pick(users).publicKey;
      let nonce = nonceOf(from.publicKey);
      const roll = rand();
      if (roll < 0.08) nonce += 1n + BigInt(Math.floor(rand() * 3)); // gap
      else if (roll < 0.12 && nonce > 1n) nonce -= 1n; // replay
      else nextNonce.set(from.publicKey.toString('hex'), nonce + 1n);
      const amount = isMint ? BigInt(1 + Math.floor(rand() * 5000)) : BigInt(Math.floor(rand() * 1200));
      const r: RecordFields = { kind: isMint ? KIND_MINT : KIND_TRANSFER, sender: from.publicKey, recipient: to, nonce, amount, timestampMs: BigInt(b) };
      let verdict: number | null = amount === 0n ? Result.invalid_amount : null;
      const fault = rand();
      if (verdict === null && fault < 0.03) { r.kind = 7; verdict = Result.malformed; }
      else if (verdict === null && fault < 0.05 && mode === 'batch-signed') { r.kind = KIND_MINT; r.sender = from.publicKey.equals(issuer.publicKey) ? users[0].publicKey : from.publicKey; verdict = Result.not_issuer; }
      records.push(r);
      verdicts.push(verdict);
    }
    let submission = mode === 'per-tx' ? perTxBatch(records, users) : signedBatch(records);
    if (mode === 'per-tx') {
      for (let i = 0; i < size; i++) if (verdicts[i] === null && rand() < 0.05) { submission.txs[i * 192 + 130] ^= 0xff; verdicts[i] = Result.bad_signature; }
    } else if (rand() < 0.05) {
      submission = { ...submission, signature: Buffer.from((submission as ReturnType<typeof signedBatch>).signature).fill(1, 0, 8) } as Planned['submission'];
      verdicts.fill(Result.bad_signature);
    }
    const expected = records.map((r, i) => model.apply(r, verdicts[i]));
    planned.push({ mode, submission, expected, records });
  }
  return { planned, model };
}

async function runThrough(planned: Planned[], workers: number, perTxTaskTxsMax: number) {
  const pipeline = new Pipeline(testConfig({ workers, perTxTaskTxsMax, approvalPolicies: [globalPolicy(THRESHOLD)], invariantCheckEveryBlocks: 1 }));
  try {
    // Submit everything at once so verification overlaps and finishes out of order.
    const answers: BatchAnswer[] = await Promise.all(planned.map((p) => pipeline.submit({ mode: p.mode, txs: p.submission.txs, signer: 'signer' in p.submission ? p.submission.signer : null, signature: 'signature' in p.submission ? p.submission.signature : null, ack: 'ordered' })));
    const history = pipeline.history;
    return { history, state: await pipeline.inspect(), answers, hashes: [pipeline.head.hash.toString('hex'), pipeline.head.block] };
  } finally {
    await pipeline.close();
  }
}

describe('pipeline determinism and invariants', () => {
  it.each([1, 2, 3])('seed %i: results match the model, money is conserved, nonces contiguous, hashes independent of timing', async (seed) => {
    const { planned, model } = plan(seed, 40);
    const a = await runThrough(planned, 2, 64);
    a.answers.forEach((answer, i) => {
      expect(answer.ok, JSON.stringify(answer)).toBe(true);
      if (answer.ok) expect(Array.from(answer.results), `batch ${i}`).toEqual(planned[i].expected);
    });
    const seq = a.state;
    seq.checkInvariants();
    expect(a.hashes).toEqual([seq.lastBlockHash.toString('hex'), seq.blocksCount]);
    let modelSupply = 0n;
    for (const [hex, acct] of model.accounts) {
      const i = seq.accounts.findKey(Buffer.from(hex, 'hex'));
      expect(i, hex).toBeGreaterThanOrEqual(0);
      expect(seq.accounts.state(i)).toEqual({ balance: acct.balance, held: acct.held, nonce: acct.nonce });
      modelSupply += acct.balance;
    }
    expect(seq.supply).toBe(modelSupply);
    const lastNonce = new Map<string, bigint>();
    for (let s = 1; s < seq.nextSeq; s++) {
      const body = readBody(a.history.get(s)!.body);
      const key = body.sender.toString('hex');
      expect(body.nonce).toBe((lastNonce.get(key) ?? 0n) + 1n);
      lastNonce.set(key, body.nonce);
    }
    expect(planned.some((p) => p.expected.includes(Result.bad_signature))).toBe(true);
    expect(planned.some((p) => p.expected.includes(Result.pending_approval))).toBe(true);
    const b = await runThrough(planned, 1, 512);
    const c = await runThrough(planned, 3, 64);
    expect(b.hashes).toEqual(a.hashes);
    expect(c.hashes).toEqual(a.hashes);
  });
});
