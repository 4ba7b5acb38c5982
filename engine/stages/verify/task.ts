/* The messages between the verify stage (main thread) and the verify workers. */

import type { RingBuffers } from '../../ring/input-ring.js';

export type AuthMode = 'per-tx' | 'batch-signed';

export interface VerifyWorkerData {
  ring: RingBuffers;
  issuers: string[]; // hex public keys allowed to mint
  keyCacheEntriesMax: number;
}

/** A claimed, contiguous cursor range; the worker owns its slots until it resolves. */
export interface VerifyTask {
  start: number;
  count: number;
  mode: AuthMode;
  signer: Uint8Array | null; // batch-signed only: the trusted submitter's public key
  signature: Uint8Array | null; // batch-signed only: Ed25519 over SHA-256 of the bodies
}

export interface VerifyTaskResult {
  valid: number;
  digest: Uint8Array | null; // batch-signed: SHA-256 of the bodies, reused by the block hash
}
