/*
 * Keys rotated without a restart (issue 12): the batch signers admission trusts
 * (stages/admit/), and the issuers that may mint (checked by the verify workers,
 * stages/verify/issuer-table.ts). rotate() takes the new list: keys on it are valid at once, and
 * keys that left it stay valid for a grace period, so a client fleet can move from the old key to
 * the new one in its own time; then they are retired.
 *
 *   rotate([B])          at t   A retiring until t + grace, B valid
 *   has(A) at t + grace         false: A retired
 *
 * Both are checked before sequencing only. A block stores each transaction's result, and recovery
 * replays results, not signatures or issuer lists (the sequencer takes a mint's verdict as given,
 * and tracks the nonce of any issuer it meets), so a rotation never changes how history replays.
 */

import { KeySet } from './checks.js';
import { isPublicKeyHex } from './keys.js';

/** Issuers at once, listed and retiring: the size of the verify workers' shared table (stages/verify/issuer-table.ts). */
export const ISSUERS_MAX = 256;

export interface KeyRotation { added: string[]; retiring: string[]; retiredAtMs: number }

export class RotatingKeys {
  private currentHex: Set<string>;
  private current: KeySet;
  private retiringHex: string[] = [];
  private retiring: KeySet | null = null;
  private retiringUntilMs = 0;
  rotations = 0;

  /** `what` names the keys in errors: "trusted signer", "issuer". */
  constructor(hexes: string[], private readonly what = 'key') {
    this.currentHex = parseHexes(hexes, what);
    this.current = keySetOf(this.currentHex);
  }

  /** Whether the 32 bytes at `offset` of `source` are a key valid now. */
  has(source: Buffer, offset: number, nowMs = Date.now()): boolean {
    if (this.current.has(source, offset)) return true;
    return this.retiring !== null && nowMs < this.retiringUntilMs && this.retiring.has(source, offset);
  }

  /**
   * Trusts `hexes` from now. Keys trusted before and not on the list stay trusted for `graceMs`;
   * keys still in an earlier grace period join this one (a rotation never extends past it by more
   * than graceMs, and never trusts a key again that the list does not name).
   */
  rotate(hexes: string[], graceMs: number, nowMs = Date.now()): KeyRotation {
    const next = parseHexes(hexes, this.what);
    const added = [...next].filter((h) => !this.currentHex.has(h));
    const retiring = [...this.currentHex].filter((h) => !next.has(h));
    // The same list again (a SIGHUP for another reason, a TLS certificate): nothing changes, and
    // keys still retiring keep their deadline; re-reading the files must never extend a grace.
    if (added.length === 0 && retiring.length === 0) return { added, retiring, retiredAtMs: this.retiringUntilMs };
    const stillRetiring = nowMs < this.retiringUntilMs ? this.retiringHex.filter((h) => !next.has(h)) : [];
    this.retiringHex = graceMs > 0 ? [...new Set([...retiring, ...stillRetiring])] : [];
    this.retiring = this.retiringHex.length > 0 ? keySetOf(new Set(this.retiringHex)) : null;
    this.retiringUntilMs = nowMs + graceMs;
    this.currentHex = next;
    this.current = keySetOf(next);
    this.rotations++;
    return { added, retiring, retiredAtMs: nowMs + graceMs };
  }

  /** The keys valid at `nowMs` (listed, and retiring within their grace), as raw 32-byte keys. */
  validAt(nowMs = Date.now()): Buffer[] {
    const hexes = nowMs < this.retiringUntilMs ? [...this.currentHex, ...this.retiringHex] : [...this.currentHex];
    return hexes.map((h) => Buffer.from(h, 'hex'));
  }

  /** When the keys retiring now stop being valid; 0 when none are retiring. */
  get retiringUntil(): number {
    return this.retiringHex.length > 0 ? this.retiringUntilMs : 0;
  }
}

function parseHexes(hexes: string[], what: string): Set<string> {
  for (const h of hexes) if (!isPublicKeyHex(h)) throw new Error(`${what} ${h} is not a 32-byte hex public key`);
  return new Set(hexes.map((h) => h.toLowerCase()));
}

function keySetOf(hexes: Set<string>): KeySet {
  return new KeySet([...hexes].map((h) => Buffer.from(h, 'hex')));
}
