/*
 * Every piece of shared memory between the pipeline's threads, made once by the wiring and handed
 * to each thread as SharedArrayBuffers: the input ring, the batch ring, the block ring, the cursors
 * and two control cells. Who writes what:
 *
 *   cursor            writer            waited on by
 *   batchesAdmitted   ingress (main)    -
 *   batchesSequenced  sequencer thread  ingress (room in the batch ring)
 *   blocksPublished   sequencer thread  block reader (main)
 *   blocksReleased    commit (main)     sequencer thread (room in the block ring)
 */

import { createRingBuffers, type RingBuffers } from './input-ring.js';
import { createBatchRingBuffers, type BatchRingBuffers } from './batch-ring.js';
import { createBlockRingBuffers, type BlockRingBuffers } from './block-ring.js';
import { Cursor, createCursorCells } from './cursor.js';

export const CURSOR_BATCHES_ADMITTED = 0;
export const CURSOR_BATCHES_SEQUENCED = 1;
export const CURSOR_BLOCKS_PUBLISHED = 2;
export const CURSOR_BLOCKS_RELEASED = 3;
const CURSORS = 4;

export const CONTROL_STOP = 0; // 1: the sequencer thread stops before its next batch
export const CONTROL_SNAPSHOT_IDLE = 1; // 1: the snapshot writer can take a state now
const CONTROLS = 2;

export interface PipelineBuffers {
  input: RingBuffers;
  batches: BatchRingBuffers;
  blocks: BlockRingBuffers;
  cursors: SharedArrayBuffer;
  control: SharedArrayBuffer;
}

export interface PipelineSizes { ringSlotsMax: number; batchesInFlightMax: number; blockRingSlotsMax: number }

export function createPipelineBuffers(sizes: PipelineSizes): PipelineBuffers {
  return {
    input: createRingBuffers(sizes.ringSlotsMax),
    batches: createBatchRingBuffers(sizes.batchesInFlightMax),
    blocks: createBlockRingBuffers(sizes.blockRingSlotsMax, sizes.ringSlotsMax),
    cursors: createCursorCells(CURSORS),
    control: new SharedArrayBuffer(CONTROLS * Int32Array.BYTES_PER_ELEMENT),
  };
}

export interface PipelineCursors { batchesAdmitted: Cursor; batchesSequenced: Cursor; blocksPublished: Cursor; blocksReleased: Cursor }

export function pipelineCursors(buffers: PipelineBuffers): PipelineCursors {
  return {
    batchesAdmitted: new Cursor(buffers.cursors, CURSOR_BATCHES_ADMITTED, 'batchesAdmitted'),
    batchesSequenced: new Cursor(buffers.cursors, CURSOR_BATCHES_SEQUENCED, 'batchesSequenced'),
    blocksPublished: new Cursor(buffers.cursors, CURSOR_BLOCKS_PUBLISHED, 'blocksPublished'),
    blocksReleased: new Cursor(buffers.cursors, CURSOR_BLOCKS_RELEASED, 'blocksReleased'),
  };
}
