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
 *     at or above its approval policy's threshold: hold the amount (the recipient's account is
 *     opened now, so posting it later cannot fail), answer pending_approval;
 *     else debit the sender, credit the recipient;
 *   a new recipient when the account table is full, or a hold when the approval table is full:
 *     capacity_exceeded.
 * Approval decisions (kinds 3-5, written by the engine, approvals/decision.ts) skip the nonce rule:
 *   they must match a pending hold field for field, else approval_not_pending; approve posts it
 *   (debit, credit, release the hold), reject and expire release the hold. Each takes a seq.
 * Rejections change nothing: no nonce is consumed, no seq is given.
 * Cost: ~100-150 ns a record (two lookups, u64 arithmetic), i.e. 15-30% of a core at 2M TPS.
 */

import { BODY_BYTES, KIND_APPROVE, KIND_MINT, MEMO_BYTES, OFFSET_MEMO, OFFSET_SENDER, PUBLIC_KEY_BYTES, readBody } from './record.js';
import { Result } from './result.js';
import { VERDICT_REJECTED_FLAG, VERDICT_UNVERIFIED, type RecordSlots } from './verdict.js';
import { AccountTable, SLOT_WORDS, W_BALANCE_HI, W_BALANCE_LO, W_HELD_HI, W_HELD_LO, W_NONCE_HI, W_NONCE_LO } from './accounts.js';
import { GENESIS_HASH, blockHash, type ApprovalChange, type CommittedBlock } from './block.js';
import { TWO_32, addHi, addLo, geq, subHi, subLo, toBigInt } from './u64.js';
import { PolicyIndex, type ApprovalPolicy } from './policy.js';
import { KIND_OUTCOME, approvalId } from './decision.js';

// Word offsets within a 128-byte body viewed as u32 (32 words).
const W_KIND = 0; // byte 1 of word 0
const W_SENDER = 2;
const W_RECIPIENT = 10;
const W_NONCE = 18;
const W_TIMESTAMP = 22;
const REMOVED_POLICY: ApprovalPolicy = { name: '(no policy holds this any more)', account: null, thresholdAmount: 1n, approvers: [], required: 1, timeoutMs: 0 };
const W_AMOUNT = 20;
const W_MEMO = OFFSET_MEMO / 4;
const BODY_WORDS = BODY_BYTES / 4;

export interface SequencerOptions {
  accountsMax: number;
  issuers: Uint8Array[];
  approvalPolicies: readonly ApprovalPolicy[]; // [] = approvals off
  approvalsPendingMax: number;
}

export interface PendingApproval {
  seq: number;
  block: number;
  sender: number; // account index
  recipient: Buffer;
  amountHi: number;
  amountLo: number;
  id: Buffer; // approval id: SHA-256 of the held body
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
  private readonly policies: PolicyIndex;
  private readonly thresholdHi: number;
  private readonly thresholdLo: number;
  private changes: ApprovalChange[] = [];
  private bodies: Buffer = Buffer.alloc(0); // the ring's bodies, during sequenceBatch
  private position = 0; // index in the batch of the record being applied
  private replayed: Uint8Array | null = null; // stored results, during a recovery replay
  private supplyHi = 0;
  private supplyLo = 0;
  private nextSeqValue = 1;
  private nextBlockNumber = 1;
  private lastHash: Buffer = GENESIS_HASH;
  private homes = new Int32Array(0);
  private prepared: { start: number; count: number; tableSlots: number } | null = null; // what `homes` holds
  // The account of each record's sender and recipient in the last batch ([2i], [2i+1]; -1 where
  // not looked up), so a replica hashes the touched accounts without looking them up again.
  private touchedAccounts = new Int32Array(0);
  private touchedSink = 0;

  constructor(private readonly options: SequencerOptions) {
    this.accounts = new AccountTable(options.accountsMax);
    // Issuers sign mints with nonces, so their nonce is tracked from the start (balance 0).
    for (const issuer of options.issuers) this.accounts.insertKey(issuer);
    this.policies = new PolicyIndex(options.approvalPolicies);
    this.thresholdHi = Number(this.policies.minThreshold >> 32n);
    this.thresholdLo = Number(this.policies.minThreshold & 0xffff_ffffn);
  }

  get nextSeq(): number { return this.nextSeqValue; }
  get lastBlockHash(): Buffer { return this.lastHash; }
  get blocksCount(): number { return this.nextBlockNumber - 1; }
  get supply(): bigint { return toBigInt(this.supplyHi, this.supplyLo); }
  /** The last batch's record i: its sender's account at [2i], its recipient's at [2i+1]; -1 where not looked up. Valid until the next batch. */
  get lastTouchedAccounts(): Int32Array { return this.touchedAccounts; }

  /**
   * Applies the verified batch at ring [start, start+count) and returns its block. `replayed` is
   * the stored results when recovery replays a block: whether a transfer was held then follows
   * the history, not today's policies, so editing a policy never stops the engine from restarting.
   */
  sequenceBatch(ring: RecordSlots, start: number, count: number, bodiesDigest: Buffer, replayed: Uint8Array | null = null): CommittedBlock {
    this.replayed = replayed;
    const results = new Uint8Array(count);
    const firstSeq = this.nextSeqValue;
    const words = ring.words;
    const homes = this.isPrepared(start, count) ? this.homes : this.prepare(ring, start, count);
    this.prepared = null;
    if (this.touchedAccounts.length < count * 2) this.touchedAccounts = new Int32Array(count * 2);
    this.touchedAccounts.fill(-1, 0, count * 2);
    this.bodies = ring.bodies;
    for (let i = 0; i < count; i++) {
      const cursor = start + i;
      this.position = i;
      const verdict = ring.verdict(cursor);
      if (verdict === VERDICT_UNVERIFIED) throw new Error(`sequencer reached unverified slot at cursor ${cursor}`);
      results[i] = verdict & VERDICT_REJECTED_FLAG ? verdict & ~VERDICT_REJECTED_FLAG : this.apply(words, (cursor & ring.mask) * BODY_WORDS, homes[2 * i], homes[2 * i + 1]);
    }
    const entries = this.nextSeqValue - firstSeq;
    const number = this.nextBlockNumber++;
    const hash = blockHash(this.lastHash, number, firstSeq, entries, results, bodiesDigest);
    const approvals = this.changes.length > 0 ? this.changes : null;
    if (approvals) this.changes = [];
    const block: CommittedBlock = {
      number, firstSeq, entries, txs: count, ringStart: start, results, bodiesDigest,
      prevHash: this.lastHash, hash, sequencedAtNs: process.hrtime.bigint(), sequencedAtMs: Date.now(), approvals,
    };
    this.lastHash = hash;
    return block;
  }

  /**
   * First pass over a batch: the home table slot of every sender and recipient, each touched so
   * that the batch's cache misses overlap. With millions of accounts the table and records do not
   * fit in cache, and a miss per lookup taken one at a time made the apply loop ~5x slower than
   * with a small table (bench:micro vs txe bench, see bench/RESULTS.md).
   *
   * It reads only the records' keys, never their verdicts, so the sequence stage runs it on the
   * next batch while the verify workers still judge it (~40% of applying a batch, ~1 ms of 8190
   * records, off the batch's path when the sequencer would otherwise wait). Valid for the next
   * sequenceBatch of exactly [start, start+count): nothing else changes the table in between.
   */
  prepare(ring: RecordSlots, start: number, count: number): Int32Array {
    this.accounts.reserve(2 * count); // a record opens at most two accounts (a mint: an issuer not met yet, and its recipient)
    const homes = this.homeSlots(ring, start, count);
    this.prepared = { start, count, tableSlots: this.accounts.tableSlots };
    return homes;
  }

  private isPrepared(start: number, count: number): boolean {
    const p = this.prepared;
    return p !== null && p.start === start && p.count === count && p.tableSlots === this.accounts.tableSlots;
  }

  private homeSlots(ring: RecordSlots, start: number, count: number): Int32Array {
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
    const kind = (words[at + W_KIND] >>> 8) & 0xff;
    if (kind >= KIND_APPROVE) return this.decide(words, at, kind, senderHome, recipientHome);
    const sender = this.accounts.find(words, at + W_SENDER, senderHome);
    this.touchedAccounts[2 * this.position] = sender;
    const s = sender * SLOT_WORDS;
    const expectedLo = sender < 0 ? 1 : addLo(a[s + W_NONCE_LO], 1);
    const expectedHi = sender < 0 ? 0 : addHi(a[s + W_NONCE_HI], a[s + W_NONCE_LO], 0, 1);
    if (words[at + W_NONCE] !== expectedLo || words[at + W_NONCE + 1] !== expectedHi) return Result.bad_nonce;
    const amountLo = words[at + W_AMOUNT];
    const amountHi = words[at + W_AMOUNT + 1];
    if (kind === KIND_MINT) return this.mint(words, at, s, senderHome, amountHi, amountLo, recipientHome);
    if (sender < 0) return Result.insufficient_funds; // never credited: balance 0
    return this.transfer(words, at, s, amountHi, amountLo, recipientHome);
  }

  /**
   * The account of an issuer this sequencer has not met: one added by a rotation (SIGHUP) since it
   * started, or one retired since the mints it replays were written. Whether a key may mint is the
   * verify stage's rule (its verdict, or the stored result on replay); here only its nonce is kept.
   * Returns a word offset, or -1 when the account table is full.
   */
  private issuerAccount(words: Uint32Array, at: number, home: number): number {
    const slot = this.accounts.findOrInsert(words, at + W_SENDER, home);
    return slot < 0 ? -1 : slot * SLOT_WORDS;
  }

  /**
   * `found` and the other account arguments below are word offsets of account slots (`found` < 0:
   * an issuer not met yet, given an account here, issuerAccount).
   */
  private mint(words: Uint32Array, at: number, found: number, issuerHome: number, amountHi: number, amountLo: number, recipientHome: number): number {
    if (addHi(this.supplyHi, this.supplyLo, amountHi, amountLo) >= TWO_32) return Result.invalid_amount;
    const issuer = found >= 0 ? found : this.issuerAccount(words, at, issuerHome);
    if (issuer < 0) return Result.capacity_exceeded;
    this.touchedAccounts[2 * this.position] = issuer / SLOT_WORDS;
    const recipient = this.accounts.findOrInsert(words, at + W_RECIPIENT, recipientHome);
    if (recipient < 0) return Result.capacity_exceeded;
    this.touchedAccounts[2 * this.position + 1] = recipient;
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
    if (this.replayed !== null) {
      if (this.replayed[this.position] === Result.pending_approval) return this.hold(words, at, s, this.replayPolicy(at, amountHi, amountLo), recipientHome, needHi, needLo);
    } else if (this.policies.enabled && geq(amountHi, amountLo, this.thresholdHi, this.thresholdLo)) {
      const policy = this.policies.holdingPolicy(this.bodies, at * 4 + OFFSET_SENDER, toBigInt(amountHi, amountLo));
      if (policy !== null) return this.hold(words, at, s, policy, recipientHome, needHi, needLo);
    }
    const recipient = this.accounts.findOrInsert(words, at + W_RECIPIENT, recipientHome);
    if (recipient < 0) return Result.capacity_exceeded;
    this.touchedAccounts[2 * this.position + 1] = recipient;
    const balanceHi = a[s + W_BALANCE_HI];
    const balanceLo = a[s + W_BALANCE_LO];
    a[s + W_BALANCE_HI] = subHi(balanceHi, balanceLo, amountHi, amountLo);
    a[s + W_BALANCE_LO] = subLo(balanceLo, amountLo);
    this.credit(recipient * SLOT_WORDS, amountHi, amountLo);
    this.consumeNonce(s);
    return Result.committed;
  }

  /**
   * The policy a replayed hold is reported under: today's for its sender, or, when no policy would
   * hold it now, a stand-in that no one may vote on and that expires at once. Its approval row was
   * written when it was held, so the stand-in reaches PostgreSQL only for a block that recovery
   * copies from Kafka after the policy was removed.
   */
  private replayPolicy(at: number, amountHi: number, amountLo: number): ApprovalPolicy {
    return this.policies.holdingPolicy(this.bodies, at * 4 + OFFSET_SENDER, toBigInt(amountHi, amountLo)) ?? REMOVED_POLICY;
  }

  /** Holds a transfer for approval. Rare (large transfers only), so it may allocate. */
  private hold(words: Uint32Array, at: number, s: number, policy: ApprovalPolicy, recipientHome: number, heldHi: number, heldLo: number): number {
    // A replayed hold was admitted under the limit of its day: a lower limit today does not undo it.
    if (this.pending.size >= this.options.approvalsPendingMax && this.replayed === null) return Result.capacity_exceeded;
    const recipient = this.accounts.findOrInsert(words, at + W_RECIPIENT, recipientHome);
    if (recipient < 0) return Result.capacity_exceeded;
    this.touchedAccounts[2 * this.position + 1] = recipient;
    const body = this.bodies.subarray(at * 4, at * 4 + BODY_BYTES);
    const r = readBody(body);
    const id = approvalId(body);
    const seq = this.nextSeqValue;
    this.pending.set(seq, { seq, block: this.nextBlockNumber, sender: s / SLOT_WORDS, recipient: r.recipient, amountHi: words[at + W_AMOUNT + 1], amountLo: words[at + W_AMOUNT], id });
    this.changes.push({ type: 'requested', position: this.position, seq, id, policy, sender: r.sender, recipient: r.recipient, nonce: r.nonce, amount: r.amount });
    const a = this.accounts.words;
    a[s + W_HELD_HI] = heldHi;
    a[s + W_HELD_LO] = heldLo;
    this.consumeNonce(s);
    return Result.pending_approval;
  }

  /**
   * Applies an approval decision entry: it must name a pending hold (nonce = the held seq) and
   * repeat its sender, recipient, amount and id (memo), else approval_not_pending and nothing
   * changes. Approve posts the transfer; reject and expire release the hold.
   */
  private decide(words: Uint32Array, at: number, kind: number, senderHome: number, recipientHome: number): number {
    const heldSeq = words[at + W_NONCE + 1] * TWO_32 + words[at + W_NONCE];
    const p = this.pending.get(heldSeq);
    if (p === undefined || !this.sameHold(words, at, p, senderHome)) return Result.approval_not_pending;
    const s = p.sender * SLOT_WORDS;
    const a = this.accounts.words;
    const { amountHi, amountLo } = p;
    const heldHi = a[s + W_HELD_HI];
    const heldLo = a[s + W_HELD_LO];
    a[s + W_HELD_HI] = subHi(heldHi, heldLo, amountHi, amountLo);
    a[s + W_HELD_LO] = subLo(heldLo, amountLo);
    const outcome = KIND_OUTCOME[kind];
    if (outcome === 'approved') {
      const recipient = this.accounts.find(words, at + W_RECIPIENT, recipientHome);
      if (recipient < 0) throw new Error(`approval of seq ${heldSeq}: its recipient has no account, but holds open one`);
      const balanceHi = a[s + W_BALANCE_HI];
      const balanceLo = a[s + W_BALANCE_LO];
      a[s + W_BALANCE_HI] = subHi(balanceHi, balanceLo, amountHi, amountLo);
      a[s + W_BALANCE_LO] = subLo(balanceLo, amountLo);
      this.credit(recipient * SLOT_WORDS, amountHi, amountLo);
    }
    this.pending.delete(heldSeq);
    const decidedAtMs = words[at + W_TIMESTAMP + 1] * TWO_32 + words[at + W_TIMESTAMP];
    this.changes.push({ type: 'decided', position: this.position, seq: this.nextSeqValue, id: p.id, heldSeq, outcome, decidedAtMs });
    this.nextSeqValue++;
    return Result.committed;
  }

  private sameHold(words: Uint32Array, at: number, p: PendingApproval, senderHome: number): boolean {
    if (this.accounts.find(words, at + W_SENDER, senderHome) !== p.sender) return false;
    if (words[at + W_AMOUNT] !== p.amountLo || words[at + W_AMOUNT + 1] !== p.amountHi) return false;
    const byteAt = at * 4;
    if (this.bodies.compare(p.recipient, 0, PUBLIC_KEY_BYTES, byteAt + W_RECIPIENT * 4, byteAt + W_RECIPIENT * 4 + PUBLIC_KEY_BYTES) !== 0) return false;
    return this.bodies.compare(p.id, 0, MEMO_BYTES, byteAt + W_MEMO * 4, byteAt + W_MEMO * 4 + MEMO_BYTES) === 0;
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

  /**
   * The whole state after the last sequenced block, as bytes (see snapshot.ts for the layout).
   * O(accounts): a memcpy of 64 B an account, ~1 ms per 100k accounts, on the sequencer's turn.
   */
  exportState(): SequencerState {
    const view = this.stateView();
    return { ...view, accounts: view.accounts.slice() };
  }

  /** The state with its account records as a view (not a copy): valid until the next batch. */
  stateView(): SequencerState {
    return {
      block: this.blocksCount, nextSeq: this.nextSeqValue, lastHash: this.lastHash,
      supplyHi: this.supplyHi, supplyLo: this.supplyLo,
      accounts: this.accounts.records(), pending: [...this.pending.values()].map((p) => ({ ...p })),
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
