/*
 * The null server: txe.v1.TransactionService (SubmitStream and SubmitBatch) with nothing behind it.
 * Every batch is answered at once with a well-formed SubmitBatchResponse: every transaction
 * committed, consecutive seqs, one block per batch. No verification, no state, no ring. It exists so
 * `txe bench` can measure what its own load generator can push through a real loopback gRPC socket
 * (bench/loadgen-ceiling.ts); it runs in its own process (null-server-main.ts) so it never shares
 * the generator's event loop, and it is part of bench/, never of the engine.
 *
 * It copies the engine's transport settings (engine/services/grpc/server.ts): the same message size
 * limits and the same widened HTTP/2 flow-control windows, so the generator meets the same transport
 * here as against an engine with the default config.
 *
 * Cost per batch: one protobuf decode (txs stays a view into the received buffer) and one encode of
 * an 8 KB response whose results are a shared, pre-filled buffer; a few µs against the ~1 ms that
 * grpc-js takes to move a 1 MB batch.
 */

import type { EventEmitter } from 'node:events';
import type * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { defaultConfig, messageBytesMax } from '../engine/config.js';
import { Result } from '../engine/core/result.js';
import { BODY_BYTES, SIGNED_RECORD_BYTES } from '../engine/core/record.js';
import { AuthModeWire, DecodeError, TransactionServiceDefinition, type SubmitBatchRequestWire, type SubmitBatchResponseWire, type U64 } from '../engine/services/grpc/codec.js';

export interface NullServer { port: number; stop(): Promise<void> }

// The largest HTTP/2 frame (2^24 - 1), as the engine sets it: a 1 MB batch arrives in a few frames.
const HTTP2_FRAME_BYTES_MAX = 16_777_215;

export async function startNullServer(host = '127.0.0.1', port = 0): Promise<NullServer> {
  const config = defaultConfig();
  const server = new grpc.Server({
    'grpc.max_receive_message_length': messageBytesMax(config),
    'grpc.max_send_message_length': messageBytesMax(config),
    'grpc.max_concurrent_streams': 1024,
  });
  const answer = new NullAnswerer(config.batchTxsMax);
  server.addService(TransactionServiceDefinition, {
    SubmitBatch: (call: grpc.ServerUnaryCall<unknown, unknown>, callback: grpc.sendUnaryData<unknown>) => {
      if (call.request instanceof DecodeError) return callback({ code: grpc.status.INVALID_ARGUMENT, details: call.request.message });
      callback(null, answer.of(call.request as SubmitBatchRequestWire));
    },
    SubmitStream: (call: grpc.ServerDuplexStream<unknown, unknown>) => {
      call.on('data', (raw: unknown) => {
        const response = raw instanceof DecodeError ? answer.failed(grpc.status.INVALID_ARGUMENT, raw.message) : answer.of(raw as SubmitBatchRequestWire);
        // As the engine does: a client that does not read its answers stops being read.
        if (!call.write(response)) call.pause();
      });
      call.on('drain', () => call.resume());
      call.on('end', () => call.end());
      call.on('error', () => undefined); // a client that goes away mid-stream is not this server's problem
    },
  });
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (error, p) => (error ? reject(error) : resolve(p)));
  });
  widenFlowControlWindows(server, config.flowControlWindowBytes);
  return {
    port: bound,
    // Nothing to drain: every batch was answered as it arrived.
    stop: async () => server.forceShutdown(),
  };
}

/** Answers batches: all committed, seqs consecutive across every stream, one block per batch. */
class NullAnswerer {
  private seqNext = 1;
  private blockNext = 1;
  // Every answer of n transactions shares one buffer of n committed codes: it is only read by the
  // encoder, never written after it is filled. Bounded by the batch size limit, so at most
  // batchTxsMax + 1 distinct sizes are ever kept.
  private readonly resultsBySize = new Map<number, Uint8Array>();

  constructor(private readonly batchTxsMax: number) {}

  of(request: SubmitBatchRequestWire): SubmitBatchResponseWire {
    const recordBytes = request.auth === AuthModeWire.PER_TX ? SIGNED_RECORD_BYTES : BODY_BYTES;
    const txs = Math.floor((request.txs?.length ?? 0) / recordBytes);
    if (txs > this.batchTxsMax) return this.failed(grpc.status.INVALID_ARGUMENT, `batch has ${txs} transactions (max ${this.batchTxsMax})`, request.batchId);
    const firstSeq = txs > 0 ? this.seqNext : 0;
    this.seqNext += txs;
    return {
      batchId: request.batchId ?? 0, firstSeq, block: this.blockNext++, results: this.committed(txs),
      accepted: txs, rejected: 0, statusCode: 0, statusMessage: '',
    };
  }

  failed(code: grpc.status, message: string, batchId: U64 = 0): SubmitBatchResponseWire {
    return { batchId, firstSeq: 0, block: 0, results: new Uint8Array(0), accepted: 0, rejected: 0, statusCode: code, statusMessage: message };
  }

  private committed(txs: number): Uint8Array {
    let results = this.resultsBySize.get(txs);
    if (!results) {
      results = new Uint8Array(txs).fill(Result.committed);
      this.resultsBySize.set(txs, results);
    }
    return results;
  }
}

/*
 * The engine widens the HTTP/2 connection and stream receive windows past Node's 64 KB (see
 * widenFlowControlWindows in engine/services/grpc/server.ts: without it one connection caps near
 * 130 MB/s). grpc-js exposes no server option for it, so the same reach into its sessions is
 * repeated here; without it the null server would be slower than the engine's ingress.
 */
function widenFlowControlWindows(server: grpc.Server, windowBytes: number): void {
  const http2Servers = (server as unknown as { http2Servers?: Map<EventEmitter, unknown> }).http2Servers;
  if (!(http2Servers instanceof Map)) throw new Error('grpc-js internals changed: cannot widen HTTP/2 flow-control windows (bench/null-server.ts)');
  for (const http2Server of http2Servers.keys()) {
    http2Server.on('session', (session: http2.ServerHttp2Session) => {
      session.settings({ initialWindowSize: windowBytes, maxFrameSize: HTTP2_FRAME_BYTES_MAX });
      session.setLocalWindowSize(windowBytes);
    });
  }
}
