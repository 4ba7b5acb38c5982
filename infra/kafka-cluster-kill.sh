#!/usr/bin/env bash
# infra/kafka-cluster-kill.sh N: kill -9 node N of infra/kafka-cluster-start.sh (a crash, for fault
# tests); `infra/kafka-cluster-start.sh N` starts it again on its data.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
f="$DATA/kafka-cluster/node${1:?usage: infra/kafka-cluster-kill.sh N}.pid"
pid="$(cat "$f" 2>/dev/null)" || die "node $1 is not running (no $f)"
grep -qa kafka.Kafka "/proc/$pid/cmdline" 2>/dev/null || die "node $1 is not running (pid $pid)"
kill -KILL "$pid"
for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
rm -f "$f"
log "killed kafka cluster node $1 (pid $pid)"
