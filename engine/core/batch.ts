/*
 * Building and checking whole batches: the digest a batch signer signs, and helpers that clients,
 * tests and the load generator share. A batch-signed signature is Ed25519 over
 * SHA-256(body_0 || body_1 || ... || body_n-1).
 */

import crypto, { type KeyObject } from 'node:crypto';
import { BODY_BYTES, SIGNED_RECORD_BYTES, writeBody, type RecordFields } from './record.js';
import { sign } from './keys.js';

export function batchDigest(bodies: Uint8Array): Buffer {
  return crypto.createHash('sha256').update(bodies).digest();
}

export function signBatch(bodies: Uint8Array, key: KeyObject): Buffer {
  return sign(batchDigest(bodies), key);
}

/** Packs bare 128-byte bodies for a batch-signed submission. */
export function packBodies(records: RecordFields[]): Buffer {
  const out = Buffer.alloc(records.length * BODY_BYTES);
  records.forEach((r, i) => writeBody(out, i * BODY_BYTES, r));
  return out;
}

/** Packs 192-byte body+signature records for a per-tx submission, each signed by `keyOf(record)`. */
export function packSigned(records: RecordFields[], keyOf: (r: RecordFields) => KeyObject): Buffer {
  const out = Buffer.alloc(records.length * SIGNED_RECORD_BYTES);
  records.forEach((r, i) => {
    const at = i * SIGNED_RECORD_BYTES;
    writeBody(out, at, r);
    sign(out.subarray(at, at + BODY_BYTES), keyOf(r)).copy(out, at + BODY_BYTES);
  });
  return out;
}
