/*
 * Webhook events, derived from one committed block as Kafka holds it (every body, rejected ones
 * included, and the results). One event per transaction of the batch:
 *
 *   transaction.committed   a committed transfer or mint
 *   transaction.rejected    a rejected one (its result says why; it has no seq)
 *   approval.requested      a transfer held for approval (result pending_approval)
 *   approval.decided        an approval decision entry (kinds 3-5): approved, rejected or expired
 *
 * The event id is "evt_<block>_<position>": the same for every try and every webhook, so a
 * receiver can drop a repeat (Standard Webhooks' webhook-id). The body is built once per event
 * and sent byte for byte on every try, so each try's signature is over the same body.
 */

import { KIND_MINT, BODY_BYTES, OFFSET_RECIPIENT, OFFSET_SENDER, readBody } from '../../core/record.js';
import { Result, isAccepted, resultName } from '../../core/result.js';
import { approvalId, KIND_OUTCOME } from '../../core/decision.js';
import type { StoredBlock } from '../../stages/commit/stored-block.js';

export const EVENT_TYPES = ['transaction.committed', 'transaction.rejected', 'approval.requested', 'approval.decided'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface WebhookEvent {
  id: string;
  type: EventType;
  block: number;
  sender: Buffer;
  recipient: Buffer;
  body: string; // the JSON POSTed
}

/**
 * Which events anyone wants: by type, and by account (null = any account). Checked on the raw
 * body before an event is built, so a block with nothing wanted costs a few compares a transaction.
 */
export interface EventFilter { types: ReadonlySet<EventType>; accounts: ReadonlySet<string> | null } // latin1 keys

/** The wanted events of a block, batch order. Cost: one JSON body per wanted event (~2 µs each). */
export function blockEvents(block: StoredBlock, filter: EventFilter): WebhookEvent[] {
  const events: WebhookEvent[] = [];
  let seq = block.firstSeq;
  const timestamp = new Date(block.sequencedAtMs).toISOString();
  for (let i = 0; i < block.txs; i++) {
    const result = block.results[i];
    const bodyBytes = block.bodies.subarray(i * BODY_BYTES, (i + 1) * BODY_BYTES);
    const thisSeq = isAccepted(result) ? seq++ : 0;
    const type = eventType(bodyBytes[1], result);
    if (!filter.types.has(type)) continue;
    if (filter.accounts !== null && !filter.accounts.has(bodyBytes.toString('latin1', OFFSET_SENDER, OFFSET_SENDER + 32))
      && !filter.accounts.has(bodyBytes.toString('latin1', OFFSET_RECIPIENT, OFFSET_RECIPIENT + 32))) continue;
    const r = readBody(bodyBytes);
    const data: Record<string, unknown> = {
      block: block.number, position: i, seq: thisSeq === 0 ? null : String(thisSeq), result: resultName(result),
      kind: kindName(r.kind), sender: r.sender.toString('hex'), recipient: r.recipient.toString('hex'),
      amount: r.amount.toString(), memo: r.memo.toString('hex'),
    };
    if (type === 'approval.decided') {
      Object.assign(data, { approvalId: r.memo.toString('hex'), heldSeq: r.nonce.toString(), outcome: KIND_OUTCOME[r.kind], decidedAtMs: r.timestampMs.toString() });
      delete data.memo;
    } else {
      Object.assign(data, { nonce: r.nonce.toString(), timestampMs: r.timestampMs.toString() });
      if (type === 'approval.requested') data.approvalId = approvalId(bodyBytes).toString('hex');
    }
    events.push({ id: `evt_${block.number}_${i}`, type, block: block.number, sender: r.sender, recipient: r.recipient, body: JSON.stringify({ type, timestamp, data }) });
  }
  return events;
}

function eventType(kind: number, result: number): EventType {
  if (!isAccepted(result)) return 'transaction.rejected';
  if (result === Result.pending_approval) return 'approval.requested';
  return kind > KIND_MINT ? 'approval.decided' : 'transaction.committed';
}

function kindName(kind: number): string {
  return kind === 1 ? 'transfer' : kind === KIND_MINT ? 'mint' : KIND_OUTCOME[kind] ? `approval_${KIND_OUTCOME[kind]}` : `unknown(${kind})`;
}
