/*
 * This machine's ceilings, measured in the same run as the figures they bound (DESIGN.md section 6):
 * Ed25519 verifies per second on one core (node:crypto, OpenSSL) and bulk SHA-256 bytes per second.
 */

import crypto from 'node:crypto';
import { BODY_BYTES } from '../engine/wire/record.js';

export interface Ceilings {
  ed25519VerifyPerSCore: number;
  sha256BytesPerS: number;
}

export function measureCeilings(seconds = 1): Ceilings {
  return { ed25519VerifyPerSCore: verifyRate(seconds), sha256BytesPerS: sha256Rate(seconds / 2) };
}

function verifyRate(seconds: number): number {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const body = crypto.randomBytes(BODY_BYTES);
  const signature = crypto.sign(null, body, privateKey);
  const until = performance.now() + seconds * 1000;
  let n = 0;
  const start = performance.now();
  while (performance.now() < until) {
    for (let i = 0; i < 64; i++) if (!crypto.verify(null, body, publicKey, signature)) throw new Error('ceiling verify failed');
    n += 64;
  }
  return n / ((performance.now() - start) / 1000);
}

function sha256Rate(seconds: number): number {
  const block = crypto.randomBytes(1 << 20);
  const until = performance.now() + seconds * 1000;
  let bytes = 0;
  const start = performance.now();
  while (performance.now() < until) {
    crypto.createHash('sha256').update(block).digest();
    bytes += block.length;
  }
  return bytes / ((performance.now() - start) / 1000);
}
