// The keys file txe keygen writes: it reads back to the same keys, and a malformed seed or a
// publicKey that is not the seed's own is refused with the field named.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateKeysFile, readKeysFile, writeKeysFile } from '../../engine/keys-file.js';

const fileIn = () => path.join(mkdtempSync(path.join(os.tmpdir(), 'txe-keys-')), 'keys.json');

describe('keys file', () => {
  it('reads back what it wrote', () => {
    const file = fileIn();
    const keys = generateKeysFile();
    writeKeysFile(file, keys);
    const read = readKeysFile(file);
    expect(read.issuer.publicKey.equals(keys.issuer.publicKey)).toBe(true);
    expect(read.signer.seed.equals(keys.signer.seed)).toBe(true);
    expect(read.secretsKey).toMatch(/^[0-9a-f]{64}$/);
    expect(read.secretsKey).toBe(keys.secretsKey);
  });

  it('refuses a malformed seed and a publicKey that is not the seed\'s', () => {
    const file = fileIn();
    writeKeysFile(file, generateKeysFile());
    const raw = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ ...raw, signer: { ...raw.signer, seed: 'abc' } }));
    expect(() => readKeysFile(file)).toThrow(/signer\.seed must be 64 hex characters/);
    writeFileSync(file, JSON.stringify({ ...raw, issuer: { ...raw.issuer, publicKey: raw.signer.publicKey } }));
    expect(() => readKeysFile(file)).toThrow(/issuer\.publicKey is not the public key of issuer\.seed/);
    writeFileSync(file, JSON.stringify({ ...raw, secretsKey: 'short' }));
    expect(() => readKeysFile(file)).toThrow(/secretsKey must be 64 hex characters/);
    const { secretsKey: _, ...older } = raw; // a file from before secretsKey still reads
    writeFileSync(file, JSON.stringify(older));
    expect(readKeysFile(file).secretsKey).toBeUndefined();
  });
});
