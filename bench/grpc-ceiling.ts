/*
 * The loopback gRPC ceiling: bytes per second that grpc-js moves from a client to a server in this
 * process over 127.0.0.1, in SubmitBatch-sized messages (8190 × 128 B ≈ 1 MB) that the server only
 * decodes and answers. No engine work: it bounds what ingress can take at all on this machine.
 */

import * as grpc from '@grpc/grpc-js';
import { TransactionServiceDefinition } from '../engine/services/grpc/codec.js';
import { TxeClient, clientOptions } from '../engine/client.js';

const MESSAGE_BODIES = 8190;
const IN_FLIGHT = 4;

export async function measureGrpcBytesPerS(seconds: number): Promise<number> {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 16 << 20 });
  server.addService(TransactionServiceDefinition, {
    SubmitBatch: (call: grpc.ServerUnaryCall<{ txs?: Buffer }, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(null, { accepted: (call.request.txs?.length ?? 0) / 128 }),
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  const client = new TxeClient(`127.0.0.1:${port}`, clientOptions(16 << 20));
  const txs = Buffer.alloc(MESSAGE_BODIES * 128, 7);
  const request = { auth: 'batch-signed' as const, txs, signer: Buffer.alloc(32), signature: Buffer.alloc(64) };
  try {
    await client.submitBatch(request); // connect and warm up
    let bytes = 0;
    const started = performance.now();
    const until = started + seconds * 1000;
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < until) {
        await client.submitBatch(request);
        bytes += txs.length;
      }
    }));
    return bytes / ((performance.now() - started) / 1000);
  } finally {
    client.close();
    server.forceShutdown();
  }
}
