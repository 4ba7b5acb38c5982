// Proves the main job end to end: `txe bench` starts its own engine in a child process, drives it
// over gRPC at a fixed rate, and writes a JSON report with every field the issue names, the
// ceilings, an .hgrm distribution and an HTML report beside it (rendered in headless Chromium:
// its charts are drawn); `--compare` reads two such reports back.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { distFile } from '../../engine/paths.js';

/** The DOM of a page after headless Chromium (Debian's package, infra/ensure-chromium.sh) ran it. */
function renderInChromium(file: string): string {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'txe-chromium-'));
  return execFileSync('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--dump-dom', `file://${file}`], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'ignore'] });
}

const txe = (...args: string[]) => execFileSync(process.execPath, [distFile('cli/main.js'), ...args], { encoding: 'utf8', timeout: 120_000 });

describe('txe bench', () => {
  it('runs against its own engine and writes the report, the .hgrm and a comparison', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'txe-bench-test-'));
    const a = path.join(dir, 'a.json');
    const out = txe('bench', '--rate', '100000', '--batch', '1000', '--duration', '2', '--warmup', '0', '--json', a);
    expect(out).toMatch(/^tps [\d,]+ committed over/m);
    const r = JSON.parse(readFileSync(a, 'utf8'));
    for (const key of ['mode', 'ack', 'sinks', 'batch_size', 'streams', 'duration_s', 'offered_tps', 'tps', 'txs_committed', 'txs_rejected', 'errors', 'latency_ms', 'ceilings']) expect(r).toHaveProperty(key);
    expect(r).toMatchObject({ mode: 'batch-signed', ack: 'ordered', sinks: 'none', batch_size: 1000, offered_tps: 100000, errors: 0, txs_rejected: 0 });
    expect(r.txs_committed).toBeGreaterThan(100_000); // ~2 s at 100k TPS
    expect(r.tps).toBeGreaterThan(50_000);
    expect(r.latency_ms.p50).toBeGreaterThan(0);
    expect(r.latency_ms.p999).toBeGreaterThanOrEqual(r.latency_ms.p50);
    expect(r.ceilings.ed25519_verify_per_s_core).toBeGreaterThan(1000);
    expect(r.engine.exit_code).toBe(0);
    const html = a.replace(/\.json$/, '.html');
    const dom = renderInChromium(html);
    expect(dom).toContain('data-rendered="yes"'); // the page's script ran to the end
    expect(dom).toMatch(/<svg id="percentiles"[^>]*>.*<polyline class="line" points="[\d., ]+"/s); // the percentile curve
    expect((dom.match(/<rect class="bar"/g) ?? []).length).toBeGreaterThanOrEqual(2); // one TPS bar a second
    expect(dom).toMatch(/<td>e2e<\/td><td>\d+<\/td>/); // the engine's stages came from GetStats
    const hgrm = readFileSync(a.replace(/\.json$/, '.hgrm'), 'utf8');
    expect(hgrm).toMatch(/Value\s+Percentile\s+TotalCount/);
    expect(hgrm).toMatch(/#\[Max\s+=/);
    const b = path.join(dir, 'b.json');
    txe('bench', '--rate', '50000', '--batch', '1000', '--duration', '1', '--warmup', '0', '--json', b);
    const diff = txe('bench', '--compare', a, b);
    expect(diff).toMatch(/offered_tps \(100000 vs 50000\)/);
    expect(diff).toMatch(/^tps\s+[\d,]+\s+[\d,]+\s+-\d+\.\d%\s+worse$/m);
    expect(existsSync(b.replace(/\.json$/, '.hgrm'))).toBe(true);
    expect(r.ceilings.grpc_loopback_bytes_per_s).toBeGreaterThan(10_000_000);
  }, 120_000);

  it('txe limits measures and prints the ceilings', () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'txe-limits-')), 'limits.json');
    const out = txe('limits', '--json', file);
    expect(out).toMatch(/^Ed25519 verify .*\/s on one core/m);
    expect(out).toMatch(/^gRPC loopback, ~1 MB messages: \d+ MB\/s/m);
    const limits = JSON.parse(readFileSync(file, 'utf8'));
    expect(limits.sha256_bytes_per_s).toBeGreaterThan(100_000_000);
    expect(limits.pg_copy_binary_rows_per_s).toBeGreaterThan(10_000); // the real server, scratch database
  }, 60_000);
});
