// The issuer table the verify workers read (engine/stages/verify/issuer-table.ts): a reader copies
// it only when its version changed, and while a write is under way it keeps the copy it had.
import { describe, expect, it } from 'vitest';
import { IssuerTable } from '../../engine/stages/verify/issuer-table.js';

const key = (byte: number) => Buffer.alloc(32, byte);

describe('IssuerTable', () => {
  it('shows a worker the issuers published last, copying only after a change', () => {
    const writer = IssuerTable.create([key(1)]);
    const reader = new IssuerTable(writer.shared); // as a worker opens it
    const first = reader.current();
    expect(first.has(key(1), 0)).toBe(true);
    expect(reader.current()).toBe(first); // unchanged: the same copy
    writer.publish([key(2), key(3)]);
    const second = reader.current();
    expect(second).not.toBe(first);
    expect([second.has(key(1), 0), second.has(key(2), 0), second.has(key(3), 0)]).toEqual([false, true, true]);
  });

  it('keeps the last copy while a write is under way, and refuses a bad key before writing', () => {
    const writer = IssuerTable.create([key(1)]);
    const reader = new IssuerTable(writer.shared);
    const before = reader.current();
    const header = new Int32Array(writer.shared, 0, 2);
    Atomics.add(header, 0, 1); // a write begun (odd version), as if the main thread were descheduled in it
    expect(reader.current()).toBe(before);
    Atomics.add(header, 0, 1);
    expect(() => writer.publish([Buffer.alloc(31)])).toThrow(/31 bytes/);
    expect(Atomics.load(header, 0) % 2).toBe(0); // the table was left whole
  });
});
