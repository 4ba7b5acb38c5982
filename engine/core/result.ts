/*
 * Per-transaction result codes: one byte each in a response, in batch order (DESIGN.md section 2).
 * A rejection is a value, never an exception. Rejected transactions consume no nonce and get no seq.
 *
 * Code 0 is no result at all (RESULT_CODE_UNSPECIFIED in proto/txe/v1/transaction.proto): a proto3
 * enum field that was never set reads as 0, and an unset result must never read as a commit. The
 * engine never writes 0. A verify worker stores a rejection as VERDICT_REJECTED_FLAG (0x80) | code
 * (ring/input-ring.ts) and the sequencer takes the low seven bits back as the result, so every
 * rejection code is in [3, 0x7f]: never 0, never a flag bit.
 */

export const RESULT_UNSPECIFIED = 0;

export const Result = {
  committed: 1,
  pending_approval: 2,
  malformed: 3,
  bad_signature: 4,
  unauthorized_signer: 5,
  bad_nonce: 6,
  insufficient_funds: 7,
  invalid_amount: 8,
  not_issuer: 9,
  // Added beyond DESIGN.md: a bounded table (accounts, pending approvals) is full. Without it a
  // full table would have to crash the sequencer or grow without limit.
  capacity_exceeded: 10,
  // Added beyond DESIGN.md: an approval decision names a hold that is no longer pending (decided
  // already, or never held). Only the engine writes decisions; it answers the vote from this.
  approval_not_pending: 11,
  // Added beyond DESIGN.md: the recipient is 32 zero bytes. No one holds a key for it, so money
  // sent there could never move again; an unset recipient field is the usual cause.
  invalid_recipient: 12,
} as const;

export type ResultCode = (typeof Result)[keyof typeof Result];
export const RESULT_CODE_MAX = 12;

// Indexed by code: names[0] is 'unspecified', then every name of Result in code order.
export const RESULT_NAMES: readonly string[] = ['unspecified', ...Object.keys(Result)];
for (const [name, code] of Object.entries(Result)) {
  if (RESULT_NAMES[code] !== name) throw new Error(`result code ${code} (${name}) is out of order: codes must run 1, 2, 3, ... in declaration order`);
}
if (RESULT_NAMES.length !== RESULT_CODE_MAX + 1) throw new Error(`RESULT_CODE_MAX is ${RESULT_CODE_MAX}, but the highest code is ${RESULT_NAMES.length - 1}`);
if (RESULT_CODE_MAX >= 0x80) throw new Error('result codes must stay below 0x80, the verdict byte\'s rejected flag');

export function isAccepted(code: number): boolean {
  return code === Result.committed || code === Result.pending_approval;
}

export function resultName(code: number): string {
  return RESULT_NAMES[code] ?? `unknown(${code})`;
}
