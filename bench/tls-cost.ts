/*
 * What TLS cost a `txe bench --tls` run, from the transport ceilings measured in the same run
 * (grpc-ceiling.ts): the CPU a MB of batches costs over TLS 1.3 + mTLS less the same over plaintext,
 * both ends, times the MB/s the run moved, is the cores TLS took. Against the cores the engine and
 * the load generator used together, that is TLS's share of the run. Where both share one machine's
 * cores and a max run is CPU-bound, a plaintext run could use that share for batches: it would
 * reach 1 / (1 - share) of this run's TPS, so this run is expected at (1 - share) of it. That is
 * the ratio issue 12 targets (>= 0.85), bounded here by the machine and Node's TLS, not by the engine.
 */

import { BYTES_PER_MB, type GrpcCeiling } from './grpc-ceiling.js';

export interface TlsCost {
  extra_cpu_ms_per_mb: number; // both ends, TLS less plaintext
  cores: number; // what TLS took at this run's MB/s
  share_of_run_cpu: number | null; // of engine + load generator cores; null when the engine's are unknown (--target)
  expected_fraction_of_plain: number | null; // 1 - share: a CPU-bound plaintext run on the same cores
}

export function tlsCostOf(transport: { plain: GrpcCeiling; tls: GrpcCeiling | null }, bytesPerS: number, cores: { engine: number | null; loadgen: number }): TlsCost | null {
  if (transport.tls === null) return null;
  const extra = transport.tls.cpuMsPerMb - transport.plain.cpuMsPerMb;
  const tlsCores = ((bytesPerS / BYTES_PER_MB) * extra) / 1000;
  const runCores = cores.engine === null ? null : cores.engine + cores.loadgen;
  const share = runCores === null || runCores <= 0 ? null : tlsCores / runCores;
  return {
    extra_cpu_ms_per_mb: round3(extra),
    cores: round3(tlsCores),
    share_of_run_cpu: share === null ? null : round3(share),
    expected_fraction_of_plain: share === null ? null : round3(1 - share),
  };
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
