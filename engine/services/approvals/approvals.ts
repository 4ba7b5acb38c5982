/*
 * The approval workflow behind ApprovalService: votes in, decisions out.
 *
 *   hold (sequencer) ──> registry: pending ──> votes (signed, one per approver, stored first)
 *        M approvals ──> decision entry "approve" ──> sequencer posts the transfer
 *        a rejection ──> decision entry "reject"  ──> sequencer releases the hold
 *        the timeout ──> decision entry "expire"  ──> sequencer releases the hold
 *
 * Votes and decisions are handled one at a time (a Serial queue): votes are rare next to
 * transfers, and one at a time there is no race between the last approval and an expiry. A
 * decision that cannot be sequenced now (engine at capacity, storage down) is retried by the sweep
 * every approvalSweepMs, which also finds expiries; after a restart the sweep finishes what the
 * stored votes already decided.
 */

import crypto from 'node:crypto';
import type pg from 'pg';
import type { EngineConfig } from '../../config.js';
import type { Pipeline } from '../../pipeline.js';
import type { PendingApproval } from '../../core/sequencer.js';
import { Serial } from '../../stages/commit/serial.js';
import { pgPool } from '../../stages/commit/pg/client.js';
import { publicKeyObject } from '../../core/keys.js';
import { PUBLIC_KEY_BYTES, SIGNATURE_BYTES } from '../../core/record.js';
import { Result, resultName } from '../../core/result.js';
import { APPROVAL_ID_BYTES, decisionBody, voteMessage, type ApprovalOutcome, type VoteDecision } from '../../core/decision.js';
import { ApprovalRegistry, type Approval, type Vote } from './registry.js';
import { insertVote, loadApproval, loadApprovals } from '../../stages/commit/pg/approval-rows.js';

export type VoteErrorCode = 'INVALID_ARGUMENT' | 'NOT_FOUND' | 'PERMISSION_DENIED' | 'UNAUTHENTICATED' | 'ALREADY_EXISTS' | 'FAILED_PRECONDITION';

export class VoteError extends Error {
  constructor(readonly code: VoteErrorCode, message: string) {
    super(message);
  }
}

const DECISIONS_PER_ENTRY_BATCH_MAX = 256;
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export class Approvals {
  readonly registry: ApprovalRegistry;
  private readonly serial = new Serial();
  private readonly sweepTimer: NodeJS.Timeout;
  private stopped = false;

  private constructor(private readonly pipeline: Pipeline, private readonly config: EngineConfig, private readonly pool: pg.Pool | null,
    private readonly log: (level: 'info' | 'warn', message: string, fields?: Record<string, unknown>) => void) {
    this.registry = new ApprovalRegistry(config.approvalsDecidedKeptMax);
    this.sweepTimer = setInterval(() => void this.sweep(), config.approvalSweepMs);
    this.sweepTimer.unref();
  }

  /**
   * Starts after recovery: loads approvals and votes from PostgreSQL (with the pg sink) and checks
   * that the pending ones are exactly the holds the recovered sequencer has.
   */
  static async open(pipeline: Pipeline, config: EngineConfig, log: Approvals['log'] = () => undefined, recoveredHolds: ReadonlyMap<number, PendingApproval> = new Map()): Promise<Approvals> {
    const pool = config.sinks.includes('pg')
      ? pgPool(config.pgUrl, { connectTimeoutMs: config.sinkConnectTimeoutMs, statementTimeoutMs: config.sinkStatementTimeoutMs, name: 'txe-approvals', max: 2 })
      : null;
    const approvals = new Approvals(pipeline, config, pool, log);
    try {
      if (pool) approvals.registry.load(await loadApprovals(pool, config.approvalsDecidedKeptMax));
      approvals.checkAgainstRecovered(recoveredHolds);
    } catch (error) {
      await approvals.close();
      throw error;
    }
    pipeline.onBlock((block) => { if (block.approvals) approvals.registry.applyBlock(block); });
    return approvals;
  }

  private checkAgainstRecovered(held: ReadonlyMap<number, PendingApproval>): void {
    const pending = this.registry.pending();
    const missing = pending.filter((a) => !held.get(a.seq)?.id.equals(a.id));
    if (pending.length !== held.size || missing.length > 0) {
      throw new Error(`approvals: PostgreSQL has ${pending.length} pending approvals, the recovered state holds ${held.size}; they must be the same (first differing seq ${missing[0]?.seq ?? [...held.keys()].find((s) => !this.registry.getBySeq(s))})`);
    }
  }

  /** An approval from memory, else (with the pg sink) from PostgreSQL; null when there is none. */
  async find(key: { id: Buffer } | { seq: number }): Promise<Approval | null> {
    const inMemory = 'id' in key ? this.registry.get(key.id) : this.registry.getBySeq(key.seq);
    if (inMemory) return inMemory;
    return this.pool ? loadApproval(this.pool, key) : null;
  }

  vote(id: Buffer, approver: Buffer, signature: Buffer, decision: VoteDecision): Promise<Approval> {
    return this.serial.run(() => this.castVote(id, approver, signature, decision));
  }

  private async castVote(id: Buffer, approver: Buffer, signature: Buffer, decision: VoteDecision): Promise<Approval> {
    if (id.length !== APPROVAL_ID_BYTES) throw new VoteError('INVALID_ARGUMENT', `id must be the ${APPROVAL_ID_BYTES}-byte approval id, got ${id.length} bytes`);
    if (approver.length !== PUBLIC_KEY_BYTES) throw new VoteError('INVALID_ARGUMENT', `approver must be a ${PUBLIC_KEY_BYTES}-byte Ed25519 public key, got ${approver.length} bytes`);
    if (signature.length !== SIGNATURE_BYTES) throw new VoteError('INVALID_ARGUMENT', `signature must be ${SIGNATURE_BYTES} bytes, got ${signature.length}`);
    const a = await this.find({ id }); // every pending approval is in memory: one from PostgreSQL is decided
    if (!a) throw new VoteError('NOT_FOUND', `no approval with id ${hex(id)}`);
    if (a.status !== 'pending') throw new VoteError('FAILED_PRECONDITION', `approval ${hex(id)} was ${a.status} already, at seq ${a.decidedSeq}`);
    if (!a.approvers.some((k) => k.equals(approver))) throw new VoteError('PERMISSION_DENIED', `key ${hex(approver)} is not an approver of policy ${a.policy} for approval ${hex(id)}`);
    if (!crypto.verify(null, voteMessage(id, decision), publicKeyObject(approver), signature)) {
      throw new VoteError('UNAUTHENTICATED', `signature does not verify: it must be Ed25519 by the approver over "txe/approval-vote/v1" | id | ${decision === 'approve' ? '1 (approve)' : '2 (reject)'}`);
    }
    if (a.votes.some((v) => v.approver.equals(approver))) throw new VoteError('ALREADY_EXISTS', `approver ${hex(approver)} has voted on approval ${hex(id)} already`);
    if (Date.now() >= a.expiresAtMs) {
      await this.decide([a], Date.now());
      throw new VoteError('FAILED_PRECONDITION', `approval ${hex(id)} expired at ${new Date(a.expiresAtMs).toISOString()}`);
    }
    const vote: Vote = { approver, decision, signature, votedAtMs: Date.now() };
    if (this.pool && !(await insertVote(this.pool, id, vote))) throw new VoteError('ALREADY_EXISTS', `approver ${hex(approver)} has voted on approval ${hex(id)} already`);
    a.votes.push(vote);
    this.registry.emit('voted', a);
    if (outcomeOf(a, vote.votedAtMs) !== null) {
      // The vote is stored: whatever happens to the decision now, the sweep makes it again.
      await this.decide([a], vote.votedAtMs).catch((error: Error) => this.log('warn', 'approval decision failed; the sweep retries it', { seq: a.seq, error: error.message }));
    }
    return a;
  }

  /**
   * Puts decision entries for these approvals through the sequencer and waits for the answer (at
   * the configured ack). The registry learns the outcome from the sequenced block itself; a
   * decision refused now (capacity, storage down) is left to the next sweep.
   */
  private async decide(list: Approval[], nowMs: number): Promise<void> {
    const due = list.map((a) => ({ a, outcome: outcomeOf(a, nowMs) })).filter((d): d is { a: Approval; outcome: ApprovalOutcome } => d.outcome !== null && !d.a.deciding);
    if (due.length === 0) return;
    const bodies = Buffer.concat(due.map(({ a, outcome }) => decisionBody({
      outcome, sender: a.sender, recipient: a.recipient, heldSeq: a.seq, amount: a.amount, decidedAtMs: nowMs, id: a.id,
    })));
    for (const d of due) d.a.deciding = true;
    let answer;
    try {
      answer = await this.pipeline.submitEntries(bodies, this.config.ack);
    } finally {
      for (const d of due) d.a.deciding = false;
    }
    if (!answer.ok) {
      this.log('warn', 'approval decisions not sequenced yet; the sweep retries them', { count: due.length, code: answer.code, reason: answer.message });
      return;
    }
    answer.results.forEach((code, i) => {
      if (code !== Result.committed) this.log('warn', 'approval decision refused by the sequencer', { seq: due[i].a.seq, result: resultName(code) });
    });
  }

  /** Decides what is due: expiries, and decisions the votes reached but that were not sequenced. */
  sweep(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return this.serial.run(async () => {
      const now = Date.now();
      const due = this.registry.pending().filter((a) => !a.deciding && outcomeOf(a, now) !== null);
      const chunk = Math.min(DECISIONS_PER_ENTRY_BATCH_MAX, this.pipeline.entrySlotsReserved);
      for (let i = 0; i < due.length && !this.stopped; i += chunk) await this.decide(due.slice(i, i + chunk), now);
    }).catch((error: Error) => this.log('warn', 'approval sweep failed', { error: error.message }));
  }

  /**
   * Stops the sweep and waits for the vote or decision in hand, at most `graceMs` (a decision
   * waiting for storage that is down would never end); a decision cut short is made again by the
   * next start's sweep from the stored votes.
   */
  async close(graceMs = this.config.shutdownGraceMs): Promise<void> {
    this.stopped = true;
    clearInterval(this.sweepTimer);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.serial.run(async () => undefined), new Promise((resolve) => { timer = setTimeout(resolve, graceMs); })]);
    clearTimeout(timer);
    await this.pool?.end();
  }
}

/** What the votes and the clock have decided for a pending approval, if anything. */
export function outcomeOf(a: Approval, nowMs: number): ApprovalOutcome | null {
  if (a.status !== 'pending') return null;
  if (a.votes.some((v) => v.decision === 'reject')) return 'rejected';
  if (a.votes.filter((v) => v.decision === 'approve').length >= a.required) return 'approved';
  return nowMs >= a.expiresAtMs ? 'expired' : null;
}
