/*
 * The batch signers admission trusts, rotated without a restart (issue 12). rotate() takes the new
 * list: keys on it are trusted at once, and keys that left it stay trusted for a grace period, so a
 * client fleet can move from the old signer to the new one in its own time; then they are retired.
 *
 *   rotate([B])          at t   A retiring until t + grace, B trusted
 *   has(A) at t + grace         false: A retired
 *
 * Signer trust is checked at admission only. A block stores each transaction's result, and
 * recovery replays results, not signatures, so a rotation never changes how history replays. (An
 * issuer is different: minting is a rule of the state machine, and changing the issuers would make
 * old blocks replay differently; issuer rotation needs an entry in the history, not built here.)
 */

import { KeySet } from '../../core/checks.js';

export interface SignerRotation { added: string[]; retiring: string[]; retiredAtMs: number }

export class TrustedSigners {
  private currentHex: Set<string>;
  private current: KeySet;
  private retiringHex: string[] = [];
  private retiring: KeySet | null = null;
  private retiringUntilMs = 0;
  rotations = 0;

  constructor(hexes: string[]) {
    this.currentHex = parseHexes(hexes);
    this.current = keySetOf(this.currentHex);
  }

  /** Whether the 32 bytes at `offset` of `source` are a signer trusted now. */
  has(source: Buffer, offset: number, nowMs = Date.now()): boolean {
    if (this.current.has(source, offset)) return true;
    return this.retiring !== null && nowMs < this.retiringUntilMs && this.retiring.has(source, offset);
  }

  /**
   * Trusts `hexes` from now. Keys trusted before and not on the list stay trusted for `graceMs`;
   * keys still in an earlier grace period join this one (a rotation never extends past it by more
   * than graceMs, and never trusts a key again that the list does not name).
   */
  rotate(hexes: string[], graceMs: number, nowMs = Date.now()): SignerRotation {
    const next = parseHexes(hexes);
    const added = [...next].filter((h) => !this.currentHex.has(h));
    const retiring = [...this.currentHex].filter((h) => !next.has(h));
    const stillRetiring = nowMs < this.retiringUntilMs ? this.retiringHex.filter((h) => !next.has(h)) : [];
    this.retiringHex = graceMs > 0 ? [...new Set([...retiring, ...stillRetiring])] : [];
    this.retiring = this.retiringHex.length > 0 ? keySetOf(new Set(this.retiringHex)) : null;
    this.retiringUntilMs = nowMs + graceMs;
    this.currentHex = next;
    this.current = keySetOf(next);
    if (added.length > 0 || retiring.length > 0) this.rotations++;
    return { added, retiring, retiredAtMs: nowMs + graceMs };
  }
}

function parseHexes(hexes: string[]): Set<string> {
  for (const h of hexes) if (!/^[0-9a-f]{64}$/i.test(h)) throw new Error(`trusted signer ${h} is not a 32-byte hex public key`);
  return new Set(hexes.map((h) => h.toLowerCase()));
}

function keySetOf(hexes: Set<string>): KeySet {
  return new KeySet([...hexes].map((h) => Buffer.from(h, 'hex')));
}
