/*
 * What every layer may know of the protobuf contract (proto/txe/v1): where the files are, and how a
 * protobufjs u64 (number or Long) becomes a JS number. The gRPC service definitions build on this
 * in services/grpc/codec.ts; the Kafka block record in stages/commit/kafka/block-record.ts.
 */

import path from 'node:path';
import type Long from 'long';
import { protoRoot } from '../paths.js';

export const TRANSACTION_PROTO = path.join(protoRoot, 'txe', 'v1', 'transaction.proto');

export type U64 = number | Long;

/** A u64 from protobufjs (number or Long) as a JS number; throws past 2^53 (never reached by seqs). */
export function u64ToNumber(value: U64 | null | undefined): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === 'number') return value;
  const n = value.toNumber();
  if (!Number.isSafeInteger(n)) throw new RangeError(`u64 ${value.toString()} exceeds 2^53`);
  return n;
}
