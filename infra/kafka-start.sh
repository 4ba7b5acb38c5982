#!/usr/bin/env bash
# Start a single-node KRaft Kafka on 127.0.0.1:$TXE_KAFKA_PORT (default 19092)
# from jars fetched by Maven (no Docker here). Idempotent; returns only once the
# broker answers a real metadata request. Log: infra/.data/kafka.log
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="$TXE_KAFKA_PORT" CPORT="$TXE_KAFKA_CONTROLLER_PORT"
TIMEOUT="${TXE_KAFKA_START_TIMEOUT:-90}"

JARS_ONLY=false
[ "${1:-}" = "--jars-only" ] && JARS_ONLY=true # infra/kafka-cluster-start.sh: fetch the jars, start nothing

# Already up (our pid alive and port answering): nothing to do.
if ! $JARS_ONLY && kafka_running && port_open "$PORT"; then log "kafka already running on :$PORT"; exit 0; fi
if ! $JARS_ONLY && ! kafka_running; then
  rm -f "$KAFKA_PID"
  port_open "$PORT" && die "port $PORT is taken by another process (set TXE_KAFKA_PORT)"
fi

command -v java >/dev/null && command -v mvn >/dev/null || apt_install default-jre-headless maven

# --- 1. jars: download once; the stamp (hash of pom.xml) marks a complete
# download, so an interrupted fetch or an edited pom triggers a refetch.
stamp="$(sha1sum "$INFRA/kafka/pom.xml" | cut -c1-40)"
if [ "$(cat "$KAFKA_LIBS/.complete" 2>/dev/null)" != "$stamp" ]; then
  log "fetching Kafka jars with Maven (first run only)"
  rm -rf "$KAFKA_LIBS" "$KAFKA_LIBS.tmp"
  # (sed: Debian's Maven 3.8 prints stray ANSI resets even with -q -B)
  mvn -q -B -f "$INFRA/kafka/pom.xml" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS.tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2
  echo "$stamp" > "$KAFKA_LIBS.tmp/.complete"
  mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
fi
$JARS_ONLY && exit 0

# --- 2. runtime config: template with this run's ports and absolute log.dirs.
mkdir -p "$KAFKA_DIR/data"
sed -e "s#^log.dirs=.*#log.dirs=$KAFKA_DIR/data#" \
    -e "s/127.0.0.1:19092/127.0.0.1:$PORT/g" -e "s/127.0.0.1:19093/127.0.0.1:$CPORT/g" \
    "$INFRA/kafka/server.properties" > "$KAFKA_DIR/server.properties"

# --- 3. format storage once (KRaft needs a cluster id + meta.properties).
if [ ! -f "$KAFKA_DIR/data/meta.properties" ]; then
  cluster_id="$("${KAFKA_TOOL[@]}" kafka.tools.StorageTool random-uuid)"
  log "formatting KRaft storage (cluster id $cluster_id)"
  "${KAFKA_TOOL[@]}" kafka.tools.StorageTool format --ignore-formatted \
    -t "$cluster_id" -c "$KAFKA_DIR/server.properties" >&2
fi

# --- 4. start detached (setsid: survives the caller's terminal/CI step; the
# pid written is the JVM's own because setsid/nohup exec rather than fork).
if ! kafka_running; then
  [ -f "$KAFKA_LOG" ] && mv -f "$KAFKA_LOG" "$KAFKA_LOG.prev"
  # Heap: a block record is ~1 MB, which G1 allocates as a humongous object when its regions are
  # 1 MB (the size it picks for a 512 MB heap); the broker then spent ~0.6 cores on GC at 27 MB/s.
  # 16 MB regions make them ordinary: ~0.2 cores, and durable TPS +8% (bench/RESULTS.md, session 4).
  kafka_jvm_start "$KAFKA_DIR" "$KAFKA_DIR/server.properties" "$KAFKA_LOG" "${TXE_KAFKA_HEAP_OPTS:--Xms1g -Xmx1g -XX:G1HeapRegionSize=16M}" > "$KAFKA_PID"
  log "kafka starting (pid $(cat "$KAFKA_PID")), waiting up to ${TIMEOUT}s"
fi

# --- 5. readiness: an open port only proves a socket; a TopicCommand --list
# (Admin client metadata round-trip) proves the broker serves requests.
fail() {
  log "$1; last 80 lines of $KAFKA_LOG:"; tail -n 80 "$KAFKA_LOG" >&2 || true; exit 1
}
pid="$(cat "$KAFKA_PID")"
deadline=$((SECONDS + TIMEOUT))
until port_open "$PORT" && timeout 30 "${KAFKA_TOOL[@]}" org.apache.kafka.tools.TopicCommand \
        --bootstrap-server "127.0.0.1:$PORT" --list >/dev/null 2>&1; do
  kill -0 "$pid" 2>/dev/null || fail "kafka process $pid exited"
  [ "$SECONDS" -lt "$deadline" ] || fail "kafka not ready after ${TIMEOUT}s"
  sleep 0.5
done
log "kafka ready on 127.0.0.1:$PORT"
