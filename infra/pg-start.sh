#!/usr/bin/env bash
# Start a private PostgreSQL on 127.0.0.1:$TXE_PG_PORT (default 55432) with role
# and database `txe` (password `txe`). Idempotent. PostgreSQL refuses to run as
# root, so as root every server command runs as the `postgres` OS user.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PORT="$TXE_PG_PORT"
TIMEOUT="${TXE_PG_START_TIMEOUT:-60}"

[ -n "$(pg_bin)" ] || apt_install postgresql
BIN="$(pg_bin)"
if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
  if getent group postgres >/dev/null; then grp=(-g postgres); else grp=(--user-group); fi
  useradd --system "${grp[@]}" --home-dir /var/lib/postgresql --shell /bin/bash postgres
fi

# Already up: exit fast.
if pg_running && "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; then
  log "postgres already running on :$PORT"; exit 0
fi

# --- data dir: infra/.data/pg, unless the postgres user cannot reach it (e.g. the
# repo sits under /root, mode 700); then a per-repo dir in /var/tmp. The choice
# is recorded so pg-stop.sh and later starts find the same cluster.
PGDATA="$(pg_datadir)"
if [ -z "$PGDATA" ]; then
  mkdir -p "$DATA"; chmod 755 "$DATA"
  if as_pg test -x "$DATA" -a -r "$DATA"; then PGDATA="$DATA/pg"
  else PGDATA="/var/tmp/txe-pg-$(repo_hash)"; log "repo not traversable by postgres: using $PGDATA"
  fi
  echo "$PGDATA" > "$DATA/pg.datadir"
fi
SOCK="$(pg_sockdir "$PGDATA")"
LOGF="$PGDATA/server.log"
mkdir -p "$PGDATA" "$SOCK"
[ "$(id -u)" = 0 ] && chown postgres: "$PGDATA" "$SOCK"
chmod 700 "$PGDATA" "$SOCK"

# --- initdb once. Local socket (0700 dir, owner only) is trusted; TCP needs a
# password (scram-sha-256, PostgreSQL's default hashing; node-postgres speaks it).
if [ ! -f "$PGDATA/PG_VERSION" ]; then
  log "initdb $PGDATA"
  as_pg "$BIN/initdb" -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  echo "include_if_exists = 'txe.conf'" >> "$PGDATA/postgresql.conf"
fi

# --- settings, rewritten every start so port/tuning edits here take effect.
cat > "$PGDATA/txe.conf" <<CONF
listen_addresses = '127.0.0.1'     # loopback only
port = $PORT
unix_socket_directories = '$SOCK'
unix_socket_permissions = 0700
max_connections = 100
shared_buffers = 256MB
# Real durability: benchmarks measure commit latency incl. WAL fsync.
fsync = on
synchronous_commit = on
full_page_writes = on
# replica (the default) not minimal: same WAL volume/commit path as production,
# and pg_basebackup/streaming stay possible; minimal only speeds bulk loads.
wal_level = replica
max_wal_size = 2GB
checkpoint_timeout = 15min         # fewer checkpoint spikes during benchmarks
# A group of blocks writes ~10 MB of WAL in one COPY; with the 8 MB default the backend has to
# flush WAL itself in the middle of it.
wal_buffers = 64MB
CONF
[ "$(id -u)" = 0 ] && chown postgres: "$PGDATA/txe.conf"

fail() { log "$1; last 80 lines of $LOGF:"; tail -n 80 "$LOGF" >&2 || true; exit 1; }

if ! pg_running; then
  log "starting postgres on :$PORT ($PGDATA)"
  [ -f "$LOGF" ] && mv -f "$LOGF" "$LOGF.prev"   # so a failure's log tail is this run's
  as_pg "$BIN/pg_ctl" start -D "$PGDATA" -l "$LOGF" -s -w -t "$TIMEOUT" >&2 ||
    fail "pg_ctl start failed"
fi

deadline=$((SECONDS + TIMEOUT))
until "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT"; do
  [ "$SECONDS" -lt "$deadline" ] || fail "postgres not ready after ${TIMEOUT}s"
  sleep 0.3
done

# --- role + database (idempotent), as superuser over the private socket.
as_pg "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK" -p "$PORT" -U postgres -d postgres >/dev/null <<'SQL' ||
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'txe') THEN
    CREATE ROLE txe LOGIN SUPERUSER PASSWORD 'txe';
  END IF;
END $$;
SELECT 'CREATE DATABASE txe OWNER txe' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'txe')\gexec
SQL
  fail "creating role/database txe failed"

# --- proof it serves the app: password login as txe over TCP.
PGPASSWORD=txe "$BIN/psql" -X -qtA -h 127.0.0.1 -p "$PORT" -U txe -d txe -c 'select 1' >/dev/null ||
  fail "psql as txe failed"
log "postgres ready on 127.0.0.1:$PORT"
