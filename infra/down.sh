#!/usr/bin/env bash
# Stop PostgreSQL and Kafka (in parallel). `--wipe` also deletes their data
# (downloaded jars in infra/.cache are kept).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
pids=()
for s in pg-stop.sh kafka-stop.sh; do "$INFRA/$s" "$@" & pids+=("$!"); done
rc=0; for p in "${pids[@]}"; do wait "$p" || rc=1; done
exit "$rc"
