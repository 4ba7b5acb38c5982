/*
 * Which accounts a submitter acts for (issue 12: "submitters may submit and read their own
 * accounts"). A role says which service a caller may call; its account scope says on whose behalf.
 *
 *   certificate SAN URI            the caller may
 *   txe:account/<64 hex>           send PER_TX transactions from that account, send BATCH_SIGNED
 *                                  batches signed by that key, read that account and the
 *                                  transactions it sent or received
 *   txe:account/*                  all of that for every account and trusted signer, and
 *                                  StreamCommits (which carries every account's transactions)
 *   neither                        nothing: a submitter certificate must name its accounts
 *
 * A bearer token (config authTokens) names its accounts the same way in config
 * ({"token": "...", "accounts": [...]}); a token given alone acts for every account. So does
 * every caller of an engine without caller authentication (loopback, dev).
 *
 * Cost: BATCH_SIGNED, one set lookup a batch; PER_TX, one lookup a transaction (~0.1 µs: a 32-byte
 * latin1 key) for a scoped caller, nothing for `*`. A certificate's or token's scope is parsed once
 * and kept by its fingerprint or token (SCOPES_CACHED_MAX).
 */

import type { PeerCertificate } from 'node:tls';
import { KeySet } from '../../core/checks.js';
import { isPublicKeyHex } from '../../core/keys.js';
import { ALL_ACCOUNTS } from '../../config.js';
import { OFFSET_SENDER, PUBLIC_KEY_BYTES, SIGNED_RECORD_BYTES } from '../../core/record.js';
import type { CallerProof } from './authorize.js';

export const ACCOUNT_URI_PREFIX = 'txe:account/';
export { ALL_ACCOUNTS };
const SCOPES_CACHED_MAX = 1_024;

export class AccountScope {
  static readonly ALL = new AccountScope(true, []);

  private readonly keys: KeySet;

  private constructor(readonly all: boolean, keys: Uint8Array[]) {
    this.keys = new KeySet(keys);
  }

  /** The scope a client certificate names in its SAN URIs; malformed entries name nothing. */
  static ofCertificate(cert: PeerCertificate | undefined): AccountScope {
    const values: string[] = [];
    for (const entry of (cert?.subjectaltname ?? '').split(',')) {
      const trimmed = entry.trim();
      if (trimmed.startsWith(`URI:${ACCOUNT_URI_PREFIX}`)) values.push(trimmed.slice(`URI:${ACCOUNT_URI_PREFIX}`.length));
    }
    return AccountScope.ofKeys(values);
  }

  /** The scope of a list of hex keys, where * is every account; malformed entries name nothing. */
  static ofKeys(values: string[]): AccountScope {
    if (values.includes(ALL_ACCOUNTS)) return AccountScope.ALL;
    return new AccountScope(false, values.filter(isPublicKeyHex).map((v) => Buffer.from(v, 'hex')));
  }

  get size(): number { return this.keys.size; }

  /** Whether the 32-byte key at `bytes[offset..]` is one of this caller's. */
  has(bytes: Uint8Array, offset = 0): boolean {
    return this.all || this.keys.has(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength), offset);
  }

  /** Why this caller may not submit the batch, or null. Runs before anything is admitted. */
  submitDenial(mode: 'per-tx' | 'batch-signed', txs: Uint8Array, signer: Uint8Array | null): string | null {
    if (this.all) return null;
    if (mode === 'batch-signed') {
      if (signer !== null && signer.length === PUBLIC_KEY_BYTES && this.has(signer)) return null;
      return `the batch signer ${hex(signer)} is not one of this caller's keys (${this.describe()})`;
    }
    // PER_TX records are signed: each a body and its signature (SIGNED_RECORD_BYTES).
    const count = Math.floor(txs.length / SIGNED_RECORD_BYTES);
    for (let i = 0; i < count; i++) {
      const at = i * SIGNED_RECORD_BYTES + OFFSET_SENDER;
      if (!this.has(txs, at)) return `transaction ${i}: sender ${hex(txs.subarray(at, at + PUBLIC_KEY_BYTES))} is not one of this caller's accounts (${this.describe()}); nothing of the batch was admitted`;
    }
    return null;
  }

  /** Why this caller may not read `account`, or null. */
  readDenial(account: Uint8Array): string | null {
    return this.has(account) ? null : `account ${hex(account)} is not one of this caller's (${this.describe()})`;
  }

  /** Why this caller may not read a transaction (one neither from nor to its accounts), or null. */
  transactionDenial(t: { sender?: Uint8Array; recipient?: Uint8Array }): string | null {
    if (this.all || (t.sender !== undefined && this.has(t.sender)) || (t.recipient !== undefined && this.has(t.recipient))) return null;
    return `the transaction is neither from nor to an account of this caller (${this.describe()})`;
  }

  describe(): string {
    if (this.all) return 'all accounts';
    if (this.keys.size === 0) return `its certificate or token names no accounts: add SAN URIs ${ACCOUNT_URI_PREFIX}<key hex>, or ${ACCOUNT_URI_PREFIX}${ALL_ACCOUNTS}`;
    return `its certificate or token names ${this.keys.size} account${this.keys.size === 1 ? '' : 's'}`;
  }
}

/** The scope of each call's caller, by how callers prove who they are. */
export class CallerScopes {
  private readonly cached = new Map<string, AccountScope>();

  constructor(private readonly proof: CallerProof) {}

  of(call: { getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null | undefined; metadata?: { get(key: string): unknown[] } }): AccountScope {
    if (this.proof.kind === 'none') return AccountScope.ALL;
    if (this.proof.kind === 'token') {
      const tokens = this.proof.tokens;
      const header = call.metadata?.get('authorization')[0];
      const authorization = typeof header === 'string' ? header : undefined;
      // Only callers the interceptor let through get here, so only configured tokens are kept.
      return this.cachedAs(`token ${authorization}`, () => AccountScope.ofKeys(tokens.accountsOf(authorization)));
    }
    const cert = call.getAuthContext()?.sslPeerCertificate;
    const fingerprint = cert?.fingerprint256;
    if (!fingerprint) return AccountScope.ofCertificate(cert);
    return this.cachedAs(fingerprint, () => AccountScope.ofCertificate(cert));
  }

  private cachedAs(key: string, make: () => AccountScope): AccountScope {
    let scope = this.cached.get(key);
    if (scope === undefined) {
      if (this.cached.size >= SCOPES_CACHED_MAX) this.cached.delete(this.cached.keys().next().value!);
      scope = make();
      this.cached.set(key, scope);
    }
    return scope;
  }
}

function hex(bytes: Uint8Array | null): string {
  return bytes === null || bytes.length === 0 ? '(none)' : Buffer.from(bytes).toString('hex');
}
