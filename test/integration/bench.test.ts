// Proves the main job end to end: `txe bench` starts its own engine in a child process, drives it
// over gRPC at a fixed rate, and writes a JSON report with every field the issue names, the
// ceilings (its own load generator's among them) and the verdict on which side limited the run,
// an .hgrm distribution and an HTML report beside it (rendered in headless Chromium: its charts
// are drawn); `--compare` reads two such reports back.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { distFile } from '../../engine/paths.js';
import { verdictOf } from '../../bench/verdict.js';
import { ENGINE_NODE_FLAGS } from '../../engine/engine.js';

/** The DOM of a page after headless Chromium (Debian's package, infra/ensure-chromium.sh) ran it. */
function renderInChromium(file: string): string {
  const profile = mkdtempSync(path.join(os.tmpdir(), 'txe-chromium-'));
  return execFileSync('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', `--user-data-dir=${profile}`, '--dump-dom', `file://${file}`], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'ignore'] });
}

const txe = (...args: string[]) => execFileSync(process.execPath, [...ENGINE_NODE_FLAGS, distFile('cli/main.js'), ...args], { encoding: 'utf8', timeout: 120_000 });

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
    // The engine's own figures cover the measured window only: its first reading is taken at the
    // first 100 ms tick of the window, so it counts most of the run's batches and never more.
    expect(r.engine_stages_ms.e2e.count).toBeGreaterThan(r.batches / 2);
    expect(r.engine_stages_ms.e2e.count).toBeLessThanOrEqual(r.batches + r.lanes);
    expect(r.engine_event_loop_delay_ms.count).toBeGreaterThan(500); // a 1 ms timer over ~2 s
    expect(out).toMatch(/^engine event-loop delay ms \(main thread, beyond a 1 ms timer\): p50 [\d.]+ p99 [\d.]+/m);
    const html = a.replace(/\.json$/, '.html');
    const dom = renderInChromium(html);
    expect(dom).toContain('data-rendered="yes"'); // the page's script ran to the end
    expect(dom).toMatch(/<svg id="percentiles"[^>]*>.*<polyline class="line" points="[\d., ]+"/s); // the percentile curve
    expect((dom.match(/<rect class="bar"/g) ?? []).length).toBeGreaterThanOrEqual(2); // one TPS bar a second
    expect(dom).toMatch(/<td>e2e<\/td><td>\d+<\/td>/); // the engine's stages came from GetStats
    expect(dom).toMatch(/<td>load generator ceiling TPS<\/td><td>[\d,.]+<\/td>/);
    expect(dom).toMatch(/<td>verdict<\/td><td>limited by: /);
    // Open loop: which side limited it, and whether the generator kept up; not how fast either was.
    expect(['engine', 'load_generator', 'offered_rate']).toContain(r.limited_by);
    expect(typeof r.load_generator.offered_rate_kept_up).toBe('boolean');
    expect(r.offered_rate_verdict).toMatch(/^offered rate: the load generator (kept up|fell behind) \(sent [\d,]+ of 100,000 TPS offered/);
    const hgrm = readFileSync(a.replace(/\.json$/, '.hgrm'), 'utf8');
    expect(hgrm).toMatch(/Value\s+Percentile\s+TotalCount/);
    expect(hgrm).toMatch(/#\[Max\s+=/);
    const b = path.join(dir, 'b.json');
    txe('bench', '--rate', '50000', '--batch', '1000', '--duration', '1', '--warmup', '0', '--loadgen-ceiling-s', '0', '--json', b);
    expect(JSON.parse(readFileSync(b, 'utf8'))).toMatchObject({ limited_by: 'not_measured', ceilings: { load_generator_tps: null } });
    const diff = txe('bench', '--compare', a, b);
    expect(diff).toMatch(/offered_tps \(100000 vs 50000\)/);
    expect(diff).toMatch(/^tps\s+[\d,]+\s+[\d,]+\s+-\d+\.\d%\s+worse$/m);
    expect(existsSync(b.replace(/\.json$/, '.hgrm'))).toBe(true);
    expect(r.ceilings.grpc_loopback_bytes_per_s).toBeGreaterThan(10_000_000);
    expect(r.ceilings.grpc_loopback_cpu_ms_per_mb).toBeGreaterThan(0);
    expect(r).toMatchObject({ tls: 'none', tls_cost: null, ceilings: { grpc_tls_loopback_cpu_ms_per_mb: null } });
  }, 120_000);

  it('with --tls, serves TLS 1.3 + mTLS and says what TLS took of the run, from the transport measured both ways', () => {
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'txe-bench-tls-')), 'run.json');
    const out = txe('bench', '--tls', '--rate', '100000', '--batch', '1000', '--duration', '1', '--warmup', '0', '--loadgen-ceiling-s', '0', '--json', file);
    const r = JSON.parse(readFileSync(file, 'utf8'));
    expect(r).toMatchObject({ tls: 'TLS 1.3 + mTLS', errors: 0, txs_rejected: 0 });
    expect(r.txs_committed).toBeGreaterThan(50_000);
    expect(r.ceilings.grpc_tls_loopback_cpu_ms_per_mb).toBeGreaterThan(0);
    const t = r.tls_cost;
    expect(t.extra_cpu_ms_per_mb).toBeCloseTo(r.ceilings.grpc_tls_loopback_cpu_ms_per_mb - r.ceilings.grpc_loopback_cpu_ms_per_mb, 2);
    // The cores TLS took at the run's MB/s, and their share of what engine and load generator used.
    expect(t.cores).toBeCloseTo((r.tps * 128 / 1e6) * t.extra_cpu_ms_per_mb / 1000, 2);
    expect(t.share_of_run_cpu).toBeCloseTo(t.cores / (r.cpu_cores_used.engine + r.cpu_cores_used.loadgen), 2);
    expect(t.expected_fraction_of_plain).toBeCloseTo(1 - t.share_of_run_cpu, 3);
    expect(out).toMatch(/^TLS 1\.3 \+ mTLS: the engine's transport costs [\d.]+ ms of CPU a MB against [\d.]+ in plaintext/m);
    expect(out).toMatch(/^TLS took -?[\d.]+ of the cores the engine and load generator used/m);
    const dom = renderInChromium(file.replace(/\.json$/, '.html'));
    expect(dom).toContain('data-rendered="yes"');
    expect(dom).toMatch(/<td>TLS: extra CPU ms a MB \(both ends\)[^<]*<\/td><td>-?[\d.]+ \/ -?[\d.]+ \/ -?[\d.]+<\/td>/);
  }, 120_000);

  it("measures the load generator's own ceiling in the same run and says which side limited it", () => {
    // Proves the self-check: a short closed-loop run also drives its plan against the null server
    // (a process of its own), and its JSON and text carry that ceiling and a verdict naming a side.
    // Behaviour only: on a shared 2-core machine no speed is asserted.
    const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'txe-bench-ceiling-')), 'run.json');
    const out = txe('bench', '--batch', '1000', '--duration', '1', '--warmup', '0', '--loadgen-ceiling-s', '1', '--json', file);
    const r = JSON.parse(readFileSync(file, 'utf8'));
    expect(r.ceilings.load_generator_tps).toBeGreaterThan(0);
    expect(r.load_generator.ceiling_tps).toBe(r.ceilings.load_generator_tps);
    expect(r.load_generator.fraction_of_ceiling).toBeCloseTo(r.tps / r.load_generator.ceiling_tps, 2);
    expect(['engine', 'load_generator']).toContain(r.limited_by); // closed loop: never the offered rate
    expect(r.verdict).toMatch(/^limited by: (engine|load generator) \(/);
    expect(r.offered_rate_verdict).toBeNull();
    expect(out).toMatch(/^load generator ceiling [\d,]+ TPS/m);
    expect(out).toContain(r.verdict);
  }, 60_000);

  it('verdictOf names the side from the ceiling, the event loop and the offered rate', () => {
    // Proves the rules of the verdict on fixed figures, one case per branch.
    const v = (tps: number, ceilingTps: number | null, rateTps: number | 'max', sentTps: number, elu = 0.2) =>
      verdictOf({ tps, ceilingTps, rateTps, sentTps, eventLoopUtilization: elu, ceilingEventLoopUtilization: 0.85 }).limitedBy;
    expect(v(620_000, 1_000_000, 'max', 620_000)).toBe('engine');
    expect(v(970_000, 1_000_000, 'max', 970_000)).toBe('load_generator'); // at 0.97 of its ceiling
    expect(v(500_000, 1_000_000, 'max', 500_000, 0.8)).toBe('load_generator'); // as busy as at its ceiling
    expect(v(100_000, 1_000_000, 100_000, 100_000)).toBe('offered_rate');
    expect(v(300_000, 1_000_000, 950_000, 300_000)).toBe('load_generator'); // offered 0.95 of its ceiling, sent less
    expect(v(300_000, 1_000_000, 500_000, 300_000)).toBe('engine'); // lanes waiting on answers
    expect(v(300_000, null, 'max', 300_000)).toBe('not_measured');
  });

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
