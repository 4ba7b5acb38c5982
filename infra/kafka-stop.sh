#!/usr/bin/env bash
# Stop the Kafka started by kafka-start.sh: SIGTERM (clean shutdown), up to 30 s,
# then SIGKILL. `--wipe` also deletes its data (topics, offsets, cluster id).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

if kafka_running; then
  pid="$(cat "$KAFKA_PID")"
  log "stopping kafka (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then
    log "kafka still alive after 30 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true
  fi
fi
rm -f "$KAFKA_PID"
if [ "${1:-}" = "--wipe" ]; then log "wiping kafka data"; rm -rf "$KAFKA_DIR" "$KAFKA_LOG" "$KAFKA_LOG.prev"; fi
