// Proves that the worked example in proto/README.md is true: an outside client can rely on every
// hex value there, because this test recomputes each one with the engine's own code.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { keypairFromSeed, sign } from '../../engine/core/keys.js';
import { writeBody } from '../../engine/core/record.js';
import { batchDigest } from '../../engine/core/batch.js';
import { repoRoot } from '../../engine/paths.js';

const doc = readFileSync(path.join(repoRoot, 'proto', 'README.md'), 'utf8');
const row = (label: string) => new RegExp(`\\| ${label} \\| \`([0-9a-f]+)\` \\|`).exec(doc)![1];

describe('proto/README.md worked example', () => {
  it('matches the keys, body, signatures and digest the code computes', () => {
    const alice = keypairFromSeed(Buffer.from(row('alice seed'), 'hex'));
    const bob = keypairFromSeed(Buffer.from(row('bob seed'), 'hex'));
    const signer = keypairFromSeed(Buffer.from(row('batch signer seed'), 'hex'));
    expect(alice.publicKey.toString('hex')).toBe(row('alice public key'));
    expect(bob.publicKey.toString('hex')).toBe(row('bob public key'));
    expect(signer.publicKey.toString('hex')).toBe(row('batch signer public key'));
    const body = Buffer.alloc(128);
    writeBody(body, 0, { kind: 1, sender: alice.publicKey, recipient: bob.publicKey, nonce: 1n, amount: 2500n, timestampMs: 1767225600000n, memo: Buffer.from('invoice 42') });
    const documented = /```\n([0-9a-f\n]+)```/.exec(doc)![1].replace(/\n/g, '');
    expect(body.toString('hex')).toBe(documented);
    const hexAfter = (label: string) => new RegExp(`${label}[^\`]*\`([0-9a-f]{64,128})\``).exec(doc)![1];
    expect(sign(body, alice.privateKey).toString('hex')).toBe(hexAfter('PER_TX signature'));
    const digest = batchDigest(body);
    expect(digest.toString('hex')).toBe(hexAfter('SHA-256 of the bodies is'));
    expect(sign(digest, signer.privateKey).toString('hex')).toBe(hexAfter('over that digest is'));
  });
});
