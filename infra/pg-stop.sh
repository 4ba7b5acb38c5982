#!/usr/bin/env bash
# Stop the PostgreSQL started by pg-start.sh (fast: rolls back open
# transactions, no waiting for clients). `--wipe` also deletes its data dir.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PGDATA="$(pg_datadir)"
if pg_running; then
  log "stopping postgres ($PGDATA)"
  as_pg "$(pg_bin)/pg_ctl" stop -D "$PGDATA" -m fast -s -w -t 60 >&2
fi
if [ "${1:-}" = "--wipe" ] && [ -n "$PGDATA" ]; then
  log "wiping postgres data $PGDATA"
  rm -rf "$PGDATA" "/tmp/txe-pgsock-$(repo_hash)" "$DATA/pg.datadir"
fi
