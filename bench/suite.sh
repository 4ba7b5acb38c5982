#!/usr/bin/env bash
# The runs behind bench/RESULTS.md: each configuration RUNS times (default 3), one JSON report per
# run, then a table of medians. Run it alone: on 2 cores anything else running skews it.
#   RUNS=3 DURATION=10 OUT=bench/out/suite bash bench/suite.sh
#   ONLY_DURABLE=1 DURABLE=1 ... also runs the durable rows (PostgreSQL and Kafka must be up)
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
DURATION=${DURATION:-10}
OUT=${OUT:-bench/out/suite}
mkdir -p "$OUT"
npm run build --silent
run() { # name, txe bench flags...
  local name=$1; shift
  for i in $(seq 1 "$RUNS"); do
    echo "== $name #$i: txe bench $*" >&2
    node --initial-old-space-size=128 dist/cli/main.js bench "$@" --duration "$DURATION" --json "$OUT/$name-$i.json" >/dev/null
  done
}
if [ -z "${ONLY_DURABLE:-}" ]; then
run batch-signed-max --mode batch-signed
run batch-signed-max-1lane --mode batch-signed --lanes 1 --streams 1
run batch-signed-half --mode batch-signed --rate "${HALF_BATCH_SIGNED:-800000}" --lanes 4
run per-tx-max --mode per-tx
run per-tx-half --mode per-tx --rate "${HALF_PER_TX:-13500}"
fi
if [ -n "${DURABLE:-}" ]; then # needs PostgreSQL and Kafka: bash infra/up.sh
  run durable-pg-kafka-max --sinks pg,kafka --lanes 16
  run durable-pg-max --sinks pg --lanes 16
  run durable-pg-kafka-half --sinks pg,kafka --lanes 16 --rate "${HALF_DURABLE:-130000}"
fi
node -e '
  const fs = require("fs"); const dir = process.argv[1];
  const groups = {};
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith(".json"))) (groups[f.replace(/-\d+\.json$/, "")] ??= []).push(JSON.parse(fs.readFileSync(dir + "/" + f)));
  const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
  console.log("| run | offered | TPS (median) | TPS (all runs) | p50 ms | p95 ms | p99 ms | p99.9 ms | fraction of ceiling | engine cores | loadgen cores | engine RSS max MiB |");
  console.log("|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|");
  for (const [name, rs] of Object.entries(groups)) {
    const l = (k) => med(rs.map((r) => r.latency_ms[k]));
    const fraction = rs[0].fraction_of_copy_ceiling ?? null;
    console.log(`| ${name} | ${rs[0].offered_tps} | ${med(rs.map((r) => r.tps))} | ${rs.map((r) => r.tps).join(", ")} | ${l("p50")} | ${l("p95")} | ${l("p99")} | ${l("p999")} | ${fraction === null ? med(rs.map((r) => r.fraction_of_ceiling)) : med(rs.map((r) => r.fraction_of_copy_ceiling)) + " of COPY (" + med(rs.map((r) => r.ceilings.pg_copy_binary_rows_per_s)) + " rows/s)"} | ${med(rs.map((r) => r.cpu_cores_used.engine))} | ${med(rs.map((r) => r.cpu_cores_used.loadgen))} | ${med(rs.map((r) => r.engine_rss_mib.max))} |`);
  }
  const c = Object.values(groups)[0][0].ceilings;
  console.log(`\nceilings (first run): Ed25519 verify ${c.ed25519_verify_per_s_core}/s one core, ${c.ed25519_verify_per_s_all_cores}/s all cores; SHA-256 ${(c.sha256_bytes_per_s / 1e9).toFixed(2)} GB/s`);
' "$OUT" | tee "$OUT/summary.md"
