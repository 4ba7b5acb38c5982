/*
 * A small typed client for txe.v1.TransactionService over grpc-js, shared by the load generator,
 * the tests and users' own code. Requests carry packed batches; nothing here is per-transaction.
 */

import * as grpc from '@grpc/grpc-js';
import { randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import {
  AckWire, ApprovalServiceDefinition, AuthModeWire, StatsServiceDefinition, Types, TransactionServiceDefinition, WebhookServiceDefinition,
  u64ToNumber, type SubmitBatchResponseWire, type U64,
} from './services/grpc/codec.js';
import { voteMessage, type VoteDecision } from './core/decision.js';
import { sign } from './core/keys.js';
import { packBodies, signBatch } from './core/batch.js';
import { KIND_MINT } from './core/record.js';
import type { KeysFile } from './keys-file.js';

const ClientConstructor = grpc.makeGenericClientConstructor(TransactionServiceDefinition, 'TransactionService');
const StatsClientConstructor = grpc.makeGenericClientConstructor(StatsServiceDefinition, 'StatsService');
const ApprovalClientConstructor = grpc.makeGenericClientConstructor(ApprovalServiceDefinition, 'ApprovalService');
const WebhookClientConstructor = grpc.makeGenericClientConstructor(WebhookServiceDefinition, 'WebhookService');

type RawClient = grpc.Client & Record<string, Function>;
type Message = Record<string, unknown>;

/** An approver's vote signature: Ed25519 over "txe/approval-vote/v1" | id | decision. */
export function signVote(id: Uint8Array, decision: VoteDecision, key: KeyObject): Buffer {
  return sign(voteMessage(id, decision), key);
}

export interface SubmitRequest {
  batchId?: U64;
  auth: 'per-tx' | 'batch-signed';
  txs: Uint8Array;
  signer?: Uint8Array;
  signature?: Uint8Array;
  ack?: 'ordered' | 'durable' | 'final'; // final: cluster validators only (engine/cluster/)
}

/**
 * `count` mints (1 unit each, to fresh random accounts) from the keys file's issuer, nonces from
 * `firstNonce` on, signed as one batch by its trusted signer: what the cluster test and the
 * failover benchmark send.
 */
export function mintBatch(keys: KeysFile, firstNonce: bigint, count: number, ack: SubmitRequest['ack']): SubmitRequest {
  const timestampMs = BigInt(Date.now());
  const records = Array.from({ length: count }, (_, i) => ({ kind: KIND_MINT, sender: keys.issuer.publicKey, recipient: randomBytes(32), nonce: firstNonce + BigInt(i), amount: 1n, timestampMs }));
  const txs = packBodies(records);
  return { auth: 'batch-signed', txs, signer: keys.signer.publicKey, signature: signBatch(txs, keys.signer.privateKey), ack };
}

export interface SubmitResponse {
  batchId: number;
  firstSeq: number;
  block: number;
  results: Uint8Array;
  accepted: number;
  rejected: number;
  statusCode: number;
  statusMessage: string;
}

export function toWireRequest(r: SubmitRequest): object {
  return {
    batchId: r.batchId ?? 0,
    auth: r.auth === 'per-tx' ? AuthModeWire.PER_TX : AuthModeWire.BATCH_SIGNED,
    txs: r.txs, signer: r.signer, signature: r.signature,
    ack: r.ack === 'ordered' ? AckWire.ACK_ORDERED : r.ack === 'durable' ? AckWire.ACK_DURABLE : r.ack === 'final' ? AckWire.ACK_FINAL : AckWire.ACK_DEFAULT,
  };
}

export function fromWireResponse(w: SubmitBatchResponseWire): SubmitResponse {
  return {
    batchId: u64ToNumber(w.batchId), firstSeq: u64ToNumber(w.firstSeq), block: u64ToNumber(w.block),
    results: w.results ?? new Uint8Array(0), accepted: w.accepted ?? 0, rejected: w.rejected ?? 0,
    statusCode: w.statusCode ?? 0, statusMessage: w.statusMessage ?? '',
  };
}

export const clientOptions = (messageBytesMax = 8 * 1024 * 1024): grpc.ChannelOptions => ({
  'grpc.max_receive_message_length': messageBytesMax,
  'grpc.max_send_message_length': messageBytesMax,
});

/** How a client reaches a TLS engine: its CA, a client certificate (mTLS), or a bearer token. */
export interface ClientTls { caFile: string; certFile?: string; keyFile?: string; token?: string }

/**
 * Channel credentials: plaintext without `tls`; else TLS against `caFile`, with the client
 * certificate if given (mTLS), and the bearer token sent as `authorization` metadata on every call
 * (grpc-js sends call credentials only over TLS).
 */
export function clientCredentials(tls: ClientTls | null = null): grpc.ChannelCredentials {
  if (tls === null) return grpc.credentials.createInsecure();
  if ((tls.certFile === undefined) !== (tls.keyFile === undefined)) throw new Error('a client certificate needs its key: give both, or neither');
  const ssl = grpc.credentials.createSsl(readFileSync(tls.caFile), tls.keyFile ? readFileSync(tls.keyFile) : null, tls.certFile ? readFileSync(tls.certFile) : null);
  if (tls.token === undefined) return ssl;
  const token = tls.token;
  return grpc.credentials.combineChannelCredentials(ssl, grpc.credentials.createFromMetadataGenerator((_params, callback) => {
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${token}`);
    callback(null, metadata);
  }));
}

export class TxeClient {
  readonly raw: RawClient;
  private readonly statsRaw: RawClient;
  private readonly approvalsRaw: RawClient;
  private readonly webhooksRaw: RawClient;

  constructor(readonly address: string, options: grpc.ChannelOptions = clientOptions(), credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure()) {
    this.raw = new ClientConstructor(address, credentials, options) as grpc.Client & Record<string, Function>;
    // The same channel: grpc-js shares it when a client is built over another's channel.
    const shared = { ...options, channelOverride: this.raw.getChannel() };
    this.statsRaw = new StatsClientConstructor(address, credentials, shared) as RawClient;
    this.approvalsRaw = new ApprovalClientConstructor(address, credentials, shared) as RawClient;
    this.webhooksRaw = new WebhookClientConstructor(address, credentials, shared) as RawClient;
  }

  // --- ApprovalService ---

  getApproval(key: { id: Uint8Array } | { seq: number }): Promise<Message> {
    return this.call(this.approvalsRaw, 'GetApproval', key);
  }

  listApprovals(request: { status?: number; sender?: Uint8Array; approver?: Uint8Array; limit?: number; afterSeq?: number } = {}): Promise<Message> {
    return this.call(this.approvalsRaw, 'ListApprovals', request);
  }

  /** Sends a vote; `signature` defaults to one made with `key` (the approver's private key). */
  vote(decision: VoteDecision, id: Uint8Array, approver: Uint8Array, signature: Uint8Array): Promise<Message> {
    return this.call(this.approvalsRaw, decision === 'approve' ? 'Approve' : 'Reject', { id, approver, signature });
  }

  approve(id: Uint8Array, approver: { publicKey: Uint8Array; privateKey: KeyObject }): Promise<Message> {
    return this.vote('approve', id, approver.publicKey, signVote(id, 'approve', approver.privateKey));
  }

  reject(id: Uint8Array, approver: { publicKey: Uint8Array; privateKey: KeyObject }): Promise<Message> {
    return this.vote('reject', id, approver.publicKey, signVote(id, 'reject', approver.privateKey));
  }

  watchApprovals(includePending: boolean): grpc.ClientReadableStream<Message> {
    return this.approvalsRaw.WatchApprovals({ includePending }) as grpc.ClientReadableStream<Message>;
  }

  // --- WebhookService ---

  createWebhook(request: { url: string; eventTypes: number[]; accounts?: Uint8Array[]; description?: string }): Promise<Message> {
    return this.call(this.webhooksRaw, 'CreateWebhook', request);
  }

  listWebhooks(): Promise<Message> {
    return this.call(this.webhooksRaw, 'ListWebhooks', {});
  }

  updateWebhook(request: { id: string; updateMask: string[]; url?: string; eventTypes?: number[]; accounts?: Uint8Array[]; enabled?: boolean; description?: string }): Promise<Message> {
    return this.call(this.webhooksRaw, 'UpdateWebhook', request);
  }

  deleteWebhook(id: string): Promise<Message> {
    return this.call(this.webhooksRaw, 'DeleteWebhook', { id });
  }

  rotateSecret(id: string, graceMs = 0): Promise<Message> {
    return this.call(this.webhooksRaw, 'RotateSecret', { id, graceMs });
  }

  listDeliveries(request: { webhookId: string; eventId?: string; limit?: number; beforeId?: number }): Promise<Message> {
    return this.call(this.webhooksRaw, 'ListDeliveries', request);
  }

  private call(client: RawClient, name: string, request: object): Promise<Message> {
    return new Promise((resolve, reject) => client[name](request, (e: grpc.ServiceError | null, r: Message) => (e ? reject(e) : resolve(r))));
  }

  getStats(): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => this.statsRaw.GetStats({}, (e: grpc.ServiceError | null, r: Record<string, unknown>) => (e ? reject(e) : resolve(r))));
  }

  watchStats(intervalMs: number): grpc.ClientReadableStream<Record<string, unknown>> {
    return this.statsRaw.WatchStats({ intervalMs }) as grpc.ClientReadableStream<Record<string, unknown>>;
  }

  waitReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => this.raw.waitForReady(Date.now() + timeoutMs, (e?: Error) => (e ? reject(e) : resolve())));
  }

  submitBatch(request: SubmitRequest): Promise<SubmitResponse> {
    return this.unary('SubmitBatch', toWireRequest(request)).then((w) => fromWireResponse(w as unknown as SubmitBatchResponseWire));
  }

  /** A bidi stream: write requests, read responses matched by batchId. */
  submitStream(): grpc.ClientDuplexStream<object, SubmitBatchResponseWire> {
    return this.raw.SubmitStream() as grpc.ClientDuplexStream<object, SubmitBatchResponseWire>;
  }

  getTransaction(key: { seq: number } | { sender: Uint8Array; nonce: bigint }): Promise<Record<string, unknown>> {
    const req = 'seq' in key ? { seq: key.seq } : { senderNonce: { sender: key.sender, nonce: key.nonce.toString() } };
    return this.unary('GetTransaction', req);
  }

  getAccount(account: Uint8Array): Promise<Record<string, unknown>> {
    return this.unary('GetAccount', { account });
  }

  streamCommits(fromSeq: number): grpc.ClientReadableStream<Record<string, unknown>> {
    return this.raw.StreamCommits({ fromSeq }) as grpc.ClientReadableStream<Record<string, unknown>>;
  }

  /** Sends raw bytes as a SubmitBatch request, for tests of malformed input. */
  submitRawBytes(bytes: Buffer): Promise<unknown> {
    const method = { ...TransactionServiceDefinition.SubmitBatch, requestSerialize: (b: Buffer) => b };
    return new Promise((resolve, reject) => {
      this.raw.makeUnaryRequest(method.path, method.requestSerialize, method.responseDeserialize, bytes, (e: grpc.ServiceError | null, r?: unknown) => (e ? reject(e) : resolve(r)));
    });
  }

  private unary(name: string, request: object): Promise<Record<string, unknown>> {
    return new Promise((resolve, reject) => {
      this.raw[name](request, (error: grpc.ServiceError | null, response: Record<string, unknown>) => (error ? reject(error) : resolve(response)));
    });
  }

  close(): void {
    this.raw.close();
  }
}

export { Types };
