// Webhook secrets sealed at rest: a sealed value opens to the secret with the same key and webhook
// id, never shows the secret, differs every time it is sealed, and refuses another key, another
// webhook's id and a changed byte; a plain-text value from before sealing reads as is.
import { describe, expect, it } from 'vitest';
import { SecretBox } from '../../engine/services/webhooks/secret-box.js';

const box = new SecretBox('11'.repeat(32));
const secret = 'whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=';

describe('SecretBox', () => {
  it('seals and opens, and the sealed text shows nothing of the secret', () => {
    const sealed = box.seal(secret, 'wh_a');
    expect(sealed).toMatch(/^enc1:/);
    expect(sealed).not.toContain('c2VjcmV0');
    expect(box.seal(secret, 'wh_a')).not.toBe(sealed); // a fresh nonce each time
    expect(box.open(sealed, 'wh_a')).toBe(secret);
  });

  it('refuses another key, another webhook id and a changed byte', () => {
    const sealed = box.seal(secret, 'wh_a');
    expect(() => new SecretBox('22'.repeat(32)).open(sealed, 'wh_a')).toThrow(/does not open with this engine's secrets key/);
    expect(() => box.open(sealed, 'wh_b')).toThrow(/does not open/);
    const raw = Buffer.from(sealed.slice(5), 'base64');
    raw[20] ^= 1;
    expect(() => box.open(`enc1:${raw.toString('base64')}`, 'wh_a')).toThrow(/does not open/);
  });

  it('reads a plain-text secret from before sealing as is, and refuses a malformed key', () => {
    expect(box.open(secret, 'wh_a')).toBe(secret);
    expect(SecretBox.isSealed(secret)).toBe(false);
    expect(() => new SecretBox('abc')).toThrow(/64 hex characters/);
  });
});
