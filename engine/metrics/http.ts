/*
 * The Prometheus scrape endpoint: GET /metrics on its own HTTP port (default 9464). With TLS
 * (services/security/), the same TLS 1.3 identity as the gRPC port, rotated with it, and the
 * operator role for GET /metrics.
 */

import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { SecureContextOptions, TlsOptions } from 'node:tls';
import type { Registry } from 'prom-client';

export interface MetricsServer { address: string; close(): Promise<void> }

/** What the endpoint needs of the engine's transport security (services/security/security.ts). */
export interface MetricsTransport {
  tls: { serverOptions(): TlsOptions; onChange(listener: (options: SecureContextOptions) => void): () => void } | null;
  denial(request: http.IncomingMessage): string | null; // why this caller may not scrape, or null
}

export async function startMetricsServer(registry: Registry, host: string, port: number, transport: MetricsTransport | null = null): Promise<MetricsServer> {
  const handle = (request: http.IncomingMessage, response: http.ServerResponse) => {
    if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('txe serves Prometheus metrics at GET /metrics\n');
      return;
    }
    const refused = transport?.denial(request) ?? null;
    if (refused !== null) {
      response.writeHead(request.headers.authorization || hasPeerCertificate(request) ? 403 : 401, { 'content-type': 'text/plain' }).end(`${refused}\n`);
      return;
    }
    registry.metrics().then(
      (body) => response.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (error: Error) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`metrics failed: ${error.message}\n`),
    );
  };
  const tls = transport?.tls ?? null;
  const server = tls === null ? http.createServer(handle) : https.createServer(tls.serverOptions(), handle);
  const unsubscribe = tls === null ? () => undefined : tls.onChange((options) => (server as https.Server).setSecureContext(options));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error) => reject(new Error(`cannot serve metrics on ${host}:${port}: ${error.message}`)));
    server.listen(port, host, resolve);
  });
  const bound = server.address() as AddressInfo;
  return {
    address: `${host}:${bound.port}`,
    close: () => new Promise<void>((resolve) => { unsubscribe(); server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

function hasPeerCertificate(request: http.IncomingMessage): boolean {
  const socket = request.socket as { getPeerCertificate?: () => { raw?: Buffer } };
  return typeof socket.getPeerCertificate === 'function' && socket.getPeerCertificate()?.raw !== undefined;
}
