/*
 * Account state: one 64-byte record (a cache line) per account, dense in creation order, and an
 * open-addressing hash table from the 32-byte account id to the record's index.
 *
 *   words  [ account 0: 16 × u32 | account 1 | ... ]   accountsMax × 64 B
 *   record   key 0..7 | balance lo hi | held lo hi | nonce lo hi | spare 2
 *   table  [ index+1 | 0 = empty | ... ]               tableSlots × 4 B, load <= 0.7
 *
 * The table grows with the accounts, doubling from TABLE_SLOTS_MIN up to the size accountsMax needs,
 * so that its working set is the live accounts' and not the configured maximum's: 65k accounts
 * look up in a 512 KB table that stays in L2, not in the 32 MB one the 4M default needs (one TLB
 * and cache miss a lookup; measured in bench/RESULTS.md, 2026-12-01 session 4). A table only grows
 * between batches (reserve), because a batch's home slots are computed before it applies. A doubling
 * rehashes every account: ~50 ns each, so ~150 ms once on the way to 4M accounts, ~1 ms at 65k.
 *
 * A lookup touches two cache lines: a table slot, then the record holding both the key to compare
 * and the state to update. Measured alternatives (bench:micro, 65k hot accounts of 1M): keys and
 * six state arrays apart, 127 ns a transfer (up to eight lines an account, ~300 ns under load);
 * records inline in the table, 254 ns (hot accounts scattered over a 128 MB table: TLB misses);
 * dense records, see bench/RESULTS.md. Keys are read straight from the ring as u32 words (sender
 * at byte 8, recipient at byte 40: both 4-aligned), so a lookup allocates nothing. The hash is
 * seeded so that a client cannot pick recipient ids that collide. An account's id inside the
 * engine is its record index. Memory at the 4M-account default: 256 MB records + 32 MB table.
 */

import crypto from 'node:crypto';
import { toBigInt } from './u64.js';

export const SLOT_WORDS = 16;
export const KEY_WORDS = 8;
export const W_BALANCE_LO = 8;
export const W_BALANCE_HI = 9;
export const W_HELD_LO = 10;
export const W_HELD_HI = 11;
export const W_NONCE_LO = 12;
export const W_NONCE_HI = 13;
const LOAD_FACTOR_MAX = 0.7;
const TABLE_SLOTS_MIN = 1024; // 4 KB

export interface AccountState { balance: bigint; held: bigint; nonce: bigint }

export class AccountTable {
  readonly accountsMax: number;
  /** All records; an account's fields are at `account * SLOT_WORDS + W_*`. */
  readonly words: Uint32Array;
  private table: Int32Array;
  private mask: number;
  private readonly tableSlotsMax: number;
  private readonly seed: number;
  private accountsCount = 0;

  constructor(accountsMax: number) {
    if (!Number.isInteger(accountsMax) || accountsMax < 1 || accountsMax > 1 << 26) {
      throw new Error(`accountsMax must be an integer in [1, 2^26], got ${accountsMax}`);
    }
    this.accountsMax = accountsMax;
    this.tableSlotsMax = tableSlotsFor(accountsMax, 2);
    this.table = new Int32Array(Math.min(TABLE_SLOTS_MIN, this.tableSlotsMax));
    this.mask = this.table.length - 1;
    this.words = new Uint32Array(accountsMax * SLOT_WORDS);
    this.seed = crypto.randomBytes(4).readUInt32LE(0);
  }

  get count(): number { return this.accountsCount; }
  get tableSlots(): number { return this.table.length; }

  /**
   * Grows the table, if needed, so that `accountsNew` more accounts fit under the load factor; call
   * it before computing home slots for a batch that may open that many accounts.
   */
  reserve(accountsNew: number): void {
    const needed = Math.min(this.accountsMax, this.accountsCount + accountsNew);
    const slots = Math.min(this.tableSlotsMax, tableSlotsFor(needed, this.table.length));
    if (slots > this.table.length) this.rehash(slots);
  }

  /** The table slot where the search for a key starts: a pure function of the key. */
  homeSlot(keys: Uint32Array, at: number): number {
    return this.hash(keys, at) & this.mask;
  }

  /**
   * Loads the table slot and the record it names, and returns a value derived from both (so the
   * loads are not optimised away). A loop of these over a whole batch lets the CPU overlap the
   * cache misses of many accounts instead of stalling on each in turn.
   */
  touch(slot: number): number {
    const entry = this.table[slot];
    return entry === 0 ? 0 : this.words[(entry - 1) * SLOT_WORDS];
  }

  /** The account for the key at `keys[at..at+8]` whose home slot is `home`, or -1. */
  find(keys: Uint32Array, at: number, home = this.homeSlot(keys, at)): number {
    for (let slot = home; ; slot = (slot + 1) & this.mask) {
      const entry = this.table[slot];
      if (entry === 0) return -1;
      if (this.keyEquals((entry - 1) * SLOT_WORDS, keys, at)) return entry - 1;
    }
  }

  /** The account for the key, created empty if it is new; -1 when accountsMax is reached. */
  findOrInsert(keys: Uint32Array, at: number, home = this.homeSlot(keys, at)): number {
    let slot = home;
    for (let entry = this.table[slot]; entry !== 0; slot = (slot + 1) & this.mask, entry = this.table[slot]) {
      if (this.keyEquals((entry - 1) * SLOT_WORDS, keys, at)) return entry - 1;
    }
    if (this.accountsCount >= this.accountsMax) return -1;
    if (this.accountsCount + 1 > this.table.length * LOAD_FACTOR_MAX && this.table.length < this.tableSlotsMax) {
      throw new Error(`account table of ${this.table.length} slots is full: reserve() before inserting`);
    }
    const account = this.accountsCount++;
    const base = account * SLOT_WORDS;
    for (let i = 0; i < KEY_WORDS; i++) this.words[base + i] = keys[at + i];
    this.table[slot] = account + 1;
    return account;
  }

  /** Looks up a key given as 32 bytes (queries, config); not for the hot path. */
  findKey(key: Uint8Array): number {
    return this.find(wordsOf(key), 0);
  }

  insertKey(key: Uint8Array): number {
    this.reserve(1);
    return this.findOrInsert(wordsOf(key), 0);
  }

  state(account: number): AccountState {
    const base = account * SLOT_WORDS;
    const w = this.words;
    if (account < 0 || account >= this.accountsCount) throw new Error(`account ${account} does not exist`);
    return {
      balance: toBigInt(w[base + W_BALANCE_HI], w[base + W_BALANCE_LO]),
      held: toBigInt(w[base + W_HELD_HI], w[base + W_HELD_LO]),
      nonce: toBigInt(w[base + W_NONCE_HI], w[base + W_NONCE_LO]),
    };
  }

  /** The records of every account, in creation order (a view: copy it before the state moves on). */
  records(): Uint32Array {
    return this.words.subarray(0, this.accountsCount * SLOT_WORDS);
  }

  /** Empties the table (before loading a snapshot). O(table + accounts). */
  clear(): void {
    this.table = new Int32Array(Math.min(TABLE_SLOTS_MIN, this.tableSlotsMax));
    this.mask = this.table.length - 1;
    this.words.fill(0, 0, this.accountsCount * SLOT_WORDS);
    this.accountsCount = 0;
  }

  /** Loads records saved by records() into an empty table, re-indexing every key. */
  loadRecords(records: Uint32Array): void {
    if (this.accountsCount !== 0) throw new Error('loadRecords needs an empty account table');
    const count = records.length / SLOT_WORDS;
    if (!Number.isInteger(count) || count > this.accountsMax) throw new Error(`snapshot holds ${count} accounts, accountsMax is ${this.accountsMax}`);
    this.reserve(count);
    for (let i = 0; i < count; i++) {
      const account = this.findOrInsert(records, i * SLOT_WORDS);
      if (account !== i) throw new Error(`snapshot account ${i} is a duplicate of ${account}`);
    }
    this.words.set(records, 0);
  }

  /** Calls `visit` with each account's word offset, in creation order; for checks and snapshots. */
  forEachBase(visit: (base: number) => void): void {
    for (let base = 0; base < this.accountsCount * SLOT_WORDS; base += SLOT_WORDS) visit(base);
  }

  private rehash(slots: number): void {
    const table = new Int32Array(slots);
    const mask = slots - 1;
    for (let account = 0; account < this.accountsCount; account++) {
      let slot = this.hash(this.words, account * SLOT_WORDS) & mask;
      while (table[slot] !== 0) slot = (slot + 1) & mask;
      table[slot] = account + 1;
    }
    this.table = table;
    this.mask = mask;
  }

  private hash(keys: Uint32Array, at: number): number {
    let h = this.seed;
    for (let i = 0; i < KEY_WORDS; i++) {
      h = Math.imul(h ^ keys[at + i], 0x9e3779b1);
      h ^= h >>> 15;
    }
    return h >>> 0;
  }

  private keyEquals(base: number, keys: Uint32Array, at: number): boolean {
    const w = this.words;
    for (let i = 0; i < KEY_WORDS; i++) if (w[base + i] !== keys[at + i]) return false;
    return true;
  }
}

/** The smallest power of two, at least `slotsMin`, that holds `accounts` under the load factor. */
function tableSlotsFor(accounts: number, slotsMin: number): number {
  let slots = slotsMin;
  while (slots * LOAD_FACTOR_MAX < accounts) slots *= 2;
  return slots;
}

export function wordsOf(key: Uint8Array): Uint32Array {
  if (key.length !== 32) throw new Error(`account id must be 32 bytes, got ${key.length}`);
  const copy = new Uint8Array(32);
  copy.set(key);
  return new Uint32Array(copy.buffer);
}
