// Proves that the worked example in proto/README.md is true: an outside client can rely on every
// hex value there, because this test reads each one out of the README and recomputes it with the
// engine's own code: keys, bodies, signatures, the batch digest, and block 1 as the real stateless
// checks and sequencer cut it, down to the bytes hashed and the block hash.
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { keypairFromSeed, sign } from '../../engine/core/keys.js';
import { BODY_BYTES, KIND_MINT, KIND_TRANSFER, writeBody } from '../../engine/core/record.js';
import { batchDigest } from '../../engine/core/batch.js';
import { CHECK_VALID, KeySet, checkBody } from '../../engine/core/checks.js';
import { GENESIS_HASH, blockHash } from '../../engine/core/block.js';
import { Sequencer } from '../../engine/core/sequencer.js';
import { InputRing, VERDICT_REJECTED_FLAG, VERDICT_VALID, createRingBuffers } from '../../engine/ring/input-ring.js';
import { repoRoot } from '../../engine/paths.js';

const doc = readFileSync(path.join(repoRoot, 'proto', 'README.md'), 'utf8');

/** The README from `heading` to the next heading of any level. */
function section(heading: string): string {
  const at = doc.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`proto/README.md has no "${heading}" heading`);
  const end = doc.indexOf('\n#', at + heading.length + 2);
  return doc.slice(at, end < 0 ? undefined : end);
}

/** The value of a table row `| label | \`value\` |`. */
function row(text: string, label: string): string {
  const match = new RegExp(`\\| ${label} \\| \`([0-9a-f]+)\` \\|`).exec(text);
  if (!match) throw new Error(`no row "${label}" in the worked example`);
  return match[1];
}

/** The lines of the first hex code block after `after`. */
function fence(text: string, after: string): string[] {
  const at = text.indexOf(after);
  const match = at < 0 ? null : /```\n([0-9a-f\n]+)```/.exec(text.slice(at));
  if (!match) throw new Error(`no hex code block after "${after}" in the worked example`);
  return match[1].trim().split('\n');
}

/** The backquoted hex that follows `label` in running text. */
function hexAfter(text: string, label: string, length: number): string {
  const match = new RegExp(`${label}[^\`]*\`([0-9a-f]{${length}})\``).exec(text);
  if (!match) throw new Error(`no ${length}-digit hex value after "${label}" in the worked example`);
  return match[1];
}

const example = section('## Worked example');
const ofBlock = section('### A block');
const keypair = (name: string) => {
  const key = keypairFromSeed(Buffer.from(row(example, `${name} seed`), 'hex'));
  expect(key.publicKey.toString('hex')).toBe(row(example, `${name} public key`));
  return key;
};
const TIMESTAMP_MS = 1767225600000n; // 2026-01-01T00:00:00Z, as the README says

function transferBody(): Buffer {
  const body = Buffer.alloc(BODY_BYTES);
  writeBody(body, 0, { kind: KIND_TRANSFER, sender: keypair('alice').publicKey, recipient: keypair('bob').publicKey, nonce: 1n, amount: 2500n, timestampMs: TIMESTAMP_MS, memo: Buffer.from('invoice 42') });
  return body;
}

/** Cuts one block from `bodies` on a fresh engine state, as the verify workers and the sequencer do. */
function sequenceFresh(bodies: Buffer, issuerKey: Buffer) {
  const count = bodies.length / BODY_BYTES;
  const issuers = new KeySet([issuerKey]);
  const words = new Uint32Array(bodies.buffer, bodies.byteOffset, bodies.length / 4);
  const ring = new InputRing(createRingBuffers(16));
  const start = ring.tryClaim(count);
  ring.writeBodies(start, bodies, count, BODY_BYTES);
  for (let i = 0; i < count; i++) {
    const code = checkBody(words, bodies, i * BODY_BYTES, issuers);
    Atomics.store(ring.verdicts, (start + i) & ring.mask, code === CHECK_VALID ? VERDICT_VALID : VERDICT_REJECTED_FLAG | code);
  }
  const sequencer = new Sequencer({ accountsMax: 8, issuers: [issuerKey], approvalPolicies: [], approvalsPendingMax: 1 });
  return sequencer.sequenceBatch(ring, start, count, batchDigest(bodies));
}

const u64le = (n: number) => { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); return b.toString('hex'); };
const u32le = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n); return b.toString('hex'); };

describe('proto/README.md worked example', () => {
  it('matches the keys, body, signatures and digest the code computes', () => {
    const alice = keypair('alice');
    const signer = keypair('batch signer');
    const body = transferBody();
    expect(body.toString('hex')).toBe(fence(example, 'The transaction: alice transfers 2500 to bob').join(''));
    expect(sign(body, alice.privateKey).toString('hex')).toBe(hexAfter(example, 'PER_TX signature', 128));
    const digest = batchDigest(body);
    expect(digest.toString('hex')).toBe(hexAfter(example, 'SHA-256 of the bodies is', 64));
    expect(sign(digest, signer.privateKey).toString('hex')).toBe(hexAfter(example, 'over that digest is', 128));
  });

  it('matches block 1 as the engine cuts it: fields, the bytes hashed and the hash', () => {
    const issuer = keypair('issuer');
    const mint = Buffer.alloc(BODY_BYTES);
    writeBody(mint, 0, { kind: KIND_MINT, sender: issuer.publicKey, recipient: keypair('alice').publicKey, nonce: 1n, amount: 10000n, timestampMs: TIMESTAMP_MS });
    expect(mint.toString('hex')).toBe(fence(ofBlock, "The mint's 128-byte body").join(''));

    const transfer = transferBody();
    const block = sequenceFresh(Buffer.concat([mint, transfer, transfer]), issuer.publicKey);
    expect([block.number, block.firstSeq, block.entries, block.txs]).toEqual(['number', 'first_seq', 'entries', 'txs'].map((f) => Number(row(ofBlock, f))));
    expect(block.prevHash.toString('hex')).toBe(row(ofBlock, 'prev_hash'));
    expect(block.bodiesDigest.toString('hex')).toBe(row(ofBlock, 'bodies_digest'));
    expect(Buffer.from(block.results).toString('hex')).toBe(row(ofBlock, 'results'));

    // The bytes hashed, rebuilt field by field from the documented layout, as a client would.
    const hashed = fence(ofBlock, 'The bytes hashed');
    expect(hashed).toEqual([
      Buffer.from('txe/block/v1', 'ascii').toString('hex'), row(ofBlock, 'prev_hash'), u64le(block.number), u64le(block.firstSeq),
      u32le(block.entries), u32le(block.txs), row(ofBlock, 'bodies_digest'), row(ofBlock, 'results'),
    ]);
    const preimage = Buffer.from(hashed.join(''), 'hex');
    expect(preimage.length).toBe(100 + block.txs);
    const documented = hexAfter(ofBlock, "Block 1's hash", 64);
    expect(crypto.createHash('sha256').update(preimage).digest('hex')).toBe(documented);
    expect(block.hash.toString('hex')).toBe(documented);
    expect(blockHash(GENESIS_HASH, 1, 1, 2, block.results, block.bodiesDigest).toString('hex')).toBe(documented);
  });
});
