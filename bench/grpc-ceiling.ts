/*
 * The loopback gRPC ceiling: bytes per second that grpc-js moves from a client to a server in this
 * process over 127.0.0.1, in SubmitBatch-sized messages (8190 × 128 B ≈ 1 MB) that the server only
 * decodes and answers. No engine work: it bounds what ingress can take at all on this machine.
 *
 * The server is the engine's own transport (guardedServer and listenGuarded: its flow-control
 * windows, frame size, limits and role checks) with the default config. The ceiling also reads what
 * those bytes cost in CPU, both ends together (client and server share this thread), in milliseconds
 * a MB; and the same over TLS 1.3 with client certificates (TLS 1.3 only, AES-128-GCM first, as the
 * engine serves it). The difference is what TLS costs a batch on this machine, client and server,
 * where `txe bench --tls` runs both: measured in session 10 at 0.8-1.2 ms a MB both ends over Node's
 * TLS, of which AES-128-GCM itself is ~0.5 (openssl speed: 4.3 GB/s a core); the rest is the record
 * layer handing HTTP/2 16 KB at a time.
 */

import * as grpc from '@grpc/grpc-js';
import path from 'node:path';
import { TransactionServiceDefinition } from '../engine/services/grpc/codec.js';
import { TxeClient, clientCredentials, clientOptions } from '../engine/client.js';
import { defaultConfig } from '../engine/config.js';
import { guardedServer, listenGuarded } from '../engine/services/grpc/server.js';
import { TransportSecurity } from '../engine/services/security/security.js';
import { CA_CERT_FILE, NODE_CERT_FILE, NODE_KEY_FILE, clientTlsFiles } from '../engine/services/security/certs.js';

const MESSAGE_BODIES = 8190;
const IN_FLIGHT = 4;
export const BYTES_PER_MB = 1e6; // the MB of cpuMsPerMb (tls-cost.ts reads it the same way)

export interface GrpcCeiling {
  bytesPerS: number;
  cpuMsPerMb: number; // CPU of client and server together (one thread), per MB of batch bytes
}

/**
 * `certDir`: TLS 1.3 with mTLS from the development certificates there (`txe certs`: ca.crt, node.*,
 * client.bench.*), else plaintext.
 */
export async function measureGrpcCeiling(seconds: number, certDir: string | null = null): Promise<GrpcCeiling> {
  const config = defaultConfig();
  if (certDir !== null) Object.assign(config, { tlsCertFile: path.join(certDir, NODE_CERT_FILE), tlsKeyFile: path.join(certDir, NODE_KEY_FILE), tlsClientCaFile: path.join(certDir, CA_CERT_FILE) });
  const security = new TransportSecurity(config);
  const server = guardedServer(config, security);
  server.addService(TransactionServiceDefinition, {
    SubmitBatch: (call: grpc.ServerUnaryCall<{ txs?: Buffer }, unknown>, callback: grpc.sendUnaryData<unknown>) => callback(null, { accepted: (call.request.txs?.length ?? 0) / 128 }),
  });
  const port = await listenGuarded(server, '127.0.0.1', 0, config, security);
  const client = new TxeClient(`127.0.0.1:${port}`, clientOptions(16 << 20), clientCredentials(certDir === null ? null : clientTlsFiles(certDir, 'bench')));
  const txs = Buffer.alloc(MESSAGE_BODIES * 128, 7);
  const request = { auth: 'batch-signed' as const, txs, signer: Buffer.alloc(32), signature: Buffer.alloc(64) };
  try {
    await client.submitBatch(request); // connect (and handshake) and warm up
    let bytes = 0;
    const cpuStart = process.cpuUsage();
    const started = performance.now();
    const until = started + seconds * 1000;
    await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
      while (performance.now() < until) {
        await client.submitBatch(request);
        bytes += txs.length;
      }
    }));
    const cpu = process.cpuUsage(cpuStart);
    return { bytesPerS: bytes / ((performance.now() - started) / 1000), cpuMsPerMb: (cpu.user + cpu.system) / 1000 / (bytes / BYTES_PER_MB) };
  } finally {
    client.close();
    server.forceShutdown();
    security.close();
  }
}

export async function measureGrpcBytesPerS(seconds: number): Promise<number> {
  return (await measureGrpcCeiling(seconds)).bytesPerS;
}
