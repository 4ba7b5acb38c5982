/* The messages between the verify stage (main thread) and the verify workers. */

import type { RingBuffers } from '../../ring/input-ring.js';
import type { BatchRingBuffers } from '../../ring/batch-ring.js';

export type AuthMode = 'per-tx' | 'batch-signed';

export interface VerifyWorkerData {
  ring: RingBuffers;
  batches: BatchRingBuffers;
  issuers: SharedArrayBuffer; // the issuer table (issuer-table.ts): the keys allowed to mint now
  keyCacheEntriesMax: number;
  nice: number; // the worker's own nice value (Linux), 0: left as it is
}

/** A claimed, contiguous cursor range; the worker owns its slots until it resolves. */
export interface VerifyTask {
  batchSlot: number; // the batch's descriptor in the batch ring: the last task of a batch marks it verified
  start: number;
  count: number;
  mode: AuthMode;
  signer: Uint8Array | null; // batch-signed only: the trusted submitter's public key
  signature: Uint8Array | null; // batch-signed only: Ed25519 over SHA-256 of the bodies
}
