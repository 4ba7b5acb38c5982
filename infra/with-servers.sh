#!/usr/bin/env bash
# infra/with-servers.sh CMD [ARGS...]
# Start whatever of PostgreSQL/Kafka is not already running, run CMD with
# TXE_PG_URL / TXE_KAFKA_BROKERS exported, then stop only the servers this
# script started (also on failure or Ctrl-C) and exit with CMD's exit code.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
[ "$#" -gt 0 ] || die "usage: infra/with-servers.sh CMD [ARGS...]"

started=()
cleanup() {
  local s
  for s in ${started[@]+"${started[@]}"}; do "$INFRA/$s-stop.sh" || true; done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Recorded before starting, so a half-started server is still stopped.
pg_running || started+=(pg)
kafka_running || started+=(kafka)
# Even servers already running get their (fast, idempotent) start: it checks readiness.
run_parallel pg-start.sh kafka-start.sh || die "servers failed to start"

while IFS= read -r kv; do export "$kv"; done < <(print_env)
rc=0
"$@" || rc=$?
exit "$rc"
