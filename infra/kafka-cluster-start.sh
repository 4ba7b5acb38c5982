#!/usr/bin/env bash
# infra/kafka-cluster-start.sh [N ...]
# A KRaft Kafka cluster of $TXE_KAFKA_CLUSTER_NODES (default 3) nodes on loopback, each broker and
# controller at once, for replicated histories: topics default to replication factor 3 and
# min.insync.replicas 2, the internal topics too (consumer offsets, transaction state), so one node
# may die and acks=all writes go on. Node i listens on 127.0.0.1:$((BASE + 2(i-1))) (clients) and
# the port after it (controller); BASE is $TXE_KAFKA_CLUSTER_PORT (default 29092).
# With node numbers, starts just those (after infra/kafka-cluster-kill.sh N); without, every node
# that is not running. Idempotent; returns once every started node serves metadata, and prints
# TXE_KAFKA_BROKERS=... on stdout. Logs and data: infra/.data/kafka-cluster/.
# The single broker of infra/kafka-start.sh is separate and may run at the same time.
# Each node has a second client listener, DELAYED, on 127.0.0.1:$((BASE + 100 + 2(i-1))), that
# advertises 127.0.0.1:$((BASE + 200 + 2(i-1))) instead: a client that bootstraps there talks to
# every node through a proxy on those ports (infra/cluster-delay.sh puts Toxiproxy there to add
# network delay). Nothing listens on the advertised ports otherwise. All these ports stay below
# the kernel's ephemeral range (32768-60999), where any outgoing connection may hold one.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

NODES="${TXE_KAFKA_CLUSTER_NODES:-3}"
BASE="${TXE_KAFKA_CLUSTER_PORT:-29092}"
TIMEOUT="${TXE_KAFKA_START_TIMEOUT:-120}"
CLUSTER_DIR="$DATA/kafka-cluster"
[ "$NODES" -ge 3 ] || die "a replicated cluster needs at least 3 nodes (replication factor 3), got $NODES"

client_port() { echo $((BASE + 2 * ($1 - 1))); }
controller_port() { echo $((BASE + 2 * ($1 - 1) + 1)); }
delayed_port() { echo $((BASE + 100 + 2 * ($1 - 1))); }
delayed_advertised_port() { echo $((BASE + 200 + 2 * ($1 - 1))); }
node_pid_file() { echo "$CLUSTER_DIR/node$1.pid"; }
node_running() {
  local pid
  pid="$(cat "$(node_pid_file "$1")" 2>/dev/null)" || return 1
  [ -n "$pid" ] && grep -qa kafka.Kafka "/proc/$pid/cmdline" 2>/dev/null
}

"$INFRA/kafka-start.sh" --jars-only

voters=""
for i in $(seq "$NODES"); do voters="${voters:+$voters,}$i@127.0.0.1:$(controller_port "$i")"; done
brokers=""
for i in $(seq "$NODES"); do brokers="${brokers:+$brokers,}127.0.0.1:$(client_port "$i")"; done

mkdir -p "$CLUSTER_DIR"
# One cluster id for all nodes, kept with the data (a node formatted with another would not join).
[ -f "$CLUSTER_DIR/cluster.id" ] || "${KAFKA_TOOL[@]}" kafka.tools.StorageTool random-uuid > "$CLUSTER_DIR/cluster.id"
cluster_id="$(cat "$CLUSTER_DIR/cluster.id")"

write_properties() { # node
  local i="$1" dir="$CLUSTER_DIR/node$1"
  mkdir -p "$dir/data"
  # The single node's settings, with this node's identity, the whole quorum and replication 3 / 2.
  sed -e '/^node.id=/d' -e '/^controller.quorum.voters=/d' -e '/^listeners=/d' -e '/^advertised.listeners=/d' -e '/^log.dirs=/d' -e '/^listener.security.protocol.map=/d' \
      -e '/replication.factor=/d' -e '/min.insync.replicas=/d' -e '/min.isr=/d' -e '/^auto.leader.rebalance.enable=/d' \
      "$INFRA/kafka/server.properties" > "$dir/server.properties"
  cat >> "$dir/server.properties" <<EOF

# --- Node $i of $NODES (infra/kafka-cluster-start.sh)
node.id=$i
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(client_port "$i"),CONTROLLER://127.0.0.1:$(controller_port "$i"),DELAYED://127.0.0.1:$(delayed_port "$i")
advertised.listeners=PLAINTEXT://127.0.0.1:$(client_port "$i"),DELAYED://127.0.0.1:$(delayed_advertised_port "$i")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,DELAYED:PLAINTEXT
log.dirs=$dir/data
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
# Several nodes: give leadership back to the preferred replica after a node returns.
auto.leader.rebalance.enable=true
EOF
  if [ ! -f "$dir/data/meta.properties" ]; then
    "${KAFKA_TOOL[@]}" kafka.tools.StorageTool format --ignore-formatted -t "$cluster_id" -c "$dir/server.properties" >&2
  fi
}

start_node() { # node
  local i="$1" dir="$CLUSTER_DIR/node$1"
  node_running "$i" && return 0
  port_open "$(client_port "$i")" && die "port $(client_port "$i") is taken by another process (set TXE_KAFKA_CLUSTER_PORT)"
  write_properties "$i"
  [ -f "$dir/kafka.log" ] && mv -f "$dir/kafka.log" "$dir/kafka.log.prev"
  # 768 MB each (three share this machine); 16 MB G1 regions, as for the single broker (kafka-start.sh).
  # C1 only (TieredStopAtLevel=1): with C2, each broker's compiler threads were still burning
  # 0.06-0.14 cores minutes into a run, 0.26 cores of this 2-core machine for the three, which the
  # validators needed; C1's code costs the request threads a little more (bench/RESULTS.md, session 9).
  kafka_jvm_start "$dir" "$dir/server.properties" "$dir/kafka.log" "${TXE_KAFKA_CLUSTER_HEAP_OPTS:--Xms768m -Xmx768m -XX:G1HeapRegionSize=16M -XX:TieredStopAtLevel=1}" > "$(node_pid_file "$i")"
  log "kafka cluster node $i starting (pid $(cat "$(node_pid_file "$i")")) on 127.0.0.1:$(client_port "$i")"
}

wanted=("$@")
[ "${#wanted[@]}" -gt 0 ] || wanted=($(seq "$NODES"))
for i in "${wanted[@]}"; do
  [ "$i" -ge 1 ] && [ "$i" -le "$NODES" ] || die "no node $i in a cluster of $NODES"
  start_node "$i"
done

# Ready: every node started here answers a metadata request (the quorum needs a majority first).
deadline=$((SECONDS + TIMEOUT))
for i in "${wanted[@]}"; do
  until port_open "$(client_port "$i")" && timeout 30 "${KAFKA_TOOL[@]}" org.apache.kafka.tools.TopicCommand \
          --bootstrap-server "127.0.0.1:$(client_port "$i")" --list >/dev/null 2>&1; do
    node_running "$i" || { tail -n 60 "$CLUSTER_DIR/node$i/kafka.log" >&2; die "kafka cluster node $i exited"; }
    [ "$SECONDS" -lt "$deadline" ] || { tail -n 60 "$CLUSTER_DIR/node$i/kafka.log" >&2; die "kafka cluster node $i not ready after ${TIMEOUT}s"; }
    sleep 0.5
  done
done
log "kafka cluster ready: $brokers"
echo "TXE_KAFKA_BROKERS=$brokers"
