/*
 * Ed25519 keys as raw 32-byte values (what the wire carries) and as node:crypto KeyObjects (what
 * OpenSSL verifies with). Building a KeyObject costs more than a verify, so verifiers cache them.
 */

import crypto, { type KeyObject } from 'node:crypto';
import { PUBLIC_KEY_BYTES } from './record.js';

const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
export const SEED_BYTES = 32;

/** Whether `value` is a 32-byte public key written as 64 hex digits (config, keys files, certificates). */
export function isPublicKeyHex(value: string): boolean {
  return /^[0-9a-f]{64}$/i.test(value);
}

/**
 * A verifying KeyObject from a raw 32-byte public key. Imported as a JWK, which OpenSSL 3 builds
 * straight from the raw bytes: ~5 µs here, against ~62 µs for the same key as SPKI DER, whose
 * decoder also takes global locks: with 16 verify workers each decoding every sender's key, DER
 * import cut per-tx throughput from 26k to 11k TPS (bench/RESULTS.md, scaling run).
 */
export function publicKeyObject(raw: Uint8Array): KeyObject {
  if (raw.length !== PUBLIC_KEY_BYTES) throw new Error(`public key must be 32 bytes, got ${raw.length}`);
  const x = Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('base64url');
  return crypto.createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
}

export function privateKeyFromSeed(seed: Uint8Array): KeyObject {
  if (seed.length !== SEED_BYTES) throw new Error(`private key seed must be 32 bytes, got ${seed.length}`);
  return crypto.createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
}

export function rawPublicKey(key: KeyObject): Buffer {
  const der = key.type === 'private' ? crypto.createPublicKey(key).export({ format: 'der', type: 'spki' })
    : key.export({ format: 'der', type: 'spki' });
  return Buffer.from(der.subarray(der.length - PUBLIC_KEY_BYTES));
}

export function seedOf(key: KeyObject): Buffer {
  const der = key.export({ format: 'der', type: 'pkcs8' });
  return Buffer.from(der.subarray(der.length - SEED_BYTES));
}

export interface Keypair { seed: Buffer; publicKey: Buffer; privateKey: KeyObject }

export function keypairFromSeed(seed: Uint8Array): Keypair {
  const privateKey = privateKeyFromSeed(seed);
  return { seed: Buffer.from(seed), publicKey: rawPublicKey(privateKey), privateKey };
}

export function generateKeypair(): Keypair {
  return keypairFromSeed(crypto.randomBytes(SEED_BYTES));
}

/** A deterministic keypair from a label, for tests, examples and benchmarks only. */
export function keypairFromLabel(label: string): Keypair {
  return keypairFromSeed(crypto.createHash('sha256').update(label).digest());
}

export function sign(message: Uint8Array, key: KeyObject): Buffer {
  return crypto.sign(null, message, key);
}

/** A bounded cache of verifying KeyObjects by raw key; cleared whole when full (simple, O(1)). */
export class PublicKeyCache {
  private readonly keys = new Map<string, KeyObject>();
  constructor(private readonly entriesMax: number) {}

  get(raw: Uint8Array): KeyObject | null {
    const id = Buffer.from(raw.buffer, raw.byteOffset, raw.length).toString('latin1');
    let key = this.keys.get(id);
    if (key) return key;
    try {
      key = publicKeyObject(raw);
    } catch {
      return null; // Not a valid curve point: the signature check fails as bad_signature.
    }
    if (this.keys.size >= this.entriesMax) this.keys.clear();
    this.keys.set(id, key);
    return key;
  }
}
