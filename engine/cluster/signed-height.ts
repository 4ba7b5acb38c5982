/*
 * The last height a validator signed, on its own disk (issue 13): a validator never signs two
 * different hashes at one height, across restarts too. After a restart it replays the log from the
 * start and signs nothing at or below the persisted height (it attested those in its last life;
 * the attestations are on the topic). Written (write, fsync, rename) before each group of
 * attestations is published: ~1 ms a group on an idle disk, so groups, not blocks, pay it. The
 * write is asynchronous: with three Kafka brokers writing the same disk an fsync took seconds, and
 * a synchronous one stalled every validator's event loop at once, long enough for the leader's
 * etcd lease to expire under load.
 */

import fs from 'node:fs';
import fsp from 'node:fs/promises';

export interface SignedHeight { height: number; blockHash: string }

export class SignedHeightFile {
  private value: SignedHeight;
  private writing = false;

  constructor(private readonly file: string) {
    this.value = fs.existsSync(file) ? SignedHeightFile.parse(file) : { height: 0, blockHash: '' };
  }

  get height(): number { return this.value.height; }

  /**
   * Persists `next`; resolves once it is on disk, before anything signed up to it may leave the
   * process. Heights never go down; one call at a time (the caller awaits each).
   */
  async advance(next: SignedHeight): Promise<void> {
    if (next.height <= this.value.height) throw new Error(`signed height would go from ${this.value.height} down to ${next.height}`);
    if (this.writing) throw new Error('signed height: a second write while one is under way');
    this.writing = true;
    try {
      const tmp = `${this.file}.tmp`;
      const handle = await fsp.open(tmp, 'w');
      try {
        await handle.writeFile(JSON.stringify(next));
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fsp.rename(tmp, this.file);
      this.value = next;
    } finally {
      this.writing = false;
    }
  }

  private static parse(file: string): SignedHeight {
    const v = JSON.parse(fs.readFileSync(file, 'utf8')) as SignedHeight;
    if (!Number.isSafeInteger(v.height) || v.height < 0) throw new Error(`${file}: height ${String(v.height)} is not a non-negative integer`);
    return v;
  }
}
