/*
 * The webhook delivery thread (engine/services/webhooks/delivery.ts): started by the engine when webhooks
 * are on, so routing and POSTing never take turns of the engine's own event loop.
 *
 *   engine -> thread   { op: 'put', hook } | { op: 'drop', id } | { op: 'sync', hooks } | { op: 'close' }, each with a request id
 *   thread -> engine   { op: 'ready' } | { op: 'ack', request } | { op: 'failed', error }
 *                      | { op: 'log', level, message, fields } | { op: 'disabled', id, reason, atMs }
 *                      | { op: 'counts', routed, deliveries } (every COUNTS_EVERY_MS, for Prometheus)
 */

import { parentPort, workerData } from 'node:worker_threads';
import type { EngineConfig } from '../engine/config.js';
import { WebhookDelivery } from '../engine/services/webhooks/delivery.js';
import { fromTransferable, type TransferableHook } from '../engine/services/webhooks/store.js';

type Request = { request: number } & ({ op: 'put'; hook: TransferableHook } | { op: 'drop'; id: string } | { op: 'sync'; hooks: TransferableHook[] } | { op: 'close' });

const COUNTS_EVERY_MS = 1000;
const port = parentPort!;
const delivery = new WebhookDelivery(workerData.config as EngineConfig,
  (level, message, fields) => port.postMessage({ op: 'log', level, message, fields }),
  (hook) => port.postMessage({ op: 'disabled', id: hook.id, reason: hook.disabledReason, atMs: hook.updatedAtMs }));

port.on('message', (m: Request) => {
  if (m.op === 'put') delivery.put(fromTransferable(m.hook));
  else if (m.op === 'drop') delivery.drop(m.id);
  else if (m.op === 'sync') delivery.sync(m.hooks.map(fromTransferable));
  else {
    void delivery.close().then(() => {
      port.postMessage({ op: 'ack', request: m.request });
      port.close();
    });
    return;
  }
  port.postMessage({ op: 'ack', request: m.request });
});

setInterval(() => port.postMessage({ op: 'counts', ...delivery.takeCounts() }), COUNTS_EVERY_MS).unref();

delivery.open().then(
  () => port.postMessage({ op: 'ready' }),
  (error: Error) => port.postMessage({ op: 'failed', error: error.message }),
);
