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
 */

import * as grpc from '@grpc/grpc-js';
import type { HistoryWindow } from '../../stages/history/history-window.js';
import type { CommittedBlock } from '../../core/block.js';
import { dropStalledStream } from './drop-stream.js';

export class CommitStream {
  private closed = false;
  private writable = true;
  private stallTimer: NodeJS.Timeout | null = null;

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
      this.clearStall();
      this.pump();
    });
    call.on('cancelled', () => this.close());
    call.on('error', () => this.close());
  }

  /** Writes blocks until the reader is caught up or its stream buffer is full. */
  pump(): void {
    while (!this.closed && this.writable && this.nextBlock <= this.history.newestBlock) {
      const block = this.history.block(this.nextBlock);
      const entries = block ? this.history.blockEntries(block) : null;
      if (block === null || entries === null) {
        this.fail(grpc.status.RESOURCE_EXHAUSTED, `reader fell behind the in-memory window at block ${this.nextBlock}; reconnect from seq ${this.history.oldestSeq} or later`);
        return;
      }
      this.nextBlock++;
      if (block.firstSeq + block.entries <= this.fromSeq) continue; // wholly before what was asked
      if (!this.call.write(blockMessage(block, entries))) {
        this.writable = false; // resumes at 'drain', from this reader's own cursor
        this.stallTimer = setTimeout(() => this.dropStalled(), this.stallMsMax);
        return;
      }
    }
  }

  /** The reader took nothing for stallMsMax: free its stream, whatever its socket does. */
  private dropStalled(): void {
    this.stallTimer = null;
    if (this.closed || this.writable) return;
    this.close();
    dropStalledStream(this.call);
  }

  private clearStall(): void {
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = null;
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
    this.clearStall();
    this.onClose();
  }
}

export function blockMessage(block: CommittedBlock, entryBodies: Buffer) {
  return {
    number: block.number, firstSeq: block.firstSeq, entries: block.entries, txs: block.txs,
    hash: block.hash, prevHash: block.prevHash, bodiesDigest: block.bodiesDigest, results: block.results, entryBodies,
  };
}
