// The account table grows with its accounts (so a small population looks up in a small table) and
// finds every account after each doubling, after a clear, and after records are reloaded.
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { AccountTable, SLOT_WORDS, W_BALANCE_LO, wordsOf } from '../../engine/core/accounts.js';

function keys(n: number, salt: string): Buffer[] {
  return Array.from({ length: n }, (_, i) => crypto.createHash('sha256').update(`${salt}/${i}`).digest());
}

describe('AccountTable', () => {
  it('starts small and doubles as accounts arrive, finding every account after each doubling', () => {
    const table = new AccountTable(100_000);
    const first = table.tableSlots;
    expect(first).toBeLessThanOrEqual(1024);
    const ids = keys(20_000, 'grow');
    ids.forEach((key, i) => {
      expect(table.insertKey(key)).toBe(i);
      table.words[i * SLOT_WORDS + W_BALANCE_LO] = i;
    });
    expect(table.tableSlots).toBeGreaterThan(first);
    expect(table.count / table.tableSlots).toBeLessThanOrEqual(0.7);
    ids.forEach((key, i) => {
      const account = table.findKey(key);
      expect(account).toBe(i);
      expect(table.words[account * SLOT_WORDS + W_BALANCE_LO]).toBe(i);
    });
    for (const absent of keys(100, 'absent')) expect(table.findKey(absent)).toBe(-1);
  });

  it('refuses an insert past the load factor that was not reserved, and never grows past accountsMax', () => {
    const table = new AccountTable(10_000);
    const ids = keys(800, 'reserve');
    const words = ids.map(wordsOf);
    let inserted = 0;
    expect(() => { for (const w of words) { table.findOrInsert(w, 0); inserted++; } }).toThrow(/reserve\(\) before inserting/);
    expect(inserted).toBe(Math.floor(table.tableSlots * 0.7));
    table.reserve(words.length);
    for (const w of words) table.findOrInsert(w, 0);
    expect(table.count).toBe(words.length);

    const small = new AccountTable(3);
    small.reserve(1_000_000);
    expect(small.tableSlots).toBe(8); // the size 3 accounts need, however much is reserved
    for (const key of keys(3, 'small')) expect(small.insertKey(key)).toBeGreaterThanOrEqual(0);
    expect(small.insertKey(keys(1, 'fourth')[0])).toBe(-1);
  });

  it('reloads saved records into a fresh small table, grown to fit them', () => {
    const table = new AccountTable(50_000);
    const ids = keys(5_000, 'reload');
    for (const key of ids) table.insertKey(key);
    const records = table.records().slice();
    table.clear();
    expect(table.count).toBe(0);
    expect(table.findKey(ids[0])).toBe(-1);
    table.loadRecords(records);
    expect(table.count).toBe(ids.length);
    ids.forEach((key, i) => expect(table.findKey(key)).toBe(i));
  });
});
