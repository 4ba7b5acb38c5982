/*
 * State snapshots in PostgreSQL, so a restart replays only the log after the newest one instead of
 * the whole history. A snapshot is the sequencer's state right after a block, taken on the
 * sequencer's turn (a copy of 64 B an account) and written in the background on a connection of
 * its own, never in the way of the sink's group commits. Only the newest SNAPSHOTS_KEPT are kept.
 *
 *   data = header 76 B | accounts × 64 B | pending approvals × 96 B
 *   header: version u32 | block u64 | nextSeq u64 | supply hi,lo u32 | lastHash 32 | accounts u32 | pending u32 | spare 4
 *   pending: seq u64 | block u64 | sender u32 | amount hi,lo u32 | recipient 32 | approval id 32 | spare 4
 * A snapshot of an older format is skipped (recovery then replays from an older one, or from
 * genesis): it costs time, never correctness.
 *
 * Recovery takes the newest snapshot whose block is in txe_blocks with the same hash, so a snapshot
 * of a block that never became durable is ignored. A snapshot is written only while PostgreSQL
 * still names the writer's epoch (stages/commit/writer-term.ts): a deposed engine's snapshots,
 * of blocks the new writer may have cut differently, would otherwise push the good ones out.
 */

import { pgClient } from './client.js';
import { WRITER_EPOCH_SQL } from './writer.js';
import type { PendingApproval, SequencerState } from '../../../core/sequencer.js';

const FORMAT_VERSION = 2; // 2: pending approvals carry their id
const HEADER_BYTES = 76;
const ACCOUNT_BYTES = 64;
const PENDING_BYTES = 96;
export const SNAPSHOTS_KEPT = 2;
export const PG_CONNECT_TIMEOUT_MS = 10_000; // snapshots and recovery: off the hot path, patient

export function encodeState(s: SequencerState): Buffer {
  const accounts = Buffer.from(s.accounts.buffer, s.accounts.byteOffset, s.accounts.byteLength);
  const out = Buffer.alloc(HEADER_BYTES + accounts.length + s.pending.length * PENDING_BYTES);
  out.writeUInt32LE(FORMAT_VERSION, 0);
  out.writeBigUInt64LE(BigInt(s.block), 4);
  out.writeBigUInt64LE(BigInt(s.nextSeq), 12);
  out.writeUInt32LE(s.supplyHi, 20);
  out.writeUInt32LE(s.supplyLo, 24);
  s.lastHash.copy(out, 28);
  out.writeUInt32LE(accounts.length / ACCOUNT_BYTES, 60);
  out.writeUInt32LE(s.pending.length, 64);
  accounts.copy(out, HEADER_BYTES);
  let at = HEADER_BYTES + accounts.length;
  for (const p of s.pending) {
    out.writeBigUInt64LE(BigInt(p.seq), at);
    out.writeBigUInt64LE(BigInt(p.block), at + 8);
    out.writeUInt32LE(p.sender, at + 16);
    out.writeUInt32LE(p.amountHi, at + 20);
    out.writeUInt32LE(p.amountLo, at + 24);
    p.recipient.copy(out, at + 28);
    p.id.copy(out, at + 60);
    at += PENDING_BYTES;
  }
  return out;
}

export function decodeState(data: Buffer): SequencerState {
  if (data.length < HEADER_BYTES) throw new Error(`snapshot of ${data.length} bytes is shorter than its ${HEADER_BYTES}-byte header`);
  if (data.readUInt32LE(0) !== FORMAT_VERSION) throw new Error(`snapshot format ${data.readUInt32LE(0)} is not ${FORMAT_VERSION}`);
  const accountsCount = data.readUInt32LE(60);
  const pendingCount = data.readUInt32LE(64);
  const expectedBytes = HEADER_BYTES + accountsCount * ACCOUNT_BYTES + pendingCount * PENDING_BYTES;
  if (data.length !== expectedBytes) throw new Error(`snapshot of ${data.length} bytes does not match its header (${accountsCount} accounts, ${pendingCount} pending: ${expectedBytes} bytes)`);
  const accountBytes = Buffer.from(data.subarray(HEADER_BYTES, HEADER_BYTES + accountsCount * ACCOUNT_BYTES)); // aligned copy
  const pending: PendingApproval[] = [];
  for (let i = 0, at = HEADER_BYTES + accountsCount * ACCOUNT_BYTES; i < pendingCount; i++, at += PENDING_BYTES) {
    pending.push({
      seq: Number(data.readBigUInt64LE(at)), block: Number(data.readBigUInt64LE(at + 8)), sender: data.readUInt32LE(at + 16),
      amountHi: data.readUInt32LE(at + 20), amountLo: data.readUInt32LE(at + 24), recipient: Buffer.from(data.subarray(at + 28, at + 60)),
      id: Buffer.from(data.subarray(at + 60, at + 92)),
    });
  }
  return {
    block: Number(data.readBigUInt64LE(4)), nextSeq: Number(data.readBigUInt64LE(12)),
    supplyHi: data.readUInt32LE(20), supplyLo: data.readUInt32LE(24), lastHash: Buffer.from(data.subarray(28, 60)),
    accounts: new Uint32Array(accountBytes.buffer, accountBytes.byteOffset, accountBytes.length / 4), pending,
  };
}

/** Writes snapshots one at a time on a connection of its own; a snapshot that fails is skipped. */
export class SnapshotWriter {
  private writing: Promise<void> | null = null;
  written = 0;
  failed = 0;

  constructor(private readonly url: string, private readonly statementTimeoutMs: number, private readonly epoch: number) {}

  get busy(): boolean { return this.writing !== null; }

  write(state: SequencerState): void {
    if (this.writing) return;
    const data = encodeState(state);
    this.writing = this.store(state.block, data).then(() => { this.written++; }, () => { this.failed++; }).finally(() => { this.writing = null; });
  }

  /** Resolves once the snapshot being written, if any, is stored or has failed. */
  async idle(): Promise<void> {
    await this.writing;
  }

  private async store(block: number, data: Buffer): Promise<void> {
    const client = pgClient(this.url, { connectTimeoutMs: PG_CONNECT_TIMEOUT_MS, statementTimeoutMs: this.statementTimeoutMs, name: 'txe-snapshots' });
    await client.connect();
    try {
      const r = await client.query(`insert into txe_snapshots (block, data) select $1, $2 where ${WRITER_EPOCH_SQL} = $3 on conflict do nothing`, [block, data, this.epoch]);
      if (r.rowCount === 0) return; // fenced, or this block has a snapshot already
      await client.query(`delete from txe_snapshots where block not in (select block from txe_snapshots order by block desc limit ${SNAPSHOTS_KEPT})`);
    } finally {
      await client.end();
    }
  }
}

/** The newest snapshot whose block is durable with the same hash, or null. */
export async function loadSnapshot(url: string, statementTimeoutMs: number): Promise<SequencerState | null> {
  const client = pgClient(url, { connectTimeoutMs: PG_CONNECT_TIMEOUT_MS, statementTimeoutMs, name: 'txe-recovery' });
  await client.connect();
  try {
    // Headers first: only the one snapshot chosen is read whole (each can be hundreds of MB).
    const rows = await client.query<{ block: string; hash: Buffer | null }>(
      'select s.block, b.hash from txe_snapshots s left join txe_blocks b on b.number = s.block order by s.block desc');
    for (const row of rows.rows) {
      if (!row.hash) continue;
      const data = (await client.query<{ data: Buffer }>('select data from txe_snapshots where block = $1', [row.block])).rows[0]?.data;
      if (!data) continue;
      if (data.readUInt32LE(0) !== FORMAT_VERSION) continue; // an older format: replay further instead
      const state = decodeState(data);
      if (state.lastHash.equals(row.hash) && state.block === Number(row.block)) return state;
    }
    return null;
  } finally {
    await client.end();
  }
}
