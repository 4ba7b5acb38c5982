#!/usr/bin/env bash
# infra/cluster-kill.sh N: kill -9 validator N (a crash); infra/cluster-start.sh N starts it again.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/cluster-lib.sh"
i="${1:?usage: infra/cluster-kill.sh N}"
validator_running "$i" || die "validator $i is not running"
pid="$(cat "$CLUSTER/validator-$i.pid")"
kill -KILL "$pid"
for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
rm -f "$CLUSTER/validator-$i.pid"
log "killed validator $i (pid $pid)"
