#!/usr/bin/env bash
# How txe scales with verify worker cores, no sinks: `txe bench` at max rate for each worker count,
# in both auth modes, one JSON report per run plus a summary table. Made for a many-core machine
# (the device check in bench/RESULTS.md); on 2 cores use WORKERS="1 2".
#   NODE=path/to/node WORKERS="1 2 4 8 16" DURATION=5 OUT=bench/out/scaling bash bench/scaling.sh
set -euo pipefail
cd "$(dirname "$0")/.."
NODE=${NODE:-node}
WORKERS=${WORKERS:-"1 2 4 8 16"}
DURATION=${DURATION:-5}
OUT=${OUT:-bench/out/scaling}
mkdir -p "$OUT"
"$NODE" --version
for mode in per-tx batch-signed; do
  for w in $WORKERS; do
    # per-tx: enough batches in flight to keep every worker busy (a batch of 128 is two tasks).
    # batch-signed: one task per batch and the main thread is the bound, so 8 lanes as on 2 cores.
    lanes=8
    [ "$mode" = per-tx ] && lanes=$(( w * 4 > 8 ? w * 4 : 8 ))
    echo "== $mode, $w workers, $lanes lanes"
    "$NODE" --initial-old-space-size=128 dist/cli/main.js bench --mode "$mode" --workers "$w" --lanes "$lanes" --streams 4 \
      --duration "$DURATION" --warmup 1 --json "$OUT/$mode-$w.json" | tail -n +2
  done
done
"$NODE" -e '
  const fs = require("fs"); const dir = process.argv[1];
  const rows = fs.readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => JSON.parse(fs.readFileSync(dir + "/" + f)));
  rows.sort((a, b) => a.mode.localeCompare(b.mode) || a.engine.workers - b.engine.workers);
  console.log("| mode | workers | TPS | p50 ms | p99 ms | engine cores | loadgen cores | verify/s one core | verify/s all cores |");
  console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const r of rows) console.log(`| ${r.mode} | ${r.engine.workers} | ${r.tps} | ${r.latency_ms.p50} | ${r.latency_ms.p99} | ${r.cpu_cores_used.engine} | ${r.cpu_cores_used.loadgen} | ${r.ceilings.ed25519_verify_per_s_core} | ${r.ceilings.ed25519_verify_per_s_all_cores} |`);
' "$OUT" | tee "$OUT/summary.md"
