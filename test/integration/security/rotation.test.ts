// Rotating the batch signer and the issuer of a running `txe serve` without a restart (issue 12):
// a new keys file and a SIGHUP make the new key valid at once, the old one until its grace period
// (trustedSignerGraceMs, issuerGraceMs) has passed; then it is answered unauthorized_signer or
// not_issuer. Each rotation is counted in txe_key_rotations_total{key}.
import crypto from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TxeClient } from '../../../engine/client.js';
import { writeKeysFile } from '../../../engine/keys-file.js';
import { keypairFromLabel } from '../../../engine/core/keys.js';
import { Result } from '../../../engine/core/result.js';
import { startEngineProcess } from '../../../bench/engine-process.js';
import { WEBHOOK_SECRETS_KEY, issuer, mint, signedBatch } from '../../support/fixtures.js';
import { until } from '../../support/async.js';

const GRACE_MS = 2_000;
const dir = mkdtempSync(path.join(os.tmpdir(), 'txe-rotation-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('batch signer rotation', () => {
  it('trusts the new signer after SIGHUP, the old one for the grace period, then refuses it', async () => {
    const oldSigner = keypairFromLabel('rotation-old');
    const newSigner = keypairFromLabel('rotation-new');
    const keys = path.join(dir, 'keys.json');
    const config = path.join(dir, 'txe.json');
    writeKeysFile(keys, { issuer, signer: oldSigner, secretsKey: WEBHOOK_SECRETS_KEY });
    writeFileSync(config, JSON.stringify({ trustedSignerGraceMs: GRACE_MS }));
    const engine = await startEngineProcess(['--keys', keys, '--config', config]);
    const client = new TxeClient(engine.address);
    let nonce = 0n;
    const submit = async (by: typeof oldSigner) => {
      const r = await client.submitBatch(signedBatch([mint(crypto.randomBytes(32), nonce + 1n, 1n)], by));
      if (r.results[0] === Result.committed) nonce++;
      return r.results[0];
    };
    try {
      expect(await submit(oldSigner)).toBe(Result.committed);
      expect(await submit(newSigner)).toBe(Result.unauthorized_signer);

      writeKeysFile(keys, { issuer, signer: newSigner, secretsKey: WEBHOOK_SECRETS_KEY });
      engine.child.kill('SIGHUP');
      const rotatedAt = Date.now();
      await until('the new signer is trusted', async () => ((await submit(newSigner)) === Result.committed ? true : null), 5_000);
      if (Date.now() - rotatedAt < GRACE_MS - 500) expect(await submit(oldSigner)).toBe(Result.committed); // still in its grace period
      await until('the old signer is retired', async () => ((await submit(oldSigner)) === Result.unauthorized_signer ? true : null), GRACE_MS + 5_000);
      expect(Date.now() - rotatedAt).toBeGreaterThanOrEqual(GRACE_MS - 100);
      expect(await submit(newSigner)).toBe(Result.committed);
    } finally {
      client.close();
      expect(await engine.stop()).toBe(0);
    }
  }, 60_000);

  it('lets a new issuer mint after SIGHUP, the old one for the grace period, then answers it not_issuer', async () => {
    const oldIssuer = keypairFromLabel('rotation-issuer-old');
    const newIssuer = keypairFromLabel('rotation-issuer-new');
    const batchSigner = keypairFromLabel('rotation-issuer-signer');
    const keys = path.join(dir, 'issuer-keys.json');
    const config = path.join(dir, 'issuer-txe.json');
    writeKeysFile(keys, { issuer: oldIssuer, signer: batchSigner, secretsKey: WEBHOOK_SECRETS_KEY });
    writeFileSync(config, JSON.stringify({ issuerGraceMs: GRACE_MS }));
    const engine = await startEngineProcess(['--keys', keys, '--config', config]);
    const client = new TxeClient(engine.address);
    const nonces = new Map<typeof oldIssuer, bigint>([[oldIssuer, 0n], [newIssuer, 0n]]);
    const mintBy = async (by: typeof oldIssuer) => {
      const record = { ...mint(crypto.randomBytes(32), nonces.get(by)! + 1n, 1n), sender: by.publicKey };
      const r = await client.submitBatch(signedBatch([record], batchSigner));
      if (r.results[0] === Result.committed) nonces.set(by, nonces.get(by)! + 1n);
      return r.results[0];
    };
    try {
      expect(await mintBy(oldIssuer)).toBe(Result.committed);
      expect(await mintBy(newIssuer)).toBe(Result.not_issuer);

      writeKeysFile(keys, { issuer: newIssuer, signer: batchSigner, secretsKey: WEBHOOK_SECRETS_KEY });
      engine.child.kill('SIGHUP');
      const rotatedAt = Date.now();
      await until('the new issuer may mint', async () => ((await mintBy(newIssuer)) === Result.committed ? true : null), 5_000);
      if (Date.now() - rotatedAt < GRACE_MS - 500) expect(await mintBy(oldIssuer)).toBe(Result.committed); // still in its grace period
      await until('the old issuer is retired', async () => ((await mintBy(oldIssuer)) === Result.not_issuer ? true : null), GRACE_MS + 5_000);
      expect(Date.now() - rotatedAt).toBeGreaterThanOrEqual(GRACE_MS - 100);
      expect(await mintBy(newIssuer)).toBe(Result.committed);
      // Both issuers' nonces are exactly their mints committed, and the rotation was counted.
      expect(BigInt(String((await client.getAccount(newIssuer.publicKey)).nonce))).toBe(nonces.get(newIssuer));
      expect(BigInt(String((await client.getAccount(oldIssuer.publicKey)).nonce))).toBe(nonces.get(oldIssuer));
      const metrics = await (await fetch(`http://${engine.metricsAddress}/metrics`)).text();
      expect(metrics).toMatch(/txe_key_rotations_total\{key="issuer"\} 1/);
    } finally {
      client.close();
      expect(await engine.stop()).toBe(0);
    }
  }, 60_000);
});
