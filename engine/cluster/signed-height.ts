/*
 * The last height a validator signed, on its own disk (issue 13): a validator never signs two
 * different hashes at one height, across restarts too. After a restart it replays the log from the
 * start and signs nothing at or below the persisted height (it attested those in its last life;
 * the attestations are on the topic). Persisted before each group of attestations leaves the
 * process.
 *
 * Layout: one file of two 512-byte sectors, each holding one slot, written in turn:
 *
 *   slot = "TXSH" | seq u64 BE | height u64 BE | block hash 32 B | SHA-256 of the 52 bytes before
 *
 * A write puts the next seq into the slot the current one is not in, then fdatasyncs: two thread-
 * pool round trips on a file kept open (the former write-temp, fsync, rename took five, ~6 ms a
 * group on the cluster under load, and never fsynced the directory, so a crash could lose the
 * rename). A write torn by a crash leaves a slot whose digest does not match; the other slot still
 * holds the height before, which is right: nothing signed at the torn height left the process,
 * since attestations leave only after the fdatasync returns. The file is created, zeroed and
 * synced with its directory once, when the validator starts. The write is asynchronous: with three
 * Kafka brokers writing the same disk an fsync took seconds, and a synchronous one stalled every
 * validator's event loop at once, long enough for the leader's etcd lease to expire under load.
 */

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

export interface SignedHeight { height: number; blockHash: string } // blockHash: hex, '' before the first signature

const SECTOR_BYTES = 512;
const FILE_BYTES = 2 * SECTOR_BYTES;
const MAGIC = Buffer.from('TXSH');
const HASH_BYTES = 32;
const BODY_BYTES = MAGIC.length + 8 + 8 + HASH_BYTES; // 52
const SLOT_BYTES = BODY_BYTES + HASH_BYTES; // 84
const writeAt = promisify(fs.write);
const datasync = promisify(fs.fdatasync);

interface Slot extends SignedHeight { seq: number }

export class SignedHeightFile {
  private value: Slot;
  private fd: number;
  private writing = false;

  /** Opens (or creates) `file`; `legacyJsonFile`, the JSON file of earlier versions, is read when `file` does not exist yet. */
  constructor(private readonly file: string, legacyJsonFile?: string) {
    if (!fs.existsSync(file)) create(file, legacyJsonFile && fs.existsSync(legacyJsonFile) ? parseLegacy(legacyJsonFile) : { seq: 0, height: 0, blockHash: '' });
    this.fd = fs.openSync(file, 'r+');
    this.value = readSlots(this.fd, file);
  }

  get height(): number { return this.value.height; }
  get blockHash(): string { return this.value.blockHash; }

  /**
   * Persists `next`; resolves once it is on disk, before anything signed up to it may leave the
   * process. Heights never go down; one call at a time (the caller awaits each).
   */
  async advance(next: SignedHeight): Promise<void> {
    if (next.height <= this.value.height) throw new Error(`signed height would go from ${this.value.height} down to ${next.height}`);
    if (this.writing) throw new Error('signed height: a second write while one is under way');
    if (this.fd < 0) throw new Error(`signed height: ${this.file} is closed`);
    this.writing = true;
    try {
      const slot: Slot = { seq: this.value.seq + 1, ...next };
      await writeAt(this.fd, encodeSlot(slot), 0, SLOT_BYTES, (slot.seq % 2) * SECTOR_BYTES);
      await datasync(this.fd);
      this.value = slot;
    } finally {
      this.writing = false;
    }
  }

  close(): void {
    if (this.fd < 0) return;
    fs.closeSync(this.fd);
    this.fd = -1;
  }
}

function encodeSlot(s: Slot): Buffer {
  const hash = s.blockHash === '' ? Buffer.alloc(HASH_BYTES) : Buffer.from(s.blockHash, 'hex');
  if (hash.length !== HASH_BYTES) throw new Error(`signed height: block hash ${s.blockHash} is not ${HASH_BYTES} bytes of hex`);
  const out = Buffer.alloc(SLOT_BYTES);
  MAGIC.copy(out, 0);
  out.writeBigUInt64BE(BigInt(s.seq), 4);
  out.writeBigUInt64BE(BigInt(s.height), 12);
  hash.copy(out, 20);
  crypto.createHash('sha256').update(out.subarray(0, BODY_BYTES)).digest().copy(out, BODY_BYTES);
  return out;
}

/** The slot in `bytes`, or null when it was never written or its write was torn. */
export function decodeSlot(bytes: Buffer): Slot | null {
  if (bytes.length < SLOT_BYTES || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) return null;
  const digest = crypto.createHash('sha256').update(bytes.subarray(0, BODY_BYTES)).digest();
  if (!digest.equals(bytes.subarray(BODY_BYTES, SLOT_BYTES))) return null;
  const hash = bytes.subarray(20, 20 + HASH_BYTES);
  const height = Number(bytes.readBigUInt64BE(12));
  return { seq: Number(bytes.readBigUInt64BE(4)), height, blockHash: height === 0 && hash.every((b) => b === 0) ? '' : hash.toString('hex') };
}

function readSlots(fd: number, file: string): Slot {
  const bytes = Buffer.alloc(FILE_BYTES);
  fs.readSync(fd, bytes, 0, FILE_BYTES, 0);
  const slots = [decodeSlot(bytes.subarray(0, SECTOR_BYTES)), decodeSlot(bytes.subarray(SECTOR_BYTES))].filter((s): s is Slot => s !== null);
  if (slots.length === 0) throw new Error(`${file}: neither copy of the signed height is readable; refusing to sign again without it (restore it, or remove it only if this validator never signed)`);
  return slots.reduce((a, b) => (b.seq > a.seq ? b : a));
}

/** The file with `first` in slot seq % 2 and nothing in the other, synced with its directory before it is used. */
function create(file: string, first: Slot): void {
  const tmp = `${file}.tmp`;
  const bytes = Buffer.alloc(FILE_BYTES);
  encodeSlot(first).copy(bytes, (first.seq % 2) * SECTOR_BYTES);
  const fd = fs.openSync(tmp, 'w');
  try {
    fs.writeSync(fd, bytes, 0, FILE_BYTES, 0);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  const dir = fs.openSync(path.dirname(file), 'r');
  try {
    fs.fsyncSync(dir);
  } finally {
    fs.closeSync(dir);
  }
}

function parseLegacy(file: string): Slot {
  const v = JSON.parse(fs.readFileSync(file, 'utf8')) as SignedHeight;
  if (!Number.isSafeInteger(v.height) || v.height < 0) throw new Error(`${file}: height ${String(v.height)} is not a non-negative integer`);
  return { seq: 1, height: v.height, blockHash: v.blockHash ?? '' };
}
