/*
 * The admit stage, on the main thread: a batch that passes the rules (admission.ts) and fits takes
 * input-ring slots, its records are copied in, a batch-ring slot is filled, and the batchesAdmitted
 * cursor moves on; the verify stage is started on it. Everything else is answered at once:
 * INVALID_ARGUMENT (the batch breaks a rule), UNAVAILABLE (durable storage failing, or shutting
 * down), RESOURCE_EXHAUSTED (the rings or the in-flight queue are full), or unauthorized_signer
 * results (an untrusted batch signer), and leaves no trace.
 * Cost: one ~1 MB copy into the ring a full batch (~0.3 ms), a few cursor writes.
 */

import { entrySlotsReserved, type AckMode, type EngineConfig } from '../../config.js';
import { BODY_BYTES } from '../../core/record.js';
import { VERDICT_VALID } from '../../core/verdict.js';
import type { RotatingKeys } from '../../core/rotating-keys.js';
import type { InputRing } from '../../ring/input-ring.js';
import type { BatchRing } from '../../ring/batch-ring.js';
import type { PipelineCursors } from '../../ring/shared-memory.js';
import type { Answers } from '../answer/answers.js';
import type { VerifyStage } from '../verify/verify-stage.js';
import { invalidBatch, recordBytes, type BatchAnswer, type BatchSubmission, type FailureCode } from './admission.js';

// Room kept for engine entries (approval decisions): one in-flight batch, and the ring slots of
// config.ts entrySlotsReserved.
const ENTRY_BATCHES_RESERVED = 1;

export interface AdmitStageParts {
  ring: InputRing;
  batches: BatchRing;
  cursors: PipelineCursors;
  answers: Answers;
  verifyStage: VerifyStage;
  trusted: RotatingKeys;
  closing: () => boolean;
  fatal: (error: Error) => void;
}

export class AdmitStage {
  constructor(private readonly config: EngineConfig, private readonly p: AdmitStageParts) {}

  /** Admits a batch or answers at once; never throws for bad input. */
  submit(batch: BatchSubmission): Promise<BatchAnswer> {
    const { ring, answers } = this.p;
    const invalid = invalidBatch(batch, this.config);
    if (invalid !== null) return this.refuse('INVALID_ARGUMENT', invalid);
    const down = this.unavailable();
    if (down !== null) return this.refuse('UNAVAILABLE', down);
    const stride = recordBytes(batch.mode);
    const count = batch.txs.length / stride;
    if (batch.mode === 'batch-signed' && !this.p.trusted.has(batch.signer!, 0)) return Promise.resolve(answers.unauthorized(count));
    // Client batches leave room for engine entries (approval decisions), so holds are decided and
    // expired even while clients keep the engine at capacity.
    const full = this.fullFor(count, ENTRY_BATCHES_RESERVED, entrySlotsReserved(this.config));
    if (full !== null) return this.refuse('RESOURCE_EXHAUSTED', `engine is at capacity: ${full}; retry with backoff`);
    const start = ring.tryClaim(count);
    ring.writeBodies(start, batch.txs, count, stride);
    if (batch.mode === 'per-tx') ring.writeSignatures(start, batch.txs, count, stride, BODY_BYTES);
    // Copies, not views: the request's buffers are grpc-js's and the batch outlives the call.
    ring.noteAuth(start, batch.mode === 'per-tx' ? { mode: 'per-tx' } : { mode: 'batch-signed', signer: Buffer.from(batch.signer!), signature: Buffer.from(batch.signature!) });
    answers.countBytes(batch.txs.length);
    const { slot, answer } = this.publish(start, count, batch.ack, this.p.verifyStage.tasksFor(count, batch.mode), false);
    this.p.verifyStage.verify(slot, start, count, batch.mode, batch.signer, batch.signature)
      .catch((error: Error) => this.p.fatal(new Error(`verify worker failed on ring slots [${start}, ${start + count}): ${error.message}`)));
    return answer;
  }

  /**
   * Admits entries the engine wrote itself (approval decisions, core/decision.ts): 128-byte
   * bodies that skip the verify workers but take the same rings, order and bounds as any batch, so
   * they are sequenced between client batches exactly where they arrived.
   */
  submitEntries(bodies: Buffer, ack: AckMode): Promise<BatchAnswer> {
    const { ring } = this.p;
    const count = bodies.length / BODY_BYTES;
    if (!Number.isInteger(count) || count < 1 || count > this.config.batchTxsMax) throw new Error(`engine entries: ${bodies.length} bytes is not 1..batchTxsMax bodies`);
    const down = this.unavailable();
    if (down !== null) return this.refuse('UNAVAILABLE', down);
    if (this.fullFor(count, 0, 0) !== null) return this.refuse('RESOURCE_EXHAUSTED', 'engine is at capacity; the decision is retried');
    const start = ring.tryClaim(count);
    ring.writeBodies(start, bodies, count, BODY_BYTES);
    for (let i = 0; i < count; i++) Atomics.store(ring.verdicts, (start + i) & ring.mask, VERDICT_VALID);
    return this.publish(start, count, ack, 0, true).answer;
  }

  /** Fills the next batch-ring slot and moves the batchesAdmitted cursor: the hand-off downstream. */
  private publish(start: number, count: number, ack: AckMode, tasks: number, verified: boolean): { slot: number; answer: Promise<BatchAnswer> } {
    const { batches, cursors } = this.p;
    const batchNumber = cursors.batchesAdmitted.value;
    const answer = this.p.answers.admit(start, count, ack);
    batches.admit(batchNumber, start, count, tasks, verified);
    cursors.batchesAdmitted.publish(batchNumber + 1);
    return { slot: batchNumber & batches.mask, answer };
  }

  private unavailable(): string | null {
    if (this.p.closing()) return 'engine is shutting down';
    const fenced = this.p.answers.fenced;
    if (fenced !== null) return `${fenced.message}; submit to the engine that writes this history now`;
    const error = this.p.answers.sinkError;
    if (error === null) return null;
    return `durable storage is failing (${error.message}); the engine retries every ${this.p.answers.sinkRetryMs} ms and keeps every acknowledged batch; resubmit later`;
  }

  /** Why a batch of `count` records does not fit now, leaving the given reserves free; null if it fits. */
  private fullFor(count: number, batchesReserved: number, slotsReserved: number): string | null {
    const { answers, batches, cursors, ring } = this.p;
    const batchesMax = Math.min(answers.capacity, batches.slotsCount) - batchesReserved;
    const batchesUsed = cursors.batchesAdmitted.value - cursors.batchesSequenced.value;
    if (answers.inFlight >= batchesMax || batchesUsed >= batchesMax) {
      return `${answers.inFlight} batches in flight (max ${batchesMax} for clients)`;
    }
    if (count > ring.slotsFree - slotsReserved) {
      return `input ring has ${ring.slotsFree} of ${ring.slotsCount} slots free, batch needs ${count}${slotsReserved > 0 ? ` (${slotsReserved} are kept for approval decisions)` : ''}`;
    }
    return null;
  }

  private refuse(code: FailureCode, message: string): Promise<BatchAnswer> {
    return Promise.resolve(this.p.answers.refused(code, message));
  }
}
