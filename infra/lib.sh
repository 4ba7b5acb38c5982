# Sourced by infra/*.sh: paths, ports and helpers shared by the start/stop scripts.
# Everything generated lives in git-ignored infra/.cache (downloads, kept) and
# infra/.data (server state, `--wipe`-able).

INFRA="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$INFRA")"
DATA="$INFRA/.data"
CACHE="$INFRA/.cache"

TXE_KAFKA_PORT="${TXE_KAFKA_PORT:-19092}"
TXE_KAFKA_CONTROLLER_PORT="${TXE_KAFKA_CONTROLLER_PORT:-$((TXE_KAFKA_PORT + 1))}"
TXE_PG_PORT="${TXE_PG_PORT:-55432}"

KAFKA_LIBS="$CACHE/kafka/libs"
KAFKA_DIR="$DATA/kafka"          # runtime server.properties + data/
KAFKA_PID="$DATA/kafka.pid"
KAFKA_LOG="$DATA/kafka.log"
# CLI tools: small heap + C1 only, they live for a second or two.
KAFKA_TOOL=(java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
  "-Dlog4j2.configurationFile=$INFRA/kafka/tools-log4j2.xml" -cp "$KAFKA_LIBS/*")

log() { echo "[infra] $*" >&2; }
die() { echo "[infra] ERROR: $*" >&2; exit 1; }

# Starts a Kafka JVM detached: kafka_jvm_start DIR PROPERTIES LOG HEAP_OPTS; prints its pid.
# setsid: it survives the caller's terminal or CI step; the pid is the JVM's own, because the
# subshell execs setsid, which execs nohup, which execs java (nothing forks).
kafka_jvm_start() {
  # shellcheck disable=SC2086 # HEAP_OPTS is a list of JVM flags
  (cd "$1" && exec setsid nohup java $4 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
      "-Dlog4j2.configurationFile=$INFRA/kafka/log4j2.xml" \
      -cp "$KAFKA_LIBS/*" kafka.Kafka "$2" >"$3" 2>&1 </dev/null) &
  echo "$!"
}

# Does anything accept TCP on 127.0.0.1:$1? (bash /dev/tcp: no nc needed)
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# Fresh machines may lack packages; CI runs as root so apt-get works. The lock
# timeout matters because up.sh starts PG and Kafka (both may install) in parallel.
apt_install() {
  [ "$(id -u)" = 0 ] || die "missing packages ($*) and not root: install them first"
  log "installing $* with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=300 update -qq >&2
  apt-get -o DPkg::Lock::Timeout=300 install -y -qq "$@" >&2
}

# Kafka is "running" only if the pid file names a live kafka.Kafka JVM
# (guards against a stale pid file whose pid was reused).
kafka_running() {
  local pid
  pid="$(cat "$KAFKA_PID" 2>/dev/null)" || return 1
  [ -n "$pid" ] && grep -qa kafka.Kafka "/proc/$pid/cmdline" 2>/dev/null
}

# --- PostgreSQL -------------------------------------------------------------
# Newest installed server binaries (Debian keeps them off PATH).
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

# PostgreSQL refuses to run as root: as root we act as the `postgres` OS user,
# as any other user we simply run as ourselves.
# cd / first: postgres may not be allowed into the caller's cwd (noisy warnings).
as_pg() {
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

repo_hash() { printf %s "$REPO" | sha1sum | cut -c1-10; }

# The data dir's path is recorded by pg-start.sh in $DATA/pg.datadir, because it
# is not always infra/.data/pg (see pg-start.sh). Empty if never started.
pg_datadir() { cat "$DATA/pg.datadir" 2>/dev/null || true; }

# Unix socket paths are limited to ~107 bytes; use the (0700) data dir when its
# path is short enough, else a private dir in /tmp.
pg_sockdir() {
  local d="$1"
  if [ "${#d}" -le 80 ]; then echo "$d"; else echo "/tmp/txe-pgsock-$(repo_hash)"; fi
}

pg_running() {
  local d bin
  d="$(pg_datadir)"; bin="$(pg_bin)"
  [ -n "$d" ] && [ -n "$bin" ] && [ -f "$d/postmaster.pid" ] &&
    as_pg "$bin/pg_ctl" status -D "$d" >/dev/null 2>&1
}

# Run several infra scripts at once (2 cores: JVM start and initdb overlap well);
# fails if any of them failed.
run_parallel() {
  local pids=() p rc=0 s
  for s in "$@"; do "$INFRA/$s" & pids+=("$!"); done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return "$rc"
}

print_env() {
  echo "TXE_PG_URL=postgres://txe:txe@127.0.0.1:$TXE_PG_PORT/txe"
  echo "TXE_KAFKA_BROKERS=127.0.0.1:$TXE_KAFKA_PORT"
}
