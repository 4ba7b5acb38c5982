/*
 * The sequence stage as the main thread sees it: a handle on the sequencer thread. It starts the
 * thread with the recovered state, answers account queries and state inspections through it,
 * holds the approval changes it announces until the block reader reaches their block, passes
 * snapshots on, and stops it. Batches and blocks never pass through here: they go through the
 * rings (ring/shared-memory.ts).
 */

import { Worker } from 'node:worker_threads';
import type { AccountState } from '../../core/accounts.js';
import type { ApprovalChange } from '../../core/block.js';
import type { SequencerState } from '../../core/sequencer.js';
import { CONTROL_SNAPSHOT_IDLE, CONTROL_STOP, type PipelineBuffers } from '../../ring/shared-memory.js';
import { distFile } from '../../paths.js';
import { asBuffer, stateWithBuffers, type SequenceLoopOptions } from './sequence-loop.js';

export interface SequenceStageHooks {
  onApprovals: () => void; // changes for a block arrived: the block reader may go on
  onSnapshot: (state: SequencerState) => void;
  onFatal: (error: Error) => void;
}

type Reply = { type: 'reply'; id: number; value?: unknown; error?: string };
type FromThread = Reply | { type: 'approvals'; block: number; changes: ApprovalChange[] } | { type: 'snapshot'; state: SequencerState } | { type: 'stopped'; batches: number };

// Queries waiting on the thread at once; more is a client flooding GetAccount, answered at once.
const QUERIES_IN_FLIGHT_MAX = 4096;

export class SequenceStage {
  private readonly worker: Worker;
  private readonly control: Int32Array;
  private readonly calls = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  private readonly approvals = new Map<number, ApprovalChange[]>();
  private nextCallId = 1;
  private readonly exited: Promise<void>;

  constructor(buffers: PipelineBuffers, options: SequenceLoopOptions, state: SequencerState | null, private readonly hooks: SequenceStageHooks) {
    this.control = new Int32Array(buffers.control);
    Atomics.store(this.control, CONTROL_SNAPSHOT_IDLE, 1);
    this.worker = new Worker(distFile('workers/sequencer-worker.js'), { workerData: { buffers, options, state } });
    this.worker.on('message', (message: FromThread) => this.onMessage(message));
    this.worker.on('error', (error) => hooks.onFatal(new Error(`sequencer thread failed: ${error.message}`)));
    this.exited = new Promise((resolve) => this.worker.once('exit', () => {
      for (const call of this.calls.values()) call.reject(new Error('sequencer thread stopped'));
      this.calls.clear();
      resolve();
    }));
  }

  /** The approval changes of block `number`: undefined until the thread's message has arrived. */
  takeApprovals(number: number): ApprovalChange[] | undefined {
    const changes = this.approvals.get(number);
    this.approvals.delete(number);
    return changes;
  }

  /** The snapshot writer is free again: the thread may hand it the next state. */
  snapshotWritten(): void { Atomics.store(this.control, CONTROL_SNAPSHOT_IDLE, 1); }

  async account(key: Uint8Array): Promise<AccountState | null> {
    return await this.call({ what: 'account', key: Uint8Array.from(key) }) as AccountState | null;
  }

  /** Checks every state invariant on the thread and returns a copy of the whole state. */
  async inspect(): Promise<SequencerState> {
    return stateWithBuffers(await this.call({ what: 'inspect' }) as SequencerState);
  }

  /** Stops before the next batch; blocks already published stay readable in the block ring. */
  async stop(): Promise<void> {
    Atomics.store(this.control, CONTROL_STOP, 1);
    await this.exited;
  }

  private call(query: { what: 'account'; key: Uint8Array } | { what: 'inspect' }): Promise<unknown> {
    if (this.calls.size >= QUERIES_IN_FLIGHT_MAX) return Promise.reject(new Error(`${this.calls.size} state queries in flight (max ${QUERIES_IN_FLIGHT_MAX})`));
    const id = this.nextCallId++;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.worker.postMessage({ type: 'query', id, ...query });
    });
  }

  private onMessage(message: FromThread): void {
    if (message.type === 'reply') {
      const call = this.calls.get(message.id);
      this.calls.delete(message.id);
      if (message.error !== undefined) call?.reject(new Error(message.error));
      else call?.resolve(message.value);
    } else if (message.type === 'approvals') {
      this.approvals.set(message.block, message.changes.map(changeFromThread));
      this.hooks.onApprovals();
    } else if (message.type === 'snapshot') {
      this.hooks.onSnapshot(stateWithBuffers(message.state));
    }
  }
}

function changeFromThread(c: ApprovalChange): ApprovalChange {
  return c.type === 'requested' ? { ...c, id: asBuffer(c.id), sender: asBuffer(c.sender), recipient: asBuffer(c.recipient) } : { ...c, id: asBuffer(c.id) };
}
