/*
 * PostgreSQL COPY BINARY encoding, written straight into one Buffer per COPY:
 *
 *   header   "PGCOPY\n\xff\r\n\0" | flags i32 = 0 | extension length i32 = 0
 *   tuple    field count i16 | per field: length i32 (-1 = NULL) | bytes
 *   trailer  i16 = -1
 *
 * Integers are big-endian. numeric is { ndigits i16, weight i16, sign u16, dscale i16, digits
 * i16 × ndigits in base 10000 }, most significant first. u64 values are numeric(20,0): int8 is
 * signed and cannot hold 2^63 and above.
 * Cost: one bounds check and a few stores per field; a 10-column transaction row is ~200 B.
 */

import { TWO_32 } from '../../../core/u64.js';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

export class CopyWriter {
  private buffer: Buffer;
  private length = 0;
  private dataView: DataView<ArrayBufferLike> = new DataView(new ArrayBuffer(0));

  constructor(bytesHint: number) {
    this.buffer = Buffer.allocUnsafe(Math.max(64, bytesHint));
    this.raw(SIGNATURE);
    this.i32(0);
    this.i32(0);
  }

  tuple(fields: number): this { this.i16(fields); return this; }

  int2(value: number): this { this.i32(2); this.i16(value); return this; }

  int4(value: number): this { this.i32(4); this.i32(value); return this; }

  int8(value: number): this {
    if (!Number.isSafeInteger(value)) throw new Error(`int8 field must be a safe integer, got ${value}`);
    this.ensure(12);
    this.buffer.writeInt32BE(8, this.length);
    this.buffer.writeInt32BE(Math.floor(value / TWO_32), this.length + 4); // two's complement high word
    this.buffer.writeUInt32BE(value >>> 0, this.length + 8);
    this.length += 12;
    return this;
  }

  bytea(source: Uint8Array, start = 0, end = source.length): this {
    this.ensure(4 + end - start);
    this.buffer.writeInt32BE(end - start, this.length);
    Buffer.prototype.copy.call(source, this.buffer, this.length + 4, start, end);
    this.length += 4 + end - start;
    return this;
  }

  /** A u64 given as (hi, lo) u32 words, as numeric(20,0). */
  numericU64(hi: number, lo: number): this {
    const count = hi < SAFE_HI_LIMIT ? base10000(hi * TWO_32 + lo) : base10000Big((BigInt(hi) << 32n) | BigInt(lo));
    const weight = Math.max(0, count - 1); // base-10000 exponent of the first digit
    let ndigits = count;
    while (ndigits > 0 && DIGITS[ndigits - 1] === 0) ndigits--; // stored without trailing zero digits
    this.ensure(4 + 8 + 2 * ndigits);
    const b = this.buffer;
    let at = this.length;
    b.writeInt32BE(8 + 2 * ndigits, at);
    b.writeInt16BE(ndigits, at + 4);
    b.writeInt16BE(weight, at + 6);
    b.writeInt32BE(0, at + 8); // sign positive, dscale 0
    at += 12;
    for (let i = 0; i < ndigits; i++, at += 2) b.writeInt16BE(DIGITS[i], at);
    this.length = at;
    return this;
  }

  /**
   * Room for `bytes` more at the end: returns where they start in `bytes`' buffer (this.target,
   * valid until the next write), for a caller that lays out a fixed-size tuple itself.
   */
  reserve(bytes: number): number {
    this.ensure(bytes);
    const at = this.length;
    this.length += bytes;
    return at;
  }

  /** The buffer being written (it is replaced when it grows): for writes at an offset from reserve(). */
  get target(): Buffer { return this.buffer; }

  /**
   * The same bytes as a DataView: its setInt32 and friends cost ~0.4 ns a call where Buffer's
   * writeInt32BE costs ~10 (bench/RESULTS.md, session 8).
   */
  get view(): DataView<ArrayBufferLike> {
    if (this.dataView.buffer !== this.buffer.buffer || this.dataView.byteOffset !== this.buffer.byteOffset) this.dataView = new DataView(this.buffer.buffer, this.buffer.byteOffset, this.buffer.byteLength);
    return this.dataView;
  }

  finish(): Buffer {
    this.i16(-1);
    return this.buffer.subarray(0, this.length);
  }

  private i16(value: number): void {
    this.ensure(2);
    this.buffer.writeInt16BE(value, this.length);
    this.length += 2;
  }

  private i32(value: number): void {
    this.ensure(4);
    this.buffer.writeInt32BE(value, this.length);
    this.length += 4;
  }

  private raw(bytes: Buffer): void {
    this.ensure(bytes.length);
    bytes.copy(this.buffer, this.length);
    this.length += bytes.length;
  }

  private ensure(bytes: number): void {
    if (this.length + bytes <= this.buffer.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buffer.length * 2, this.length + bytes));
    this.buffer.copy(grown, 0, 0, this.length);
    this.buffer = grown;
  }
}

// A u64 has at most 5 base-10000 digits. Digits are produced into this scratch array, most
// significant first, so encoding a numeric allocates nothing.
const DIGITS = new Int16Array(5);
const SAFE_HI_LIMIT = 0x20_0000; // hi * 2^32 + lo stays below 2^53

/** Fills DIGITS with the base-10000 digits of a non-negative safe integer; returns their count. */
function base10000(value: number): number {
  let count = 0;
  for (let v = value; v > 0; v = Math.floor(v / 10000)) count++;
  let v = value;
  for (let i = count - 1; i >= 0; i--) { DIGITS[i] = v % 10000; v = Math.floor(v / 10000); }
  return count;
}

function base10000Big(value: bigint): number {
  const digits: number[] = [];
  for (let v = value; v > 0n; v /= 10000n) digits.unshift(Number(v % 10000n));
  DIGITS.set(digits);
  return digits.length;
}

const COPY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const COPY_TRAILER = -1;

/**
 * Walks a COPY ... TO STDOUT (FORMAT binary) payload: for each tuple, `row(data, offsets, lengths)`
 * gets each field's byte offset in `data` and its length (-1 for NULL), in column order; the
 * arrays are reused, so read them before returning. Returns the number of tuples.
 */
export function forEachCopyTuple(data: Buffer, columns: number, row: (data: Buffer, offsets: Int32Array, lengths: Int32Array) => void): number {
  if (data.length < COPY_SIGNATURE.length + 8 || !data.subarray(0, COPY_SIGNATURE.length).equals(COPY_SIGNATURE)) throw new Error('COPY binary data: no PGCOPY signature');
  let at = COPY_SIGNATURE.length + 4; // flags
  at += 4 + data.readInt32BE(at); // header extension
  const offsets = new Int32Array(columns);
  const lengths = new Int32Array(columns);
  let tuples = 0;
  for (;;) {
    const fields = data.readInt16BE(at);
    at += 2;
    if (fields === COPY_TRAILER) return tuples;
    if (fields !== columns) throw new Error(`COPY binary data: a tuple of ${fields} fields, ${columns} expected`);
    for (let i = 0; i < columns; i++) {
      const length = data.readInt32BE(at);
      at += 4;
      offsets[i] = at;
      lengths[i] = length;
      if (length > 0) at += length;
    }
    row(data, offsets, lengths);
    tuples++;
  }
}
