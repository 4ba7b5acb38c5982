/*
 * Attestations (issue 13): a validator's Ed25519-signed statement of (height, block hash, state
 * hash, term), a txe.v1.Attestation (proto/txe/v1/cluster.proto) on the attestations topic. ~180 B
 * a record, one per validator per block: at 15 full blocks/s that is 11 KB/s, nothing next to the
 * blocks. Signing costs ~30 µs, checking ~75 µs: 4 validators × 4 checks a block, ~1 ms/s at 15
 * blocks/s, ~0.3 core at the 1,000 small blocks/s of a latency run.
 */

import path from 'node:path';
import crypto, { type KeyObject } from 'node:crypto';
import protobuf from 'protobufjs';
import { protoRoot } from '../paths.js';
import { u64ToNumber, type U64 } from '../core/proto.js';
import { HASH_BYTES } from '../core/block.js';

export const CLUSTER_PROTO = path.join(protoRoot, 'txe', 'v1', 'cluster.proto');
const root = protobuf.loadSync(CLUSTER_PROTO);
export const ClusterTypes = {
  Attestation: root.lookupType('txe.v1.Attestation'),
  ClusterStatusRequest: root.lookupType('txe.v1.ClusterStatusRequest'),
  ValidatorStatus: root.lookupType('txe.v1.ValidatorStatus'),
  AttestReply: root.lookupType('txe.v1.AttestReply'),
};
const DOMAIN = Buffer.from('txe/attestation/v1');
const SIGNATURE_BYTES = 64;

export interface Attestation { validator: number; height: number; blockHash: Buffer; stateHash: Buffer; term: number; signature: Buffer }

function signedBytes(a: Omit<Attestation, 'signature'>): Buffer {
  const head = Buffer.allocUnsafe(20);
  head.writeUInt32LE(a.validator, 0);
  head.writeBigUInt64LE(BigInt(a.height), 4);
  head.writeBigUInt64LE(BigInt(a.term), 12);
  return Buffer.concat([DOMAIN, head, a.blockHash, a.stateHash]);
}

export function signAttestation(a: Omit<Attestation, 'signature'>, key: KeyObject): Attestation {
  return { ...a, signature: crypto.sign(null, signedBytes(a), key) };
}

export function attestationValid(a: Attestation, key: KeyObject): boolean {
  return a.signature.length === SIGNATURE_BYTES && crypto.verify(null, signedBytes(a), key, a.signature);
}

export function encodeAttestation(a: Attestation): Buffer {
  const bytes = ClusterTypes.Attestation.encode(a).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** Decodes one record; a malformed one is somebody's fault, answered with the reason. */
export function decodeAttestation(buf: Buffer): Attestation | string {
  let wire: { validator: number; height: U64; blockHash: Buffer; stateHash: Buffer; term: U64; signature: Buffer };
  try {
    wire = ClusterTypes.Attestation.decode(buf) as unknown as typeof wire;
  } catch (error) {
    return `not a txe.v1.Attestation: ${(error as Error).message}`;
  }
  const a: Attestation = { validator: wire.validator, height: u64ToNumber(wire.height), blockHash: wire.blockHash, stateHash: wire.stateHash, term: u64ToNumber(wire.term), signature: wire.signature };
  if (a.blockHash?.length !== HASH_BYTES || a.stateHash?.length !== HASH_BYTES) return 'a hash is not 32 bytes';
  if (!(a.height >= 1)) return `height ${a.height} is not >= 1`;
  return a;
}
