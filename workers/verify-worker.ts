/*
 * A verify worker (piscina). Each task names a claimed range of the input ring; the worker reads
 * the records in place, checks structure and signatures, and stores one verdict byte per slot with
 * Atomics.store, so the sequencer on the main thread sees every verdict once the task resolves.
 *
 * Cost per record: per-tx ~75 µs (one Ed25519 verify, OpenSSL); batch-signed ~0.1 µs (SHA-256 of
 * 128 B at 1.67 GB/s plus the structure checks) and one verify per batch.
 */

import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import { workerData } from 'node:worker_threads';
import { BODY_BYTES, OFFSET_SENDER, SIGNATURE_BYTES } from '../engine/core/record.js';
import { Result } from '../engine/core/result.js';
import { PublicKeyCache } from '../engine/core/keys.js';
import { CHECK_VALID, checkBody, type KeySet } from '../engine/core/checks.js';
import { IssuerTable } from '../engine/stages/verify/issuer-table.js';
import { VERDICT_REJECTED_FLAG, VERDICT_UNVERIFIED, VERDICT_VALID } from '../engine/core/verdict.js';
import { bodiesDigest } from '../engine/ring/input-ring.js';
import { BatchRing } from '../engine/ring/batch-ring.js';
import type { VerifyTask, VerifyWorkerData } from '../engine/stages/verify/task.js';

const data = workerData as VerifyWorkerData;
if (data.nice > 0) lowerPriority(data.nice);
const slotsCount = data.ring.slotsCount;
const bodies = Buffer.from(data.ring.bodies);
const words = new Uint32Array(data.ring.bodies);
const signatures = Buffer.from(data.ring.signatures);
const verdicts = new Uint8Array(data.ring.verdicts);
const issuerTable = new IssuerTable(data.issuers);
const keyCache = new PublicKeyCache(data.keyCacheEntriesMax);
const batches = new BatchRing(data.batches);

export default function verify(task: VerifyTask): void {
  batches.checkTask(task.batchSlot, task.start, task.count);
  const issuers = issuerTable.current(); // rotated on SIGHUP: the table as it is at this task
  const digest = task.mode === 'batch-signed' ? verifyBatchSigned(task, issuers) : verifyPerTx(task, issuers);
  batches.finishTask(task.batchSlot, digest);
}

/** Stores a slot's verdict; a slot is judged once, so it must still be unverified. */
function storeVerdict(slot: number, code: number): void {
  if (Atomics.load(verdicts, slot) !== VERDICT_UNVERIFIED) throw new Error(`ring slot ${slot} was verified twice`);
  Atomics.store(verdicts, slot, code === CHECK_VALID ? VERDICT_VALID : VERDICT_REJECTED_FLAG | code);
}

function verifyPerTx(task: VerifyTask, issuers: KeySet): null {
  for (let i = 0; i < task.count; i++) {
    const slot = (task.start + i) & (slotsCount - 1);
    const at = slot * BODY_BYTES;
    let code = checkBody(words, bodies, at, issuers);
    if (code === CHECK_VALID && !signatureValid(at, slot)) code = Result.bad_signature;
    storeVerdict(slot, code);
  }
  return null;
}

function signatureValid(at: number, slot: number): boolean {
  const key = keyCache.get(bodies.subarray(at + OFFSET_SENDER, at + OFFSET_SENDER + 32));
  if (key === null) return false;
  const signature = signatures.subarray(slot * SIGNATURE_BYTES, (slot + 1) * SIGNATURE_BYTES);
  return crypto.verify(null, bodies.subarray(at, at + BODY_BYTES), key, signature);
}

function verifyBatchSigned(task: VerifyTask, issuers: KeySet): Buffer {
  const digest = bodiesDigest(bodies, task.start, task.count, slotsCount);
  const signer = keyCache.get(task.signer!);
  const signatureOk = signer !== null && crypto.verify(null, digest, signer, task.signature!);
  for (let i = 0; i < task.count; i++) {
    const slot = (task.start + i) & (slotsCount - 1);
    storeVerdict(slot, signatureOk ? checkBody(words, bodies, slot * BODY_BYTES, issuers) : Result.bad_signature);
  }
  return digest;
}

/**
 * This thread's nice value, and only this thread's: Linux applies setpriority to the thread id it is
 * given, which /proc/thread-self names. Elsewhere the worker keeps the priority it started with. An
 * engine started nicer than `nice` (nice -n 10 txe serve) keeps its workers there: going back up
 * needs privileges, and without them setpriority would throw and the worker would not start.
 */
function lowerPriority(nice: number): void {
  let threadId: number;
  try {
    threadId = Number(fs.readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return; // no /proc: not Linux
  }
  if (os.getPriority(threadId) < nice) os.setPriority(threadId, nice);
}
