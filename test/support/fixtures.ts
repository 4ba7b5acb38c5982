/* Keys and batch builders shared by the tests. */

import { keypairFromLabel, type Keypair } from '../../engine/core/keys.js';
import { packBodies, packSigned, signBatch } from '../../engine/core/batch.js';
import { KIND_MINT, KIND_TRANSFER, type RecordFields } from '../../engine/core/record.js';
import { defaultConfig, type EngineConfig } from '../../engine/config.js';
import type { ApprovalPolicy } from '../../engine/core/policy.js';

export const issuer = keypairFromLabel('test-issuer');
export const signer = keypairFromLabel('test-signer');
export const user = (name: string): Keypair => keypairFromLabel(`test-user-${name}`);

/** The key that seals the tests' webhook secrets at rest (a fixed one: tests read rows back). */
export const WEBHOOK_SECRETS_KEY = '5e'.repeat(32);

export function testConfig(overrides: Partial<EngineConfig> = {}): EngineConfig {
  return {
    ...defaultConfig(),
    grpcPort: 0,
    metricsPort: 0,
    workers: 2,
    ringSlotsMax: 1 << 14,
    historyEntriesMax: 1 << 12,
    accountsMax: 1 << 12,
    issuers: [issuer.publicKey.toString('hex')],
    trustedSigners: [signer.publicKey.toString('hex')],
    invariantCheckEveryBlocks: 1,
    webhookSecretsKey: WEBHOOK_SECRETS_KEY,
    shutdownGraceMs: 2000,
    ...overrides,
  };
}

export function mint(recipient: Buffer, nonce: bigint, amount: bigint): RecordFields {
  return { kind: KIND_MINT, sender: issuer.publicKey, recipient, nonce, amount, timestampMs: 1n };
}

export function transfer(from: Keypair | Buffer, to: Buffer, nonce: bigint, amount: bigint): RecordFields {
  const sender = Buffer.isBuffer(from) ? from : from.publicKey;
  return { kind: KIND_TRANSFER, sender, recipient: to, nonce, amount, timestampMs: 1n };
}

/** A batch-signed submission by the trusted test signer. */
export function signedBatch(records: RecordFields[], by: Keypair = signer) {
  const txs = packBodies(records);
  return { auth: 'batch-signed' as const, txs, signer: by.publicKey, signature: signBatch(txs, by.privateKey) };
}

/** A per-tx submission, each record signed by the keypair whose public key is its sender. */
export function perTxBatch(records: RecordFields[], keys: Keypair[]) {
  const byKey = new Map(keys.map((k) => [k.publicKey.toString('hex'), k.privateKey]));
  return { auth: 'per-tx' as const, txs: packSigned(records, (r) => byKey.get(Buffer.from(r.sender).toString('hex'))!) };
}

export const approver = (name: string): Keypair => keypairFromLabel(`test-approver-${name}`);

/** An approval policy for every sender: transfers >= threshold wait for `required` of the approvers. */
export function globalPolicy(threshold: bigint, o: { approvers?: Keypair[]; required?: number; timeoutMs?: number; account?: Buffer } = {}): ApprovalPolicy {
  const approvers = o.approvers ?? [approver('a'), approver('b'), approver('c')];
  return {
    name: o.account ? `account-${o.account.toString('hex').slice(0, 8)}` : 'default', account: o.account ? o.account.toString('hex') : null,
    thresholdAmount: threshold, approvers: approvers.map((k) => k.publicKey.toString('hex')), required: o.required ?? 2, timeoutMs: o.timeoutMs ?? 3_600_000,
  };
}
