/*
 * The Kafka record of one committed block: a txe.v1.BlockRecord protobuf (proto/txe/v1/
 * transaction.proto) as the value, the block number as 8 bytes big-endian as the key.
 *
 *   key    [ number u64 BE ]                                  8 B
 *   value  BlockRecord { number, first_seq, entries, txs,     ~30 B of varints and tags
 *                        hash 32, prev_hash 32, bodies_digest 32,
 *                        results (txs B), bodies (txs × 128 B), sequenced_at_ms }
 *
 * A full block of 8190 txs is 8190 × 128 + 8190 + 3 × 32 + ~40 ≈ 1.06 MB. The key is big-endian so
 * that keys sort as numbers byte-wise (log compaction, tools that print keys). Every body of the
 * batch is carried, rejected ones included, so a reader can recompute bodies_digest and the block
 * hash without any other store. Cost: protobufjs copies the bodies once into the record (a memcpy,
 * ~10 GB/s), on top of the ring copy; both are small next to the network at 135 MB/s.
 */

import protobuf from 'protobufjs';
import { TRANSACTION_PROTO, u64ToNumber, type U64 } from '../../../core/proto.js';
import { HASH_BYTES, type CommittedBlock } from '../../../core/block.js';
import { BODY_BYTES } from '../../../core/record.js';
import type { BlockAuth, StoredBlock } from '../stored-block.js';

export const BLOCK_KEY_BYTES = 8;

/** What a record decodes to: the same shape as a block rebuilt from PostgreSQL. */
export type DecodedBlockRecord = StoredBlock;

// codec.ts's Types do not list BlockRecord (it is no gRPC message), so it is looked up here.
const BlockRecordType = protobuf.loadSync(TRANSACTION_PROTO).lookupType('txe.v1.BlockRecord');

/** The fields as protobufjs decodes them (u64 as number or Long, bytes as Buffer views). */
interface BlockRecordWire {
  number: U64;
  firstSeq: U64;
  entries: number;
  txs: number;
  hash: Buffer;
  prevHash: Buffer;
  bodiesDigest: Buffer;
  results: Buffer;
  bodies: Buffer;
  sequencedAtMs: U64;
  writerEpoch: U64;
  auth: number;
  signer: Buffer;
  signature: Buffer;
  signatures: Buffer;
}

const AUTH_PER_TX = 1;
const AUTH_BATCH_SIGNED = 2;
const SIGNER_BYTES = 32;
const SIGNATURE_BYTES = 64;

/** The record key of block `number`: u64 big-endian. */
export function blockKey(number: number): Buffer {
  if (!Number.isSafeInteger(number) || number < 1) throw new RangeError(`block number ${number} is not a positive safe integer`);
  const key = Buffer.allocUnsafe(BLOCK_KEY_BYTES);
  key.writeBigUInt64BE(BigInt(number), 0);
  return key;
}

/** Encodes a live block; `bodies` is the batch's bodies copied out of the ring (txs × 128 B). */
export function encodeBlockRecord(block: CommittedBlock, bodies: Buffer, sequencedAtMs: number, epoch: number, auth: BlockAuth = { mode: 'none' }): Buffer {
  return encodeStored({
    number: block.number, firstSeq: block.firstSeq, entries: block.entries, txs: block.txs,
    hash: block.hash, prevHash: block.prevHash, bodiesDigest: block.bodiesDigest,
    results: Buffer.from(block.results.buffer, block.results.byteOffset, block.results.length), bodies, sequencedAtMs, epoch, auth,
  });
}

/** Encodes a block rebuilt from another store (recovery), with the same checks. */
export function encodeStored(block: DecodedBlockRecord): Buffer {
  assertWellFormed(block);
  const { auth: a = { mode: 'none' }, ...fields } = block; // the wire's auth is an enum: never the object
  const auth = a.mode === 'batch-signed' ? { auth: AUTH_BATCH_SIGNED, signer: a.signer, signature: a.signature }
    : a.mode === 'per-tx' ? { auth: AUTH_PER_TX, signatures: a.signatures } : {};
  const bytes = BlockRecordType.encode({ ...fields, writerEpoch: block.epoch, ...auth }).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
}

/** Decodes and checks one record value; a malformed record is lost infrastructure, so it throws. */
export function decodeBlockRecord(buf: Buffer): DecodedBlockRecord {
  let wire: BlockRecordWire;
  try {
    wire = BlockRecordType.decode(buf) as unknown as BlockRecordWire;
  } catch (error) {
    throw new Error(`block record of ${buf.length} bytes is not a txe.v1.BlockRecord: ${(error as Error).message}`);
  }
  const record: DecodedBlockRecord = {
    number: u64ToNumber(wire.number),
    firstSeq: u64ToNumber(wire.firstSeq),
    entries: wire.entries,
    txs: wire.txs,
    hash: wire.hash,
    prevHash: wire.prevHash,
    bodiesDigest: wire.bodiesDigest,
    results: wire.results,
    bodies: wire.bodies,
    sequencedAtMs: u64ToNumber(wire.sequencedAtMs),
    epoch: u64ToNumber(wire.writerEpoch ?? 0),
    auth: wire.auth === AUTH_BATCH_SIGNED ? { mode: 'batch-signed', signer: wire.signer, signature: wire.signature }
      : wire.auth === AUTH_PER_TX ? { mode: 'per-tx', signatures: wire.signatures } : undefined,
  };
  assertWellFormed(record);
  return record;
}

function assertWellFormed(b: DecodedBlockRecord): void {
  const problem =
    !Number.isSafeInteger(b.number) || b.number < 1 ? `number ${b.number} is not >= 1`
    : !Number.isSafeInteger(b.firstSeq) || b.firstSeq < 1 ? `first_seq ${b.firstSeq} is not >= 1`
    : b.txs < 1 || b.entries < 0 || b.entries > b.txs ? `entries ${b.entries} / txs ${b.txs} out of range`
    : b.hash.length !== HASH_BYTES || b.prevHash.length !== HASH_BYTES || b.bodiesDigest.length !== HASH_BYTES ? 'a hash is not 32 bytes'
    : b.results.length !== b.txs ? `results hold ${b.results.length} bytes for ${b.txs} txs`
    : b.bodies.length !== b.txs * BODY_BYTES ? `bodies hold ${b.bodies.length} bytes for ${b.txs} txs`
    : !Number.isSafeInteger(b.sequencedAtMs) || b.sequencedAtMs < 0 ? `sequenced_at_ms ${b.sequencedAtMs} out of range`
    : !Number.isSafeInteger(b.epoch) || b.epoch < 0 ? `writer_epoch ${b.epoch} out of range`
    : b.auth?.mode === 'batch-signed' && (b.auth.signer?.length !== SIGNER_BYTES || b.auth.signature?.length !== SIGNATURE_BYTES) ? 'a batch signer is not 32 bytes or its signature not 64'
    : b.auth?.mode === 'per-tx' && b.auth.signatures?.length !== b.txs * SIGNATURE_BYTES ? `signatures hold ${b.auth.signatures?.length ?? 0} bytes for ${b.txs} txs`
    : null;
  if (problem !== null) throw new Error(`block record ${b.number}: ${problem}`);
}
