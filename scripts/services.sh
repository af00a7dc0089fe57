#!/usr/bin/env bash
# Installs (from Debian packages, when missing) and starts the servers the integration tests need, bound to
# 127.0.0.1 only, in throw-away data folders. Source it: it exports the connection variables the tests read and
# registers stop_services, which test.sh calls on exit.
#
#   DELTASYNC_TEST_PG     postgresql://postgres:…@127.0.0.1:$DELTASYNC_PG_PORT/postgres  (wal_level=logical)
#   DELTASYNC_TEST_REDIS  redis://:…@127.0.0.1:$DELTASYNC_REDIS_PORT  (with a password, no persistence)
set -euo pipefail

DELTASYNC_PG_PORT="${DELTASYNC_PG_PORT:-54329}"
DELTASYNC_REDIS_PORT="${DELTASYNC_REDIS_PORT:-56379}"
services_root="$(mktemp -d /tmp/deltasync-services.XXXXXX)"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_packages() {
  echo "services: installing $* from Debian packages" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  # policy-rc.d stops the package scripts from starting a default server (PostgreSQL on 5432, Redis on 6379).
  printf '#!/bin/sh\nexit 101\n' | as_root tee /usr/sbin/policy-rc.d >/dev/null
  as_root chmod +x /usr/sbin/policy-rc.d
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
  as_root rm -f /usr/sbin/policy-rc.d
}

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

start_postgres() {
  local bin
  bin="$(pg_bin || true)"
  if [ -z "$bin" ]; then
    install_packages postgresql postgresql-contrib
    bin="$(pg_bin)"
  fi

  local data="$services_root/pg"
  mkdir -p "$data"
  local run_as=()
  if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root: the package's postgres user owns the cluster.
    id postgres >/dev/null 2>&1 || as_root useradd --system --no-create-home postgres
    chown -R postgres "$services_root"
    chmod 755 "$services_root"
    run_as=(runuser -u postgres --)
  fi

  local password="deltasync-test"
  printf '%s\n' "$password" > "$services_root/pg.pw"
  [ "$(id -u)" = 0 ] && chown postgres "$services_root/pg.pw"
  "${run_as[@]}" "$bin/initdb" -D "$data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
    --pwfile="$services_root/pg.pw" -E UTF8 --locale=C.UTF-8 >"$services_root/initdb.log" 2>&1 \
    || { cat "$services_root/initdb.log" >&2; return 1; }
  cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $DELTASYNC_PG_PORT
unix_socket_directories = '$data'
wal_level = logical
max_replication_slots = 64
max_wal_senders = 64
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
CONF
  "${run_as[@]}" "$bin/pg_ctl" -D "$data" -l "$services_root/pg.log" -w -t 60 start >/dev/null \
    || { cat "$services_root/pg.log" >&2; return 1; }
  export DELTASYNC_PG_BIN="$bin"
  export DELTASYNC_PG_DATA="$data"
  export DELTASYNC_TEST_PG="postgresql://postgres:${password}@127.0.0.1:${DELTASYNC_PG_PORT}/postgres"
  echo "services: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$DELTASYNC_PG_PORT (wal_level=logical)" >&2
}

start_redis() {
  if ! command -v redis-server >/dev/null 2>&1; then
    install_packages redis-server
  fi

  local dir="$services_root/redis"
  mkdir -p "$dir"
  # A password, so the tests also cover keeping it out of messages; no RDB or AOF files: the data is throw-away.
  local password="deltasync-redis-test"
  redis-server --bind 127.0.0.1 --port "$DELTASYNC_REDIS_PORT" --requirepass "$password" \
    --save '' --appendonly no --dir "$dir" --daemonize yes --pidfile "$dir/redis.pid" \
    --logfile "$dir/redis.log" >/dev/null \
    || { cat "$dir/redis.log" >&2 2>/dev/null; return 1; }
  local tries=0
  until REDISCLI_AUTH="$password" redis-cli -h 127.0.0.1 -p "$DELTASYNC_REDIS_PORT" ping >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 100 ]; then
      echo "services: Redis did not answer on 127.0.0.1:$DELTASYNC_REDIS_PORT" >&2
      cat "$dir/redis.log" >&2 2>/dev/null
      return 1
    fi
    sleep 0.1
  done
  export DELTASYNC_REDIS_PID_FILE="$dir/redis.pid"
  export DELTASYNC_TEST_REDIS="redis://:${password}@127.0.0.1:${DELTASYNC_REDIS_PORT}"
  echo "services: Redis $(redis-server --version | awk '{print $3}' | sed 's/^v=//') on 127.0.0.1:$DELTASYNC_REDIS_PORT" >&2
}

stop_services() {
  if [ -n "${DELTASYNC_REDIS_PID_FILE:-}" ] && [ -f "$DELTASYNC_REDIS_PID_FILE" ]; then
    kill "$(cat "$DELTASYNC_REDIS_PID_FILE")" 2>/dev/null || true
  fi
  if [ -n "${DELTASYNC_PG_DATA:-}" ] && [ -f "$DELTASYNC_PG_DATA/postmaster.pid" ]; then
    if [ "$(id -u)" = 0 ]; then
      runuser -u postgres -- "$DELTASYNC_PG_BIN/pg_ctl" -D "$DELTASYNC_PG_DATA" -m immediate stop >/dev/null 2>&1 || true
    else
      "$DELTASYNC_PG_BIN/pg_ctl" -D "$DELTASYNC_PG_DATA" -m immediate stop >/dev/null 2>&1 || true
    fi
  fi
  rm -rf "$services_root"
}

start_postgres
start_redis
