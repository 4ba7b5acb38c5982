// Proves the v1 record layout and the protobuf batch codec round-trip byte for byte, and that a
// request that is not protobuf decodes to an error value rather than throwing.
import { describe, expect, it } from 'vitest';
import { BODY_BYTES, KIND_TRANSFER, U64_MAX, readBody, writeBody } from '../../engine/core/record.js';
import { DecodeError, TransactionServiceDefinition, u64ToNumber } from '../../engine/services/grpc/codec.js';
import { toWireRequest } from '../../engine/client.js';
import { user } from '../support/fixtures.js';

describe('record v1', () => {
  it('writes every field at its documented offset and reads it back', () => {
    const body = Buffer.alloc(BODY_BYTES);
    const memo = Buffer.alloc(32, 0xab);
    writeBody(body, 0, { kind: KIND_TRANSFER, sender: user('a').publicKey, recipient: user('b').publicKey, nonce: 7n, amount: U64_MAX, timestampMs: 1_700_000_000_000n, memo });
    expect(body[0]).toBe(1);
    expect(body[1]).toBe(KIND_TRANSFER);
    expect(body.subarray(2, 8).every((b) => b === 0)).toBe(true);
    expect(body.subarray(8, 40).equals(user('a').publicKey)).toBe(true);
    expect(body.readBigUInt64LE(72)).toBe(7n);
    expect(body.readBigUInt64LE(80)).toBe(U64_MAX);
    const back = readBody(body);
    expect(back).toMatchObject({ version: 1, kind: KIND_TRANSFER, nonce: 7n, amount: U64_MAX, timestampMs: 1_700_000_000_000n });
    expect(back.recipient.equals(user('b').publicKey)).toBe(true);
    expect(back.memo.equals(memo)).toBe(true);
  });

  it('refuses keys of the wrong length', () => {
    expect(() => writeBody(Buffer.alloc(128), 0, { kind: 1, sender: Buffer.alloc(31), recipient: Buffer.alloc(32), nonce: 1n, amount: 1n, timestampMs: 0n })).toThrow(/sender must be 32 bytes/);
  });
});

describe('SubmitBatchRequest codec', () => {
  const method = TransactionServiceDefinition.SubmitBatch;

  it('round-trips a batch with its bytes intact and a u64 batch id beyond 2^32', () => {
    const txs = Buffer.alloc(128 * 3, 7);
    const wire = method.requestSerialize(toWireRequest({ batchId: 2 ** 40 + 5, auth: 'batch-signed', txs, signer: Buffer.alloc(32, 1), signature: Buffer.alloc(64, 2), ack: 'ordered' }));
    const back = method.requestDeserialize(wire) as { batchId: number; auth: number; txs: Buffer; signer: Buffer; signature: Buffer; ack: number };
    expect(u64ToNumber(back.batchId)).toBe(2 ** 40 + 5);
    expect(back.auth).toBe(2);
    expect(Buffer.from(back.txs).equals(txs)).toBe(true);
    expect(back.signer.length).toBe(32);
    expect(back.signature.length).toBe(64);
    expect(back.ack).toBe(1);
  });

  it('decodes garbage to a DecodeError with the reason', () => {
    const back = method.requestDeserialize(Buffer.from([0x1a, 0xff, 0xff, 0xff, 0x0f, 0x01]));
    expect(back).toBeInstanceOf(DecodeError);
    expect((back as DecodeError).message).toMatch(/not a valid SubmitBatchRequest/);
  });
});
