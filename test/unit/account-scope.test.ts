// Account scopes of submitters (engine/services/security/scope.ts): parsed from a certificate's
// SAN URIs, checked per transaction for PER_TX and per signer for BATCH_SIGNED.
import { describe, expect, it } from 'vitest';
import type { PeerCertificate } from 'node:tls';
import { AccountScope, CallerScopes } from '../../engine/services/security/scope.js';
import { packBodies } from '../../engine/core/batch.js';
import { perTxBatch, transfer, user } from '../support/fixtures.js';

const alice = user('alice');
const bob = user('bob');
const cert = (san: string) => ({ subjectaltname: san, fingerprint256: san }) as unknown as PeerCertificate;
const hex = (k: Buffer) => k.toString('hex');

describe('AccountScope', () => {
  it('reads txe:account URIs, ignores malformed ones, and takes * as every account', () => {
    const scope = AccountScope.ofCertificate(cert(`URI:txe:role/submitter, URI:txe:account/${hex(alice.publicKey)}, URI:txe:account/zz, URI:txe:account/${hex(bob.publicKey).slice(2)}`));
    expect(scope.all).toBe(false);
    expect(scope.size).toBe(1);
    expect(scope.has(alice.publicKey)).toBe(true);
    expect(scope.has(bob.publicKey)).toBe(false);
    expect(AccountScope.ofCertificate(cert('URI:txe:account/*')).all).toBe(true);
    expect(AccountScope.ofCertificate(cert('URI:txe:role/submitter')).describe()).toMatch(/names no accounts/);
  });

  it('checks every PER_TX sender and the BATCH_SIGNED signer', () => {
    const scope = AccountScope.ofCertificate(cert(`URI:txe:account/${hex(alice.publicKey)}`));
    const own = perTxBatch([transfer(alice, bob.publicKey, 1n, 1n), transfer(alice, bob.publicKey, 2n, 1n)], [alice]);
    expect(scope.submitDenial('per-tx', own.txs, null)).toBeNull();
    const third = perTxBatch([transfer(alice, bob.publicKey, 1n, 1n), transfer(alice, bob.publicKey, 2n, 1n), transfer(bob, alice.publicKey, 1n, 1n)], [alice, bob]);
    expect(scope.submitDenial('per-tx', third.txs, null)).toMatch(new RegExp(`^transaction 2: sender ${hex(bob.publicKey)} `));
    const bodies = packBodies([transfer(bob, alice.publicKey, 1n, 1n)]);
    expect(scope.submitDenial('batch-signed', bodies, alice.publicKey)).toBeNull(); // the signer is hers: any sender
    expect(scope.submitDenial('batch-signed', bodies, bob.publicKey)).toMatch(/batch signer .* is not one of this caller's keys/);
    expect(scope.submitDenial('batch-signed', bodies, null)).toMatch(/batch signer \(none\)/);
    expect(AccountScope.ALL.submitDenial('per-tx', third.txs, null)).toBeNull();
  });

  it('gives every account to callers without certificates (tokens, loopback) and keeps scopes by fingerprint', () => {
    const call = (san: string) => ({ getAuthContext: () => ({ sslPeerCertificate: cert(san) }) });
    expect(new CallerScopes({ kind: 'none' }).of(call('URI:txe:role/submitter')).all).toBe(true);
    const scopes = new CallerScopes({ kind: 'certificate' });
    const first = scopes.of(call(`URI:txe:account/${hex(alice.publicKey)}`));
    expect(scopes.of(call(`URI:txe:account/${hex(alice.publicKey)}`))).toBe(first);
    expect(scopes.of(call('URI:txe:role/submitter')).size).toBe(0);
  });
});
