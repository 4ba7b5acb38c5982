// Proves the Kafka block-record codec (engine/stages/commit/kafka/block-record.ts) without Kafka:
// a committed block, built with the real block hash over real packed bodies, encodes and decodes
// to the same fields (u64 values past 2^32 included), and a reader can recompute bodies_digest and
// the hash from the record alone; the key is the number as 8 bytes big-endian; and a record that is
// not a BlockRecord, is empty, or is well-formed protobuf with a field of the wrong size is refused
// with an error naming the problem, as is a malformed block on the way in.
import { createHash, randomBytes } from 'node:crypto';
import protobuf from 'protobufjs';
import { describe, expect, it } from 'vitest';
import { blockKey, decodeBlockRecord, encodeBlockRecord, encodeStored, type DecodedBlockRecord } from '../../engine/stages/commit/kafka/block-record.js';
import { TRANSACTION_PROTO } from '../../engine/services/grpc/codec.js';
import { blockHash, type CommittedBlock } from '../../engine/core/block.js';
import { batchDigest, packBodies } from '../../engine/core/batch.js';
import { BODY_BYTES } from '../../engine/core/record.js';
import { Result } from '../../engine/core/result.js';
import { mint, transfer, user } from '../support/fixtures.js';

const BlockRecord = protobuf.loadSync(TRANSACTION_PROTO).lookupType('txe.v1.BlockRecord');

/** Block `number` of three transactions (two accepted, one rejected), as the sequencer cuts it. */
function committed(number: number, firstSeq: number) {
  const bodies = packBodies([
    mint(user('a').publicKey, 1n, 100n),
    transfer(user('a'), user('b').publicKey, 1n, 1000n), // rejected: insufficient funds
    transfer(user('a'), user('b').publicKey, 1n, 40n),
  ]);
  const results = new Uint8Array([0, Result.committed, Result.insufficient_funds, Result.committed, 0]).subarray(1, 4); // a view, as the ring gives it
  const prevHash = randomBytes(32);
  const bodiesDigest = batchDigest(bodies);
  const block: CommittedBlock = {
    number, firstSeq, entries: 2, txs: 3, ringStart: 0, results, bodiesDigest, prevHash,
    hash: blockHash(prevHash, number, firstSeq, 2, results, bodiesDigest),
    sequencedAtNs: 0n, sequencedAtMs: 1_700_000_000_123, approvals: null,
  };
  return { block, bodies };
}

/** A record value with the given fields, encoded without the codec's checks. */
function rawRecord(fields: Record<string, unknown>): Buffer {
  return Buffer.from(BlockRecord.encode(BlockRecord.fromObject(fields)).finish());
}

function refusal(value: Buffer): string {
  try {
    decodeBlockRecord(value);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('decodeBlockRecord accepted a bad record');
}

// A writer epoch past 2^32, so the u64 field is exercised beyond one varint word.
const EPOCH = 2 ** 33 + 5;

describe('block record codec', () => {
  it('round-trips a committed block, and the record alone proves its digest and hash', () => {
    const { block, bodies } = committed(5_000_000_001, 2 ** 40 + 3);
    const record = decodeBlockRecord(encodeBlockRecord(block, bodies, block.sequencedAtMs, EPOCH));
    expect(record).toEqual({
      number: block.number, firstSeq: block.firstSeq, entries: 2, txs: 3, hash: block.hash, prevHash: block.prevHash,
      bodiesDigest: block.bodiesDigest, results: Buffer.from(block.results), bodies, sequencedAtMs: block.sequencedAtMs, epoch: EPOCH,
    });
    expect(batchDigest(record.bodies).equals(record.bodiesDigest)).toBe(true);
    expect(blockHash(record.prevHash, record.number, record.firstSeq, record.entries, record.results, record.bodiesDigest).equals(record.hash)).toBe(true);
    expect(record.bodies.subarray(BODY_BYTES + 8, BODY_BYTES + 40).equals(user('a').publicKey)).toBe(true); // the rejected body is carried too
  });

  it('round-trips a block rebuilt from another store (encodeStored), byte for byte', () => {
    const { block, bodies } = committed(7, 11);
    const live = encodeBlockRecord(block, bodies, block.sequencedAtMs, EPOCH);
    const stored: DecodedBlockRecord = decodeBlockRecord(live);
    expect(encodeStored(stored).equals(live)).toBe(true);
  });

  it('keys a record by its number, 8 bytes big-endian, and refuses numbers that are no block', () => {
    expect(blockKey(1).toString('hex')).toBe('0000000000000001');
    expect(blockKey(5_000_000_001).readBigUInt64BE(0)).toBe(5_000_000_001n);
    expect(Buffer.compare(blockKey(255), blockKey(256))).toBe(-1); // byte order = number order
    expect(() => blockKey(0)).toThrow(/block number 0 is not a positive safe integer/);
    expect(() => blockKey(2 ** 53)).toThrow(/is not a positive safe integer/);
  });

  it('refuses bytes that are not a BlockRecord, saying so', () => {
    expect(refusal(Buffer.from([0xff, 0xff, 0xff, 0xff]))).toMatch(/^block record of 4 bytes is not a txe\.v1\.BlockRecord: /);
    const { block, bodies } = committed(1, 1);
    const value = encodeBlockRecord(block, bodies, block.sequencedAtMs, EPOCH);
    expect(refusal(value.subarray(0, value.length - 10))).toMatch(/is not a txe\.v1\.BlockRecord/); // cut inside the bodies
  });

  it('refuses an empty record and well-formed protobuf whose fields do not make a block', () => {
    expect(refusal(Buffer.alloc(0))).toBe('block record 0: number 0 is not >= 1');
    const { block: old, bodies: oldBodies } = committed(2, 3);
    const beforeEpochs = { ...decodeBlockRecord(encodeBlockRecord(old, oldBodies, old.sequencedAtMs, EPOCH)) } as Partial<DecodedBlockRecord>;
    delete beforeEpochs.epoch; // a record written before epochs existed has no writer_epoch field
    expect(decodeBlockRecord(rawRecord(beforeEpochs)).epoch).toBe(0);
    const { block, bodies } = committed(9, 20);
    const good = { ...decodeBlockRecord(encodeBlockRecord(block, bodies, block.sequencedAtMs, EPOCH)) };
    expect(refusal(rawRecord({ ...good, firstSeq: 0 }))).toBe('block record 9: first_seq 0 is not >= 1');
    expect(refusal(rawRecord({ ...good, entries: 4 }))).toBe('block record 9: entries 4 / txs 3 out of range');
    expect(refusal(rawRecord({ ...good, hash: good.hash.subarray(0, 31) }))).toBe('block record 9: a hash is not 32 bytes');
    expect(refusal(rawRecord({ ...good, bodiesDigest: createHash('sha1').digest() }))).toBe('block record 9: a hash is not 32 bytes');
    expect(refusal(rawRecord({ ...good, results: good.results.subarray(0, 2) }))).toBe('block record 9: results hold 2 bytes for 3 txs');
    expect(refusal(rawRecord({ ...good, bodies: good.bodies.subarray(0, 2 * BODY_BYTES) }))).toBe('block record 9: bodies hold 256 bytes for 3 txs');
  });

  it('refuses to encode a malformed block', () => {
    const { block, bodies } = committed(3, 4);
    expect(() => encodeBlockRecord(block, bodies.subarray(0, BODY_BYTES), block.sequencedAtMs, EPOCH)).toThrow('block record 3: bodies hold 128 bytes for 3 txs');
    expect(() => encodeBlockRecord({ ...block, number: 0 }, bodies, block.sequencedAtMs, EPOCH)).toThrow('block record 0: number 0 is not >= 1');
    expect(() => encodeBlockRecord(block, bodies, -1, EPOCH)).toThrow('block record 3: sequenced_at_ms -1 out of range');
    expect(() => encodeBlockRecord(block, bodies, block.sequencedAtMs, -1)).toThrow('block record 3: writer_epoch -1 out of range');
  });
});
