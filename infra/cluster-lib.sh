#!/usr/bin/env bash
# Shared by the cluster-*.sh scripts (infra/cluster-up.sh describes the cluster).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
CLUSTER="$DATA/cluster"
ETCD_PORT="${TXE_ETCD_PORT:-23790}"
ETCD_PEER_PORT="${TXE_ETCD_PEER_PORT:-23800}"
NGINX_PORT="${TXE_CLUSTER_FRONT_PORT:-7100}"
NGINX_MODULES=/usr/lib/nginx/modules # Debian's: ngx_stream_module.so from libnginx-mod-stream
VALIDATOR_START_TIMEOUT="${TXE_VALIDATOR_START_TIMEOUT:-180}" # a restart replays the log first (up to 120 s)

pid_alive() { local pid; pid="$(cat "$1" 2>/dev/null)" || return 1; [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; }
etcd_running() { pid_alive "$CLUSTER/etcd.pid"; }
nginx_running() { pid_alive "$CLUSTER/nginx.pid"; }
validator_running() { pid_alive "$CLUSTER/validator-$1.pid"; }
front_port() { echo $((7100 + $1)); }
targets() { local t=""; for i in 1 2 3 4; do t="${t:+$t,}127.0.0.1:$(front_port "$i")"; done; echo "$t"; }

start_validator() { # id
  validator_running "$1" && return 0
  [ -f "$CLUSTER/validator-$1.log" ] && mv -f "$CLUSTER/validator-$1.log" "$CLUSTER/validator-$1.log.prev"
  # TXE_VALIDATOR_NODE_FLAGS: extra node flags, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" to profile.
  # shellcheck disable=SC2086
  (cd "$REPO" && exec setsid nohup node --initial-old-space-size=128 ${TXE_VALIDATOR_NODE_FLAGS:-} dist/cli/main.js validator --cluster "$CLUSTER/cluster.json" --id "$1" \
      >"$CLUSTER/validator-$1.log" 2>&1 </dev/null) &
  echo "$!" > "$CLUSTER/validator-$1.pid"
  log "validator $1 starting (pid $(cat "$CLUSTER/validator-$1.pid")) on 127.0.0.1:$(front_port "$1")"
}

wait_validators() { # ids...
  local deadline=$((SECONDS + VALIDATOR_START_TIMEOUT))
  for i in "$@"; do
    until grep -q '"validator started"' "$CLUSTER/validator-$i.log" 2>/dev/null; do
      validator_running "$i" || { tail -n 30 "$CLUSTER/validator-$i.log" >&2; die "validator $i exited"; }
      [ "$SECONDS" -lt "$deadline" ] || { tail -n 30 "$CLUSTER/validator-$i.log" >&2; die "validator $i not started after ${VALIDATOR_START_TIMEOUT}s"; }
      sleep 0.3
    done
  done
}

# NGINX's upstream from the validators alive in etcd; reloads a running NGINX.
render_nginx() {
  node "$REPO/dist/cli/main.js" cluster nginx --cluster "$CLUSTER/cluster.json" > "$CLUSTER/upstream.conf"
  mkdir -p "$CLUSTER/nginx-body"
  sed -e "s#@DIR@#$CLUSTER#g" -e "s#@PORT@#$NGINX_PORT#g" -e "s#@MODULES@#$NGINX_MODULES#g" "$INFRA/cluster/nginx.conf.in" > "$CLUSTER/nginx.conf"
  if nginx_running; then nginx -c "$CLUSTER/nginx.conf" -p "$CLUSTER" -s reload >&2; fi
}

# --- Network delay (infra/cluster-delay.sh): Toxiproxy in front of each Kafka node's DELAYED
# listener (infra/kafka-cluster-start.sh), of each validator's engine port, and of each front for
# the attestations validators hand each other (engine/cluster/attestation-peers.ts).
TOXIPROXY_PORT="${TXE_TOXIPROXY_PORT:-18474}"
# Ports below the kernel's ephemeral range (32768-60999), where an outgoing connection may hold one:
# the Kafka proxies on 29292-29296 (the DELAYED listeners' advertised ports, kafka-cluster-start.sh),
# the engine proxies on 7121-7124, the front proxies (attestations between validators) on 7131-7134.
toxi() {
  local out
  out="$(curl -sS --fail-with-body -X "$1" "http://127.0.0.1:$TOXIPROXY_PORT$2" ${3:+-H 'Content-Type: application/json' -d "$3"} 2>&1)" || die "toxiproxy: $1 $2 failed: $out"
}
proxied_brokers() { echo "127.0.0.1:29292,127.0.0.1:29294,127.0.0.1:29296"; }
ENGINE_VIA_PORT=7121
FRONT_VIA_PORT=7131

start_toxiproxy() {
  pid_alive "$CLUSTER/toxiproxy.pid" && return 0
  local server; server="$("$INFRA/ensure-toxiproxy.sh")"
  (exec setsid nohup "$server" -host 127.0.0.1 -port "$TOXIPROXY_PORT" >"$CLUSTER/toxiproxy.log" 2>&1 </dev/null) &
  echo "$!" > "$CLUSTER/toxiproxy.pid"
  for _ in $(seq 50); do port_open "$TOXIPROXY_PORT" && break; sleep 0.1; done
  port_open "$TOXIPROXY_PORT" || die "toxiproxy did not start (see $CLUSTER/toxiproxy.log)"
  local i
  for i in 1 2 3; do toxi POST /proxies "{\"name\":\"kafka$i\",\"listen\":\"127.0.0.1:$((29292 + 2 * (i - 1)))\",\"upstream\":\"127.0.0.1:$((29192 + 2 * (i - 1)))\"}"; done
  for i in 1 2 3 4; do toxi POST /proxies "{\"name\":\"engine$i\",\"listen\":\"127.0.0.1:$((ENGINE_VIA_PORT + i - 1))\",\"upstream\":\"127.0.0.1:$((7110 + i))\"}"; done
  for i in 1 2 3 4; do toxi POST /proxies "{\"name\":\"front$i\",\"listen\":\"127.0.0.1:$((FRONT_VIA_PORT + i - 1))\",\"upstream\":\"127.0.0.1:$((7100 + i))\"}"; done
  echo "$TOXIPROXY_PORT" > "$CLUSTER/toxiproxy.port"
  log "toxiproxy started on 127.0.0.1:$TOXIPROXY_PORT"
}

# MS/2 of latency each way on every proxy (a latency toxic per direction, replaced if there).
set_delay() {
  local half=$(( $1 / 2 )) name stream
  for name in kafka1 kafka2 kafka3 engine1 engine2 engine3 engine4 front1 front2 front3 front4; do
    for stream in upstream downstream; do
      curl -fsS -X DELETE "http://127.0.0.1:$TOXIPROXY_PORT/proxies/$name/toxics/delay_$stream" >/dev/null 2>&1 || true
      if [ "$half" -gt 0 ]; then
        toxi POST "/proxies/$name/toxics" "{\"name\":\"delay_$stream\",\"type\":\"latency\",\"stream\":\"$stream\",\"attributes\":{\"latency\":$half,\"jitter\":0}}"
      fi
    done
  done
}

stop_toxiproxy() {
  if pid_alive "$CLUSTER/toxiproxy.pid"; then kill -TERM "$(cat "$CLUSTER/toxiproxy.pid")"; fi
  rm -f "$CLUSTER/toxiproxy.pid" "$CLUSTER/toxiproxy.port"
}
