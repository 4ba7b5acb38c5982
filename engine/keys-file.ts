/*
 * The keys file that `txe keygen` writes and `txe serve` / `txe bench` read: the issuer (may mint)
 * and the trusted batch signer, each as a hex Ed25519 seed and its public key, and the key that
 * seals webhook secrets at rest (secretsKey, optional). Every reader loads the
 * seeds and derives the public keys from them (serve then uses only the public keys); a publicKey
 * field that is not the seed's own is refused, so a hand-edited file cannot say one thing and do another.
 */

import crypto from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { generateKeypair, keypairFromSeed, type Keypair } from './core/keys.js';

/** secretsKey: 32 random bytes (hex) that seal webhook secrets at rest (services/webhooks/secret-box.ts). */
export interface KeysFile { issuer: Keypair; signer: Keypair; secretsKey?: string }

export function generateKeysFile(): KeysFile {
  return { issuer: generateKeypair(), signer: generateKeypair(), secretsKey: crypto.randomBytes(32).toString('hex') };
}

export function writeKeysFile(file: string, keys: KeysFile): void {
  const out = (k: Keypair) => ({ seed: k.seed.toString('hex'), publicKey: k.publicKey.toString('hex') });
  const secrets = keys.secretsKey === undefined ? {} : { secretsKey: keys.secretsKey };
  writeFileSync(file, JSON.stringify({ issuer: out(keys.issuer), signer: out(keys.signer), ...secrets }, null, 2) + '\n', { mode: 0o600 });
}

export function readKeysFile(file: string): KeysFile {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as Record<string, { seed?: string; publicKey?: string }>;
  const load = (name: string): Keypair => {
    const seed = raw[name]?.seed;
    if (!seed || !/^[0-9a-f]{64}$/i.test(seed)) throw new Error(`${file}: ${name}.seed must be 64 hex characters`);
    const keypair = keypairFromSeed(Buffer.from(seed, 'hex'));
    const stated = raw[name]?.publicKey;
    if (stated !== undefined && stated.toLowerCase() !== keypair.publicKey.toString('hex')) {
      throw new Error(`${file}: ${name}.publicKey is not the public key of ${name}.seed (it is ${keypair.publicKey.toString('hex')})`);
    }
    return keypair;
  };
  const secretsKey = (raw as Record<string, unknown>).secretsKey;
  if (secretsKey !== undefined && (typeof secretsKey !== 'string' || !/^[0-9a-f]{64}$/i.test(secretsKey))) throw new Error(`${file}: secretsKey must be 64 hex characters (32 bytes)`);
  return { issuer: load('issuer'), signer: load('signer'), ...(secretsKey === undefined ? {} : { secretsKey }) };
}

/** An approver's key file (`txe keygen --approver`): one Ed25519 key that signs votes. */
export function writeApproverFile(file: string, key: Keypair): void {
  writeFileSync(file, JSON.stringify({ approver: { seed: key.seed.toString('hex'), publicKey: key.publicKey.toString('hex') } }, null, 2) + '\n', { mode: 0o600 });
}

export function readApproverFile(file: string): Keypair {
  const seed = (JSON.parse(readFileSync(file, 'utf8')) as { approver?: { seed?: string } }).approver?.seed;
  if (!seed || !/^[0-9a-f]{64}$/i.test(seed)) throw new Error(`${file}: approver.seed must be 64 hex characters (write one with txe keygen --approver)`);
  return keypairFromSeed(Buffer.from(seed, 'hex'));
}
