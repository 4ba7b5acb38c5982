/*
 * `txe bench --cluster`: where a block's finality went during the measured window, hop by hop, from
 * every validator's own histogram (txe_cluster_block_hop_seconds: from the leader sequencing a
 * block to read, applied, attested, final at that validator). The histograms are cumulative since
 * each validator started, over max runs and the bench's own funding too, so the report takes them
 * at the window's start and end and keeps the difference: session 9 read a tail into sums since
 * start that the measured windows did not have (bench/RESULTS.md, session 10).
 *
 * Prometheus buckets give upper bounds, not values: a p95 of 0.1 means "at most 100 ms". Metrics
 * ports need the operator role (the cluster's client.operator certificate).
 */

import https from 'node:https';
import http from 'node:http';
import fs from 'node:fs';
import { clusterClientTls, readClusterFile } from '../engine/cluster/cluster-file.js';
import type { ClientTls } from '../engine/client.js';

export const HOPS = ['read', 'applied', 'attested', 'final'] as const;
export type Hop = (typeof HOPS)[number];
type Buckets = Map<number, number>; // upper bound in seconds (Infinity for +Inf) -> cumulative count
export type HopSnapshot = Map<number, Map<Hop, Buckets>>; // validator id -> hop -> buckets

export interface HopWindow { blocks: number; p50_ms_at_most: number | null; p95_ms_at_most: number | null; p99_ms_at_most: number | null }

const SCRAPE_TIMEOUT_MS = 2_000;
const BUCKET_LINE = /^txe_cluster_block_hop_seconds_bucket\{(.*)\} (\d+)$/;

/** Every validator's hop buckets now; a validator that does not answer is left out. */
export async function snapshotHops(clusterFile: string): Promise<HopSnapshot> {
  const cluster = readClusterFile(clusterFile);
  const tls = clusterClientTls(clusterFile, 'operator');
  const out: HopSnapshot = new Map();
  await Promise.all(cluster.validators.map(async (v) => {
    const scraped = await getMetrics(v.metrics, tls).catch(() => null);
    if (scraped?.status === 200) out.set(v.id, parseHopBuckets(scraped.text));
  }));
  return out;
}

export function parseHopBuckets(text: string): Map<Hop, Buckets> {
  const hops = new Map<Hop, Buckets>();
  for (const line of text.split('\n')) {
    const m = BUCKET_LINE.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[1].matchAll(/(\w+)="([^"]*)"/g)].map((l) => [l[1], l[2]]));
    if (!(HOPS as readonly string[]).includes(labels.hop)) continue;
    const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
    let buckets = hops.get(labels.hop as Hop);
    if (!buckets) hops.set(labels.hop as Hop, (buckets = new Map()));
    buckets.set(le, Number(m[2]));
  }
  return hops;
}

/** Each validator's hops between two snapshots: how many blocks, and the bucket bound under which 50, 95 and 99% fell. */
export function hopsBetween(start: HopSnapshot, end: HopSnapshot): Record<string, Record<Hop, HopWindow>> {
  const out: Record<string, Record<Hop, HopWindow>> = {};
  for (const [id, hops] of end) {
    const row = {} as Record<Hop, HopWindow>;
    for (const hop of HOPS) {
      const after = hops.get(hop) ?? new Map<number, number>();
      const before = start.get(id)?.get(hop) ?? new Map<number, number>();
      const bounds = [...after.keys()].sort((a, b) => a - b);
      const inWindow = (le: number) => (after.get(le) ?? 0) - (before.get(le) ?? 0);
      const blocks = inWindow(Infinity);
      const at = (q: number) => {
        if (blocks === 0) return null;
        const bound = bounds.find((le) => inWindow(le) >= q * blocks)!;
        return Number.isFinite(bound) ? Math.round(bound * 1000) : null; // past the last bound: unknown
      };
      row[hop] = { blocks, p50_ms_at_most: at(0.5), p95_ms_at_most: at(0.95), p99_ms_at_most: at(0.99) };
    }
    out[String(id)] = row;
  }
  return out;
}

/** GET /metrics of a validator (or engine) at `address`, over TLS with `tls`'s files, else plain HTTP: the status and the text. */
export function getMetrics(address: string, tls: ClientTls | null): Promise<{ status: number; text: string }> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) => {
    const options = { host, port: Number(port), path: '/metrics', timeout: SCRAPE_TIMEOUT_MS };
    const onResponse = (response: http.IncomingMessage) => {
      let text = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => { text += chunk; });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
    };
    const request = tls === null ? http.get(options, onResponse)
      : https.get({ ...options, ca: fs.readFileSync(tls.caFile), cert: tls.certFile ? fs.readFileSync(tls.certFile) : undefined, key: tls.keyFile ? fs.readFileSync(tls.keyFile) : undefined }, onResponse);
    request.on('timeout', () => request.destroy(new Error(`GET ${address}/metrics: no answer in ${SCRAPE_TIMEOUT_MS} ms`)));
    request.on('error', reject);
  });
}
