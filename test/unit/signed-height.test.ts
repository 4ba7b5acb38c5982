// A validator's last signed height on disk (engine/cluster/signed-height.ts): two slots written in
// turn, each checked by its digest, so a write torn by a crash leaves the height before it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { SignedHeightFile, decodeSlot } from '../../engine/cluster/signed-height.js';

const hash = (byte: number) => Buffer.alloc(32, byte).toString('hex');
const scratch = () => fs.mkdtempSync(path.join(os.tmpdir(), 'txe-signed-height-'));

describe('SignedHeightFile', () => {
  it('starts at 0, keeps each height it was given across a reopen, and never goes down', async () => {
    const file = path.join(scratch(), 'v1.signed-height');
    const signed = new SignedHeightFile(file);
    expect({ height: signed.height, blockHash: signed.blockHash }).toEqual({ height: 0, blockHash: '' });
    await signed.advance({ height: 3, blockHash: hash(3) });
    await signed.advance({ height: 7, blockHash: hash(7) });
    await expect(signed.advance({ height: 7, blockHash: hash(8) })).rejects.toThrow(/would go from 7 down to 7/);
    signed.close();
    const again = new SignedHeightFile(file);
    expect({ height: again.height, blockHash: again.blockHash }).toEqual({ height: 7, blockHash: hash(7) });
    await again.advance({ height: 9, blockHash: hash(9) });
    again.close();
    expect(new SignedHeightFile(file).height).toBe(9);
  });

  it('refuses a second write while one is under way', async () => {
    const signed = new SignedHeightFile(path.join(scratch(), 'v1.signed-height'));
    const first = signed.advance({ height: 1, blockHash: hash(1) });
    await expect(signed.advance({ height: 2, blockHash: hash(2) })).rejects.toThrow(/a second write while one is under way/);
    await first;
    expect(signed.height).toBe(1);
  });

  it('after a torn write of the newer slot, reads the height before it; with both slots unreadable, refuses to start', async () => {
    const file = path.join(scratch(), 'v1.signed-height');
    const signed = new SignedHeightFile(file);
    await signed.advance({ height: 4, blockHash: hash(4) }); // seq 1: the second sector
    await signed.advance({ height: 5, blockHash: hash(5) }); // seq 2: the first sector
    signed.close();
    const bytes = fs.readFileSync(file);
    expect(decodeSlot(bytes.subarray(0, 512))).toMatchObject({ seq: 2, height: 5 });
    bytes[30] ^= 0xff; // the height-5 write, torn inside its block hash
    fs.writeFileSync(file, bytes);
    expect(new SignedHeightFile(file).height).toBe(4);
    bytes[512 + 13] ^= 0xff; // and the height-4 slot too
    fs.writeFileSync(file, bytes);
    expect(() => new SignedHeightFile(file)).toThrow(/neither copy of the signed height is readable/);
  });

  it('takes the height from the JSON file of earlier versions when its own file does not exist yet', () => {
    const dir = scratch();
    const legacy = path.join(dir, 'v1.signed-height.json');
    fs.writeFileSync(legacy, JSON.stringify({ height: 12, blockHash: hash(12) }));
    const signed = new SignedHeightFile(path.join(dir, 'v1.signed-height'), legacy);
    expect({ height: signed.height, blockHash: signed.blockHash }).toEqual({ height: 12, blockHash: hash(12) });
  });
});
