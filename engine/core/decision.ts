/*
 * Approval decisions as history entries. When an approval is decided (M approvals, a rejection, or
 * the policy's timeout), the ApprovalService hands the sequencer one 128-byte entry in the v1
 * record layout, so the outcome is ordered, hashed into the chain, durable and published like any
 * transaction:
 *
 *   kind       3 = approve (post the held transfer), 4 = reject, 5 = expire (void it, release the hold)
 *   sender     the held transfer's sender        recipient  its recipient
 *   nonce      the held transfer's seq            amount     its amount
 *   timestamp  when it was decided (ms)           memo       the approval id
 *
 * The sequencer checks every field against the hold it names before it applies one; such an entry
 * gets a seq and consumes no nonce. Decision entries skip the verify workers: the engine wrote them.
 *
 * The approval id is SHA-256 of the held transfer's body, so a vote signs exactly one transfer
 * (its sender, nonce, recipient, amount and memo), in whichever deployment it was made.
 */

import crypto from 'node:crypto';
import { BODY_BYTES, KIND_APPROVE, KIND_EXPIRE, KIND_REJECT, PUBLIC_KEY_BYTES, writeBody } from './record.js';

export type ApprovalOutcome = 'approved' | 'rejected' | 'expired';
export const OUTCOME_KIND: Record<ApprovalOutcome, number> = { approved: KIND_APPROVE, rejected: KIND_REJECT, expired: KIND_EXPIRE };
export const KIND_OUTCOME: Record<number, ApprovalOutcome> = { [KIND_APPROVE]: 'approved', [KIND_REJECT]: 'rejected', [KIND_EXPIRE]: 'expired' };

export const APPROVAL_ID_BYTES = 32;

export function approvalId(body: Uint8Array): Buffer {
  if (body.length !== BODY_BYTES) throw new Error(`approval id is over one ${BODY_BYTES}-byte body, got ${body.length} bytes`);
  return crypto.createHash('sha256').update(body).digest();
}

export interface DecisionFields {
  outcome: ApprovalOutcome;
  sender: Uint8Array;
  recipient: Uint8Array;
  heldSeq: number;
  amount: bigint;
  decidedAtMs: number;
  id: Uint8Array;
}

export function decisionBody(d: DecisionFields): Buffer {
  if (d.sender.length !== PUBLIC_KEY_BYTES || d.id.length !== APPROVAL_ID_BYTES) throw new Error('decision needs a 32-byte sender and approval id');
  const out = Buffer.alloc(BODY_BYTES);
  writeBody(out, 0, {
    kind: OUTCOME_KIND[d.outcome], sender: d.sender, recipient: d.recipient, nonce: BigInt(d.heldSeq),
    amount: d.amount, timestampMs: BigInt(d.decidedAtMs), memo: d.id,
  });
  return out;
}

// --- Votes -------------------------------------------------------------------------------------

export type VoteDecision = 'approve' | 'reject';
const VOTE_DOMAIN = Buffer.from('txe/approval-vote/v1');
const VOTE_BYTE: Record<VoteDecision, number> = { approve: 1, reject: 2 };

/**
 * The bytes an approver signs (Ed25519): "txe/approval-vote/v1" | approval id (32) | decision
 * (1 = approve, 2 = reject). 53 bytes; the decision is inside the signature, so an approval can
 * never be replayed as a rejection or the other way round.
 */
export function voteMessage(id: Uint8Array, decision: VoteDecision): Buffer {
  if (id.length !== APPROVAL_ID_BYTES) throw new Error(`approval id must be ${APPROVAL_ID_BYTES} bytes, got ${id.length}`);
  return Buffer.concat([VOTE_DOMAIN, id, Buffer.from([VOTE_BYTE[decision]])]);
}

/* The approval record as the registry, the ApprovalService and the pg rows share it. */
export type ApprovalStatus = 'pending' | ApprovalOutcome;

export interface Vote {
  approver: Buffer;
  decision: VoteDecision;
  signature: Buffer;
  votedAtMs: number;
}

export interface Approval {
  id: Buffer;
  seq: number;
  block: number;
  position: number;
  sender: Buffer;
  recipient: Buffer;
  nonce: bigint;
  amount: bigint;
  policy: string;
  required: number;
  approvers: Buffer[];
  requestedAtMs: number;
  expiresAtMs: number;
  status: ApprovalStatus;
  decidedSeq: number;
  decidedAtMs: number;
  votes: Vote[];
  deciding: boolean; // a decision entry is on its way to the sequencer
}
