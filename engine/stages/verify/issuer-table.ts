/*
 * The issuers that may mint, as the verify workers see them: a table in shared memory, so that a
 * rotation (core/rotating-keys.ts, on SIGHUP) reaches every worker at its next task without a
 * message or a restart.
 *
 *   header  Int32[0] version: odd while the main thread writes, even when the table is whole
 *           Int32[1] count
 *   keys    ISSUERS_MAX x 32 bytes
 *
 * One writer (the main thread) and a seqlock: a worker copies the table only when the version has
 * changed, and keeps its copy only if the version was even and the same before and after.
 * Cost: one Atomics.load a task when nothing changed; a rebuild is a few µs for a few keys.
 */

import { KeySet } from '../../core/checks.js';
import { PUBLIC_KEY_BYTES } from '../../core/record.js';
import { ISSUERS_MAX } from '../../core/rotating-keys.js';

const HEADER_BYTES = 8;
const COPY_ATTEMPTS_MAX = 1_000; // the writer holds the table for a few µs; a second of it means a bug
const WRITE_WAIT_MS = 1;

export class IssuerTable {
  private readonly header: Int32Array;
  private readonly keys: Uint8Array;
  private seenVersion = -1;
  private local = new KeySet([]);

  constructor(readonly shared: SharedArrayBuffer) {
    this.header = new Int32Array(shared, 0, 2);
    this.keys = new Uint8Array(shared, HEADER_BYTES, ISSUERS_MAX * PUBLIC_KEY_BYTES);
  }

  static create(keys: Uint8Array[]): IssuerTable {
    const table = new IssuerTable(new SharedArrayBuffer(HEADER_BYTES + ISSUERS_MAX * PUBLIC_KEY_BYTES));
    table.publish(keys);
    return table;
  }

  /** Main thread only: these keys may mint from the next task on. */
  publish(keys: Uint8Array[]): void {
    if (keys.length > ISSUERS_MAX) throw new Error(`${keys.length} issuers: at most ${ISSUERS_MAX}`);
    for (const k of keys) if (k.length !== PUBLIC_KEY_BYTES) throw new Error(`an issuer key is ${k.length} bytes, not ${PUBLIC_KEY_BYTES}`);
    const version = Atomics.load(this.header, 0);
    if (version % 2 !== 0) throw new Error('issuer table: a second writer');
    Atomics.store(this.header, 0, version + 1);
    keys.forEach((k, i) => this.keys.set(k, i * PUBLIC_KEY_BYTES));
    Atomics.store(this.header, 1, keys.length);
    Atomics.store(this.header, 0, version + 2);
  }

  /**
   * The issuers now (a worker's copy, rebuilt only when the table changed). While the main thread
   * is writing (it may be descheduled mid-write), the copy from before the rotation is used: the
   * rotation reaches this worker at its next task instead.
   */
  current(): KeySet {
    for (let attempt = 0; attempt < COPY_ATTEMPTS_MAX; attempt++) {
      const version = Atomics.load(this.header, 0);
      if (version === this.seenVersion) return this.local;
      if (version % 2 !== 0) {
        if (this.seenVersion >= 0) return this.local;
        Atomics.wait(this.header, 0, version, WRITE_WAIT_MS); // a worker's first copy: wait for the writer
        continue;
      }
      const count = Atomics.load(this.header, 1);
      const copy = Array.from({ length: count }, (_, i) => this.keys.slice(i * PUBLIC_KEY_BYTES, (i + 1) * PUBLIC_KEY_BYTES));
      if (Atomics.load(this.header, 0) !== version) continue;
      this.local = new KeySet(copy);
      this.seenVersion = version;
      return this.local;
    }
    throw new Error(`issuer table: no consistent copy after ${COPY_ATTEMPTS_MAX} attempts`);
  }
}
