/*
 * The verify stage on the main thread: turns each claimed batch into piscina tasks that name ring
 * slot ranges. Batch-signed batches are one task (the signature covers all bodies); per-tx batches
 * are split into chunks so every worker gets a share. A piscina round trip costs ~47 µs, so a task
 * must carry at least tens of per-tx records or a whole batch-signed batch to amortise it.
 */

import { Piscina } from 'piscina';
import type { InputRing } from '../../ring/input-ring.js';
import type { BatchRing } from '../../ring/batch-ring.js';
import { distFile } from '../../paths.js';
import type { AuthMode, VerifyTask, VerifyWorkerData } from './task.js';
import { IssuerTable } from './issuer-table.js';
import { ISSUERS_MAX, RotatingKeys, type KeyRotation } from '../../core/rotating-keys.js';
import { TIMER_MS_MAX } from '../../config.js';

const HEAP_SIZE_FLAG = /^--(initial|max)-(old|semi)-space-size=/; // process-wide: a Worker refuses them

// Below this a per-tx task's ~47 µs piscina round trip starts to cost more than 1% of its verifies.
const PER_TX_TASK_TXS_MIN = 64;

export interface VerifyStageOptions {
  workers: number;
  batchesInFlightMax: number;
  perTxTaskTxsMax: number;
  issuers: string[];
  keyCacheEntriesMax: number;
  nice: number;
}

export class VerifyStage {
  private readonly pool: Piscina;
  readonly workers: number;
  private readonly issuers: RotatingKeys;
  private readonly issuerTable: IssuerTable;
  private retireTimer: NodeJS.Timeout | null = null;

  constructor(ring: InputRing, batches: BatchRing, private readonly options: VerifyStageOptions) {
    this.workers = options.workers;
    this.issuers = new RotatingKeys(options.issuers, 'issuer');
    this.issuerTable = IssuerTable.create(this.issuers.validAt());
    const workerData: VerifyWorkerData = {
      ring: ring.buffers,
      batches: batches.buffers,
      issuers: this.issuerTable.shared,
      keyCacheEntriesMax: options.keyCacheEntriesMax,
      nice: options.nice,
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
      // The process's V8 heap sizes (engine.ts ENGINE_NODE_FLAGS) are refused in a worker's execArgv.
      execArgv: [...process.execArgv.filter((arg) => !HEAP_SIZE_FLAG.test(arg)), '--no-experimental-require-module'],
    });
  }

  /** How many tasks a batch of `count` records becomes: the batch ring counts them down. */
  tasksFor(count: number, mode: AuthMode): number {
    return mode === 'batch-signed' ? 1 : Math.ceil(count / this.perTxChunk(count));
  }

  /**
   * Verifies the admitted batch in `batchSlot`. The hand-off to the sequencer is the batch ring:
   * the worker that finishes the last task marks the batch verified there. The promise only
   * reports a failed task, which is a bug or a lost worker, never bad input.
   */
  async verify(batchSlot: number, start: number, count: number, mode: AuthMode, signer: Uint8Array | null, signature: Uint8Array | null): Promise<void> {
    if (mode === 'batch-signed') {
      // Fresh 32- and 64-byte copies: the originals are views into the ~1 MB request buffer, and
      // posting a view to a worker would structured-clone its whole backing buffer.
      await this.pool.run({ batchSlot, start, count, mode, signer: new Uint8Array(signer!), signature: new Uint8Array(signature!) } satisfies VerifyTask);
      return;
    }
    const chunk = this.perTxChunk(count);
    const tasks: Promise<void>[] = [];
    for (let offset = 0; offset < count; offset += chunk) {
      tasks.push(this.pool.run({ batchSlot, start: start + offset, count: Math.min(chunk, count - offset), mode, signer: null, signature: null } satisfies VerifyTask));
    }
    await Promise.all(tasks);
  }

  private perTxChunk(count: number): number {
    return Math.max(PER_TX_TASK_TXS_MIN, Math.min(this.options.perTxTaskTxsMax, Math.ceil(count / this.workers)));
  }

  get utilization(): number { return this.pool.utilization; }

  /**
   * Issuers from now on: the listed ones may mint at the workers' next task, the dropped ones until
   * `graceMs` has passed (a timer publishes the table without them then).
   */
  rotateIssuers(hexes: string[], graceMs: number): KeyRotation {
    const valid = new Set([...hexes.map((h) => h.toLowerCase()), ...this.issuers.validAt().map((k) => k.toString('hex'))]);
    if (valid.size > ISSUERS_MAX) throw new Error(`${valid.size} issuers would be valid at once (listed and retiring): at most ${ISSUERS_MAX}`);
    const rotation = this.issuers.rotate(hexes, graceMs);
    this.issuerTable.publish(this.issuers.validAt());
    if (this.retireTimer) clearTimeout(this.retireTimer);
    this.retireTimer = null;
    this.retireAt(this.issuers.retiringUntil);
    return rotation;
  }

  /**
   * Publishes the table without the retiring issuers once `untilMs` has passed. A timer may fire a
   * millisecond early by Date.now(), and one longer than TIMER_MS_MAX would fire at once, so it
   * is armed again until the deadline has really passed: a retired issuer never stays valid.
   */
  private retireAt(untilMs: number): void {
    if (untilMs === 0) return;
    const leftMs = untilMs - Date.now();
    if (leftMs < 0) {
      this.issuerTable.publish(this.issuers.validAt());
      return;
    }
    this.retireTimer = setTimeout(() => { this.retireTimer = null; this.retireAt(untilMs); }, Math.min(leftMs + 1, TIMER_MS_MAX));
    this.retireTimer.unref();
  }

  async close(): Promise<void> {
    if (this.retireTimer) clearTimeout(this.retireTimer);
    await this.pool.destroy();
  }
}
