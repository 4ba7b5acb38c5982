/*
 * Webhook signing and verification, Standard Webhooks scheme (https://www.standardwebhooks.com).
 *
 * A delivery carries three headers: `webhook-id` (unique per message; receivers dedupe on it),
 * `webhook-timestamp` (integer unix seconds when it was sent) and `webhook-signature`. The signed
 * content is `${id}.${timestamp}.${body}`; a signature is HMAC-SHA256 of it under the secret key,
 * base64-encoded and written `v1,<base64>`. The header may hold several space-separated
 * signatures: while a secret is rotated the sender signs with the old and the new one, and a
 * receiver holding either accepts. Entries with another version prefix are ignored. A secret is
 * written `whsec_<base64 of the raw key bytes>`; the HMAC key is those decoded bytes.
 *
 * The body must be the raw bytes exactly as received. Parsing the JSON and serialising it again
 * (different key order, spacing or escapes) changes the bytes, and the signature will not verify.
 * The timestamp check (default ±300 s) bounds replays; dedupe on `webhook-id` within that window.
 *
 * Receiver with node:http:
 *
 *   import { createServer } from 'node:http';
 *   import { verifyWebhook, WebhookVerificationError } from './engine/services/webhooks/signature.js';
 *
 *   const secret = process.env.WEBHOOK_SECRET!;              // 'whsec_...'
 *   createServer((req, res) => {
 *     const chunks: Buffer[] = [];
 *     req.on('data', (c: Buffer) => chunks.push(c));
 *     req.on('end', () => {
 *       const body = Buffer.concat(chunks);                  // raw bytes: verify before parsing
 *       try {
 *         const { id } = verifyWebhook(secret, req.headers, body);
 *         const event = JSON.parse(body.toString('utf8'));   // now trusted; dedupe on id
 *         res.writeHead(204).end();
 *       } catch (err) {
 *         if (!(err instanceof WebhookVerificationError)) throw err;   // e.g. a malformed secret
 *         res.writeHead(err.code === 'signature' || err.code === 'timestamp-out-of-range' ? 401 : 400)
 *           .end(err.message);
 *       }
 *     });
 *   }).listen(8080);
 */

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const WEBHOOK_SECRET_PREFIX = 'whsec_';
export const WEBHOOK_SECRET_BYTES = 32;

const DEFAULT_TOLERANCE_S = 300;
const SIGNATURE_VERSION = 'v1';
const HMAC_BYTES = 32;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Why a delivery was rejected: `missing-header` and `bad-timestamp` are malformed requests (400);
 * `timestamp-out-of-range` and `signature` mean the delivery is stale or not authentic (401).
 */
export type WebhookVerificationErrorCode = 'missing-header' | 'bad-timestamp' | 'timestamp-out-of-range' | 'signature';

/** A delivery that does not verify. A malformed secret is a configuration error and throws a TypeError instead. */
export class WebhookVerificationError extends Error {
  readonly code: WebhookVerificationErrorCode;
  constructor(code: WebhookVerificationErrorCode, message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
    this.code = code;
  }
}

/** A fresh secret: WEBHOOK_SECRET_BYTES random bytes, written `whsec_<base64>`. */
export function generateWebhookSecret(): string {
  return WEBHOOK_SECRET_PREFIX + randomBytes(WEBHOOK_SECRET_BYTES).toString('base64');
}

/** The HMAC key inside a `whsec_` secret; throws TypeError for a malformed or empty one. */
function secretKey(secret: string): Buffer {
  if (typeof secret !== 'string' || !secret.startsWith(WEBHOOK_SECRET_PREFIX)) {
    throw new TypeError(`webhook secret must start with '${WEBHOOK_SECRET_PREFIX}' followed by the base64 key`);
  }
  const encoded = secret.slice(WEBHOOK_SECRET_PREFIX.length);
  if (!BASE64.test(encoded)) throw new TypeError(`webhook secret: the part after '${WEBHOOK_SECRET_PREFIX}' is not base64`);
  const key = Buffer.from(encoded, 'base64');
  if (key.length === 0) throw new TypeError(`webhook secret: the key after '${WEBHOOK_SECRET_PREFIX}' is empty`);
  return key;
}

function checkTimestamp(timestampS: number): void {
  if (!Number.isSafeInteger(timestampS)) throw new TypeError(`webhook timestamp must be an integer number of unix seconds, got ${timestampS}`);
}

function hmac(key: Buffer, id: string, timestampS: number, body: string | Buffer): Buffer {
  if (typeof body !== 'string' && !Buffer.isBuffer(body)) {
    throw new TypeError('webhook body must be the raw body as a string or Buffer, not a parsed object');
  }
  return createHmac('sha256', key).update(`${id}.${timestampS}.`, 'utf8').update(body).digest();
}

/** The signature of one delivery under one secret: `v1,<base64 HMAC-SHA256 of id.timestamp.body>`. */
export function signatureFor(secret: string, id: string, timestampS: number, body: string | Buffer): string {
  checkTimestamp(timestampS);
  return `${SIGNATURE_VERSION},${hmac(secretKey(secret), id, timestampS, body).toString('base64')}`;
}

/** The three headers for a delivery, signed with every secret given (more than one while rotating). */
export function webhookHeaders(secrets: string[], id: string, timestampS: number, body: string | Buffer): Record<string, string> {
  if (secrets.length === 0) throw new TypeError('webhookHeaders needs at least one secret');
  if (id.length === 0) throw new TypeError('webhook id must not be empty');
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestampS),
    'webhook-signature': secrets.map((s) => signatureFor(s, id, timestampS, body)).join(' '),
  };
}

/** Every value of `name` in `headers`, any case; an array value contributes each element. */
function headerValues(headers: Record<string, string | string[] | undefined>, name: string): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name || value === undefined) continue;
    for (const v of Array.isArray(value) ? value : [value]) if (v.trim() !== '') out.push(v.trim());
  }
  return out;
}

function singleHeader(headers: Record<string, string | string[] | undefined>, name: string): string {
  const values = [...new Set(headerValues(headers, name))];
  if (values.length === 0) throw new WebhookVerificationError('missing-header', `missing ${name} header`);
  if (values.length > 1) throw new WebhookVerificationError('missing-header', `${name} header given more than once with different values`);
  return values[0];
}

/**
 * Checks a delivery: the headers are present, the timestamp is within `toleranceS` (default 300) of
 * `nowS` (default the clock), and some `v1` signature in `webhook-signature` matches some secret.
 * `body` must be the raw request body. Returns the message id (for dedupe) and the timestamp;
 * throws WebhookVerificationError otherwise, or TypeError for a malformed secret or argument.
 */
export function verifyWebhook(
  secret: string | string[],
  headers: Record<string, string | string[] | undefined>,
  body: string | Buffer,
  options: { toleranceS?: number; nowS?: number } = {},
): { id: string; timestampS: number } {
  const secrets = Array.isArray(secret) ? secret : [secret];
  if (secrets.length === 0) throw new TypeError('verifyWebhook needs at least one secret');
  const keys = secrets.map(secretKey);
  const toleranceS = options.toleranceS ?? DEFAULT_TOLERANCE_S;
  if (!Number.isFinite(toleranceS) || toleranceS < 0) throw new TypeError(`toleranceS must be a non-negative number, got ${toleranceS}`);
  const nowS = options.nowS ?? Math.floor(Date.now() / 1000);

  const id = singleHeader(headers, 'webhook-id');
  const timestampText = singleHeader(headers, 'webhook-timestamp');
  const signatureText = headerValues(headers, 'webhook-signature').join(' ');
  if (signatureText === '') throw new WebhookVerificationError('missing-header', 'missing webhook-signature header');

  const timestampS = /^-?\d+$/.test(timestampText) ? Number(timestampText) : NaN;
  if (!Number.isSafeInteger(timestampS)) {
    throw new WebhookVerificationError('bad-timestamp', `webhook-timestamp is not an integer number of unix seconds: '${timestampText}'`);
  }
  const ageS = nowS - timestampS;
  if (ageS > toleranceS) {
    throw new WebhookVerificationError('timestamp-out-of-range', `webhook-timestamp is too old: ${ageS} s in the past, ${ageS - toleranceS} s beyond the ${toleranceS} s tolerance`);
  }
  if (-ageS > toleranceS) {
    throw new WebhookVerificationError('timestamp-out-of-range', `webhook-timestamp is too new: ${-ageS} s in the future, ${-ageS - toleranceS} s beyond the ${toleranceS} s tolerance`);
  }

  // Candidate v1 signatures: canonical base64 of exactly HMAC_BYTES bytes. Anything else is skipped.
  const candidates: Buffer[] = [];
  for (const entry of signatureText.split(/\s+/)) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== SIGNATURE_VERSION) continue;
    const encoded = entry.slice(comma + 1);
    if (!BASE64.test(encoded)) continue;
    const bytes = Buffer.from(encoded, 'base64');
    if (bytes.length !== HMAC_BYTES || bytes.toString('base64') !== encoded) continue;
    candidates.push(bytes);
  }

  for (const key of keys) {
    const expected = hmac(key, id, timestampS, body);
    for (const candidate of candidates) {
      if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) return { id, timestampS };
    }
  }
  throw new WebhookVerificationError(
    'signature',
    candidates.length === 0
      ? 'webhook-signature holds no well-formed v1 signature'
      : `no v1 signature in webhook-signature matches the ${keys.length === 1 ? 'secret' : `${keys.length} secrets`}`,
  );
}
