/*
 * A reference model of the sequencer rules (DESIGN.md section 3), written the slow obvious way:
 * BigInt balances in a Map keyed by hex. Tests compare the engine's per-transaction results and
 * state against it.
 */

import { KIND_MINT, U64_MAX, type RecordFields } from '../../engine/core/record.js';
import { Result } from '../../engine/core/result.js';

interface Account { balance: bigint; nonce: bigint; held: bigint }

export class Model {
  readonly accounts = new Map<string, Account>();
  supply = 0n;
  constructor(issuers: Buffer[], private readonly threshold: bigint, private readonly accountsMax: number) {
    for (const i of issuers) this.accounts.set(i.toString('hex'), { balance: 0n, nonce: 0n, held: 0n });
  }

  account(key: Uint8Array): Account | undefined {
    return this.accounts.get(Buffer.from(key).toString('hex'));
  }

  /** `verdict` is the stateless verdict the workers must reach: null = valid. */
  apply(r: RecordFields, verdict: number | null): number {
    if (verdict !== null) return verdict;
    const sender = this.account(r.sender);
    if (r.nonce !== (sender?.nonce ?? 0n) + 1n) return Result.bad_nonce;
    if (r.kind === KIND_MINT) {
      if (this.supply + r.amount > U64_MAX) return Result.invalid_amount;
      const to = this.credit(r.recipient);
      if (!to) return Result.capacity_exceeded;
      to.balance += r.amount;
      this.supply += r.amount;
      sender!.nonce++;
      return Result.committed;
    }
    if (!sender || sender.balance - sender.held < r.amount) return Result.insufficient_funds;
    if (this.threshold > 0n && r.amount >= this.threshold) {
      if (!this.credit(r.recipient)) return Result.capacity_exceeded; // a hold opens the recipient's account
      sender.held += r.amount;
      sender.nonce++;
      return Result.pending_approval;
    }
    const to = this.credit(r.recipient);
    if (!to) return Result.capacity_exceeded;
    sender.balance -= r.amount;
    to.balance += r.amount;
    sender.nonce++;
    return Result.committed;
  }

  private credit(key: Uint8Array): Account | undefined {
    const hex = Buffer.from(key).toString('hex');
    let a = this.accounts.get(hex);
    if (!a && this.accounts.size < this.accountsMax) this.accounts.set(hex, (a = { balance: 0n, nonce: 0n, held: 0n }));
    return a;
  }
}
