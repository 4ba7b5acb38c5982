#!/usr/bin/env bash
# infra/cluster-down.sh [--wipe]: stops what infra/cluster-up.sh started (validators, NGINX, etcd,
# the Kafka cluster); --wipe also deletes their data, so the next cluster-up starts a new history.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/cluster-lib.sh"
for i in 1 2 3 4; do
  if validator_running "$i"; then kill -TERM "$(cat "$CLUSTER/validator-$i.pid")" 2>/dev/null || true; fi
done
for i in 1 2 3 4; do
  for _ in $(seq 40); do validator_running "$i" || break; sleep 0.25; done
  validator_running "$i" && kill -KILL "$(cat "$CLUSTER/validator-$i.pid")" 2>/dev/null || true
  rm -f "$CLUSTER/validator-$i.pid"
done
if nginx_running; then
  pid="$(cat "$CLUSTER/nginx.pid")"
  nginx -c "$CLUSTER/nginx.conf" -p "$CLUSTER" -s stop 2>/dev/null || kill "$pid"
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
fi
if etcd_running; then kill -TERM "$(cat "$CLUSTER/etcd.pid")"; for _ in $(seq 40); do etcd_running || break; sleep 0.25; done; fi
rm -f "$CLUSTER/etcd.pid"
stop_toxiproxy
"$INFRA/kafka-cluster-stop.sh" "$@"
[ "${1:-}" = "--wipe" ] && rm -rf "$CLUSTER"
log "cluster stopped"
