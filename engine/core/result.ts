/*
 * Per-transaction result codes: one byte each in a response, in batch order (DESIGN.md section 2).
 * A rejection is a value, never an exception. Rejected transactions consume no nonce and get no seq.
 */

export const Result = {
  committed: 0,
  pending_approval: 1,
  malformed: 2,
  bad_signature: 3,
  unauthorized_signer: 4,
  bad_nonce: 5,
  insufficient_funds: 6,
  invalid_amount: 7,
  not_issuer: 8,
  // Added beyond DESIGN.md: a bounded table (accounts, pending approvals) is full. Without it a
  // full table would have to crash the sequencer or grow without limit.
  capacity_exceeded: 9,
  // Added beyond DESIGN.md: an approval decision names a hold that is no longer pending (decided
  // already, or never held). Only the engine writes decisions; it answers the vote from this.
  approval_not_pending: 10,
} as const;

export type ResultCode = (typeof Result)[keyof typeof Result];
export const RESULT_NAMES: readonly string[] = Object.keys(Result);
export const RESULT_CODE_MAX = 10;

export function isAccepted(code: number): boolean {
  return code === Result.committed || code === Result.pending_approval;
}

export function resultName(code: number): string {
  return RESULT_NAMES[code] ?? `unknown(${code})`;
}
