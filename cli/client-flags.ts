/* The flags of the commands that call an engine or a validator as a client: how they prove who they are. */

import type { Command } from 'commander';
import type { ClientTls } from '../engine/client.js';

/** How a client command reaches a TLS engine (--tls-ca, --tls-cert, --tls-key, --token); undefined: plaintext. */
export function targetTlsOf(flags: Record<string, unknown>): ClientTls | undefined {
  const [caFile, certFile, keyFile, token] = [flags.tlsCa, flags.tlsCert, flags.tlsKey, flags.token] as (string | undefined)[];
  if (caFile === undefined) {
    if (certFile || keyFile || token) fail('--tls-cert, --tls-key and --token need --tls-ca (the engine\'s CA)');
    return undefined;
  }
  return { caFile, certFile, keyFile, token };
}

/** The client flags of the commands that call an engine. */
export function withTlsOptions(command: Command, when = ''): Command {
  return command
    .option('--tls-ca <file>', `${when}the CA of a TLS engine`)
    .option('--tls-cert <file>', `${when}a client certificate (mTLS)`)
    .option('--tls-key <file>', `${when}its key`)
    .option('--token <token>', `${when}a bearer token (TLS without mTLS)`);
}


/** A usage error: said on stderr, exit code 2. */
export function fail(message: string): never {
  console.error(`txe: ${message}`);
  process.exit(2);
}
