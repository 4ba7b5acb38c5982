/*
 * The last height a validator signed, on its own disk (issue 13): a validator never signs two
 * different hashes at one height, across restarts too. After a restart it replays the log from the
 * start and signs nothing at or below the persisted height (it attested those in its last life;
 * the attestations are on the topic). Written (write, fsync, rename) before each group of
 * attestations is published: ~1-2 ms a group, so groups, not blocks, pay it.
 */

import fs from 'node:fs';

export interface SignedHeight { height: number; blockHash: string }

export class SignedHeightFile {
  private value: SignedHeight;

  constructor(private readonly file: string) {
    this.value = fs.existsSync(file) ? SignedHeightFile.parse(file) : { height: 0, blockHash: '' };
  }

  get height(): number { return this.value.height; }

  /** Persists `next` before anything signed up to it leaves the process; heights never go down. */
  advance(next: SignedHeight): void {
    if (next.height <= this.value.height) throw new Error(`signed height would go from ${this.value.height} down to ${next.height}`);
    const tmp = `${this.file}.tmp`;
    const fd = fs.openSync(tmp, 'w');
    try {
      fs.writeSync(fd, JSON.stringify(next));
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, this.file);
    this.value = next;
  }

  private static parse(file: string): SignedHeight {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as SignedHeight;
    if (!Number.isSafeInteger(v.height) || v.height < 0) throw new Error(`${file}: height ${String(v.height)} is not a non-negative integer`);
    return v;
  }
}
