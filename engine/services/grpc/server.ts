/*
 * The gRPC server: TransactionService, grpc.health.v1 and server reflection (so grpcurl and load
 * balancers work out of the box), with message size limits passed explicitly.
 */

import type { EventEmitter } from 'node:events';
import type * as http2 from 'node:http2';
import { constants as http2constants } from 'node:http2';
import type net from 'node:net';
import type tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as HEALTH_PROTO } from 'grpc-health-check';
import { messageBytesMax, type EngineConfig } from '../../config.js';
import type { Pipeline } from '../../pipeline.js';
import {
  APPROVAL_SERVICE_NAME, ApprovalServiceDefinition, PROTO_FILES, SERVICE_NAME, STATS_SERVICE_NAME, StatsServiceDefinition,
  TransactionServiceDefinition, WEBHOOK_SERVICE_NAME, WebhookServiceDefinition,
} from './codec.js';
import { StatsService } from './stats-service.js';
import { TransactionService } from './transaction-service.js';
import { ApprovalService } from './approval-service.js';
import type { Approvals } from '../approvals/approvals.js';
import { WebhookService } from './webhook-service.js';
import type { Webhooks } from '../webhooks/webhooks.js';
import type { PgReads } from '../../stages/commit/pg/pg-reads.js';
import { PartialMessageBudget } from './partial-messages.js';
import type { TransportSecurity } from '../security/security.js';
import { TlsServerCredentials } from '../security/grpc-credentials.js';
import { authorizer } from '../security/authorize.js';
import { CallerScopes } from '../security/scope.js';

export interface IngressServer {
  server: grpc.Server;
  port: number;
  service: TransactionService;
  stats: StatsService;
  health: HealthImplementation;
  approvals: ApprovalService;
  webhooks: WebhookService;
}

export async function startIngress(pipeline: Pipeline, config: EngineConfig, approvals: Approvals, webhooks: Webhooks | null, durable: PgReads | null, security: TransportSecurity): Promise<IngressServer> {
  const server = guardedServer(config, security);
  const service = new TransactionService(pipeline, config, durable, new CallerScopes(security.proof), () => security.countDenied({ code: grpc.status.PERMISSION_DENIED, details: '' }));
  server.addService(TransactionServiceDefinition, service.handlers());
  const stats = new StatsService(pipeline, config);
  server.addService(StatsServiceDefinition, stats.handlers());
  const approvalService = new ApprovalService(approvals, config);
  server.addService(ApprovalServiceDefinition, approvalService.handlers());
  const webhookService = new WebhookService(webhooks, config);
  server.addService(WebhookServiceDefinition, webhookService.handlers());
  const health = new HealthImplementation({
    '': 'SERVING', [SERVICE_NAME]: 'SERVING', [STATS_SERVICE_NAME]: 'SERVING', [APPROVAL_SERVICE_NAME]: 'SERVING',
    [WEBHOOK_SERVICE_NAME]: webhooks ? 'SERVING' : 'NOT_SERVING',
  });
  health.addToServer(server);
  // Reflection describes exactly the files it is given, so grpc.health.v1 must be among them:
  // without its descriptor grpcurl cannot resolve grpc.health.v1.Health/Check.
  new ReflectionService(protoLoader.loadSync([...PROTO_FILES, HEALTH_PROTO], { keepCase: false })).addToServer(server);
  const port = await listenGuarded(server, config.grpcHost, config.grpcPort, config, security);
  return { server, port, service, stats, health, approvals: approvalService, webhooks: webhookService };
}

/**
 * A gRPC server with the engine's guards, for every public port (the engine's and a cluster
 * validator's front): each call authorized by role before its handler runs
 * (security/authorize.ts; with no way for callers to prove who they are, on loopback in dev, no
 * interceptor at all), message sizes, concurrent streams, keepalive and idle limits from config.
 */
export function guardedServer(config: EngineConfig, security: TransportSecurity): grpc.Server {
  const interceptors = security.proof.kind === 'none' ? [] : [authorizer(security.proof, (_path, d) => security.countDenied(d))];
  return new grpc.Server({
    interceptors,
    'grpc.max_receive_message_length': messageBytesMax(config),
    'grpc.max_send_message_length': messageBytesMax(config),
    'grpc.max_concurrent_streams': config.grpcConcurrentStreamsMax,
    'grpc.keepalive_time_ms': config.grpcKeepaliveTimeMs,
    'grpc.keepalive_timeout_ms': config.grpcKeepaliveTimeoutMs,
    'grpc.max_connection_idle_ms': config.grpcConnectionIdleMsMax,
  });
}

/**
 * Binds a guardedServer with TLS 1.3 (and client certificates) when security has TLS files, and
 * puts on the transport's guards: wide flow-control windows, the connection caps (all, and per
 * client certificate) and the budget of unfinished messages. Resolves with the bound port.
 */
export async function listenGuarded(server: grpc.Server, host: string, port: number, config: EngineConfig, security: TransportSecurity): Promise<number> {
  const bound = await new Promise<number>((resolve, reject) => {
    const credentials = security.tls === null ? grpc.ServerCredentials.createInsecure() : new TlsServerCredentials(security.tls);
    server.bindAsync(`${host}:${port}`, credentials, (error, p) => {
      if (error) reject(new Error(`cannot listen on ${host}:${port}: ${error.message}`));
      else resolve(p);
    });
  });
  widenFlowControlWindows(server, config.flowControlWindowBytes, config.grpcFrameBytesMax);
  capConnections(server, config.grpcConnectionsMax);
  if (security.tls?.requireClientCertificate) capConnectionsPerClient(server, config.grpcConnectionsPerClientMax);
  capStreamsPerClient(server, config.grpcStreamsPerClientMax);
  const partialMessages = new PartialMessageBudget({ perConnectionBytesMax: config.grpcPartialMessageBytesPerConnectionMax, perClientBytesMax: config.grpcPartialMessageBytesPerClientMax, totalBytesMax: config.grpcPartialMessageBytesMax }, clientKeyOf);
  partialMessages.watch(http2ServersOf(server));
  return bound;
}

/*
 * HTTP/2 flow control: with Node's default 64 KB connection and stream windows, a client can have
 * only 64 KB in flight per round trip of window updates, which caps one connection near 130 MB/s
 * (~1M batch-signed TPS) here however idle the engine is. grpc-js exposes the window for clients
 * ('grpc-node.flow_control_window') but not for servers, so the server's sessions are widened as
 * they open. The window bounds what a client may have in flight before the server reads it, so it
 * stays a bounded amount of memory per connection.
 */
// Frames as large as grpcFrameBytesMax (2^24 - 1 by default): a 1 MB batch then arrives in a few
// frames, not 64 of 16 KB.
/**
 * At most `connectionsMax` client connections at once: one more is closed as it arrives, before it
 * costs a TLS or HTTP/2 session, so a flood of connections cannot take the engine's memory or
 * file descriptors from the clients it serves (grpc-js has no such limit of its own).
 */
function capConnections(server: grpc.Server, connectionsMax: number): void {
  let open = 0;
  for (const http2Server of http2ServersOf(server)) {
    http2Server.on('connection', (socket: net.Socket) => {
      if (open >= connectionsMax) {
        socket.destroy();
        return;
      }
      open++;
      socket.once('close', () => { open--; });
    });
  }
}

/**
 * At most `perClientMax` connections per client certificate (mTLS), counted once the handshake has
 * shown the certificate: one more is closed before it carries a call. A client is its certificate's
 * SHA-256 fingerprint, so two certificates are two clients even with the same name.
 */
function capConnectionsPerClient(server: grpc.Server, perClientMax: number): void {
  const shares = new ClientShares(perClientMax);
  for (const http2Server of http2ServersOf(server)) {
    http2Server.on('secureConnection', (socket: tls.TLSSocket) => {
      const client = socket.getPeerCertificate()?.fingerprint256;
      if (!client) return; // no certificate: the handshake refused it already
      if (!shares.take(client)) return void socket.destroy();
      socket.once('close', () => shares.give(client));
    });
  }
}

/**
 * At most `perClientMax` calls open at once for one client on all its connections (a client is its
 * certificate under mTLS, else its IP address): one more is refused (REFUSED_STREAM, which a gRPC
 * client sees as UNAVAILABLE and may retry) before it costs a call. Without it one client could
 * hold grpcConnectionsPerClientMax × grpcConcurrentStreamsMax calls (65,536 by default).
 */
function capStreamsPerClient(server: grpc.Server, perClientMax: number): void {
  const shares = new ClientShares(perClientMax);
  for (const http2Server of http2ServersOf(server)) {
    http2Server.on('stream', (stream: http2.ServerHttp2Stream) => {
      const client = clientKeyOf(stream.session?.socket);
      if (!shares.take(client)) return void stream.close(http2constants.NGHTTP2_REFUSED_STREAM);
      stream.once('close', () => shares.give(client));
    });
  }
}

/** How many of a bounded thing (connections, calls) each client holds; a client at its max gets no more. */
class ClientShares {
  private readonly held = new Map<string, number>(); // clients holding at least one

  constructor(private readonly perClientMax: number) {}

  take(client: string): boolean {
    const held = this.held.get(client) ?? 0;
    if (held >= this.perClientMax) return false;
    this.held.set(client, held + 1);
    return true;
  }

  give(client: string): void {
    const left = (this.held.get(client) ?? 1) - 1;
    if (left <= 0) this.held.delete(client);
    else this.held.set(client, left);
  }
}

/** Who a connection's client is, for per-client limits: its certificate's fingerprint (mTLS), else its IP address. */
export function clientKeyOf(socket: net.Socket | tls.TLSSocket | undefined): string {
  const cert = socket && typeof (socket as tls.TLSSocket).getPeerCertificate === 'function' ? (socket as tls.TLSSocket).getPeerCertificate() : undefined;
  return cert?.fingerprint256 ? `cert ${cert.fingerprint256}` : `ip ${socket?.remoteAddress ?? '?'}`;
}

function http2ServersOf(server: grpc.Server): EventEmitter[] {
  const http2Servers = (server as unknown as { http2Servers?: Map<EventEmitter, unknown> }).http2Servers;
  if (!(http2Servers instanceof Map)) throw new Error('grpc-js internals changed: cannot reach its HTTP/2 servers (engine/services/grpc/server.ts)');
  return [...http2Servers.keys()];
}

function widenFlowControlWindows(server: grpc.Server, windowBytes: number, frameBytesMax: number): void {
  for (const http2Server of http2ServersOf(server)) {
    http2Server.on('session', (session: http2.ServerHttp2Session) => {
      session.once('remoteSettings', () => undefined);
      session.settings({ initialWindowSize: windowBytes, maxFrameSize: frameBytesMax });
      session.setLocalWindowSize(windowBytes);
    });
  }
}
