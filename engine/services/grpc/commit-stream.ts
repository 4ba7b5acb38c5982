/*
 * One StreamCommits reader: a consumer with its own cursor over the in-memory block window, as a
 * Disruptor consumer reads a ring. It writes the next block while the gRPC stream accepts writes,
 * stops when the stream's buffer is full, and goes on at 'drain' or when a new block is cut. No
 * block is queued per reader, so a slow reader costs at most the stream's buffer (highWaterMark
 * messages); a reader that falls out of the window gets RESOURCE_EXHAUSTED with the seq to resume
 * from, and nobody else waits for it.
 */

import * as grpc from '@grpc/grpc-js';
import type { HistoryWindow } from '../../stages/history/history-window.js';
import type { CommittedBlock } from '../../core/block.js';

export class CommitStream {
  private closed = false;

  constructor(
    private readonly call: grpc.ServerWritableStream<unknown, unknown>,
    private readonly history: HistoryWindow,
    private readonly fromSeq: number,
    private nextBlock: number,
    private readonly onClose: () => void,
  ) {
    call.on('drain', () => this.pump());
    call.on('cancelled', () => this.close());
    call.on('error', () => this.close());
  }

  /** Writes blocks until the reader is caught up or its stream buffer is full. */
  pump(): void {
    while (!this.closed && this.nextBlock <= this.history.newestBlock) {
      const block = this.history.block(this.nextBlock);
      const entries = block ? this.history.blockEntries(block) : null;
      if (block === null || entries === null) {
        this.fail(grpc.status.RESOURCE_EXHAUSTED, `reader fell behind the in-memory window at block ${this.nextBlock}; reconnect from seq ${this.history.oldestSeq} or later`);
        return;
      }
      this.nextBlock++;
      if (block.firstSeq + block.entries <= this.fromSeq) continue; // wholly before what was asked
      if (!this.call.write(blockMessage(block, entries))) return; // resumes at 'drain'
    }
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
    this.onClose();
  }
}

export function blockMessage(block: CommittedBlock, entryBodies: Buffer) {
  return {
    number: block.number, firstSeq: block.firstSeq, entries: block.entries, txs: block.txs,
    hash: block.hash, prevHash: block.prevHash, bodiesDigest: block.bodiesDigest, results: block.results, entryBodies,
  };
}
