/*
 * The engine's transport security as one object for the servers: the TLS files (or none), how
 * callers prove who they are, and the count of calls refused. Built from the config at start.
 */

import type { IncomingMessage } from 'node:http';
import * as grpc from '@grpc/grpc-js';
import type { TLSSocket } from 'node:tls';
import { Counter, type Registry } from 'prom-client';
import { isLoopbackHost, type EngineConfig } from '../../config.js';
import { denial, type CallerProof, type Denial } from './authorize.js';
import { TokenRoles } from './roles.js';
import { TlsFiles } from './tls-files.js';

type Log = (level: 'info' | 'warn', message: string, fields?: Record<string, unknown>) => void;

/** The pseudo method path GET /metrics is authorized as: the operator's StatsService. */
const METRICS_PATH = '/txe.v1.StatsService/Metrics';

export class TransportSecurity {
  readonly tls: TlsFiles | null;
  readonly proof: CallerProof;
  private denied: Counter | null = null;
  private rotations: Counter | null = null;

  constructor(config: EngineConfig, log: Log = () => undefined) {
    this.tls = config.tlsCertFile === '' ? null : new TlsFiles({ certFile: config.tlsCertFile, keyFile: config.tlsKeyFile, clientCaFile: config.tlsClientCaFile || null }, log);
    const tokens = new TokenRoles(config.authTokens);
    this.proof = config.tlsClientCaFile !== '' ? { kind: 'certificate' } : tokens.size > 0 ? { kind: 'token', tokens } : { kind: 'none' };
    if (this.tls === null) log('warn', 'plaintext gRPC and metrics: allowed on loopback only; pass --tls-cert and --tls-key for TLS 1.3', { grpcHost: config.grpcHost, loopback: isLoopbackHost(config.grpcHost) });
    if (this.proof.kind === 'none') log('warn', 'no caller authentication: every caller on this machine has every role (set tlsClientCaFile or authTokens)');
    this.tls?.watch();
  }

  /** Counts refusals on the engine's registry: txe_rpc_denied_total{code}. */
  register(registry: Registry): void {
    this.denied = new Counter({ name: 'txe_rpc_denied_total', help: 'Calls refused before their handler: UNAUTHENTICATED (no identity) or PERMISSION_DENIED (no role)', labelNames: ['code'], registers: [registry] });
    this.rotations = new Counter({ name: 'txe_key_rotations_total', help: 'Keys and certificates taken into service without a restart: tls_certificate, batch_signer, issuer', labelNames: ['key'], registers: [registry] });
    this.tls?.onChange(() => this.countRotation('tls_certificate'));
  }

  countRotation(key: 'tls_certificate' | 'batch_signer' | 'issuer'): void {
    this.rotations?.inc({ key });
  }

  countDenied(d: Denial): void {
    this.denied?.inc({ code: d.code === grpc.status.UNAUTHENTICATED ? 'UNAUTHENTICATED' : 'PERMISSION_DENIED' });
  }

  /** Why a GET /metrics may not be answered (it needs the operator role), or null. */
  denial(request: IncomingMessage): string | null {
    const socket = request.socket as TLSSocket;
    const cert = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
    const refused = denial(METRICS_PATH, this.proof, cert, request.headers.authorization);
    if (refused !== null) this.countDenied(refused);
    return refused === null ? null : refused.details.replace(METRICS_PATH, 'GET /metrics');
  }

  /** SIGHUP: read the certificate files now. */
  reload(): boolean {
    return this.tls?.reload('reload requested') ?? false;
  }

  close(): void {
    this.tls?.close();
  }
}
