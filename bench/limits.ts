/*
 * `txe limits`: this machine's ceilings, each measured on its own with nothing else running —
 * Ed25519 verifies per second (one core, all cores), SHA-256 bytes per second, loopback gRPC bytes
 * per second, and raw PostgreSQL COPY BINARY rows per second into a scratch database (when
 * PostgreSQL answers at TXE_PG_URL). `txe bench` measures the same ceilings in each run.
 */

import { SingleBar, Presets } from 'cli-progress';
import { measureCeilings } from './ceilings.js';
import { measureGrpcBytesPerS } from './grpc-ceiling.js';
import { createBenchStores, measureCopyCeiling } from './stores.js';

export interface Limits {
  ed25519_verify_per_s_core: number;
  ed25519_verify_per_s_all_cores: number;
  sha256_bytes_per_s: number;
  grpc_loopback_bytes_per_s: number;
  pg_copy_binary_rows_per_s: number | null;
  pg_copy_note: string | null;
}

export async function measureLimits(progress: boolean, withPg: boolean): Promise<Limits> {
  const bar = progress ? new SingleBar({ format: '{bar} {step}', hideCursor: true }, Presets.shades_classic) : null;
  bar?.start(4, 0, { step: 'Ed25519 and SHA-256' });
  const c = await measureCeilings(1);
  bar?.update(1, { step: 'loopback gRPC' });
  const grpcBytes = await measureGrpcBytesPerS(2);
  bar?.update(2, { step: 'PostgreSQL COPY BINARY' });
  let copyRows: number | null = null;
  let note: string | null = withPg ? null : 'skipped (--no-pg)';
  if (withPg) {
    try {
      const stores = await createBenchStores(['pg']);
      try {
        copyRows = await measureCopyCeiling(stores.pgUrl!);
      } finally {
        await stores.cleanup();
      }
    } catch (error) {
      note = `PostgreSQL not measured: ${(error as Error).message} (start it with bash infra/up.sh, or set TXE_PG_URL)`;
    }
  }
  bar?.update(4, { step: 'done' });
  bar?.stop();
  return {
    ed25519_verify_per_s_core: Math.round(c.ed25519VerifyPerSCore), ed25519_verify_per_s_all_cores: Math.round(c.ed25519VerifyPerSAllCores),
    sha256_bytes_per_s: Math.round(c.sha256BytesPerS), grpc_loopback_bytes_per_s: Math.round(grpcBytes),
    pg_copy_binary_rows_per_s: copyRows === null ? null : Math.round(copyRows), pg_copy_note: note,
  };
}

export function formatLimits(l: Limits): string {
  return [
    `Ed25519 verify (node:crypto, OpenSSL): ${l.ed25519_verify_per_s_core.toLocaleString('en-US')}/s on one core, ${l.ed25519_verify_per_s_all_cores.toLocaleString('en-US')}/s on all cores`,
    `SHA-256, bulk: ${(l.sha256_bytes_per_s / 1e9).toFixed(2)} GB/s (${Math.round(l.sha256_bytes_per_s / 128 / 1e6)}M bodies/s)`,
    `gRPC loopback, ~1 MB messages: ${(l.grpc_loopback_bytes_per_s / 1e6).toFixed(0)} MB/s (${Math.round(l.grpc_loopback_bytes_per_s / 128).toLocaleString('en-US')} bodies/s)`,
    l.pg_copy_binary_rows_per_s === null ? `PostgreSQL COPY BINARY: ${l.pg_copy_note}` : `PostgreSQL COPY BINARY, logged, primary key: ${l.pg_copy_binary_rows_per_s.toLocaleString('en-US')} rows/s`,
  ].join('\n');
}
