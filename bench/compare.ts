/*
 * `txe bench --compare A.json B.json`: what changed between two runs, figure by figure, as B
 * against A, with the ceilings of each run beside them (so a change of machine shows).
 */

import { readFileSync } from 'node:fs';

type Report = Record<string, unknown> & { latency_ms: Record<string, number>; ceilings: Record<string, number | null> };

const FIGURES: [string, (r: Report) => number | null, 'higher' | 'lower'][] = [
  ['tps', (r) => Number(r.tps), 'higher'],
  ['p50 ms', (r) => r.latency_ms.p50, 'lower'],
  ['p95 ms', (r) => r.latency_ms.p95, 'lower'],
  ['p99 ms', (r) => r.latency_ms.p99, 'lower'],
  ['p99.9 ms', (r) => r.latency_ms.p999, 'lower'],
  ['max ms', (r) => r.latency_ms.max, 'lower'],
  ['errors', (r) => Number(r.errors), 'lower'],
  ['txs rejected', (r) => Number(r.txs_rejected), 'lower'],
  ['Ed25519 verify/s one core (ceiling)', (r) => r.ceilings.ed25519_verify_per_s_core, 'higher'],
  ['SHA-256 bytes/s (ceiling)', (r) => r.ceilings.sha256_bytes_per_s, 'higher'],
  ['load generator TPS (ceiling)', (r) => r.ceilings.load_generator_tps ?? null, 'higher'],
  ['COPY rows/s (ceiling)', (r) => r.ceilings.pg_copy_binary_rows_per_s ?? null, 'higher'],
];

export function compareReports(fileA: string, fileB: string): string {
  const a = JSON.parse(readFileSync(fileA, 'utf8')) as Report;
  const b = JSON.parse(readFileSync(fileB, 'utf8')) as Report;
  const same = ['mode', 'ack', 'sinks', 'batch_size', 'streams', 'lanes', 'offered_tps'].filter((k) => a[k] !== b[k]);
  const lines = [`A: ${fileA} (${a.command})`, `B: ${fileB} (${b.command})`];
  if (same.length > 0) lines.push(`note: the runs differ in ${same.map((k) => `${k} (${String(a[k])} vs ${String(b[k])})`).join(', ')}`);
  lines.push('', `${'figure'.padEnd(38)} ${'A'.padStart(14)} ${'B'.padStart(14)} ${'B vs A'.padStart(9)}`);
  for (const [name, get, better] of FIGURES) {
    const va = get(a);
    const vb = get(b);
    if (va === null || vb === null || Number.isNaN(va) || Number.isNaN(vb)) continue;
    const change = va === 0 ? (vb === 0 ? '=' : 'new') : `${vb >= va ? '+' : ''}${(((vb - va) / va) * 100).toFixed(1)}%`;
    const verdict = va === vb ? '' : (vb > va) === (better === 'higher') ? '  better' : '  worse';
    lines.push(`${name.padEnd(38)} ${fmt(va).padStart(14)} ${fmt(vb).padStart(14)} ${change.padStart(9)}${verdict}`);
  }
  return lines.join('\n');
}

function fmt(v: number): string {
  return Number.isInteger(v) ? v.toLocaleString('en-US') : v.toFixed(3);
}
