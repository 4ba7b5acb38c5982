/* Signs a range of lanes of a per-tx plan in place (see plan.ts). Off the clock. */

import { parentPort, workerData } from 'node:worker_threads';
import { BODY_BYTES, SIGNED_RECORD_BYTES } from '../../engine/core/record.js';
import { keypairFromSeed, sign } from '../../engine/core/keys.js';
import { senderSeed } from './plan.js';

// One slot per batch (wire.ts): the records of lane l's round r start at (l × rounds + r) × slotBytes + txsAt.
const { shared, firstLane, lastLane, rounds, batchTxs, slotBytes, txsAt, runId } = workerData as {
  shared: SharedArrayBuffer; firstLane: number; lastLane: number; rounds: number; batchTxs: number; slotBytes: number; txsAt: number; runId: string;
};
const all = Buffer.from(shared);
for (let l = firstLane; l < lastLane; l++) {
  const keys = Array.from({ length: batchTxs }, (_, j) => keypairFromSeed(senderSeed(runId, l * batchTxs + j)).privateKey);
  for (let r = 0; r < rounds; r++) {
    const base = (l * rounds + r) * slotBytes + txsAt;
    for (let j = 0; j < batchTxs; j++) {
      const at = base + j * SIGNED_RECORD_BYTES;
      sign(all.subarray(at, at + BODY_BYTES), keys[j]).copy(all, at + BODY_BYTES);
    }
  }
}
parentPort!.postMessage('done');
