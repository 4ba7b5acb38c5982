// Rotating the batch signer of a running `txe serve` without a restart (issue 12): a new keys file
// and a SIGHUP make the new signer trusted at once, the old one until trustedSignerGraceMs has
// passed, then it is answered unauthorized_signer. The issuer in the keys file is left as it was.
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
});
