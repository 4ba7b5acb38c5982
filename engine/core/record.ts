/*
 * The v1 transaction record (DESIGN.md section 2). All integers little-endian.
 *
 *   offset  size  field
 *        0     1  version        = 1
 *        1     1  kind           1 = transfer, 2 = mint; 3-5 = approval decisions (engine only)
 *        2     6  reserved       zero
 *        8    32  sender         Ed25519 public key = account id
 *       40    32  recipient      account id
 *       72     8  nonce          u64, sender's first is 1, then +1 each
 *       80     8  amount         u64, > 0
 *       88     8  timestamp_ms   u64, client clock, informational
 *       96    32  memo           opaque
 *      128    64  signature      per-tx mode only: Ed25519 over bytes 0..127
 *
 * Records stay packed bytes from the socket to the sinks; these offsets are the only place the
 * layout is spelled out.
 */

export const RECORD_VERSION = 1;
export const BODY_BYTES = 128;
export const SIGNATURE_BYTES = 64;
export const SIGNED_RECORD_BYTES = BODY_BYTES + SIGNATURE_BYTES; // 192
export const PUBLIC_KEY_BYTES = 32;

export const OFFSET_VERSION = 0;
export const OFFSET_KIND = 1;
export const OFFSET_RESERVED = 2;
export const RESERVED_BYTES = 6;
export const OFFSET_SENDER = 8;
export const OFFSET_RECIPIENT = 40;
export const OFFSET_NONCE = 72;
export const OFFSET_AMOUNT = 80;
export const OFFSET_TIMESTAMP_MS = 88;
export const OFFSET_MEMO = 96;
export const MEMO_BYTES = 32;
export const U64_BYTES = 8;

export const KIND_TRANSFER = 1;
export const KIND_MINT = 2;
// Approval decisions: history entries the engine itself writes when an approval is decided
// (engine/core/decision.ts). A client record of these kinds is malformed.
export const KIND_APPROVE = 3; // post the held transfer
export const KIND_REJECT = 4; // void it: an approver rejected
export const KIND_EXPIRE = 5; // void it: the policy's timeout passed

export const U64_MAX = (1n << 64n) - 1n;

export interface RecordFields {
  kind: number;
  sender: Uint8Array;
  recipient: Uint8Array;
  nonce: bigint;
  amount: bigint;
  timestampMs: bigint;
  memo?: Uint8Array;
}

/** Writes one 128-byte body at `offset`; the caller owns the signature, if any. */
export function writeBody(target: Buffer, offset: number, fields: RecordFields): void {
  if (fields.sender.length !== PUBLIC_KEY_BYTES) throw new Error('sender must be 32 bytes');
  if (fields.recipient.length !== PUBLIC_KEY_BYTES) throw new Error('recipient must be 32 bytes');
  target.fill(0, offset, offset + BODY_BYTES);
  target[offset + OFFSET_VERSION] = RECORD_VERSION;
  target[offset + OFFSET_KIND] = fields.kind;
  target.set(fields.sender, offset + OFFSET_SENDER);
  target.set(fields.recipient, offset + OFFSET_RECIPIENT);
  target.writeBigUInt64LE(fields.nonce, offset + OFFSET_NONCE);
  target.writeBigUInt64LE(fields.amount, offset + OFFSET_AMOUNT);
  target.writeBigUInt64LE(fields.timestampMs, offset + OFFSET_TIMESTAMP_MS);
  if (fields.memo) {
    if (fields.memo.length > MEMO_BYTES) throw new Error('memo is at most 32 bytes');
    target.set(fields.memo, offset + OFFSET_MEMO);
  }
}

export interface DecodedRecord {
  version: number;
  kind: number;
  sender: Buffer;
  recipient: Buffer;
  nonce: bigint;
  amount: bigint;
  timestampMs: bigint;
  memo: Buffer;
}

/** Decodes a body for queries and tests; the hot path reads fields in place instead. */
export function readBody(source: Uint8Array, offset = 0): DecodedRecord {
  const view = Buffer.from(source.buffer, source.byteOffset + offset, BODY_BYTES);
  return {
    version: view[OFFSET_VERSION],
    kind: view[OFFSET_KIND],
    sender: Buffer.from(view.subarray(OFFSET_SENDER, OFFSET_SENDER + PUBLIC_KEY_BYTES)),
    recipient: Buffer.from(view.subarray(OFFSET_RECIPIENT, OFFSET_RECIPIENT + PUBLIC_KEY_BYTES)),
    nonce: view.readBigUInt64LE(OFFSET_NONCE),
    amount: view.readBigUInt64LE(OFFSET_AMOUNT),
    timestampMs: view.readBigUInt64LE(OFFSET_TIMESTAMP_MS),
    memo: Buffer.from(view.subarray(OFFSET_MEMO, OFFSET_MEMO + MEMO_BYTES)),
  };
}
