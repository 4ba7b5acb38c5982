// Proves the state snapshot codec (engine/stages/commit/pg/snapshots.ts) without PostgreSQL: a
// state with accounts and pending approvals encodes to the documented layout (76-byte header, 64 B
// an account, 96 B a pending approval) and decodes to the same state, also from an unaligned
// buffer as the pg driver hands them out; a snapshot that is truncated, too long, of another
// format version or with a header that disagrees with its length is refused with an error saying
// what is wrong, never decoded into a wrong state.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { decodeState, encodeState } from '../../engine/stages/commit/pg/snapshots.js';
import type { SequencerState } from '../../engine/core/sequencer.js';

const HEADER_BYTES = 76;
const ACCOUNT_BYTES = 64;
const PENDING_BYTES = 96;
const ACCOUNT_WORDS = ACCOUNT_BYTES / 4;

/** A state of `accounts` accounts with distinct words, taken as a view inside a larger array. */
function state(accounts: number, pending: number): SequencerState {
  const backing = new Uint32Array((accounts + 2) * ACCOUNT_WORDS);
  for (let i = 0; i < backing.length; i++) backing[i] = (i * 2654435761) >>> 0;
  return {
    block: 5_000_000_123, // past 2^32: the u64 fields must keep every bit
    nextSeq: 2 ** 53 - 1,
    lastHash: randomBytes(32),
    supplyHi: 0xffff_fffe,
    supplyLo: 0x1234_5678,
    accounts: backing.subarray(ACCOUNT_WORDS, (accounts + 1) * ACCOUNT_WORDS), // a view that starts 64 B in
    pending: Array.from({ length: pending }, (_, i) => ({
      seq: 2 ** 40 + i, block: 5_000_000_000 + i, sender: i + 1, amountHi: i, amountLo: 0xffff_ffff - i, recipient: randomBytes(32), id: randomBytes(32),
    })),
  };
}

function refusal(data: Buffer): string {
  try {
    decodeState(data);
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('decodeState accepted a bad snapshot');
}

describe('snapshot codec', () => {
  it('round-trips a state with accounts and pending approvals, in the documented layout', () => {
    const s = state(3, 2);
    const data = encodeState(s);
    expect(data.length).toBe(HEADER_BYTES + 3 * ACCOUNT_BYTES + 2 * PENDING_BYTES);
    expect(data.readUInt32LE(60)).toBe(3); // accounts
    expect(data.readUInt32LE(64)).toBe(2); // pending
    const back = decodeState(data);
    expect(back).toEqual({ ...s, accounts: new Uint32Array(s.accounts) });
    expect(back.accounts.length).toBe(3 * ACCOUNT_WORDS); // only the view, not the array around it
  });

  it('round-trips an empty state (no accounts, nothing pending)', () => {
    const s = { ...state(0, 0), accounts: new Uint32Array(0) };
    const data = encodeState(s);
    expect(data.length).toBe(HEADER_BYTES);
    expect(decodeState(data)).toEqual(s);
  });

  it('decodes a snapshot that sits at an odd offset in a larger buffer', () => {
    const s = state(2, 1);
    const data = encodeState(s);
    const unaligned = Buffer.alloc(data.length + 1).subarray(1);
    data.copy(unaligned);
    expect(unaligned.byteOffset % 4).not.toBe(0);
    expect(decodeState(unaligned)).toEqual({ ...s, accounts: new Uint32Array(s.accounts) });
  });

  it('refuses a snapshot of another format version', () => {
    const data = encodeState(state(1, 0));
    const version = data.readUInt32LE(0);
    data.writeUInt32LE(version + 1, 0);
    expect(refusal(data)).toBe(`snapshot format ${version + 1} is not ${version}`);
  });

  it('refuses a snapshot shorter than its header', () => {
    expect(refusal(encodeState(state(1, 0)).subarray(0, 10))).toBe('snapshot of 10 bytes is shorter than its 76-byte header');
    expect(refusal(Buffer.alloc(0))).toMatch(/snapshot of 0 bytes is shorter/);
  });

  it('refuses a truncated snapshot, one with bytes after it, and one whose header counts are wrong', () => {
    const data = encodeState(state(2, 1));
    const full = HEADER_BYTES + 2 * ACCOUNT_BYTES + PENDING_BYTES;
    expect(refusal(data.subarray(0, data.length - 1))).toBe(`snapshot of ${full - 1} bytes does not match its header (2 accounts, 1 pending: ${full} bytes)`);
    expect(refusal(Buffer.concat([data, Buffer.alloc(1)]))).toMatch(/does not match its header/);
    const miscounted = Buffer.from(data);
    miscounted.writeUInt32LE(3, 60); // one account more than the data holds
    expect(refusal(miscounted)).toMatch(/snapshot of \d+ bytes does not match its header \(3 accounts, 1 pending/);
  });
});
