// Proves the Standard Webhooks signing scheme: signatures match an independently computed HMAC,
// verification round-trips, and tampering, stale or future timestamps, missing headers and wrong
// secrets are rejected, while rotation headers and junk entries next to a good one still verify.
import { createHmac } from 'node:crypto';
import { createServer, request, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import {
  WEBHOOK_SECRET_BYTES,
  WEBHOOK_SECRET_PREFIX,
  WebhookVerificationError,
  generateWebhookSecret,
  signatureFor,
  verifyWebhook,
  webhookHeaders,
} from '../../engine/services/webhooks/signature.js';

const KEY = Buffer.from('00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff', 'hex');
const SECRET = WEBHOOK_SECRET_PREFIX + KEY.toString('base64');
const ID = 'msg_2KWPBgLlAfxdpx2AI54pPJ85f4W';
const TS = 1_700_000_000;
const BODY = '{"type":"transfer.committed","data":{"amount":"42","memo":"héllo"}}';

/** The verification error `fn` throws (fails the test if it throws nothing or something else). */
function rejection(fn: () => unknown): WebhookVerificationError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(WebhookVerificationError);
    return err as WebhookVerificationError;
  }
  throw new Error('expected a WebhookVerificationError, but verification passed');
}

describe('webhook secrets', () => {
  it('generates whsec_ secrets of 32 random bytes', () => {
    const a = generateWebhookSecret();
    const b = generateWebhookSecret();
    expect(a.startsWith('whsec_')).toBe(true);
    expect(Buffer.from(a.slice(6), 'base64').length).toBe(WEBHOOK_SECRET_BYTES);
    expect(WEBHOOK_SECRET_BYTES).toBe(32);
    expect(a).not.toBe(b);
  });

  it('rejects a secret without the prefix or with an empty key, clearly', () => {
    expect(() => signatureFor(KEY.toString('base64'), ID, TS, BODY)).toThrow(/whsec_/);
    expect(() => signatureFor('whsec_', ID, TS, BODY)).toThrow(/empty/);
    expect(() => signatureFor('whsec_not base64!', ID, TS, BODY)).toThrow(/base64/);
    const headers = webhookHeaders([SECRET], ID, TS, BODY);
    expect(() => verifyWebhook('whsec_', headers, BODY, { nowS: TS })).toThrow(TypeError);
    expect(() => verifyWebhook(KEY.toString('base64'), headers, BODY, { nowS: TS })).toThrow(/whsec_/);
  });
});

describe('signing', () => {
  it('equals an independently computed HMAC-SHA256 over id.timestamp.body', () => {
    const expected = createHmac('sha256', KEY).update(Buffer.from(`${ID}.${TS}.${BODY}`, 'utf8')).digest('base64');
    expect(signatureFor(SECRET, ID, TS, BODY)).toBe(`v1,${expected}`);
    expect(signatureFor(SECRET, ID, TS, Buffer.from(BODY, 'utf8'))).toBe(`v1,${expected}`);
  });

  it('matches the published Standard Webhooks test vector', () => {
    // From the standard-webhooks reference libraries' tests.
    const sig = signatureFor('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}');
    expect(sig).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('writes the three headers with one signature per secret', () => {
    const other = generateWebhookSecret();
    const headers = webhookHeaders([SECRET, other], ID, TS, BODY);
    expect(headers).toEqual({
      'webhook-id': ID,
      'webhook-timestamp': String(TS),
      'webhook-signature': `${signatureFor(SECRET, ID, TS, BODY)} ${signatureFor(other, ID, TS, BODY)}`,
    });
  });

  it('refuses a non-integer timestamp', () => {
    expect(() => signatureFor(SECRET, ID, TS + 0.5, BODY)).toThrow(/integer/);
  });
});

describe('verifyWebhook', () => {
  const headers = webhookHeaders([SECRET], ID, TS, BODY);

  it('round-trips a string or Buffer body and returns the id and timestamp', () => {
    expect(verifyWebhook(SECRET, headers, BODY, { nowS: TS })).toEqual({ id: ID, timestampS: TS });
    expect(verifyWebhook([SECRET], headers, Buffer.from(BODY), { nowS: TS })).toEqual({ id: ID, timestampS: TS });
    const fresh = generateWebhookSecret();
    const now = Math.floor(Date.now() / 1000);
    expect(verifyWebhook(fresh, webhookHeaders([fresh], 'msg_now', now, BODY), BODY)).toEqual({ id: 'msg_now', timestampS: now });
  });

  it('rejects a tampered body, id or timestamp, and a wrong secret', () => {
    expect(rejection(() => verifyWebhook(SECRET, headers, BODY.replace('42', '43'), { nowS: TS })).code).toBe('signature');
    expect(rejection(() => verifyWebhook(SECRET, headers, BODY + ' ', { nowS: TS })).code).toBe('signature');
    expect(rejection(() => verifyWebhook(SECRET, { ...headers, 'webhook-id': ID + 'x' }, BODY, { nowS: TS })).code).toBe('signature');
    expect(rejection(() => verifyWebhook(SECRET, { ...headers, 'webhook-timestamp': String(TS + 1) }, BODY, { nowS: TS })).code).toBe('signature');
    expect(rejection(() => verifyWebhook(generateWebhookSecret(), headers, BODY, { nowS: TS })).message).toMatch(/no v1 signature .* matches/);
  });

  it('does not verify re-serialised JSON', () => {
    const reserialised = JSON.stringify(JSON.parse(BODY), null, 1);
    expect(() => verifyWebhook(SECRET, headers, reserialised, { nowS: TS })).toThrow(WebhookVerificationError);
  });

  it('rejects old and future timestamps beyond the tolerance, saying which and by how much', () => {
    const old = rejection(() => verifyWebhook(SECRET, headers, BODY, { nowS: TS + 301 }));
    expect(old.code).toBe('timestamp-out-of-range');
    expect(old.message).toMatch(/too old: 301 s in the past, 1 s beyond the 300 s tolerance/);
    const future = rejection(() => verifyWebhook(SECRET, headers, BODY, { nowS: TS - 400 }));
    expect(future.message).toMatch(/too new: 400 s in the future, 100 s beyond the 300 s tolerance/);
    const tight = rejection(() => verifyWebhook(SECRET, headers, BODY, { nowS: TS + 11, toleranceS: 10 }));
    expect(tight.message).toMatch(/too old: 11 s in the past, 1 s beyond the 10 s tolerance/);
  });

  it('accepts timestamps within the tolerance, at either edge', () => {
    expect(verifyWebhook(SECRET, headers, BODY, { nowS: TS + 300 }).id).toBe(ID);
    expect(verifyWebhook(SECRET, headers, BODY, { nowS: TS - 300 }).id).toBe(ID);
    expect(verifyWebhook(SECRET, headers, BODY, { nowS: TS + 1000, toleranceS: 1000 }).id).toBe(ID);
  });

  it('rejects a timestamp that is not an integer', () => {
    for (const bad of ['1700000000.5', 'abc', '1e9', '0x10', '']) {
      const err = rejection(() => verifyWebhook(SECRET, { ...headers, 'webhook-timestamp': bad }, BODY, { nowS: TS }));
      expect(err.message).toMatch(/webhook-timestamp/);
    }
  });

  it('verifies a rotation header with either secret alone, or both', () => {
    const next = generateWebhookSecret();
    const rotating = webhookHeaders([SECRET, next], ID, TS, BODY);
    expect(verifyWebhook(SECRET, rotating, BODY, { nowS: TS }).id).toBe(ID);
    expect(verifyWebhook(next, rotating, BODY, { nowS: TS }).id).toBe(ID);
    expect(verifyWebhook([generateWebhookSecret(), next], rotating, BODY, { nowS: TS }).id).toBe(ID);
    expect(() => verifyWebhook(generateWebhookSecret(), rotating, BODY, { nowS: TS })).toThrow(WebhookVerificationError);
  });

  it('skips wrong-length, garbage and other-version entries without throwing when another matches', () => {
    const good = signatureFor(SECRET, ID, TS, BODY);
    const junk = [
      'v1,AAAA',                                   // valid base64, wrong length
      'v1,' + Buffer.alloc(64, 1).toString('base64'), // too long
      'v1,!!!not-base64!!!',
      'v1,',
      'v1',
      'garbage',
      'v2,' + good.slice(3),                       // right bytes, other version: ignored
      'v1a,' + good.slice(3),
    ];
    const header = [...junk, good].join(' ');
    expect(verifyWebhook(SECRET, { ...headers, 'webhook-signature': header }, BODY, { nowS: TS }).id).toBe(ID);
    // The junk alone is a verification error, not a crash.
    const err = rejection(() => verifyWebhook(SECRET, { ...headers, 'webhook-signature': junk.join(' ') }, BODY, { nowS: TS }));
    expect(err.code).toBe('signature');
    // A right signature under another version prefix alone does not verify.
    expect(() => verifyWebhook(SECRET, { ...headers, 'webhook-signature': 'v2,' + good.slice(3) }, BODY, { nowS: TS })).toThrow(WebhookVerificationError);
  });

  it('names the missing header', () => {
    for (const name of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
      const partial: Record<string, string | undefined> = { ...headers };
      delete partial[name];
      const err = rejection(() => verifyWebhook(SECRET, partial, BODY, { nowS: TS }));
      expect(err.code).toBe('missing-header');
      expect(err.message).toBe(`missing ${name} header`);
      const emptied = rejection(() => verifyWebhook(SECRET, { ...headers, [name]: undefined }, BODY, { nowS: TS }));
      expect(emptied.message).toBe(`missing ${name} header`);
    }
  });

  it('finds headers in any case', () => {
    const upper = { 'WEBHOOK-ID': ID, 'Webhook-Timestamp': String(TS), 'WEBHOOK-SIGNATURE': headers['webhook-signature'] };
    expect(verifyWebhook(SECRET, upper, BODY, { nowS: TS })).toEqual({ id: ID, timestampS: TS });
  });

  it('accepts signatures split across an array header value', () => {
    const next = generateWebhookSecret();
    const split = { ...headers, 'webhook-signature': ['v1,AAAA', signatureFor(next, ID, TS, BODY)] };
    expect(verifyWebhook(next, split, BODY, { nowS: TS }).id).toBe(ID);
  });

  it('verifies a real node:http delivery from the raw body', async () => {
    const secret = generateWebhookSecret();
    const body = Buffer.from(BODY, 'utf8');
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          const { id } = verifyWebhook(secret, req.headers, Buffer.concat(chunks));
          res.writeHead(200).end(id);
        } catch (err) {
          if (!(err instanceof WebhookVerificationError)) throw err;
          res.writeHead(err.code === 'signature' || err.code === 'timestamp-out-of-range' ? 401 : 400).end(err.message);
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const post = (headers: IncomingHttpHeaders, payload: Buffer) =>
      new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers }, (res) => {
          const parts: Buffer[] = [];
          res.on('data', (c: Buffer) => parts.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') }));
        });
        req.on('error', reject);
        req.end(payload);
      });
    try {
      const now = Math.floor(Date.now() / 1000);
      const signed: Record<string, string> = { 'Content-Type': 'application/json', ...webhookHeaders([secret], ID, now, body) };
      expect(await post(signed, body)).toEqual({ status: 200, text: ID });
      expect((await post(signed, Buffer.from(BODY.replace('42', '43')))).status).toBe(401);
      const noId = { ...signed };
      delete noId['webhook-id'];
      expect(await post(noId, body)).toEqual({ status: 400, text: 'missing webhook-id header' });
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});
