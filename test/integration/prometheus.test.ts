// Proves infra/prometheus.yml against a real Prometheus (Debian's package): with the file's
// scrape job pointed at a real engine, Prometheus scrapes it and a PromQL query of a txe metric
// returns what the engine counted.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../engine/paths.js';
import { mint, signedBatch, user } from '../support/fixtures.js';
import { startTestEngine } from '../support/engine.js';

let stopEngine: () => Promise<void>;
let metricsAddress: string;
let client: Awaited<ReturnType<typeof startTestEngine>>['client'];

beforeAll(async () => {
  const started = await startTestEngine();
  ({ client } = started);
  stopEngine = started.stop;
  metricsAddress = started.engine.metrics.address;
});
afterAll(async () => stopEngine());

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

describe('infra/prometheus.yml', () => {
  it('scrapes a real engine, and PromQL reads a txe metric back', async () => {
    await client.submitBatch(signedBatch([mint(user('prom').publicKey, 1n, 5n), mint(user('prom').publicKey, 2n, 5n)]));
    const dir = mkdtempSync(path.join(os.tmpdir(), 'txe-prometheus-'));
    // The shipped file, with its target moved to this engine's port and a 1 s interval for the test.
    const config = readFileSync(path.join(repoRoot, 'infra', 'prometheus.yml'), 'utf8')
      .replace("'127.0.0.1:9464'", `'${metricsAddress}'`).replace(/scrape_interval: 5s/, 'scrape_interval: 1s');
    expect(config).toContain(metricsAddress);
    writeFileSync(path.join(dir, 'prometheus.yml'), config);
    const port = await freePort();
    const prometheus = spawn('prometheus', [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
    try {
      const deadline = Date.now() + 45_000;
      let value: string | null = null;
      while (value === null && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 500));
        const query = encodeURIComponent('txe_transactions_total{job="txe",result="committed"}');
        const body = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${query}`).then((r) => r.json()).catch(() => null) as { data?: { result?: { value: [number, string] }[] } } | null;
        value = body?.data?.result?.[0]?.value[1] ?? null;
      }
      expect(value).toBe('2');
      const targets = await fetch(`http://127.0.0.1:${port}/api/v1/targets`).then((r) => r.json()) as { data: { activeTargets: { health: string; labels: Record<string, string> }[] } };
      expect(targets.data.activeTargets[0]).toMatchObject({ health: 'up', labels: expect.objectContaining({ service: 'txe', job: 'txe' }) });
    } finally {
      prometheus.kill('SIGTERM');
    }
  }, 60_000);
});
