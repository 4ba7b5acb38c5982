#!/usr/bin/env bash
# infra/kafka-cluster-stop.sh [--wipe]
# Stop every node of infra/kafka-cluster-start.sh: SIGTERM (clean shutdown), up to 30 s each, then
# SIGKILL. `--wipe` also deletes the cluster's data and id.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CLUSTER_DIR="$DATA/kafka-cluster"
pids=()
for f in "$CLUSTER_DIR"/node*.pid; do
  [ -f "$f" ] || continue
  pid="$(cat "$f")"
  if [ -n "$pid" ] && grep -qa kafka.Kafka "/proc/$pid/cmdline" 2>/dev/null; then
    log "stopping kafka cluster $(basename "$f" .pid) (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    pids+=("$pid")
  fi
  rm -f "$f"
done
for pid in ${pids[@]+"${pids[@]}"}; do
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && { log "pid $pid still alive after 30 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
done
if [ "${1:-}" = "--wipe" ]; then log "wiping kafka cluster data"; rm -rf "$CLUSTER_DIR"; fi
