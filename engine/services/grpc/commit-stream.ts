/*
 * One StreamCommits reader: a consumer with its own cursor over the in-memory block window, as a
 * Disruptor consumer reads a ring. It writes the next block while the gRPC stream accepts writes,
 * stops when the stream's buffer is full, and goes on only at 'drain': a block cut meanwhile does
 * not write (it once did, one block per cut, and two readers stalled at the socket grew the engine
 * by 10.8 MiB/s). So a slow reader costs at most the stream's buffer (grpc-js: 16 messages, ~16 MB
 * of full blocks), and nobody else waits for it:
 *   - a reader that falls out of the window gets RESOURCE_EXHAUSTED with the seq to resume from;
 *   - a reader whose stream accepts nothing for stallMsMax is dropped with RESOURCE_EXHAUSTED
 *     (RST_STREAM, drop-stream.ts), which frees its buffer even when its socket is stalled.
 * A reader that asks for a seq older than the window first catches up from PostgreSQL
 * (catchUpFromStore), a chunk of blocks at a time with the same backpressure, then reads memory.
 */

import * as grpc from '@grpc/grpc-js';
import type { HistoryWindow } from '../../stages/history/history-window.js';
import type { CommittedBlock } from '../../core/block.js';
import { dropStalledStream } from './drop-stream.js';
import { storedEntries, type PgReads } from '../../stages/commit/pg/pg-reads.js';
import { Result } from '../../core/result.js';

// Blocks read from PostgreSQL per query while catching up: ~1 MB each at most, read a few at a time.
const CATCH_UP_BLOCKS_PER_READ = 256;

export class CommitStream {
  private closed = false;
  private writable = true;
  private stallTimer: NodeJS.Timeout | null = null;
  private fromStore = false; // catching up from PostgreSQL: live blocks wait
  private drainWaiter: (() => void) | null = null;

  constructor(
    private readonly call: grpc.ServerWritableStream<unknown, unknown>,
    private readonly history: HistoryWindow,
    private readonly fromSeq: number,
    private nextBlock: number,
    private readonly stallMsMax: number,
    private readonly onClose: () => void,
  ) {
    call.on('drain', () => {
      this.writable = true;
      this.wake();
      this.pump();
    });
    call.on('cancelled', () => this.close());
    call.on('error', () => this.close());
  }

  /** Writes blocks until the reader is caught up or its stream buffer is full. */
  pump(): void {
    while (!this.closed && this.writable && !this.fromStore && this.nextBlock <= this.history.newestBlock) {
      const block = this.history.block(this.nextBlock);
      const entries = block ? this.history.blockEntries(block) : null;
      if (block === null || entries === null) {
        this.fail(grpc.status.RESOURCE_EXHAUSTED, `reader fell behind the in-memory window at block ${this.nextBlock}; reconnect from seq ${this.history.oldestSeq} or later`);
        return;
      }
      this.nextBlock++;
      if (block.firstSeq + block.entries <= this.fromSeq) continue; // wholly before what was asked
      if (!this.write(block, entries)) return; // resumes at 'drain', from this reader's own cursor
    }
  }

  /**
   * Streams durable blocks from the reader's seq until the next block is in memory (or not cut
   * yet), then reads memory like any live reader. The window may move on while this runs; each
   * turn checks again, so no block is skipped or sent twice.
   */
  async catchUpFromStore(reads: PgReads): Promise<void> {
    this.fromStore = true;
    try {
      let next = (await reads.blockFromSeq(this.fromSeq)) ?? 1;
      while (!this.closed && !this.inMemory(next)) {
        const durable = await reads.newestBlock();
        if (next > durable) throw new Error(`block ${next} is neither durable nor in memory yet`);
        for await (const block of reads.blocks(next, Math.min(durable, next + CATCH_UP_BLOCKS_PER_READ - 1))) {
          if (this.closed) return;
          next = block.number + 1;
          if (block.firstSeq + block.entries <= this.fromSeq) continue;
          if (!this.write(block, storedEntries(block, Result.pending_approval))) await this.drained();
        }
      }
      this.nextBlock = next;
    } catch (error) {
      this.fail(grpc.status.UNAVAILABLE, `cannot read durable history from seq ${this.fromSeq}: ${(error as Error).message}; retry`);
      return;
    } finally {
      this.fromStore = false;
    }
    this.pump();
  }

  /** Whether block `n` can be read from memory: kept in the window with its entries, or not cut yet. */
  private inMemory(n: number): boolean {
    if (n > this.history.newestBlock) return true;
    const block = this.history.block(n);
    return block !== null && this.history.blockEntries(block) !== null;
  }

  /** Writes one block; false when the stream is full (the stall clock starts). */
  private write(block: BlockHeaderFields, entries: Buffer): boolean {
    if (this.call.write(blockMessage(block, entries))) return true;
    this.writable = false;
    this.stallTimer = setTimeout(() => this.dropStalled(), this.stallMsMax);
    return false;
  }

  /** Resolves at the next 'drain', or when the reader is closed (its catch-up then returns, closing its read). */
  private drained(): Promise<void> {
    return new Promise((resolve) => { this.drainWaiter = resolve; });
  }

  /** The reader took nothing for stallMsMax: free its stream, whatever its socket does. */
  private dropStalled(): void {
    this.stallTimer = null;
    if (this.closed || this.writable) return;
    this.close();
    dropStalledStream(this.call);
  }

  /** The stream took a write again, or closed: no stall any more, and a waiting catch-up goes on. */
  private wake(): void {
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    const waiter = this.drainWaiter;
    this.drainWaiter = null;
    waiter?.();
  }

  end(): void {
    if (this.closed) return;
    this.close();
    this.call.end();
  }

  fail(code: grpc.status, details: string): void {
    if (this.closed) return;
    this.close();
    this.call.emit('error', { code, details });
  }

  private close(): void {
    if (this.closed) return;
    this.closed = true;
    this.wake();
    this.onClose();
  }
}

type BlockHeaderFields = Pick<CommittedBlock, 'number' | 'firstSeq' | 'entries' | 'txs' | 'hash' | 'prevHash' | 'bodiesDigest' | 'results'>;

export function blockMessage(block: BlockHeaderFields, entryBodies: Buffer) {
  return {
    number: block.number, firstSeq: block.firstSeq, entries: block.entries, txs: block.txs,
    hash: block.hash, prevHash: block.prevHash, bodiesDigest: block.bodiesDigest, results: block.results, entryBodies,
  };
}
