/*
 * A planned batch as the finished bytes of its SubmitBatchRequest, encoded once before the clock
 * starts. Why: profiled at full speed against the null server, the generator's event loop spent
 * ~23% of its time in protobufjs copying each 1 MB `txs` into a fresh buffer, ~19% in grpc-js
 * copying that again behind its 5-byte frame header, and ~13% collecting the garbage of both. The
 * framing copy is inside grpc-js; the encode copy and its allocation are gone once the message is
 * built here and sent through a stream whose serializer passes bytes through.
 *
 * One slot per batch, the records written in place (plan.ts, sign-worker.ts) and the other fields
 * encoded after them, right-aligned against the records so the message is one contiguous view:
 *
 *   slot: [ unused | batch_id, auth, signer, signature, ack | 0x1A len | txs (records) ]
 *          0                                                 ^ txsHeaderAt  ^ txsAt
 *
 * Protobuf lets fields come in any order, so `txs` (field 3) last is a valid SubmitBatchRequest
 * for every decoder. Cost: 14 bytes of header room per batch at most, nothing per transaction.
 */

import protobuf from 'protobufjs';
import { AckWire, AuthModeWire, Types } from '../../engine/services/grpc/codec.js';

export interface PlannedBatch {
  batchId: number; // unique in the plan: 1 + lane × roundsPerLane + round
  txs: number; // transactions in the batch
  wire: Buffer; // the whole encoded SubmitBatchRequest
}

export interface HeadFields {
  batchId: number;
  auth: 'per-tx' | 'batch-signed';
  signer?: Uint8Array;
  signature?: Uint8Array;
  ack: 'ordered' | 'durable' | 'final';
}

export interface WireLayout {
  slotBytes: number; // one batch's slot
  txsAt: number; // where the records start in a slot
  txsBytes: number;
}

const TXS_FIELD_TAG = (3 << 3) | 2; // field 3 (txs), wire type 2 (length-delimited)
const ED25519_PUBLIC_KEY_BYTES = 32;
const ED25519_SIGNATURE_BYTES = 64;

/** Slots for batches of `txsBytes`, with room for the largest head any batch id up to `batchIdMax` needs. */
export function wireLayout(txsBytes: number, auth: HeadFields['auth'], batchIdMax: number): WireLayout {
  if (!Number.isSafeInteger(batchIdMax) || batchIdMax < 1) throw new Error(`batchIdMax must be a positive safe integer, got ${batchIdMax}`);
  const signed = auth === 'batch-signed';
  const headBytesMax = encodeHead({
    batchId: batchIdMax, auth, ack: 'durable',
    signer: signed ? new Uint8Array(ED25519_PUBLIC_KEY_BYTES) : undefined, signature: signed ? new Uint8Array(ED25519_SIGNATURE_BYTES) : undefined,
  }).length;
  const txsAt = headBytesMax + 1 + varintBytes(txsBytes);
  return { slotBytes: txsAt + txsBytes, txsAt, txsBytes };
}

/**
 * Writes the head and the txs field header in front of the records already in `slot` at
 * layout.txsAt, and returns the message: a view of `slot`, no copy of the records.
 */
export function sealWire(slot: Buffer, layout: WireLayout, head: HeadFields): Buffer {
  if (slot.length !== layout.slotBytes) throw new Error(`slot is ${slot.length} bytes, layout says ${layout.slotBytes}`);
  if (head.signature !== undefined && head.signature.length !== ED25519_SIGNATURE_BYTES) throw new Error(`signature must be ${ED25519_SIGNATURE_BYTES} bytes`);
  const txsHeaderAt = layout.txsAt - 1 - varintBytes(layout.txsBytes);
  slot[txsHeaderAt] = TXS_FIELD_TAG;
  writeVarint(slot, txsHeaderAt + 1, layout.txsBytes);
  const encoded = encodeHead(head);
  const start = txsHeaderAt - encoded.length;
  if (start < 0) throw new Error(`head of batch ${head.batchId} is ${encoded.length} bytes, more than the layout's room`);
  slot.set(encoded, start);
  return slot.subarray(start);
}

/** Reads a sealed message back (protobufjs): for the plan's own check that what it built decodes. */
export function decodeWire(wire: Buffer): { batchId: number; txs: Buffer } {
  const m = Types.SubmitBatchRequest.decode(wire) as unknown as { batchId: number | { toNumber(): number }; txs: Buffer };
  return { batchId: typeof m.batchId === 'number' ? m.batchId : m.batchId.toNumber(), txs: m.txs };
}

function encodeHead(h: HeadFields): Uint8Array {
  return Types.SubmitBatchRequest.encode({
    batchId: h.batchId,
    auth: h.auth === 'per-tx' ? AuthModeWire.PER_TX : AuthModeWire.BATCH_SIGNED,
    signer: h.signer, signature: h.signature,
    ack: h.ack === 'ordered' ? AckWire.ACK_ORDERED : h.ack === 'final' ? AckWire.ACK_FINAL : AckWire.ACK_DURABLE,
  }).finish();
}

function varintBytes(n: number): number {
  return protobuf.Writer.create().uint32(n).finish().length;
}

function writeVarint(out: Buffer, at: number, n: number): void {
  const bytes = protobuf.Writer.create().uint32(n).finish();
  out.set(bytes, at);
}
