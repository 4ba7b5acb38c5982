/*
 * The self-contained HTML report of one `txe bench` run: headline figures, a latency percentile
 * plot on a log percentile axis (as HdrHistogram's plotter draws it), TPS over time, the engine's
 * per-stage breakdown, the ceilings, the command line and the machine. One file, no network: the
 * data is embedded as JSON and an inline script draws the charts as SVG when the page loads.
 */

import type { Histogram } from 'hdr-histogram-js';

export interface PercentilePoint { percentile: number; ms: number }

/** Points for the percentile plot: 0, 90, 99, 99.9 … up to the highest recorded value. */
export function percentilePoints(h: Histogram): PercentilePoint[] {
  const points: PercentilePoint[] = [];
  for (let k = 0; k <= 60; k++) {
    const percentile = 100 * (1 - 10 ** (-k / 10));
    points.push({ percentile, ms: h.getValueAtPercentile(percentile) / 1000 });
    if (percentile >= 99.9999) break;
  }
  return points;
}

export function renderReport(report: Record<string, unknown>, points: PercentilePoint[]): string {
  const data = JSON.stringify({ report, points }).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>txe bench: ${escape(String(report.mode))} ${escape(String(report.tps))} TPS</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}
h1{font-size:20px} h2{font-size:16px;margin-top:28px} table{border-collapse:collapse} td,th{padding:3px 10px;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left} code{background:#f4f4f4;padding:1px 4px} svg{background:#fafafa;border:1px solid #ddd}
.axis{stroke:#999} .line{fill:none;stroke:#1f6feb;stroke-width:2} .bar{fill:#1f6feb} text{font-size:11px;fill:#444}
</style></head><body>
<h1>txe bench report</h1>
<p id="command"></p>
<h2>Headline</h2><table id="headline"></table>
<h2>Batch latency by percentile</h2><svg id="percentiles" width="900" height="320" role="img" aria-label="latency percentile plot"></svg>
<h2>Committed TPS over time</h2><svg id="tps" width="900" height="220" role="img" aria-label="TPS over time"></svg>
<h2>Engine stages (ms, from GetStats)</h2><table id="stages"></table>
<h2>Ceilings measured in the same run</h2><table id="ceilings"></table>
<h2>Machine</h2><table id="machine"></table>
<script id="data" type="application/json">${data}</script>
<script>
const { report: r, points } = JSON.parse(document.getElementById('data').textContent);
const el = (tag, attrs, text) => { const e = document.createElementNS('http://www.w3.org/2000/svg', tag); for (const k in attrs) e.setAttribute(k, attrs[k]); if (text !== undefined) e.textContent = text; return e; };
const rows = (id, pairs) => { document.getElementById(id).innerHTML = pairs.map(([k, v]) => '<tr><td>' + k + '</td><td>' + v + '</td></tr>').join(''); };
document.getElementById('command').innerHTML = '<code></code> at ' + r.at;
document.querySelector('#command code').textContent = r.command;
const l = r.latency_ms;
rows('headline', [['mode / ack / sinks', r.mode + ' / ' + r.ack + ' / ' + r.sinks], ['batch, streams, lanes', r.batch_size + ', ' + r.streams + ', ' + r.lanes],
  ['offered TPS', r.offered_tps], ['committed TPS', Number(r.tps).toLocaleString()], ['committed / rejected / errors', r.txs_committed + ' / ' + r.txs_rejected + ' / ' + r.errors],
  ['latency p50 / p90 / p95 / p99 / p99.9 / max (ms)', [l.p50, l.p90, l.p95, l.p99, l.p999, l.max].join(' / ')], ['corrected for coordinated omission', r.latency_corrected_for_coordinated_omission],
  ['CPU cores: engine / load generator / machine', (r.cpu_cores_used || {}).engine + ' / ' + (r.cpu_cores_used || {}).loadgen + ' / ' + (r.cpu_cores_used || {}).machine],
  ['CPU cores of the targets on this machine', (r.cpu_cores_used || {}).targets ? Object.entries(r.cpu_cores_used.targets).map(([k, v]) => k + ' ' + v).join(', ') + '; Kafka ' + r.cpu_cores_used.kafka + ', etcd ' + r.cpu_cores_used.etcd + ', NGINX ' + r.cpu_cores_used.nginx : 'none measured'],
  ['load generator ceiling TPS', r.load_generator && r.load_generator.ceiling_tps !== null ? Number(r.load_generator.ceiling_tps).toLocaleString() : 'not measured'],
  ['verdict', r.verdict]].concat(r.offered_rate_verdict ? [['offered rate', r.offered_rate_verdict]] : [])
  .concat(r.tls_cost ? [['TLS: extra CPU ms a MB (both ends) / share of the run CPU / expected fraction of plaintext', [r.tls_cost.extra_cpu_ms_per_mb, r.tls_cost.share_of_run_cpu, r.tls_cost.expected_fraction_of_plain].join(' / ')]] : []));
function chart(svg, xs, ys, opts) {
  const W = +svg.getAttribute('width'), H = +svg.getAttribute('height'), L = 60, B = 30, T = 10, R = 10;
  const xMax = Math.max(...xs), yMax = Math.max(...ys, 1e-9);
  const X = (x) => L + (W - L - R) * (x / (xMax || 1)), Y = (y) => H - B - (H - B - T) * (y / yMax);
  svg.appendChild(el('line', { x1: L, y1: H - B, x2: W - R, y2: H - B, class: 'axis' }));
  svg.appendChild(el('line', { x1: L, y1: T, x2: L, y2: H - B, class: 'axis' }));
  for (let i = 0; i <= 4; i++) { const y = yMax * i / 4; svg.appendChild(el('text', { x: 4, y: Y(y) + 4 }, y.toPrecision(3))); }
  (opts.ticks || []).forEach(([x, label]) => svg.appendChild(el('text', { x: X(x) - 10, y: H - 12 }, label)));
  if (opts.bars) xs.forEach((x, i) => svg.appendChild(el('rect', { class: 'bar', x: X(x) - 3, y: Y(ys[i]), width: 6, height: H - B - Y(ys[i]) })));
  else svg.appendChild(el('polyline', { class: 'line', points: xs.map((x, i) => X(x) + ',' + Y(ys[i])).join(' ') }));
  svg.appendChild(el('text', { x: W - 200, y: T + 12 }, opts.label));
}
const nines = points.map((p) => Math.log10(1 / Math.max(1e-7, 1 - p.percentile / 100)));
chart(document.getElementById('percentiles'), nines, points.map((p) => p.ms), { label: 'ms at percentile (log axis)', ticks: [[0, '0%'], [1, '90%'], [2, '99%'], [3, '99.9%'], [4, '99.99%'], [5, '99.999%']].filter(([x]) => x <= Math.max(...nines)) });
const tps = r.tps_per_second || [];
chart(document.getElementById('tps'), tps.map((_, i) => i + 1), tps, { bars: true, label: 'committed TPS per second', ticks: tps.map((_, i) => [i + 1, String(i + 1)]).filter((_, i) => i % Math.ceil(tps.length / 10 || 1) === 0) });
const stages = r.engine_stages_ms || {};
document.getElementById('stages').innerHTML = '<tr><th>stage</th><th>count</th><th>p50</th><th>p99</th><th>p99.9</th><th>max</th></tr>' +
  Object.entries(stages).map(([s, v]) => '<tr><td>' + s + '</td><td>' + v.count + '</td><td>' + v.p50 + '</td><td>' + v.p99 + '</td><td>' + v.p999 + '</td><td>' + v.max + '</td></tr>').join('');
const c = r.ceilings || {};
rows('ceilings', Object.entries(c).map(([k, v]) => [k, v === null || v === undefined ? 'n/a' : Number(v).toLocaleString()]).concat([['fraction of ceiling', r.fraction_of_ceiling], ['fraction of gRPC ceiling', r.fraction_of_grpc_ceiling],
  ['fraction of load generator ceiling', r.load_generator ? r.load_generator.fraction_of_ceiling : 'n/a']]));
rows('machine', Object.entries(r.machine || {}).concat(Object.entries(r.engine || {})));
document.body.setAttribute('data-rendered', 'yes');
</script></body></html>
`;
}

function escape(s: string): string {
  return s.replace(/[&<>"]/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[ch]!);
}
