/*
 * Account state in typed arrays: dense account indices in insertion order, and an open-addressing
 * hash table from the 32-byte account id to the index.
 *
 *   keyWords   [ account 0: 8 × u32 | account 1 | ... ]        accountsMax × 32 B
 *   balance, held, nonce: (hi, lo) u32 pairs per account      accountsMax × 24 B
 *   table      [ index+1 | 0 = empty | ... ]                   tableSlots × 4 B, tableSlots = 2^k >= 2 × accountsMax
 *
 * Keys are read straight from the ring as u32 words (sender at byte 8, recipient at byte 40: both
 * 4-aligned), so a lookup allocates nothing. The table stays at most half full; the hash is seeded
 * so that a client cannot pick recipient ids that collide. Memory at the 4M-account default:
 * 128 MB keys + 96 MB state + 32 MB table.
 * Cost: one lookup ~20-40 ns (hash 8 words, ~1.5 probes, compare 8 words).
 */

import crypto from 'node:crypto';

const KEY_WORDS = 8;

export class AccountTable {
  readonly accountsMax: number;
  readonly keyWords: Uint32Array;
  readonly balanceHi: Uint32Array;
  readonly balanceLo: Uint32Array;
  readonly heldHi: Uint32Array;
  readonly heldLo: Uint32Array;
  readonly nonceHi: Uint32Array;
  readonly nonceLo: Uint32Array;
  private readonly table: Int32Array;
  private readonly tableMask: number;
  private readonly seed: number;
  private accountsCount = 0;

  constructor(accountsMax: number) {
    if (!Number.isInteger(accountsMax) || accountsMax < 1 || accountsMax > 1 << 28) {
      throw new Error(`accountsMax must be an integer in [1, 2^28], got ${accountsMax}`);
    }
    this.accountsMax = accountsMax;
    this.keyWords = new Uint32Array(accountsMax * KEY_WORDS);
    this.balanceHi = new Uint32Array(accountsMax);
    this.balanceLo = new Uint32Array(accountsMax);
    this.heldHi = new Uint32Array(accountsMax);
    this.heldLo = new Uint32Array(accountsMax);
    this.nonceHi = new Uint32Array(accountsMax);
    this.nonceLo = new Uint32Array(accountsMax);
    let tableSlots = 2;
    while (tableSlots < accountsMax * 2) tableSlots *= 2;
    this.table = new Int32Array(tableSlots);
    this.tableMask = tableSlots - 1;
    this.seed = crypto.randomBytes(4).readUInt32LE(0);
  }

  get count(): number { return this.accountsCount; }

  /** The account index for the key at `words[at..at+8]`, or -1. */
  find(words: Uint32Array, at: number): number {
    let slot = this.hash(words, at) & this.tableMask;
    for (;;) {
      const entry = this.table[slot];
      if (entry === 0) return -1;
      if (this.keyEquals(entry - 1, words, at)) return entry - 1;
      slot = (slot + 1) & this.tableMask;
    }
  }

  /** The index for the key, inserting a zeroed account if it is new; -1 when the table is full. */
  findOrInsert(words: Uint32Array, at: number): number {
    let slot = this.hash(words, at) & this.tableMask;
    for (;;) {
      const entry = this.table[slot];
      if (entry === 0) break;
      if (this.keyEquals(entry - 1, words, at)) return entry - 1;
      slot = (slot + 1) & this.tableMask;
    }
    if (this.accountsCount >= this.accountsMax) return -1;
    const index = this.accountsCount++;
    this.keyWords.set(words.subarray(at, at + KEY_WORDS), index * KEY_WORDS);
    this.table[slot] = index + 1;
    return index;
  }

  /** Looks up a key given as 32 bytes (queries, config); not for the hot path. */
  findKey(key: Uint8Array): number {
    return this.find(wordsOf(key), 0);
  }

  insertKey(key: Uint8Array): number {
    return this.findOrInsert(wordsOf(key), 0);
  }

  keyOf(index: number): Buffer {
    if (index < 0 || index >= this.accountsCount) throw new Error(`account index ${index} out of range`);
    const words = this.keyWords.subarray(index * KEY_WORDS, (index + 1) * KEY_WORDS);
    return Buffer.from(words.buffer, words.byteOffset, 32);
  }

  private hash(words: Uint32Array, at: number): number {
    let h = this.seed;
    for (let i = 0; i < KEY_WORDS; i++) {
      h = Math.imul(h ^ words[at + i], 0x9e3779b1);
      h ^= h >>> 15;
    }
    return h >>> 0;
  }

  private keyEquals(index: number, words: Uint32Array, at: number): boolean {
    const base = index * KEY_WORDS;
    for (let i = 0; i < KEY_WORDS; i++) {
      if (this.keyWords[base + i] !== words[at + i]) return false;
    }
    return true;
  }
}

export function wordsOf(key: Uint8Array): Uint32Array {
  if (key.length !== 32) throw new Error(`account id must be 32 bytes, got ${key.length}`);
  const copy = new Uint8Array(32);
  copy.set(key);
  return new Uint32Array(copy.buffer);
}
