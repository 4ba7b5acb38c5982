/*
 * The engine's TLS identity, read from files and re-read when they change, so certificates and
 * keys rotate without a restart (issue 12): every TLS_RELOAD_POLL_MS the files' size and mtime are
 * compared, and a SIGHUP (or reload()) reads them at once. A new pair is checked before it is used
 * (tls.createSecureContext refuses a key that does not match its certificate); a bad or half-written
 * pair is logged and the old one stays in service. Connections that are open keep the context
 * they were made with; new ones get the new certificate.
 *
 * TLS 1.3 only: minVersion is set on the server and on every context it is given, so a TLS 1.2
 * client is refused in the handshake. With a client CA, client certificates are required and
 * checked against it (mTLS); the roles they name are authorize.ts's business.
 */

import { readFileSync, statSync } from 'node:fs';
import tls from 'node:tls';

export const TLS_MIN_VERSION = 'TLSv1.3';
// TLS 1.3 suites in the server's order of preference. AES-128-GCM first: with AES-NI it is the
// cheapest of the three (10 AES rounds to AES-256's 14), and at ~270 MB/s of batches a second the
// record cipher is the bulk of TLS's cost on both ends (bench/RESULTS.md, session 5).
export const TLS_CIPHER_SUITES = 'TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256';
export const TLS_RELOAD_POLL_MS = 1_000;

export interface TlsPaths { certFile: string; keyFile: string; clientCaFile: string | null }

type Log = (level: 'info' | 'warn', message: string, fields?: Record<string, unknown>) => void;

export class TlsFiles {
  private options: tls.SecureContextOptions;
  private stamp: string;
  private failedStamp = '';
  private timer: NodeJS.Timeout | null = null;
  private readonly listeners = new Set<(options: tls.SecureContextOptions) => void>();
  rotations = 0;
  rotationFailures = 0;

  /** Reads and checks the files now; throws, saying which file and why, if they do not make a context. */
  constructor(readonly paths: TlsPaths, private readonly log: Log = () => undefined) {
    this.stamp = stampOf(paths);
    this.options = readContext(paths);
  }

  get requireClientCertificate(): boolean { return this.paths.clientCaFile !== null; }

  /** The current context options (certificate, key, client CA, TLS 1.3 minimum). */
  contextOptions(): tls.SecureContextOptions { return this.options; }

  /** Options for a server's constructor: the context plus what the handshake asks of clients. */
  serverOptions(): tls.TlsOptions {
    return { ...this.options, requestCert: this.requireClientCertificate, rejectUnauthorized: this.requireClientCertificate };
  }

  onChange(listener: (options: tls.SecureContextOptions) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Polls the files; unref'd, so it never holds the process open. */
  watch(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      const stamp = stampOf(this.paths);
      if (stamp !== this.stamp && stamp !== this.failedStamp) this.reload('the files changed');
    }, TLS_RELOAD_POLL_MS);
    this.timer.unref();
  }

  /** Reads the files again and, if they make a valid context, hands it to every listener. */
  reload(why: string): boolean {
    const stamp = stampOf(this.paths);
    try {
      this.options = readContext(this.paths);
    } catch (error) {
      this.failedStamp = stamp;
      this.rotationFailures++;
      this.log('warn', 'TLS files not reloaded: the old certificate stays in service', { why, error: (error as Error).message });
      return false;
    }
    this.stamp = stamp;
    this.failedStamp = '';
    this.rotations++;
    for (const listener of this.listeners) listener(this.options);
    this.log('info', 'TLS certificate reloaded: new connections use it', { why, certFile: this.paths.certFile });
    return true;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}

function readContext(paths: TlsPaths): tls.SecureContextOptions {
  const read = (file: string, what: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new Error(`cannot read the TLS ${what} ${file}: ${(error as Error).message}`);
    }
  };
  const options: tls.SecureContextOptions = {
    cert: read(paths.certFile, 'certificate'),
    key: read(paths.keyFile, 'key'),
    ca: paths.clientCaFile === null ? undefined : read(paths.clientCaFile, 'client CA'),
    minVersion: TLS_MIN_VERSION,
    ciphers: TLS_CIPHER_SUITES,
    honorCipherOrder: true,
  };
  try {
    tls.createSecureContext(options);
  } catch (error) {
    throw new Error(`TLS certificate ${paths.certFile} and key ${paths.keyFile} do not make a TLS context: ${(error as Error).message}`);
  }
  return options;
}

function stampOf(paths: TlsPaths): string {
  return [paths.certFile, paths.keyFile, paths.clientCaFile].map((file) => {
    if (file === null) return '-';
    try {
      const s = statSync(file);
      return `${s.size}:${s.mtimeMs}`;
    } catch {
      return 'missing';
    }
  }).join('|');
}
