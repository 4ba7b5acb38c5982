/*
 * The sequencer: the one writer of account state and history. It takes verified batches in claim
 * order (so the history never depends on which worker finished first), applies the stateful rules
 * of DESIGN.md section 3 to each record, gives accepted records consecutive seqs, and cuts one
 * block per batch with a hash chained to the previous block.
 *
 * Rules, in order, for a record the workers found valid:
 *   nonce == sender's last nonce + 1, else bad_nonce (a duplicate is a bad nonce);
 *   mint: the supply stays within u64, else invalid_amount; credit the recipient;
 *   transfer: amount <= balance - held, else insufficient_funds;
 *     at or above the approval threshold: hold the amount, answer pending_approval;
 *     else debit the sender, credit the recipient;
 *   a new recipient when the account table is full, or a hold when the approval table is full:
 *     capacity_exceeded.
 * Rejections change nothing: no nonce is consumed, no seq is given.
 * Cost: ~100-150 ns a record (two lookups, u64 arithmetic), i.e. 15-30% of a core at 2M TPS.
 */

import { BODY_BYTES, KIND_MINT } from '../wire/record.js';
import { Result } from '../wire/result.js';
import { VERDICT_REJECTED_FLAG, VERDICT_UNVERIFIED, type InputRing } from '../ring/input-ring.js';
import { AccountTable, SLOT_WORDS, W_BALANCE_HI, W_BALANCE_LO, W_HELD_HI, W_HELD_LO, W_NONCE_HI, W_NONCE_LO } from './accounts.js';
import { GENESIS_HASH, blockHash, type CommittedBlock } from './block.js';
import { TWO_32, addHi, addLo, geq, subHi, subLo, toBigInt } from './u64.js';
import type { HistoryWindow } from '../history/history-window.js';

// Word offsets within a 128-byte body viewed as u32 (32 words).
const W_KIND = 0; // byte 1 of word 0
const W_SENDER = 2;
const W_RECIPIENT = 10;
const W_NONCE = 18;
const W_AMOUNT = 20;
const BODY_WORDS = BODY_BYTES / 4;

export interface SequencerOptions {
  accountsMax: number;
  issuers: Uint8Array[];
  approvalThreshold: bigint; // 0 = approvals off
  approvalsPendingMax: number;
}

export interface PendingApproval {
  seq: number;
  block: number;
  sender: number; // account index
  recipient: Buffer;
  amountHi: number;
  amountLo: number;
}

export interface SequencerState {
  block: number; // the last block applied
  nextSeq: number;
  lastHash: Buffer;
  supplyHi: number;
  supplyLo: number;
  accounts: Uint32Array; // records, 16 words each (accounts.ts)
  pending: PendingApproval[];
}

export class Sequencer {
  readonly accounts: AccountTable;
  readonly pending = new Map<number, PendingApproval>();
  private readonly thresholdHi: number;
  private readonly thresholdLo: number;
  private readonly approvalsOn: boolean;
  private supplyHi = 0;
  private supplyLo = 0;
  private nextSeqValue = 1;
  private nextBlockNumber = 1;
  private lastHash: Buffer = GENESIS_HASH;
  private homes = new Int32Array(0);
  private touchedSink = 0;

  constructor(private readonly options: SequencerOptions, private readonly history: HistoryWindow | null) {
    this.accounts = new AccountTable(options.accountsMax);
    // Issuers sign mints with nonces, so their nonce is tracked from the start (balance 0).
    for (const issuer of options.issuers) this.accounts.insertKey(issuer);
    this.approvalsOn = options.approvalThreshold > 0n;
    this.thresholdHi = Number(options.approvalThreshold >> 32n);
    this.thresholdLo = Number(options.approvalThreshold & 0xffff_ffffn);
  }

  get nextSeq(): number { return this.nextSeqValue; }
  get lastBlockHash(): Buffer { return this.lastHash; }
  get blocksCount(): number { return this.nextBlockNumber - 1; }
  get supply(): bigint { return toBigInt(this.supplyHi, this.supplyLo); }

  /** Applies the verified batch at ring [start, start+count) and returns its block. */
  sequenceBatch(ring: InputRing, start: number, count: number, bodiesDigest: Buffer): CommittedBlock {
    const results = new Uint8Array(count);
    const firstSeq = this.nextSeqValue;
    const words = ring.words;
    const homes = this.homeSlots(ring, start, count);
    for (let i = 0; i < count; i++) {
      const cursor = start + i;
      const verdict = ring.verdict(cursor);
      if (verdict === VERDICT_UNVERIFIED) throw new Error(`sequencer reached unverified slot at cursor ${cursor}`);
      results[i] = verdict & VERDICT_REJECTED_FLAG ? verdict & ~VERDICT_REJECTED_FLAG : this.apply(words, (cursor & ring.mask) * BODY_WORDS, homes[2 * i], homes[2 * i + 1]);
    }
    const entries = this.nextSeqValue - firstSeq;
    const number = this.nextBlockNumber++;
    this.recordHistory(ring, start, count, results, firstSeq, number);
    const hash = blockHash(this.lastHash, number, firstSeq, entries, results, bodiesDigest);
    const block: CommittedBlock = {
      number, firstSeq, entries, txs: count, ringStart: start, results, bodiesDigest,
      prevHash: this.lastHash, hash, sequencedAtNs: process.hrtime.bigint(), sequencedAtMs: Date.now(),
    };
    this.lastHash = hash;
    this.history?.appendBlock(block);
    return block;
  }

  /**
   * First pass over a batch: the home table slot of every sender and recipient, each touched so
   * that the batch's cache misses overlap. With millions of accounts the table and records do not
   * fit in cache, and a miss per lookup taken one at a time made the apply loop ~5x slower than
   * with a small table (bench:micro vs txe bench, see bench/RESULTS.md).
   */
  private homeSlots(ring: InputRing, start: number, count: number): Int32Array {
    if (this.homes.length < count * 2) this.homes = new Int32Array(count * 2);
    const homes = this.homes;
    const words = ring.words;
    let touched = 0;
    for (let i = 0; i < count; i++) {
      const at = ((start + i) & ring.mask) * BODY_WORDS;
      const sender = this.accounts.homeSlot(words, at + W_SENDER);
      const recipient = this.accounts.homeSlot(words, at + W_RECIPIENT);
      homes[2 * i] = sender;
      homes[2 * i + 1] = recipient;
      touched ^= this.accounts.touch(sender) ^ this.accounts.touch(recipient);
    }
    this.touchedSink ^= touched;
    return homes;
  }

  /** Applies one verified body (word offset `at`); returns its result code. */
  private apply(words: Uint32Array, at: number, senderHome: number, recipientHome: number): number {
    const a = this.accounts.words;
    const sender = this.accounts.find(words, at + W_SENDER, senderHome);
    const s = sender * SLOT_WORDS;
    const expectedLo = sender < 0 ? 1 : addLo(a[s + W_NONCE_LO], 1);
    const expectedHi = sender < 0 ? 0 : addHi(a[s + W_NONCE_HI], a[s + W_NONCE_LO], 0, 1);
    if (words[at + W_NONCE] !== expectedLo || words[at + W_NONCE + 1] !== expectedHi) return Result.bad_nonce;
    const amountLo = words[at + W_AMOUNT];
    const amountHi = words[at + W_AMOUNT + 1];
    const kind = (words[at + W_KIND] >>> 8) & 0xff;
    if (kind === KIND_MINT) return this.mint(words, at, s, amountHi, amountLo, recipientHome);
    if (sender < 0) return Result.insufficient_funds; // never credited: balance 0
    return this.transfer(words, at, s, amountHi, amountLo, recipientHome);
  }

  /** `issuer` and the other account arguments below are word offsets of account slots. */
  private mint(words: Uint32Array, at: number, issuer: number, amountHi: number, amountLo: number, recipientHome: number): number {
    if (issuer < 0) throw new Error('mint passed verification from an issuer with no account');
    if (addHi(this.supplyHi, this.supplyLo, amountHi, amountLo) >= TWO_32) return Result.invalid_amount;
    const recipient = this.accounts.findOrInsert(words, at + W_RECIPIENT, recipientHome);
    if (recipient < 0) return Result.capacity_exceeded;
    this.credit(recipient * SLOT_WORDS, amountHi, amountLo);
    this.supplyHi = addHi(this.supplyHi, this.supplyLo, amountHi, amountLo);
    this.supplyLo = addLo(this.supplyLo, amountLo);
    this.consumeNonce(issuer);
    return Result.committed;
  }

  private transfer(words: Uint32Array, at: number, s: number, amountHi: number, amountLo: number, recipientHome: number): number {
    const a = this.accounts.words;
    const needHi = addHi(a[s + W_HELD_HI], a[s + W_HELD_LO], amountHi, amountLo);
    const needLo = addLo(a[s + W_HELD_LO], amountLo);
    if (!geq(a[s + W_BALANCE_HI], a[s + W_BALANCE_LO], needHi, needLo)) return Result.insufficient_funds;
    if (this.approvalsOn && geq(amountHi, amountLo, this.thresholdHi, this.thresholdLo)) {
      return this.hold(words, at, s, amountHi, amountLo, needHi, needLo);
    }
    const recipient = this.accounts.findOrInsert(words, at + W_RECIPIENT, recipientHome);
    if (recipient < 0) return Result.capacity_exceeded;
    const balanceHi = a[s + W_BALANCE_HI];
    const balanceLo = a[s + W_BALANCE_LO];
    a[s + W_BALANCE_HI] = subHi(balanceHi, balanceLo, amountHi, amountLo);
    a[s + W_BALANCE_LO] = subLo(balanceLo, amountLo);
    this.credit(recipient * SLOT_WORDS, amountHi, amountLo);
    this.consumeNonce(s);
    return Result.committed;
  }

  private hold(words: Uint32Array, at: number, s: number, amountHi: number, amountLo: number, heldHi: number, heldLo: number): number {
    if (this.pending.size >= this.options.approvalsPendingMax) return Result.capacity_exceeded;
    const recipient = Buffer.from(new Uint8Array(words.buffer, words.byteOffset + (at + W_RECIPIENT) * 4, 32));
    this.pending.set(this.nextSeqValue, { seq: this.nextSeqValue, block: this.nextBlockNumber, sender: s / SLOT_WORDS, recipient, amountHi, amountLo });
    const a = this.accounts.words;
    a[s + W_HELD_HI] = heldHi;
    a[s + W_HELD_LO] = heldLo;
    this.consumeNonce(s);
    return Result.pending_approval;
  }

  private credit(r: number, amountHi: number, amountLo: number): void {
    const a = this.accounts.words;
    const hi = addHi(a[r + W_BALANCE_HI], a[r + W_BALANCE_LO], amountHi, amountLo);
    if (hi >= TWO_32) throw new Error(`balance of account ${r / SLOT_WORDS} overflowed u64: supply bound broken`);
    a[r + W_BALANCE_LO] = addLo(a[r + W_BALANCE_LO], amountLo);
    a[r + W_BALANCE_HI] = hi;
  }

  private consumeNonce(s: number): void {
    const a = this.accounts.words;
    const lo = a[s + W_NONCE_LO];
    a[s + W_NONCE_HI] = addHi(a[s + W_NONCE_HI], lo, 0, 1);
    a[s + W_NONCE_LO] = addLo(lo, 1);
    this.nextSeqValue++;
  }

  /** Copies the accepted bodies into the history window, in runs of consecutive accepted slots. */
  private recordHistory(ring: InputRing, start: number, count: number, results: Uint8Array, firstSeq: number, block: number): void {
    if (this.history === null) return;
    let seq = firstSeq;
    let i = 0;
    while (i < count) {
      if (results[i] > Result.pending_approval) { i++; continue; }
      let run = 1;
      const slot = (start + i) & ring.mask;
      while (i + run < count && results[i + run] <= Result.pending_approval && slot + run < ring.slotsCount) run++;
      this.history.appendRun(seq, ring.bodies, slot * BODY_BYTES, run, block, results, i);
      seq += run;
      i += run;
    }
    if (seq !== this.nextSeqValue) throw new Error(`history recorded up to seq ${seq - 1}, sequencer at ${this.nextSeqValue - 1}`);
  }

  /**
   * The whole state after the last sequenced block, as bytes (see snapshot.ts for the layout).
   * O(accounts): a memcpy of 64 B an account, ~1 ms per 100k accounts, on the sequencer's turn.
   */
  exportState(): SequencerState {
    return {
      block: this.blocksCount, nextSeq: this.nextSeqValue, lastHash: this.lastHash,
      supplyHi: this.supplyHi, supplyLo: this.supplyLo,
      accounts: this.accounts.records().slice(), pending: [...this.pending.values()].map((p) => ({ ...p })),
    };
  }

  /** Starts from a saved state instead of genesis; only on a fresh sequencer. */
  importState(state: SequencerState): void {
    if (this.blocksCount !== 0 || this.nextSeqValue !== 1) throw new Error('importState needs a fresh sequencer');
    this.accounts.clear();
    this.accounts.loadRecords(state.accounts);
    for (const issuer of this.options.issuers) this.accounts.insertKey(issuer); // a new issuer key in config
    this.nextBlockNumber = state.block + 1;
    this.nextSeqValue = state.nextSeq;
    this.lastHash = state.lastHash;
    this.supplyHi = state.supplyHi;
    this.supplyLo = state.supplyLo;
    for (const p of state.pending) this.pending.set(p.seq, p);
    this.checkInvariants();
  }

  /**
   * Full check of the state invariants, O(accounts): money is conserved (sum of balances = supply),
   * holds equal the pending approvals and never exceed a balance. Throws on any breach.
   */
  checkInvariants(): void {
    const a = this.accounts.words;
    let sumHi = 0;
    let sumLo = 0;
    let heldSum = 0n;
    this.accounts.forEachBase((b) => {
      sumLo += a[b + W_BALANCE_LO];
      if (sumLo >= TWO_32) { sumLo -= TWO_32; sumHi++; }
      sumHi += a[b + W_BALANCE_HI];
      if (!geq(a[b + W_BALANCE_HI], a[b + W_BALANCE_LO], a[b + W_HELD_HI], a[b + W_HELD_LO])) throw new Error(`account ${b / SLOT_WORDS} holds more than its balance`);
      if (a[b + W_HELD_HI] !== 0 || a[b + W_HELD_LO] !== 0) heldSum += toBigInt(a[b + W_HELD_HI], a[b + W_HELD_LO]);
    });
    if (sumHi !== this.supplyHi || sumLo !== this.supplyLo) {
      throw new Error(`money not conserved: balances sum to ${toBigInt(sumHi, sumLo)}, mints to ${this.supply}`);
    }
    let pendingSum = 0n;
    for (const p of this.pending.values()) pendingSum += toBigInt(p.amountHi, p.amountLo);
    if (pendingSum !== heldSum) throw new Error(`holds ${heldSum} differ from pending approvals ${pendingSum}`);
  }
}
