/*
 * The verify stage on the main thread: turns each claimed batch into piscina tasks that name ring
 * slot ranges. Batch-signed batches are one task (the signature covers all bodies); per-tx batches
 * are split into chunks so every worker gets a share. A piscina round trip costs ~47 µs, so a task
 * must carry at least tens of per-tx records or a whole batch-signed batch to amortise it.
 */

import os from 'node:os';
import { Piscina } from 'piscina';
import type { InputRing } from '../../ring/input-ring.js';
import { distFile } from '../../paths.js';
import type { AuthMode, VerifyTask, VerifyTaskResult, VerifyWorkerData } from './task.js';

// Below this a per-tx task's ~47 µs piscina round trip starts to cost more than 1% of its verifies.
const PER_TX_TASK_TXS_MIN = 64;

export interface VerifyStageOptions {
  workers: number;
  batchesInFlightMax: number;
  perTxTaskTxsMax: number;
  issuers: string[];
  keyCacheEntriesMax: number;
}

export class VerifyStage {
  private readonly pool: Piscina;
  readonly workers: number;

  constructor(private readonly ring: InputRing, private readonly options: VerifyStageOptions) {
    this.workers = options.workers;
    const workerData: VerifyWorkerData = {
      ring: ring.buffers,
      issuers: options.issuers,
      keyCacheEntriesMax: options.keyCacheEntriesMax,
    };
    this.pool = new Piscina({
      filename: distFile('workers/verify-worker.js'),
      minThreads: options.workers,
      maxThreads: options.workers,
      idleTimeout: Number.POSITIVE_INFINITY,
      // The ring and the in-flight queue bound the work: every task but a batch's last covers
      // PER_TX_TASK_TXS_MIN claimed slots or more, so at most this many tasks can be queued.
      maxQueue: Math.ceil(ring.slotsCount / PER_TX_TASK_TXS_MIN) + options.batchesInFlightMax,
      concurrentTasksPerWorker: 1,
      workerData,
      // piscina loads a task file with require() first. On Node 20.19+ that is require(esm), which
      // once aborted the whole process on a V8 assertion (CreateRequiredModuleFacade) in CI. With
      // it off, require throws ERR_REQUIRE_ESM and piscina falls back to import().
      execArgv: [...process.execArgv, '--no-experimental-require-module'],
    });
  }

  /** Verifies a claimed range; resolves with the batch digest (batch-signed) once every verdict is stored. */
  async verify(start: number, count: number, mode: AuthMode, signer: Uint8Array | null, signature: Uint8Array | null): Promise<Uint8Array | null> {
    if (mode === 'batch-signed') {
      // Fresh 32- and 64-byte copies: the originals are views into the ~1 MB request buffer, and
      // posting a view to a worker would structured-clone its whole backing buffer.
      const task: VerifyTask = { start, count, mode, signer: new Uint8Array(signer!), signature: new Uint8Array(signature!) };
      const result: VerifyTaskResult = await this.pool.run(task);
      return result.digest;
    }
    const chunk = Math.max(PER_TX_TASK_TXS_MIN, Math.min(this.options.perTxTaskTxsMax, Math.ceil(count / this.workers)));
    const tasks: Promise<VerifyTaskResult>[] = [];
    for (let offset = 0; offset < count; offset += chunk) {
      const task: VerifyTask = { start: start + offset, count: Math.min(chunk, count - offset), mode, signer: null, signature: null };
      tasks.push(this.pool.run(task));
    }
    await Promise.all(tasks);
    return null;
  }

  get utilization(): number { return this.pool.utilization; }
  get queueSize(): number { return this.pool.queueSize; }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}

export function defaultWorkers(): number {
  return Math.max(1, os.availableParallelism());
}
