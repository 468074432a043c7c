#!/usr/bin/env bash
# A PostgreSQL 15 cluster owned by the benchmarks (bench/voices-knn.ts): its own data directory and
# port, so that the machine's cluster on 5432 and its settings stay as they are.
#
#   bash bench/support/pg-cluster.sh start|stop|status|destroy
#
# BENCH_PG_DIR (default /work/bench-pg) and BENCH_PG_PORT (default 5544). Trust authentication on
# 127.0.0.1 only. Run as root (it acts as the `postgres` OS user) or as `postgres`. The settings
# below are the ones bench/results/voices-knn.json reports (read back from the server with SHOW).
set -euo pipefail

DIR="${BENCH_PG_DIR:-/work/bench-pg}"
PORT="${BENCH_PG_PORT:-5544}"
BIN=/usr/lib/postgresql/15/bin

as_postgres() {
  if [ "$(id -un)" = postgres ]; then bash -c "$1"; else su postgres -c "$1"; fi
}

case "${1:-}" in
  start)
    if [ ! -f "$DIR/PG_VERSION" ]; then
      mkdir -p "$DIR"
      chown postgres:postgres "$DIR" 2>/dev/null || true
      as_postgres "$BIN/initdb -D '$DIR' -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null"
      cat >>"$DIR/postgresql.conf" <<CONF
# bench/support/pg-cluster.sh
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
max_connections = 50
shared_buffers = 4GB
effective_cache_size = 12GB
maintenance_work_mem = 4GB
work_mem = 64MB
max_parallel_maintenance_workers = 2
max_parallel_workers_per_gather = 1
max_wal_size = 16GB
checkpoint_timeout = 30min
wal_buffers = 64MB
jit = off
random_page_cost = 1.1
CONF
      echo "host all all 127.0.0.1/32 trust" >"$DIR/pg_hba.conf"
      echo "local all all trust" >>"$DIR/pg_hba.conf"
    fi
    if ! as_postgres "$BIN/pg_ctl -D '$DIR' status >/dev/null 2>&1"; then
      as_postgres "$BIN/pg_ctl -D '$DIR' -l '$DIR/server.log' -w -t 120 start >/dev/null"
    fi
    echo "postgres://postgres@127.0.0.1:$PORT/postgres"
    ;;
  stop)
    as_postgres "$BIN/pg_ctl -D '$DIR' -m fast -w stop" || true
    ;;
  status)
    as_postgres "$BIN/pg_ctl -D '$DIR' status"
    ;;
  destroy)
    as_postgres "$BIN/pg_ctl -D '$DIR' -m fast -w stop" 2>/dev/null || true
    rm -rf "$DIR"
    ;;
  *)
    echo "usage: bash bench/support/pg-cluster.sh start|stop|status|destroy" >&2
    exit 2
    ;;
esac
