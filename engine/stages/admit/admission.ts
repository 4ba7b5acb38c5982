/*
 * The admit stage's rules: what a batch must be before it may take ring slots. Pure functions of
 * the batch and the config; admit-stage.ts claims the slots. A batch that breaks a rule
 * is answered INVALID_ARGUMENT with what was wrong, and leaves no trace.
 */

import type { AckMode, EngineConfig } from '../../config.js';
import { BODY_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, SIGNED_RECORD_BYTES } from '../../core/record.js';
import type { AuthMode } from '../verify/task.js';

export interface BatchSubmission {
  mode: AuthMode;
  txs: Buffer; // packed records: SIGNED_RECORD_BYTES each (per-tx) or BODY_BYTES each (batch-signed)
  signer: Buffer | null;
  signature: Buffer | null;
  ack: AckMode;
}

export type FailureCode = 'INVALID_ARGUMENT' | 'RESOURCE_EXHAUSTED' | 'UNAVAILABLE';

/** A batch's answer: its block and one result per transaction, or why it was refused whole. */
export type BatchAnswer =
  | { ok: true; block: number; firstSeq: number; results: Uint8Array; accepted: number }
  | { ok: false; code: FailureCode; message: string };

export function recordBytes(mode: AuthMode): number {
  return mode === 'per-tx' ? SIGNED_RECORD_BYTES : BODY_BYTES;
}

/** Why a batch cannot be admitted, or null when it can. */
export function invalidBatch(batch: BatchSubmission, config: Pick<EngineConfig, 'batchTxsMax'>): string | null {
  const stride = batch.mode === 'per-tx' ? SIGNED_RECORD_BYTES : batch.mode === 'batch-signed' ? BODY_BYTES : 0;
  if (stride === 0) return `unknown auth mode ${String(batch.mode)}: use PER_TX or BATCH_SIGNED`;
  if (batch.txs.length === 0) return 'batch has no transactions';
  if (batch.txs.length % stride !== 0) {
    return `txs is ${batch.txs.length} bytes, not a multiple of the ${stride}-byte ${batch.mode} record (${batch.txs.length % stride} bytes left over)`;
  }
  const count = batch.txs.length / stride;
  if (count > config.batchTxsMax) return `batch has ${count} transactions, more than batchTxsMax ${config.batchTxsMax}`;
  if (batch.mode === 'batch-signed') {
    if (batch.signer?.length !== PUBLIC_KEY_BYTES) return `batch-signed batch needs a ${PUBLIC_KEY_BYTES}-byte signer, got ${batch.signer?.length ?? 0} bytes`;
    if (batch.signature?.length !== SIGNATURE_BYTES) return `batch-signed batch needs a ${SIGNATURE_BYTES}-byte signature, got ${batch.signature?.length ?? 0} bytes`;
  } else if ((batch.signer?.length ?? 0) > 0 || (batch.signature?.length ?? 0) > 0) {
    return 'per-tx batch must not carry a batch signer or signature (each record is signed itself)';
  }
  return null;
}
