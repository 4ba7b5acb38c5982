/*
 * Webhook secrets at rest: sealed with AES-256-GCM under the engine's secrets key, never stored in
 * plain text (issue 12). Each sealed value is bound to its webhook id (GCM additional data), so a
 * row's secret cannot be moved to another webhook's row, and a changed byte or a wrong key fails to
 * open with an error that says so.
 *
 *   stored = "enc1:" base64( nonce 12 B | ciphertext | tag 16 B )
 *
 * A value without the prefix is a plain-text secret written before this existed; it is read as is
 * and sealed when the engine starts (Webhooks.open). Where the key lives is the deployment's
 * choice: the keys file (`txe keygen` writes one), TXE_WEBHOOK_SECRETS_KEY, or the config file.
 */

import crypto from 'node:crypto';

const PREFIX = 'enc1:';
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export class SecretBox {
  private readonly key: Buffer;

  constructor(keyHex: string) {
    if (!/^[0-9a-f]{64}$/i.test(keyHex)) throw new Error(`the webhook secrets key must be ${KEY_BYTES} bytes as 64 hex characters`);
    this.key = Buffer.from(keyHex, 'hex');
  }

  static isSealed(stored: string): boolean {
    return stored.startsWith(PREFIX);
  }

  seal(secret: string, webhookId: string): string {
    const nonce = crypto.randomBytes(NONCE_BYTES);
    const cipher = crypto.createCipheriv('aes-256-gcm', this.key, nonce);
    cipher.setAAD(Buffer.from(webhookId));
    const body = Buffer.concat([cipher.update(secret, 'utf8'), cipher.final()]);
    return PREFIX + Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64');
  }

  open(stored: string, webhookId: string): string {
    if (!SecretBox.isSealed(stored)) return stored; // plain text from before sealing; sealed at start
    const raw = Buffer.from(stored.slice(PREFIX.length), 'base64');
    if (raw.length < NONCE_BYTES + TAG_BYTES) throw new Error(`webhook ${webhookId}: its stored secret is truncated`);
    const decipher = crypto.createDecipheriv('aes-256-gcm', this.key, raw.subarray(0, NONCE_BYTES));
    decipher.setAAD(Buffer.from(webhookId));
    decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new Error(`webhook ${webhookId}: its stored secret does not open with this engine's secrets key (another key, or a changed row)`);
    }
  }
}
