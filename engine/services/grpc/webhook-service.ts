/*
 * WebhookService handlers (proto/txe/v1/webhook.proto): the gRPC edge of engine/services/webhooks. Without
 * the pg and kafka sinks there is nowhere to keep webhooks or queue events, and every call says so.
 */

import * as grpc from '@grpc/grpc-js';
import type { EngineConfig } from '../../config.js';
import { WebhookError, type WebhookInput, type Webhooks } from '../webhooks/webhooks.js';
import type { WebhookRecord } from '../webhooks/store.js';
import type { EventType } from '../webhooks/events.js';
import { DecodeError, u64ToSafe, type U64 } from './codec.js';

const EVENT_WIRE: Record<EventType, number> = { 'transaction.committed': 1, 'transaction.rejected': 2, 'approval.requested': 3, 'approval.decided': 4 };
const WIRE_EVENT: Record<number, EventType> = { 1: 'transaction.committed', 2: 'transaction.rejected', 3: 'approval.requested', 4: 'approval.decided' };
const LIST_LIMIT_DEFAULT = 100;
const LIST_LIMIT_MAX = 1000;

type Handler = (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => void;

interface WebhookFieldsWire { url?: string; eventTypes?: number[]; accounts?: Buffer[]; description?: string; enabled?: boolean }

export function webhookMessage(w: WebhookRecord) {
  return {
    id: w.id, url: w.url, eventTypes: w.eventTypes.map((t) => EVENT_WIRE[t]), accounts: w.accounts, enabled: w.enabled, description: w.description,
    createdAtMs: w.createdAtMs, updatedAtMs: w.updatedAtMs, secretRotatedAtMs: w.secretRotatedAtMs,
    previousSecretExpiresAtMs: w.previousSecret !== null && w.previousSecretExpiresAtMs > Date.now() ? w.previousSecretExpiresAtMs : 0,
    fromBlock: w.fromBlock, disabledReason: w.disabledReason,
  };
}

function toInput(req: WebhookFieldsWire, enabledDefault: boolean): WebhookInput {
  const types = (req.eventTypes ?? []).map((t) => {
    const type = WIRE_EVENT[t];
    if (!type) throw new WebhookError('INVALID_ARGUMENT', `unknown event type ${t}: use TRANSACTION_COMMITTED, TRANSACTION_REJECTED, APPROVAL_REQUESTED or APPROVAL_DECIDED`);
    return type;
  });
  return { url: req.url ?? '', eventTypes: [...new Set(types)], accounts: req.accounts ?? [], description: req.description ?? '', enabled: req.enabled ?? enabledDefault };
}

export class WebhookService {
  constructor(private readonly webhooks: Webhooks | null, private readonly config: EngineConfig) {}

  handlers(): grpc.UntypedServiceImplementation {
    return {
      CreateWebhook: this.unary(async (w, req: WebhookFieldsWire) => {
        const hook = await w.create(toInput(req, true));
        return { webhook: webhookMessage(hook), secret: hook.secret };
      }),
      ListWebhooks: this.unary(async (w) => ({ webhooks: w.list().map(webhookMessage) })),
      UpdateWebhook: this.unary(async (w, req: WebhookFieldsWire & { id?: string; updateMask?: string[] }) =>
        webhookMessage(await w.update(req.id ?? '', req.updateMask ?? [], toInput(req, false)))),
      DeleteWebhook: this.unary(async (w, req: { id?: string }) => {
        await w.delete(req.id ?? '');
        return {};
      }),
      RotateSecret: this.unary(async (w, req: { id?: string; graceMs?: U64 }) => {
        const grace = u64ToSafe(req.graceMs);
        if (grace === null) throw new WebhookError('INVALID_ARGUMENT', 'grace_ms is too large');
        const hook = await w.rotateSecret(req.id ?? '', grace);
        return { webhook: webhookMessage(hook), secret: hook.secret };
      }),
      ListDeliveries: this.unary(async (w, req: { webhookId?: string; eventId?: string; limit?: number; beforeId?: U64 }) => {
        w.get(req.webhookId ?? '');
        const limit = req.limit || LIST_LIMIT_DEFAULT;
        if (limit > LIST_LIMIT_MAX) throw new WebhookError('INVALID_ARGUMENT', `limit is at most ${LIST_LIMIT_MAX}, got ${limit}`);
        const rows = await w.deliveries(req.webhookId!, req.eventId || null, u64ToSafe(req.beforeId) ?? 0, limit + 1);
        const shown = rows.slice(0, limit);
        return {
          deliveries: shown,
          nextBeforeId: rows.length > limit ? shown[shown.length - 1].id : 0,
        };
      }),
    };
  }

  private unary<R>(run: (w: Webhooks, req: R) => Promise<unknown>): Handler {
    return (call, callback) => {
      if (call.request instanceof DecodeError) return callback({ code: grpc.status.INVALID_ARGUMENT, details: call.request.message });
      if (!this.webhooks) {
        const why = this.config.webhooks ? `the engine runs with sinks [${this.config.sinks.join(', ')}]` : 'webhooks are off in the config';
        return callback({ code: grpc.status.FAILED_PRECONDITION, details: `webhooks need the pg and kafka sinks (--sinks pg,kafka) and webhooks on; ${why}` });
      }
      run(this.webhooks, call.request as R).then(
        (response) => callback(null, response),
        (error: Error) => callback(error instanceof WebhookError
          ? { code: grpc.status[error.code], details: error.message }
          : { code: grpc.status.UNAVAILABLE, details: `webhook store unavailable: ${error.message}; retry` }),
      );
    };
  }
}
