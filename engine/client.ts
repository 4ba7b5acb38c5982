/*
 * A small typed client for txe.v1.TransactionService over grpc-js, shared by the load generator,
 * the tests and users' own code. Requests carry packed batches; nothing here is per-transaction.
 */

import * as grpc from '@grpc/grpc-js';
import { AckWire, AuthModeWire, StatsServiceDefinition, Types, TransactionServiceDefinition, u64ToNumber, type SubmitBatchResponseWire, type U64 } from './ingress/codec.js';

const ClientConstructor = grpc.makeGenericClientConstructor(TransactionServiceDefinition, 'TransactionService');
const StatsClientConstructor = grpc.makeGenericClientConstructor(StatsServiceDefinition, 'StatsService');

export interface SubmitRequest {
  batchId?: U64;
  auth: 'per-tx' | 'batch-signed';
  txs: Uint8Array;
  signer?: Uint8Array;
  signature?: Uint8Array;
  ack?: 'ordered' | 'durable';
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
    ack: r.ack === 'ordered' ? AckWire.ACK_ORDERED : r.ack === 'durable' ? AckWire.ACK_DURABLE : AckWire.ACK_DEFAULT,
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

export class TxeClient {
  readonly raw: grpc.Client & Record<string, Function>;
  private readonly statsRaw: grpc.Client & Record<string, Function>;

  constructor(readonly address: string, options: grpc.ChannelOptions = clientOptions()) {
    this.raw = new ClientConstructor(address, grpc.credentials.createInsecure(), options) as grpc.Client & Record<string, Function>;
    // The same channel: grpc-js shares it when a client is built over another's channel.
    this.statsRaw = new StatsClientConstructor(address, grpc.credentials.createInsecure(), { ...options, channelOverride: this.raw.getChannel() }) as grpc.Client & Record<string, Function>;
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
