/*
 * The sequencer thread (engine/stages/sequence/sequence-loop.ts). It owns the account state; the
 * main thread reaches it only through the rings and these messages:
 *   in:  { type: 'query', id, what: 'account', key } | { type: 'query', id, what: 'inspect' }
 *   out: the loop's messages (approvals, snapshot), { type: 'reply', id, value | error },
 *        { type: 'stopped', batches } once the stop flag was seen.
 */

import { parentPort, workerData } from 'node:worker_threads';
import { SequenceLoop, type LoopMessage, type SequenceLoopOptions } from '../engine/stages/sequence/sequence-loop.js';
import type { SequencerState } from '../engine/core/sequencer.js';
import type { PipelineBuffers } from '../engine/ring/shared-memory.js';

export interface SequencerWorkerData { buffers: PipelineBuffers; options: SequenceLoopOptions; state: SequencerState | null }
export type SequencerQuery = { type: 'query'; id: number; what: 'account'; key: Uint8Array } | { type: 'query'; id: number; what: 'inspect' };

const port = parentPort!;
const data = workerData as SequencerWorkerData;
const loop = new SequenceLoop(data.buffers, data.options, data.state, (message: LoopMessage, transfer?: ArrayBuffer[]) => port.postMessage(message, transfer));

port.on('message', (query: SequencerQuery) => {
  try {
    if (query.what === 'account') {
      const accounts = loop.state.accounts;
      const i = accounts.findKey(Buffer.from(query.key));
      port.postMessage({ type: 'reply', id: query.id, value: i < 0 ? null : accounts.state(i) });
    } else {
      loop.state.checkInvariants();
      const state = loop.state.exportState();
      port.postMessage({ type: 'reply', id: query.id, value: state }, [state.accounts.buffer as ArrayBuffer]);
    }
  } catch (error) {
    port.postMessage({ type: 'reply', id: query.id, error: (error as Error).message });
  }
});

// An error thrown by the loop (a broken invariant, a ring out of order) ends the thread with it:
// the main thread's 'error' handler stops the engine loudly.
const batches = await loop.run();
port.postMessage({ type: 'stopped', batches });
port.close();
