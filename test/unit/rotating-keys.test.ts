// RotatingKeys (batch signers, issuers): a rotation trusts the new keys at once and the dropped ones for the grace
// period only; a second rotation within it never trusts a dropped key again for longer.
import { describe, expect, it } from 'vitest';
import { RotatingKeys } from '../../engine/core/rotating-keys.js';

const key = (byte: number) => Buffer.alloc(32, byte);
const hex = (byte: number) => key(byte).toString('hex');

describe('RotatingKeys', () => {
  it('trusts the listed keys, and a dropped key until its grace period ends', () => {
    const s = new RotatingKeys([hex(1)], 'trusted signer');
    expect(s.has(key(1), 0, 0)).toBe(true);
    expect(s.has(key(2), 0, 0)).toBe(false);
    expect(s.rotate([hex(2)], 1000, 10)).toEqual({ added: [hex(2)], retiring: [hex(1)], retiredAtMs: 1010 });
    expect(s.has(key(2), 0, 11)).toBe(true);
    expect(s.has(key(1), 0, 1009)).toBe(true);
    expect(s.has(key(1), 0, 1010)).toBe(false);
    expect(s.rotations).toBe(1);
  });

  it('retires at once with no grace, and counts no rotation when nothing changed', () => {
    const s = new RotatingKeys([hex(1)], 'trusted signer');
    s.rotate([hex(1)], 1000, 0);
    expect(s.rotations).toBe(0);
    s.rotate([hex(3)], 0, 5);
    expect(s.has(key(1), 0, 5)).toBe(false);
    expect(s.has(key(3), 0, 5)).toBe(true);
  });

  it('a second rotation inside the grace period keeps the older key on the newer deadline only if it is still dropped', () => {
    const s = new RotatingKeys([hex(1)], 'trusted signer');
    s.rotate([hex(2)], 1000, 0); // 1 retiring until 1000
    s.rotate([hex(3)], 1000, 500); // 2 and 1 retiring until 1500
    expect(s.has(key(1), 0, 1200)).toBe(true);
    expect(s.has(key(2), 0, 1499)).toBe(true);
    expect(s.has(key(2), 0, 1500)).toBe(false);
    s.rotate([hex(3), hex(1)], 1000, 1600); // 1 is listed again: trusted, not retiring
    expect(s.has(key(1), 0, 5000)).toBe(true);
    expect(s.has(key(2), 0, 1700)).toBe(false);
  });

  it('never extends a grace period when the same list is read again (a SIGHUP for a TLS certificate)', () => {
    const s = new RotatingKeys([hex(1)], 'issuer');
    s.rotate([hex(2)], 1000, 0); // 1 retiring until 1000
    expect(s.rotate([hex(2)], 1000, 900)).toEqual({ added: [], retiring: [], retiredAtMs: 1000 });
    expect(s.has(key(1), 0, 999)).toBe(true);
    expect(s.has(key(1), 0, 1000)).toBe(false);
    expect(s.validAt(999).map((k) => k[0])).toEqual([2, 1]);
    expect(s.validAt(1000).map((k) => k[0])).toEqual([2]);
  });

  it('refuses a key that is not 32 bytes of hex', () => {
    expect(() => new RotatingKeys(['abc'], 'trusted signer')).toThrow(/is not a 32-byte hex public key/);
    expect(() => new RotatingKeys([hex(1)], 'trusted signer').rotate(['zz'.repeat(32)], 0)).toThrow(/is not a 32-byte hex public key/);
  });
});
