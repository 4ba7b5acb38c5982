/*
 * TransactionService handlers: the gRPC edge of the pipeline. Each batch is one message; its
 * records stay packed bytes. Every bad input gets a status whose message says what was wrong, and
 * one client's bad or slow stream never blocks the others.
 */

import * as grpc from '@grpc/grpc-js';
import type { EngineConfig } from '../../config.js';
import type { BatchAnswer, BatchSubmission, Pipeline } from '../../pipeline.js';
import { CommitStream } from './commit-stream.js';
import type { PgReads, StoredTransaction } from '../../stages/commit/pg/pg-reads.js';
import { readBody } from '../../core/record.js';
import { ACCOUNT_URI_PREFIX, ALL_ACCOUNTS, CallerScopes, type AccountScope } from '../security/scope.js';
import { Result } from '../../core/result.js';
import {
  AckWire, AuthModeWire, DecodeError, u64ToBigInt, u64ToSafe,
  type SubmitBatchRequestWire, type SubmitBatchResponseWire, type U64,
} from './codec.js';

const STATUS_OF = { INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT, RESOURCE_EXHAUSTED: grpc.status.RESOURCE_EXHAUSTED, UNAVAILABLE: grpc.status.UNAVAILABLE } as const;

type Failure = { code: grpc.status; details: string };

export class TransactionService {
  private readonly streams = new Map<grpc.ServerDuplexStream<unknown, unknown>, () => void>();
  private readonly subscribers = new Set<CommitStream>();
  private shuttingDown = false;

  /** `scopes`: which accounts each caller acts for (security/scope.ts); `onDenied` counts a refusal. */
  constructor(private readonly pipeline: Pipeline, private readonly config: EngineConfig, private readonly durable: PgReads | null = null,
    private readonly scopes: CallerScopes = new CallerScopes({ kind: 'none' }), private readonly onDenied: () => void = () => undefined) {
    pipeline.onBlock(() => { for (const reader of this.subscribers) reader.pump(); });
  }

  handlers(): grpc.UntypedServiceImplementation {
    return {
      SubmitBatch: this.submitBatch.bind(this),
      SubmitStream: this.submitStream.bind(this),
      GetTransaction: this.getTransaction.bind(this),
      GetAccount: this.getAccount.bind(this),
      StreamCommits: this.streamCommits.bind(this),
    };
  }

  private toSubmission(raw: unknown): BatchSubmission | Failure {
    if (raw instanceof DecodeError) return { code: grpc.status.INVALID_ARGUMENT, details: raw.message };
    const req = raw as SubmitBatchRequestWire;
    const mode = req.auth === AuthModeWire.PER_TX ? 'per-tx' : req.auth === AuthModeWire.BATCH_SIGNED ? 'batch-signed' : null;
    if (mode === null) return { code: grpc.status.INVALID_ARGUMENT, details: `auth must be PER_TX (1) or BATCH_SIGNED (2), got ${req.auth ?? 0}` };
    if (req.ack === AckWire.ACK_FINAL) return { code: grpc.status.INVALID_ARGUMENT, details: 'ack FINAL is answered by cluster validators (txe validator, engine/cluster/), not by a single engine; use ORDERED or DURABLE here' };
    const ack = req.ack === AckWire.ACK_ORDERED ? 'ordered' : req.ack === AckWire.ACK_DURABLE ? 'durable' : this.config.ack;
    return { mode, txs: req.txs ?? Buffer.alloc(0), signer: req.signer?.length ? req.signer : null, signature: req.signature?.length ? req.signature : null, ack };
  }

  private submit(raw: unknown, scope: AccountScope): Promise<BatchAnswer> | Failure {
    if (this.shuttingDown) return { code: grpc.status.UNAVAILABLE, details: 'engine is shutting down; resubmit to another instance' };
    const submission = this.toSubmission(raw);
    if ('code' in submission) return submission;
    const denied = scope.submitDenial(submission.mode, submission.txs, submission.signer);
    return denied === null ? this.pipeline.submit(submission) : this.deny(denied);
  }

  private deny(details: string): Failure {
    this.onDenied();
    return { code: grpc.status.PERMISSION_DENIED, details };
  }

  private submitBatch(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>): void {
    const batchId = (call.request as SubmitBatchRequestWire).batchId ?? 0;
    const pending = this.submit(call.request, this.scopes.of(call));
    if ('code' in pending) return callback(pending);
    pending.then((answer) => {
      if (!answer.ok) callback({ code: STATUS_OF[answer.code], details: answer.message });
      else callback(null, response(batchId, answer));
    });
  }

  private submitStream(call: grpc.ServerDuplexStream<unknown, unknown>): void {
    const scope = this.scopes.of(call);
    let inFlight = 0;
    let ended = false; // the client half-closed, or the engine is shutting down
    let endedByShutdown = false; // rather than by the client
    let gone = false;
    const finish = () => {
      if (!ended || inFlight > 0 || gone) return;
      gone = true;
      this.streams.delete(call);
      // A client that still had batches to send learns that the rest were not admitted.
      if (endedByShutdown) call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'engine is shutting down: every batch answered on this stream was handled; batches without an answer were not admitted' });
      else call.end();
    };
    const write = (message: SubmitBatchResponseWire) => {
      if (gone) return;
      if (!call.write(message)) call.pause(); // the client is not reading: stop reading its batches too
    };
    this.streams.set(call, () => {
      if (!ended) { ended = true; endedByShutdown = true; }
      finish();
    });
    call.on('drain', () => call.resume());
    call.on('data', (raw: unknown) => {
      const batchId = (raw as SubmitBatchRequestWire)?.batchId ?? 0;
      if (inFlight >= this.config.streamBatchesInFlightMax) {
        return write(failed(batchId, grpc.status.RESOURCE_EXHAUSTED, `stream has ${inFlight} batches in flight (max ${this.config.streamBatchesInFlightMax}); wait for responses`));
      }
      const pending = this.submit(raw, scope);
      if ('code' in pending) return write(failed(batchId, pending.code, pending.details));
      inFlight++;
      pending.then((answer) => {
        inFlight--;
        write(answer.ok ? response(batchId, answer) : failed(batchId, STATUS_OF[answer.code], answer.message));
        finish();
      });
    });
    call.on('end', () => { ended = true; finish(); });
    call.on('error', () => { gone = true; this.streams.delete(call); });
    call.on('cancelled', () => { gone = true; this.streams.delete(call); });
  }

  private getTransaction(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>): void {
    if (call.request instanceof DecodeError) return callback({ code: grpc.status.INVALID_ARGUMENT, details: call.request.message });
    const req = call.request as { seq?: U64; senderNonce?: { sender?: Buffer; nonce?: U64 }; key?: string };
    const history = this.pipeline.history;
    const scope = this.scopes.of(call);
    callback = this.readableOnly(scope, callback);
    if (req.key === 'seq') {
      const seq = u64ToSafe(req.seq);
      if (seq === null || seq === 0) return callback({ code: grpc.status.INVALID_ARGUMENT, details: `seq must be in [1, 2^53), got ${String(req.seq)}` });
      const entry = history.get(seq);
      if (entry) return callback(null, transaction(entry));
      if (seq > history.newestSeq) return callback({ code: grpc.status.NOT_FOUND, details: `no transaction has seq ${seq} yet (newest is ${history.newestSeq})` });
      if (this.durable === null) return callback({ code: grpc.status.NOT_FOUND, details: `seq ${seq} is older than the in-memory history window (oldest ${history.oldestSeq}) and this engine has no durable store` });
      return this.answerFromStore(this.durable.transactionBySeq(seq), `seq ${seq} is older than the in-memory window and not durable yet; retry`, callback);
    }
    if (req.key === 'senderNonce') {
      const sender = req.senderNonce?.sender;
      if (sender?.length !== 32) return callback({ code: grpc.status.INVALID_ARGUMENT, details: `sender must be 32 bytes, got ${sender?.length ?? 0}` });
      const nonce = u64ToBigInt(req.senderNonce?.nonce);
      const entry = history.findBySenderNonce(sender, nonce);
      if (entry) return callback(null, transaction(entry));
      const notInWindow = `no accepted transaction from ${sender.toString('hex')} with nonce ${nonce} in the history window (seqs ${history.oldestSeq}..${history.newestSeq})`;
      if (this.durable === null) return callback({ code: grpc.status.NOT_FOUND, details: notInWindow });
      if (!this.durable.senderNonceIndexed) return callback({ code: grpc.status.FAILED_PRECONDITION, details: `${notInWindow}; older history is looked up by sender and nonce only with pgSenderNonceIndex on (look it up by seq instead)` });
      return this.answerFromStore(this.durable.transactionBySenderNonce(sender, nonce), `no accepted transaction from ${sender.toString('hex')} with nonce ${nonce} in the history`, callback);
    }
    callback({ code: grpc.status.INVALID_ARGUMENT, details: 'set either seq or sender_nonce' });
  }

  /** A transaction is answered only to a caller whose accounts sent or received it. */
  private readableOnly(scope: AccountScope, callback: grpc.sendUnaryData<unknown>): grpc.sendUnaryData<unknown> {
    if (scope.all) return callback;
    return (error, found) => {
      const denied = error || !found ? null : scope.transactionDenial(found as { sender: Uint8Array; recipient: Uint8Array });
      if (denied === null) return callback(error, found);
      callback(this.deny(denied));
    };
  }

  private answerFromStore(lookup: Promise<StoredTransaction | null>, notFound: string, callback: grpc.sendUnaryData<unknown>): void {
    lookup.then(
      (found) => (found ? callback(null, transaction(found)) : callback({ code: grpc.status.NOT_FOUND, details: notFound })),
      (error: Error) => callback({ code: grpc.status.UNAVAILABLE, details: `durable history is not readable now: ${error.message}; retry` }),
    );
  }

  private getAccount(call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>): void {
    if (call.request instanceof DecodeError) return callback({ code: grpc.status.INVALID_ARGUMENT, details: call.request.message });
    const key = (call.request as { account?: Buffer }).account;
    if (key?.length !== 32) return callback({ code: grpc.status.INVALID_ARGUMENT, details: `account must be 32 bytes, got ${key?.length ?? 0}` });
    const denied = this.scopes.of(call).readDenial(key);
    if (denied !== null) return callback(this.deny(denied));
    this.pipeline.account(key).then((state) => {
      if (state === null) return callback(null, { account: key, exists: false, balance: 0, held: 0, nonce: 0 });
      callback(null, { account: key, exists: true, balance: state.balance.toString(), held: state.held.toString(), nonce: state.nonce.toString() });
    }, (error: Error) => callback({ code: grpc.status.UNAVAILABLE, details: `account state is not readable now: ${error.message}` }));
  }

  private streamCommits(call: grpc.ServerWritableStream<unknown, unknown>): void {
    if (call.request instanceof DecodeError) return void call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: call.request.message });
    if (this.shuttingDown) return void call.emit('error', { code: grpc.status.UNAVAILABLE, details: 'engine is shutting down' });
    const scope = this.scopes.of(call);
    if (!scope.all) return void call.emit('error', this.deny(`StreamCommits carries every account's transactions: it needs a certificate with SAN URI ${ACCOUNT_URI_PREFIX}${ALL_ACCOUNTS} (${scope.describe()})`));
    if (this.subscribers.size >= this.config.subscribersMax) {
      return void call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: `${this.subscribers.size} StreamCommits readers already (max ${this.config.subscribersMax})` });
    }
    const fromSeq = u64ToSafe((call.request as { fromSeq?: U64 }).fromSeq);
    if (fromSeq === null) return void call.emit('error', { code: grpc.status.INVALID_ARGUMENT, details: 'from_seq must be below 2^53' });
    const history = this.pipeline.history;
    const first = fromSeq === 0 ? history.newestBlock + 1 : history.firstBlockReaching(fromSeq);
    if (first === null && this.durable === null) {
      return void call.emit('error', { code: grpc.status.OUT_OF_RANGE, details: `seq ${fromSeq} is older than the in-memory window (oldest seq ${history.oldestSeq}) and this engine has no durable store; read it from Kafka` });
    }
    const reader = new CommitStream(call, history, fromSeq, first ?? 0, this.config.subscriberStallMsMax, () => this.subscribers.delete(reader));
    this.subscribers.add(reader);
    // Response headers now, not with the first block: they tell the client that its reader is
    // registered, so every block cut from here on reaches it (a client can then submit and be sure
    // to see its own block live).
    call.sendMetadata(new grpc.Metadata());
    if (first === null) void reader.catchUpFromStore(this.durable!); // older than memory: PostgreSQL first
    else reader.pump();
  }

  /** Refuses new batches, lets admitted ones finish, and closes open streams. */
  beginShutdown(): void {
    this.shuttingDown = true;
    for (const close of [...this.streams.values()]) close(); // each ends once its admitted batches are answered
    for (const reader of [...this.subscribers]) reader.end();
  }
}

function response(batchId: U64, answer: Extract<BatchAnswer, { ok: true }>): SubmitBatchResponseWire {
  return {
    batchId, firstSeq: answer.firstSeq, block: answer.block, results: answer.results,
    accepted: answer.accepted, rejected: answer.results.length - answer.accepted, statusCode: 0, statusMessage: '',
  };
}

function failed(batchId: U64, code: grpc.status, message: string): SubmitBatchResponseWire {
  return { batchId, firstSeq: 0, block: 0, results: new Uint8Array(0), accepted: 0, rejected: 0, statusCode: code, statusMessage: message };
}

function transaction(entry: StoredTransaction) {
  const r = readBody(entry.body);
  return {
    seq: entry.seq, block: entry.block, result: entry.result ?? Result.committed, kind: r.kind,
    sender: r.sender, recipient: r.recipient, nonce: r.nonce.toString(), amount: r.amount.toString(),
    timestampMs: r.timestampMs.toString(), memo: r.memo, body: entry.body,
  };
}
