/*
 * ApprovalService handlers (proto/txe/v1/approval.proto): the gRPC edge of engine/services/approvals.
 * Queries answer from the in-memory registry; votes go through Approvals one at a time. A watcher
 * that stops reading gets RESOURCE_EXHAUSTED after WATCH_BACKLOG_MAX unread events instead of
 * growing the server's buffers, and the number of watchers is bounded by subscribersMax.
 */

import * as grpc from '@grpc/grpc-js';
import { dropStalledStream } from './drop-stream.js';
import type { EngineConfig } from '../../config.js';
import { VoteError, type Approvals } from '../approvals/approvals.js';
import type { Approval, ApprovalChangeKind, ApprovalStatus } from '../approvals/registry.js';
import type { VoteDecision } from '../../core/decision.js';
import { DecodeError, u64ToSafe, type U64 } from './codec.js';

const STATUS_WIRE: Record<ApprovalStatus, number> = { pending: 1, approved: 2, rejected: 3, expired: 4 };
const WIRE_STATUS: Record<number, ApprovalStatus | null> = { 0: null, 1: 'pending', 2: 'approved', 3: 'rejected', 4: 'expired' };
const CHANGE_WIRE: Record<ApprovalChangeKind | 'snapshot', number> = { snapshot: 1, requested: 2, voted: 3, decided: 4 };
const LIST_LIMIT_DEFAULT = 100;
const LIST_LIMIT_MAX = 1000;
const WATCH_BACKLOG_MAX = 1024;

interface VoteRequestWire { id?: Buffer; approver?: Buffer; signature?: Buffer }

export function approvalMessage(a: Approval) {
  return {
    id: a.id, seq: a.seq, block: a.block, sender: a.sender, recipient: a.recipient, nonce: a.nonce.toString(), amount: a.amount.toString(),
    policy: a.policy, required: a.required, approvers: a.approvers, requestedAtMs: a.requestedAtMs, expiresAtMs: a.expiresAtMs,
    status: STATUS_WIRE[a.status], decidedSeq: a.decidedSeq, decidedAtMs: a.decidedAtMs,
    votes: a.votes.map((v) => ({ approver: v.approver, decision: v.decision === 'approve' ? 1 : 2, signature: v.signature, votedAtMs: v.votedAtMs })),
  };
}

export class ApprovalService {
  private readonly watchers = new Set<() => void>();

  constructor(private readonly approvals: Approvals, private readonly config: EngineConfig) {}

  handlers(): grpc.UntypedServiceImplementation {
    return {
      GetApproval: this.getApproval.bind(this),
      ListApprovals: this.listApprovals.bind(this),
      Approve: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => this.vote(call, cb, 'approve'),
      Reject: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => this.vote(call, cb, 'reject'),
      WatchApprovals: this.watchApprovals.bind(this),
    };
  }

  private getApproval(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>): void {
    if (call.request instanceof DecodeError) return callback({ code: grpc.status.INVALID_ARGUMENT, details: call.request.message });
    const req = call.request as { id?: Buffer; seq?: U64 };
    const seq = u64ToSafe(req.seq);
    if (!req.id?.length && !seq) return callback({ code: grpc.status.INVALID_ARGUMENT, details: 'give the approval id (32 bytes) or the held transaction seq' });
    if (req.id?.length && req.id.length !== 32) return callback({ code: grpc.status.INVALID_ARGUMENT, details: `id must be 32 bytes, got ${req.id.length}` });
    this.approvals.find(req.id?.length ? { id: req.id } : { seq: seq! }).then((a) => {
      if (!a) return callback({ code: grpc.status.NOT_FOUND, details: `no approval ${req.id?.length ? `with id ${req.id.toString('hex')}` : `held at seq ${seq}`}` });
      callback(null, approvalMessage(a));
    }, (error: Error) => callback({ code: grpc.status.UNAVAILABLE, details: `approval store unavailable: ${error.message}; retry` }));
  }

  private listApprovals(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>): void {
    if (call.request instanceof DecodeError) return callback({ code: grpc.status.INVALID_ARGUMENT, details: call.request.message });
    const req = call.request as { status?: number; sender?: Buffer; approver?: Buffer; limit?: number; afterSeq?: U64 };
    const status = WIRE_STATUS[req.status ?? 0];
    if (status === undefined) return callback({ code: grpc.status.INVALID_ARGUMENT, details: `unknown status ${req.status}` });
    const limit = req.limit || LIST_LIMIT_DEFAULT;
    if (limit > LIST_LIMIT_MAX) return callback({ code: grpc.status.INVALID_ARGUMENT, details: `limit is at most ${LIST_LIMIT_MAX}, got ${limit}` });
    const afterSeq = u64ToSafe(req.afterSeq) ?? 0;
    const sender = req.sender?.length ? req.sender : null;
    const approver = req.approver?.length ? req.approver : null;
    const page = this.approvals.registry.list(afterSeq, limit + 1, (a) =>
      (status === null || a.status === status) && (sender === null || a.sender.equals(sender)) && (approver === null || a.approvers.some((k) => k.equals(approver))));
    const more = page.length > limit;
    const shown = page.slice(0, limit);
    callback(null, { approvals: shown.map(approvalMessage), nextAfterSeq: more ? shown[shown.length - 1].seq : 0 });
  }

  private vote(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>, decision: VoteDecision): void {
    if (call.request instanceof DecodeError) return callback({ code: grpc.status.INVALID_ARGUMENT, details: call.request.message });
    const req = call.request as VoteRequestWire;
    this.approvals.vote(req.id ?? Buffer.alloc(0), req.approver ?? Buffer.alloc(0), req.signature ?? Buffer.alloc(0), decision).then(
      (a) => callback(null, approvalMessage(a)),
      (error: Error) => callback(error instanceof VoteError
        ? { code: grpc.status[error.code], details: error.message }
        : { code: grpc.status.UNAVAILABLE, details: `vote not recorded: ${error.message}; retry` }),
    );
  }

  private watchApprovals(call: grpc.ServerWritableStream<unknown, unknown>): void {
    if (call.request instanceof DecodeError) return void call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: call.request.message });
    if (this.watchers.size >= this.config.subscribersMax) {
      return void call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: `${this.watchers.size} WatchApprovals readers already (max ${this.config.subscribersMax})` });
    }
    let unread = 0;
    let open = true;
    const send = (change: ApprovalChangeKind | 'snapshot', a: Approval) => {
      if (!open) return;
      // The snapshot is bounded by approvalsPendingMax already; only changes count toward the backlog.
      if (change === 'snapshot') return void call.write({ change: CHANGE_WIRE[change], approval: approvalMessage(a) });
      if (unread >= WATCH_BACKLOG_MAX) {
        // Its status could not overtake the changes queued before it; RST_STREAM frees them.
        stop();
        dropStalledStream(call);
        return;
      }
      if (!call.write({ change: CHANGE_WIRE[change], approval: approvalMessage(a) })) unread++;
    };
    const unsubscribe = this.approvals.registry.onChange(send);
    const stop = () => { open = false; unsubscribe(); this.watchers.delete(end); };
    const end = () => { stop(); call.end(); };
    this.watchers.add(end);
    call.on('drain', () => { unread = 0; });
    call.on('cancelled', stop);
    call.on('error', stop);
    if ((call.request as { includePending?: boolean }).includePending) for (const a of this.approvals.registry.pending()) send('snapshot', a);
  }

  endAll(): void {
    for (const end of [...this.watchers]) end();
  }
}
