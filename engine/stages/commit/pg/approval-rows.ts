/*
 * Approvals in PostgreSQL. The pg sink writes a block's approval changes inside the block's own
 * transaction, so an approval row exists exactly when its hold is durable, and its status changes
 * exactly when its decision is. Votes are written by the ApprovalService (one row per approver)
 * before it acts on them. Holds are rare next to transfers: one short statement per change.
 */

import type pg from 'pg';
import type { ApprovalChange } from '../../../core/block.js';
import type { Approval, ApprovalStatus, Vote } from '../../../core/decision.js';
import type { VoteDecision } from '../../../core/decision.js';

const PG_TIMESTAMP = (ms: number): Date => new Date(ms);

/** Inserts held approvals and records decisions of one block; runs in the sink's transaction. */
export async function writeApprovalChanges(client: pg.Client, block: number, sequencedAtMs: number, changes: ApprovalChange[]): Promise<void> {
  for (const c of changes) {
    if (c.type === 'requested') {
      await client.query(
        `insert into txe_approvals (id, seq, block, position, sender, recipient, nonce, amount, policy, required, approvers, requested_at, expires_at, status)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'pending') on conflict (id) do nothing`,
        [c.id, c.seq, block, c.position, c.sender, c.recipient, c.nonce.toString(), c.amount.toString(), c.policy.name, c.policy.required,
          c.policy.approvers.map((a) => Buffer.from(a, 'hex')), PG_TIMESTAMP(sequencedAtMs), PG_TIMESTAMP(sequencedAtMs + c.policy.timeoutMs)]);
    } else {
      const r = await client.query(`update txe_approvals set status = $2, decided_seq = $3, decided_at = $4 where id = $1 and status = 'pending'`,
        [c.id, c.outcome, c.seq, PG_TIMESTAMP(c.decidedAtMs)]);
      if (r.rowCount !== 1) throw new Error(`approval rows: block ${block} decides approval ${c.id.toString('hex')} (seq ${c.heldSeq}), which has no pending row`);
    }
  }
}

interface ApprovalRow {
  id: Buffer; seq: string; block: string; position: number; sender: Buffer; recipient: Buffer; nonce: string; amount: string;
  policy: string; required: number; approvers: Buffer[]; requested_at: Date; expires_at: Date; status: ApprovalStatus;
  decided_seq: string | null; decided_at: Date | null;
}

/** Every pending approval and the newest `decidedMax` decided ones, with their votes, oldest first. */
export async function loadApprovals(client: pg.Pool | pg.Client, decidedMax: number): Promise<Approval[]> {
  const rows = await client.query<ApprovalRow>(
    `(select * from txe_approvals where status = 'pending')
     union all
     (select * from txe_approvals where status <> 'pending' order by seq desc limit $1)
     order by seq`, [decidedMax]);
  return withVotes(client, rows.rows);
}

/** One approval by id or held seq, from PostgreSQL (one older than the in-memory window). */
export async function loadApproval(client: pg.Pool | pg.Client, key: { id: Buffer } | { seq: number }): Promise<Approval | null> {
  const rows = 'id' in key
    ? await client.query<ApprovalRow>('select * from txe_approvals where id = $1', [key.id])
    : await client.query<ApprovalRow>('select * from txe_approvals where seq = $1', [key.seq]);
  return (await withVotes(client, rows.rows))[0] ?? null;
}

async function withVotes(client: pg.Pool | pg.Client, rows: ApprovalRow[]): Promise<Approval[]> {
  if (rows.length === 0) return [];
  const votes = await client.query<{ approval_id: Buffer; approver: Buffer; decision: VoteDecision; signature: Buffer; voted_at: Date }>(
    'select * from txe_approval_votes where approval_id = any($1) order by voted_at', [rows.map((r) => r.id)]);
  const byId = new Map<string, Vote[]>();
  for (const v of votes.rows) {
    const key = v.approval_id.toString('hex');
    const list = byId.get(key) ?? [];
    list.push({ approver: v.approver, decision: v.decision, signature: v.signature, votedAtMs: v.voted_at.getTime() });
    byId.set(key, list);
  }
  return rows.map((r) => ({
    id: r.id, seq: Number(r.seq), block: Number(r.block), position: r.position, sender: r.sender, recipient: r.recipient,
    nonce: BigInt(r.nonce), amount: BigInt(r.amount), policy: r.policy, required: r.required, approvers: r.approvers,
    requestedAtMs: r.requested_at.getTime(), expiresAtMs: r.expires_at.getTime(), status: r.status,
    decidedSeq: r.decided_seq === null ? 0 : Number(r.decided_seq), decidedAtMs: r.decided_at?.getTime() ?? 0,
    votes: byId.get(r.id.toString('hex')) ?? [], deciding: false,
  }));
}

/** Stores one vote; false when this approver has voted on this approval already. */
export async function insertVote(client: pg.Pool | pg.Client, id: Buffer, vote: Vote): Promise<boolean> {
  const r = await client.query(
    'insert into txe_approval_votes (approval_id, approver, decision, signature, voted_at) values ($1, $2, $3, $4, $5) on conflict do nothing',
    [id, vote.approver, vote.decision, vote.signature, PG_TIMESTAMP(vote.votedAtMs)]);
  return r.rowCount === 1;
}
