/*
 * A validator's replica of the history (issue 13): every block on the log is verified again and
 * applied again by the same deterministic state machine (core/sequencer.ts), from the record alone:
 *
 *   1. term      below the highest term seen: a deposed leader's late write, skipped (harmless).
 *   2. height    at a height already taken: the same block again is skipped; a different one is a
 *                fault (two blocks at one height). Past the next height: a broken chain.
 *   3. chain     prev_hash must be this replica's head hash.
 *   4. verify    bodies_digest recomputed; the batch signature (a trusted signer) or every per-tx
 *                signature checked again, each body's structure checked (core/checks.ts), giving
 *                this replica's own verdicts; the leader's results are not trusted.
 *   5. apply     the sequencer applies the batch with those verdicts; the results and the block
 *                hash must be the record's. An overdraft the leader let through shows up here.
 *
 * A block that fails 3-5 changed nothing that stays: the replica goes back to its last checkpoint
 * (the state every CHECKPOINT_EVERY_BLOCKS blocks) and replays the blocks it accepted since. The
 * checkpoint is one copy of the account records kept up to date in place: at each checkpoint only
 * the accounts the blocks since then touched (the ones the state hash reads) and the accounts they
 * opened are copied into it, not every account: with millions of accounts a full copy every 64
 * blocks stalled all four validators at once (~34 ms at 1.6M accounts).
 * The state hash chains what every block did to the accounts it touched:
 *
 *   state_hash(h) = SHA-256( "txe/state/v1" | state_hash(h-1) | block_hash(h)
 *                            | for each accepted tx: sender record, recipient record )
 *   record = key 32 B | balance u64 | held u64 | nonce u64, as after the block
 *
 * so two validators with the same state hash at h applied the same blocks to the same balances.
 * Cost, per block: SHA-256 of the bodies (~0.6 ms a full 1 MB block), one Ed25519 verify
 * (batch-signed; ~75 µs, or one a tx per-tx), the apply (~150 ns a tx), and two account lookups and
 * 64 B hashed a tx for the state hash (~100 ns): ~2.5 ms a full block of 8190 txs on one core,
 * i.e. one core re-verifies ~3M tx/s batch-signed, ~13k tx/s per-tx.
 */

import crypto from 'node:crypto';
import { GENESIS_HASH, HASH_BYTES } from '../core/block.js';
import { BODY_BYTES, OFFSET_SENDER, SIGNATURE_BYTES } from '../core/record.js';
import { Result, isAccepted, resultName } from '../core/result.js';
import { CHECK_VALID, KeySet, checkBody } from '../core/checks.js';
import { PublicKeyCache } from '../core/keys.js';
import { VERDICT_REJECTED_FLAG, VERDICT_VALID } from '../core/verdict.js';
import { KEY_WORDS, SLOT_WORDS, W_BALANCE_LO } from '../core/accounts.js';
import { Sequencer, type SequencerOptions, type SequencerState } from '../core/sequencer.js';
import type { StoredBlock } from '../stages/commit/stored-block.js';
import { BlockSlots, replayBlock } from '../recovery/replay.js';

export const CHECKPOINT_EVERY_BLOCKS = 64;
const RECENT_BLOCKS_KEPT = 65_536; // heights remembered for finality checks and answers (~100 B each)
const KEY_CACHE_ENTRIES = 100_000;
const STATE_DOMAIN = Buffer.from('txe/state/v1');
const W_SENDER = OFFSET_SENDER / 4;
const W_RECIPIENT = 10;
const BODY_WORDS = BODY_BYTES / 4;
const RECORD_STATE_WORDS = 6; // balance, held, nonce as u32 pairs
const STATE_RECORD_WORDS = KEY_WORDS + RECORD_STATE_WORDS; // 56 B hashed an account

/** What this replica holds at one height. */
export interface AppliedBlock { height: number; term: number; hash: Buffer; stateHash: Buffer; firstSeq: number; txs: number }

export type Judgement =
  | { kind: 'applied'; block: AppliedBlock }
  | { kind: 'skipped'; why: string } // an older term's late write, or a block already applied
  | { kind: 'fault'; fault: FaultKind; why: string }; // an invalid block: nothing of it was applied

export type FaultKind = 'bad_block' | 'broken_chain' | 'two_blocks_at_height';

export interface ReplicaOptions {
  sequencer: SequencerOptions;
  trustedSigners: () => KeySet; // batch signers trusted now (they rotate)
  checkpointEveryBlocks?: number; // default CHECKPOINT_EVERY_BLOCKS; tests make it small
}

/** The state at the last checkpoint: its records in a buffer that grows, updated in place. */
interface Checkpoint { state: Omit<SequencerState, 'accounts'>; records: Uint32Array; accountsCount: number; head: AppliedBlock; highestTerm: number }

export class Replica {
  private sequencer: Sequencer;
  private headValue: AppliedBlock = { height: 0, term: 0, hash: GENESIS_HASH, stateHash: Buffer.alloc(HASH_BYTES), firstSeq: 1, txs: 0 };
  private highestTerm = 0;
  private readonly recent = new Map<number, AppliedBlock>();
  private checkpoint: Checkpoint | null = null;
  private sinceCheckpoint: StoredBlock[] = [];
  // Accounts an accepted transaction touched since the checkpoint: a mark each, and their list.
  private dirtyMarks = new Uint8Array(0);
  private dirtyList = new Int32Array(1024);
  private dirtyCount = 0;
  private readonly issuers: KeySet;
  private readonly keys = new PublicKeyCache(KEY_CACHE_ENTRIES);

  constructor(private readonly options: ReplicaOptions) {
    this.sequencer = new Sequencer(options.sequencer);
    this.issuers = new KeySet(options.sequencer.issuers);
    this.takeCheckpoint();
  }

  get head(): AppliedBlock { return this.headValue; }
  get term(): number { return this.highestTerm; }
  /** The seq the next accepted transaction takes. */
  get nextSeq(): number { return this.sequencer.nextSeq; }
  /** The block this replica applied at `height`, while it is among the recent ones. */
  at(height: number): AppliedBlock | undefined { return this.recent.get(height); }
  /** The state after the head, for a leader's pipeline to start from (a copy). */
  exportState(): SequencerState { return this.sequencer.exportState(); }
  checkInvariants(): void { this.sequencer.checkInvariants(); }

  /** Judges the next record of the log (in log order) and applies it if it is valid. */
  judge(record: StoredBlock): Judgement {
    if (record.epoch < this.highestTerm) return { kind: 'skipped', why: `block ${record.number} of term ${record.epoch} after term ${this.highestTerm}: a deposed leader's late write` };
    if (record.number <= this.headValue.height) return this.repeated(record);
    if (record.number !== this.headValue.height + 1) return { kind: 'fault', fault: 'broken_chain', why: `block ${record.number} after height ${this.headValue.height}` };
    if (!record.prevHash.equals(this.headValue.hash)) return { kind: 'fault', fault: 'broken_chain', why: `block ${record.number}'s prev_hash ${hex(record.prevHash)} is not block ${this.headValue.height}'s hash ${hex(this.headValue.hash)}` };
    const slots = new BlockSlots(record.bodies, record.txs);
    const invalid = this.verify(record, slots);
    if (invalid !== null) return { kind: 'fault', fault: 'bad_block', why: `block ${record.number}: ${invalid}` };
    const applied = this.apply(record, slots);
    if (typeof applied === 'string') {
      this.rollback();
      return { kind: 'fault', fault: 'bad_block', why: `block ${record.number}: ${applied}` };
    }
    return { kind: 'applied', block: applied };
  }

  /** A record at a height already applied: the same block (a republish) or a second, different one. */
  private repeated(record: StoredBlock): Judgement {
    const mine = this.recent.get(record.number);
    if (mine !== undefined && mine.hash.equals(record.hash)) return { kind: 'skipped', why: `block ${record.number} again` };
    return { kind: 'fault', fault: 'two_blocks_at_height', why: `block ${record.number} of term ${record.epoch} with hash ${hex(record.hash)}, but height ${record.number} holds ${mine ? hex(mine.hash) : 'an older block'}${mine ? ` of term ${mine.term}` : ''}` };
  }

  /** Fills `slots` with this replica's own verdict for every body, as the verify workers judge them; or says why the block is invalid. */
  private verify(record: StoredBlock, slots: BlockSlots): string | null {
    const digest = crypto.createHash('sha256').update(record.bodies).digest();
    if (!digest.equals(record.bodiesDigest)) return 'bodies_digest does not match the bodies';
    const auth = record.auth ?? { mode: 'none' };
    if (auth.mode === 'none') return 'the batch carries no signature (engine-written entries are not accepted in a cluster)';
    const { words, bodies, verdicts } = slots;
    let batchOk = true;
    if (auth.mode === 'batch-signed') {
      if (!this.options.trustedSigners().has(auth.signer, 0)) return `batch signer ${hex(auth.signer)} is not trusted`;
      const key = this.keys.get(auth.signer);
      batchOk = key !== null && crypto.verify(null, digest, key, auth.signature);
    }
    for (let i = 0; i < record.txs; i++) {
      const at = i * BODY_BYTES;
      let code = batchOk ? checkBody(words, bodies, at, this.issuers) : Result.bad_signature;
      if (code === CHECK_VALID && auth.mode === 'per-tx' && !this.signatureValid(bodies, at, auth.signatures, i)) code = Result.bad_signature;
      verdicts[i] = code === CHECK_VALID ? VERDICT_VALID : VERDICT_REJECTED_FLAG | code;
    }
    return null;
  }

  private signatureValid(bodies: Buffer, at: number, signatures: Buffer, i: number): boolean {
    const key = this.keys.get(bodies.subarray(at + OFFSET_SENDER, at + OFFSET_SENDER + 32));
    return key !== null && crypto.verify(null, bodies.subarray(at, at + BODY_BYTES), key, signatures.subarray(i * SIGNATURE_BYTES, (i + 1) * SIGNATURE_BYTES));
  }

  /** Applies the block with this replica's verdicts; the record's results and hash must come out. */
  private apply(record: StoredBlock, slots: BlockSlots): AppliedBlock | string {
    const block = this.sequencer.sequenceBatch(slots, 0, record.txs, record.bodiesDigest);
    const firstDiff = block.results.findIndex((r, i) => r !== record.results[i]);
    if (firstDiff >= 0) return `tx ${firstDiff} is ${resultName(block.results[firstDiff])} here, ${resultName(record.results[firstDiff])} in the block`;
    if (block.firstSeq !== record.firstSeq || block.entries !== record.entries) return `first_seq/entries ${record.firstSeq}/${record.entries} in the block, ${block.firstSeq}/${block.entries} here`;
    if (!block.hash.equals(record.hash)) return `hash ${hex(record.hash)} in the block, ${hex(block.hash)} here`;
    const applied: AppliedBlock = { height: block.number, term: record.epoch, hash: block.hash, stateHash: this.stateHash(slots, block.results, block.hash), firstSeq: block.firstSeq, txs: block.txs };
    this.advance(applied, record);
    return applied;
  }

  /**
   * The touched accounts' records are gathered into one buffer and hashed with one update: a
   * hash.update a field from JS cost ~0.4 µs a call, four a transaction, more than the apply. The
   * accounts come from the sequencer's own lookups (lastTouchedAccounts): looking them up again
   * was 16% of a validator's time, the largest part of judging a block.
   */
  private stateHash(slots: BlockSlots, results: Uint8Array, blockHash: Buffer): Buffer {
    const accounts = this.sequencer.accounts;
    const records = accounts.records();
    let accepted = 0;
    for (let i = 0; i < results.length; i++) if (isAccepted(results[i])) accepted++;
    const out = new Uint32Array(accepted * 2 * STATE_RECORD_WORDS);
    // The accounts the sequencer found while it applied the block (a lookup each where it did not).
    const touched = this.sequencer.lastTouchedAccounts;
    let at = 0;
    for (let i = 0; i < results.length; i++) {
      if (!isAccepted(results[i])) continue;
      const sender = touched[2 * i] >= 0 ? touched[2 * i] : accounts.find(slots.words, i * BODY_WORDS + W_SENDER);
      const recipient = touched[2 * i + 1] >= 0 ? touched[2 * i + 1] : accounts.find(slots.words, i * BODY_WORDS + W_RECIPIENT);
      at = copyAccount(out, at, records, sender, i);
      at = copyAccount(out, at, records, recipient, i);
      this.markDirty(sender);
      this.markDirty(recipient);
    }
    return crypto.createHash('sha256').update(STATE_DOMAIN).update(this.headValue.stateHash).update(blockHash)
      .update(new Uint8Array(out.buffer, out.byteOffset, out.byteLength)).digest();
  }

  private advance(applied: AppliedBlock, record: StoredBlock): void {
    this.headValue = applied;
    this.highestTerm = Math.max(this.highestTerm, record.epoch);
    this.recent.set(applied.height, applied);
    this.recent.delete(applied.height - RECENT_BLOCKS_KEPT);
    this.sinceCheckpoint.push(record);
    if (this.sinceCheckpoint.length >= (this.options.checkpointEveryBlocks ?? CHECKPOINT_EVERY_BLOCKS)) this.takeCheckpoint();
  }

  private markDirty(account: number): void {
    if (account >= this.dirtyMarks.length) {
      const grown = new Uint8Array(Math.max(account + 1, this.dirtyMarks.length * 2, 1024));
      grown.set(this.dirtyMarks);
      this.dirtyMarks = grown;
    }
    if (this.dirtyMarks[account] !== 0) return;
    this.dirtyMarks[account] = 1;
    if (this.dirtyCount === this.dirtyList.length) {
      const grown = new Int32Array(this.dirtyList.length * 2);
      grown.set(this.dirtyList);
      this.dirtyList = grown;
    }
    this.dirtyList[this.dirtyCount++] = account;
  }

  /**
   * The checkpoint becomes the state now: the accounts touched since the last one are copied over
   * their old records, the accounts opened since are appended. Accepted transactions change only
   * their sender's and recipient's records (core/sequencer.ts), and a rejected one changes nothing
   * but may open an account, which the appended range covers.
   */
  private takeCheckpoint(): void {
    const { accounts, ...state } = this.sequencer.stateView();
    const count = accounts.length / SLOT_WORDS;
    const before = this.checkpoint;
    let records = before?.records ?? new Uint32Array(0);
    const copiedCount = before?.accountsCount ?? 0;
    if (records.length < accounts.length) {
      const grown = new Uint32Array(Math.max(accounts.length, records.length * 2));
      grown.set(records.subarray(0, copiedCount * SLOT_WORDS));
      records = grown;
    }
    for (let i = 0; i < this.dirtyCount; i++) {
      const account = this.dirtyList[i];
      this.dirtyMarks[account] = 0;
      if (account < copiedCount) records.set(accounts.subarray(account * SLOT_WORDS, (account + 1) * SLOT_WORDS), account * SLOT_WORDS);
    }
    this.dirtyCount = 0;
    records.set(accounts.subarray(copiedCount * SLOT_WORDS), copiedCount * SLOT_WORDS);
    this.checkpoint = { state, records, accountsCount: count, head: this.headValue, highestTerm: this.highestTerm };
    this.sinceCheckpoint = [];
  }

  /** Back to the last block accepted: the checkpoint, then the blocks accepted since (each must replay to its hash). */
  private rollback(): void {
    const { records, accountsCount, head, highestTerm } = this.checkpoint!;
    const state: SequencerState = { ...this.checkpoint!.state, accounts: records.subarray(0, accountsCount * SLOT_WORDS), pending: this.checkpoint!.state.pending.map((p) => ({ ...p })) };
    const accepted = this.sinceCheckpoint;
    this.sequencer = new Sequencer(this.options.sequencer);
    if (state.block > 0) this.sequencer.importState(state);
    this.headValue = head;
    this.highestTerm = highestTerm;
    this.sinceCheckpoint = [];
    for (const record of accepted) {
      replayBlock(this.sequencer, record);
      this.headValue = this.recent.get(record.number)!;
      this.highestTerm = Math.max(this.highestTerm, record.epoch);
      this.sinceCheckpoint.push(record);
    }
  }
}

/** Copies one account's key and (balance, held, nonce) words into `out` at `at`; returns the next `at`. */
function copyAccount(out: Uint32Array, at: number, records: Uint32Array, account: number, tx: number): number {
  if (account < 0) throw new Error(`replica: an account of accepted tx ${tx} is missing after the block`);
  const base = account * SLOT_WORDS;
  for (let w = 0; w < KEY_WORDS; w++) out[at + w] = records[base + w];
  for (let w = 0; w < RECORD_STATE_WORDS; w++) out[at + KEY_WORDS + w] = records[base + W_BALANCE_LO + w];
  return at + STATE_RECORD_WORDS;
}

function hex(b: Buffer): string { return b.toString('hex').slice(0, 16); }
