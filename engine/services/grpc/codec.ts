/*
 * Protobuf codecs for txe.v1 (protobufjs, loaded once from proto/ at start-up) and the grpc-js
 * service definition built on them. Decoding a SubmitBatchRequest keeps `txs` as a view into the
 * received buffer (no copy); the one copy is ingress's into the ring. A request that is not valid
 * protobuf decodes to a DecodeError value so the handler can answer INVALID_ARGUMENT with the
 * reason, instead of grpc-js's generic INTERNAL.
 */

import path from 'node:path';
import protobuf from 'protobufjs';
import Long from 'long';
import type * as grpc from '@grpc/grpc-js';
import { protoRoot } from '../../paths.js';
import { TRANSACTION_PROTO, u64ToNumber, type U64 } from '../../core/proto.js';

export { TRANSACTION_PROTO, u64ToNumber, type U64 };

export const PROTO_FILES = ['transaction.proto', 'approval.proto', 'webhook.proto'].map((f) => path.join(protoRoot, 'txe', 'v1', f));
export const SERVICE_NAME = 'txe.v1.TransactionService';
export const APPROVAL_SERVICE_NAME = 'txe.v1.ApprovalService';
export const WEBHOOK_SERVICE_NAME = 'txe.v1.WebhookService';

const root = protobuf.loadSync(PROTO_FILES);
const type = (name: string): protobuf.Type => root.lookupType(`txe.v1.${name}`);

export const Types = {
  SubmitBatchRequest: type('SubmitBatchRequest'),
  SubmitBatchResponse: type('SubmitBatchResponse'),
  GetTransactionRequest: type('GetTransactionRequest'),
  Transaction: type('Transaction'),
  GetAccountRequest: type('GetAccountRequest'),
  Account: type('Account'),
  StreamCommitsRequest: type('StreamCommitsRequest'),
  Block: type('Block'),
  GetStatsRequest: type('GetStatsRequest'),
  WatchStatsRequest: type('WatchStatsRequest'),
  Stats: type('Stats'),
  Approval: type('Approval'),
  GetApprovalRequest: type('GetApprovalRequest'),
  ListApprovalsRequest: type('ListApprovalsRequest'),
  ListApprovalsResponse: type('ListApprovalsResponse'),
  VoteRequest: type('VoteRequest'),
  WatchApprovalsRequest: type('WatchApprovalsRequest'),
  ApprovalEvent: type('ApprovalEvent'),
  CreateWebhookRequest: type('CreateWebhookRequest'),
  CreateWebhookResponse: type('CreateWebhookResponse'),
  ListWebhooksRequest: type('ListWebhooksRequest'),
  ListWebhooksResponse: type('ListWebhooksResponse'),
  UpdateWebhookRequest: type('UpdateWebhookRequest'),
  Webhook: type('Webhook'),
  DeleteWebhookRequest: type('DeleteWebhookRequest'),
  DeleteWebhookResponse: type('DeleteWebhookResponse'),
  RotateSecretRequest: type('RotateSecretRequest'),
  RotateSecretResponse: type('RotateSecretResponse'),
  ListDeliveriesRequest: type('ListDeliveriesRequest'),
  ListDeliveriesResponse: type('ListDeliveriesResponse'),
};

export const AuthModeWire = { AUTH_MODE_UNSPECIFIED: 0, PER_TX: 1, BATCH_SIGNED: 2 } as const;
export const AckWire = { ACK_DEFAULT: 0, ACK_ORDERED: 1, ACK_DURABLE: 2, ACK_FINAL: 3 } as const;

export class DecodeError {
  constructor(readonly message: string) {}
}

export { Long };


/** A u64 as a JS number when it is below 2^53, else null: for request fields a client controls. */
export function u64ToSafe(value: U64 | null | undefined): number | null {
  if (value === null || value === undefined) return 0;
  const n = typeof value === 'number' ? value : value.toNumber();
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

export function u64ToBigInt(value: U64 | null | undefined): bigint {
  if (value === null || value === undefined) return 0n;
  return typeof value === 'number' ? BigInt(value) : BigInt(value.toString());
}

function codec(t: protobuf.Type, safe: boolean) {
  return {
    serialize: (value: unknown): Buffer => {
      const bytes = t.encode(value as object).finish();
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    },
    deserialize: (buffer: Buffer): unknown => {
      if (!safe) return t.decode(buffer);
      try {
        return t.decode(buffer);
      } catch (error) {
        return new DecodeError(`request is not a valid ${t.name} protobuf: ${(error as Error).message}`);
      }
    },
  };
}

function method(name: string, request: protobuf.Type, response: protobuf.Type, requestStream: boolean, responseStream: boolean, service = SERVICE_NAME): grpc.MethodDefinition<unknown, unknown> {
  const req = codec(request, true);
  const res = codec(response, false);
  return {
    path: `/${service}/${name}`,
    requestStream,
    responseStream,
    requestSerialize: req.serialize,
    requestDeserialize: req.deserialize,
    responseSerialize: res.serialize,
    responseDeserialize: res.deserialize,
    originalName: name[0].toLowerCase() + name.slice(1),
  };
}

export const TransactionServiceDefinition: grpc.ServiceDefinition = {
  SubmitBatch: method('SubmitBatch', Types.SubmitBatchRequest, Types.SubmitBatchResponse, false, false),
  SubmitStream: method('SubmitStream', Types.SubmitBatchRequest, Types.SubmitBatchResponse, true, true),
  GetTransaction: method('GetTransaction', Types.GetTransactionRequest, Types.Transaction, false, false),
  GetAccount: method('GetAccount', Types.GetAccountRequest, Types.Account, false, false),
  StreamCommits: method('StreamCommits', Types.StreamCommitsRequest, Types.Block, false, true),
};

export const STATS_SERVICE_NAME = 'txe.v1.StatsService';

export const StatsServiceDefinition: grpc.ServiceDefinition = {
  GetStats: method('GetStats', Types.GetStatsRequest, Types.Stats, false, false, STATS_SERVICE_NAME),
  WatchStats: method('WatchStats', Types.WatchStatsRequest, Types.Stats, false, true, STATS_SERVICE_NAME),
};

const A = APPROVAL_SERVICE_NAME;
export const ApprovalServiceDefinition: grpc.ServiceDefinition = {
  GetApproval: method('GetApproval', Types.GetApprovalRequest, Types.Approval, false, false, A),
  ListApprovals: method('ListApprovals', Types.ListApprovalsRequest, Types.ListApprovalsResponse, false, false, A),
  Approve: method('Approve', Types.VoteRequest, Types.Approval, false, false, A),
  Reject: method('Reject', Types.VoteRequest, Types.Approval, false, false, A),
  WatchApprovals: method('WatchApprovals', Types.WatchApprovalsRequest, Types.ApprovalEvent, false, true, A),
};

const W = WEBHOOK_SERVICE_NAME;
export const WebhookServiceDefinition: grpc.ServiceDefinition = {
  CreateWebhook: method('CreateWebhook', Types.CreateWebhookRequest, Types.CreateWebhookResponse, false, false, W),
  ListWebhooks: method('ListWebhooks', Types.ListWebhooksRequest, Types.ListWebhooksResponse, false, false, W),
  UpdateWebhook: method('UpdateWebhook', Types.UpdateWebhookRequest, Types.Webhook, false, false, W),
  DeleteWebhook: method('DeleteWebhook', Types.DeleteWebhookRequest, Types.DeleteWebhookResponse, false, false, W),
  RotateSecret: method('RotateSecret', Types.RotateSecretRequest, Types.RotateSecretResponse, false, false, W),
  ListDeliveries: method('ListDeliveries', Types.ListDeliveriesRequest, Types.ListDeliveriesResponse, false, false, W),
};

/** Wire shapes as protobufjs decodes them. */
export interface SubmitBatchRequestWire {
  batchId?: U64;
  auth?: number;
  txs?: Buffer;
  signer?: Buffer;
  signature?: Buffer;
  ack?: number;
}

export interface SubmitBatchResponseWire {
  batchId: U64;
  firstSeq: U64;
  block: U64;
  results: Uint8Array;
  accepted: number;
  rejected: number;
  statusCode: number;
  statusMessage: string;
}
