/*
 * The approvals the ApprovalService answers from: every pending approval and the newest
 * `decidedKept` decided ones, in memory, fed by the sequencer's approval changes block by block
 * (and, at start, by the rows PostgreSQL holds). Bounded: pending approvals by the sequencer's
 * approvalsPendingMax, decided ones by decidedKept (the oldest are dropped from memory; their rows
 * stay in PostgreSQL).
 */

import type { CommittedBlock } from '../../core/block.js';

export type { Approval, ApprovalStatus, Vote } from '../../core/decision.js';
import type { Approval } from '../../core/decision.js';

export type ApprovalChangeKind = 'requested' | 'voted' | 'decided';

export class ApprovalRegistry {
  private readonly byId = new Map<string, Approval>();
  private readonly bySeq = new Map<number, Approval>();
  private readonly decidedOrder: Approval[] = []; // oldest decided first, for eviction
  private readonly listeners = new Set<(change: ApprovalChangeKind, a: Approval) => void>();

  constructor(private readonly decidedKept: number) {}

  get size(): number { return this.byId.size; }

  load(approvals: Approval[]): void {
    if (this.bySeq.size > 0) throw new Error('approval registry: load() runs once, before any block');
    for (const a of approvals) {
      this.byId.set(a.id.toString('hex'), a);
      this.bySeq.set(a.seq, a);
      if (a.status !== 'pending') this.decidedOrder.push(a);
    }
  }

  get(id: Buffer): Approval | undefined { return this.byId.get(id.toString('hex')); }
  getBySeq(seq: number): Approval | undefined { return this.bySeq.get(seq); }

  /**
   * Approvals in seq order after `afterSeq` that pass `keep`, at most `limit`. The map is in seq
   * order already: loaded in seq order, then added as holds are sequenced.
   */
  list(afterSeq: number, limit: number, keep: (a: Approval) => boolean): Approval[] {
    const out: Approval[] = [];
    for (const a of this.bySeq.values()) {
      if (a.seq <= afterSeq || !keep(a)) continue;
      out.push(a);
      if (out.length === limit) break;
    }
    return out;
  }

  pending(): Approval[] {
    return [...this.bySeq.values()].filter((a) => a.status === 'pending');
  }

  onChange(listener: (change: ApprovalChangeKind, a: Approval) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  emit(change: ApprovalChangeKind, a: Approval): void {
    for (const listener of this.listeners) listener(change, a);
  }

  /** Applies a sequenced block's approval changes (the sequencer's block listener). */
  applyBlock(block: CommittedBlock): void {
    for (const c of block.approvals ?? []) {
      if (c.type === 'requested') {
        const a: Approval = {
          id: c.id, seq: c.seq, block: block.number, position: c.position, sender: c.sender, recipient: c.recipient, nonce: c.nonce,
          amount: c.amount, policy: c.policy.name, required: c.policy.required, approvers: c.policy.approvers.map((k) => Buffer.from(k, 'hex')),
          requestedAtMs: block.sequencedAtMs, expiresAtMs: block.sequencedAtMs + c.policy.timeoutMs, status: 'pending',
          decidedSeq: 0, decidedAtMs: 0, votes: [], deciding: false,
        };
        this.byId.set(a.id.toString('hex'), a);
        this.bySeq.set(a.seq, a);
        this.emit('requested', a);
      } else {
        const a = this.bySeq.get(c.heldSeq);
        if (!a) throw new Error(`approval registry: block ${block.number} decides seq ${c.heldSeq}, which it never saw held`);
        a.status = c.outcome;
        a.decidedSeq = c.seq;
        a.decidedAtMs = c.decidedAtMs;
        a.deciding = false;
        this.decidedOrder.push(a);
        this.emit('decided', a);
        this.evict();
      }
    }
  }

  private evict(): void {
    while (this.decidedOrder.length > this.decidedKept) {
      const a = this.decidedOrder.shift()!;
      this.byId.delete(a.id.toString('hex'));
      this.bySeq.delete(a.seq);
    }
  }
}
