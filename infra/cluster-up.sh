#!/usr/bin/env bash
# infra/cluster-up.sh: the four-validator cluster of issue 13 on loopback (engine/cluster/):
#   etcd (Debian's etcd-server)     127.0.0.1:23790       leader election, the live validator set
#   Kafka KRaft, 3 nodes            127.0.0.1:29092,94,96 the blocks and attestations topics (RF 3)
#   validators 1-4 (txe validator)  fronts 127.0.0.1:7101-7104, leader engine 7111-7114, metrics 9101-9104
#   NGINX (Debian's nginx-light)    127.0.0.1:7100        TCP proxy (stream) over the live validators' fronts
#   with TXE_CLUSTER_DELAY_MS=N: Toxiproxy 127.0.0.1:18474, N ms between validators (cluster-delay.sh)
# mTLS on every port: fronts, leader engines and metrics serve TLS 1.3 and authorize each caller by
# the role in its client certificate; clients take theirs from infra/.data/cluster/tls/
# (client.submitter.*, client.operator.*), or pass --cluster FILE to txe bench and txe cluster
# status. TXE_CLUSTER_TLS=0: plaintext on loopback, to measure what TLS costs.
# Prints TXE_CLUSTER_TARGETS, TXE_CLUSTER_FRONT, TXE_KAFKA_BROKERS, TXE_CLUSTER_DIR and
# TXE_CLUSTER_FILE on stdout (logs on stderr),
# so `set -a; eval "$(infra/cluster-up.sh)"; set +a` works. Data and logs: infra/.data/cluster/.
# Needs `npm run build` first. infra/cluster-down.sh stops all of it (--wipe: and deletes the data).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/cluster-lib.sh"

command -v etcd >/dev/null 2>&1 || apt_install --no-install-recommends etcd-server
command -v nginx >/dev/null 2>&1 || apt_install --no-install-recommends nginx-light
[ -f "$NGINX_MODULES/ngx_stream_module.so" ] || apt_install --no-install-recommends libnginx-mod-stream
[ -f "$REPO/dist/cli/main.js" ] || die "dist/cli/main.js is missing: run npm run build first"
mkdir -p "$CLUSTER"

if ! etcd_running; then
  port_open "$ETCD_PORT" && die "port $ETCD_PORT is taken by another process"
  (cd "$CLUSTER" && exec setsid nohup etcd --name txe --data-dir "$CLUSTER/etcd" \
      --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
      --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
      --initial-cluster "txe=http://127.0.0.1:$ETCD_PEER_PORT" >"$CLUSTER/etcd.log" 2>&1 </dev/null) &
  echo "$!" > "$CLUSTER/etcd.pid"
  log "etcd starting (pid $(cat "$CLUSTER/etcd.pid")) on 127.0.0.1:$ETCD_PORT"
fi
brokers_line="$("$INFRA/kafka-cluster-start.sh")"
for _ in $(seq 100); do port_open "$ETCD_PORT" && break; sleep 0.2; done
port_open "$ETCD_PORT" || { tail -n 30 "$CLUSTER/etcd.log" >&2; die "etcd did not start"; }

# TXE_CLUSTER_DELAY_MS (0 or more): the validators reach Kafka and each other's engines through
# Toxiproxy, with that much delay between validators (infra/cluster-delay.sh changes it later).
init_args=()
[ "${TXE_CLUSTER_TLS:-1}" = 0 ] && init_args+=(--no-tls) # plaintext between validators, to measure mTLS
if [ -n "${TXE_CLUSTER_DELAY_MS:-}" ]; then
  start_toxiproxy
  set_delay "$TXE_CLUSTER_DELAY_MS"
  init_args+=(--brokers "$(proxied_brokers)" --engine-via-port "$ENGINE_VIA_PORT" --front-via-port "$FRONT_VIA_PORT")
  [ ! -f "$CLUSTER/cluster.json" ] || grep -q "$(proxied_brokers | cut -d, -f1)" "$CLUSTER/cluster.json" || die "this cluster was made without proxies: infra/cluster-down.sh --wipe first"
fi
[ -f "$CLUSTER/cluster.json" ] || node "$REPO/dist/cli/main.js" cluster init --dir "$CLUSTER" --etcd "127.0.0.1:$ETCD_PORT" "${init_args[@]}" >&2
for i in 1 2 3 4; do start_validator "$i"; done
wait_validators 1 2 3 4
render_nginx
if ! nginx_running; then
  nginx -c "$CLUSTER/nginx.conf" -p "$CLUSTER" >&2
  log "nginx started on 127.0.0.1:$NGINX_PORT"
fi
echo "TXE_CLUSTER_TARGETS=$(targets)"
echo "TXE_CLUSTER_FRONT=127.0.0.1:$NGINX_PORT"
echo "$brokers_line"
echo "TXE_CLUSTER_DIR=$CLUSTER"
echo "TXE_CLUSTER_FILE=$CLUSTER/cluster.json"
