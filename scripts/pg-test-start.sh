#!/usr/bin/env bash
# Start a throwaway PostgreSQL on 127.0.0.1 with trust auth, as root, without systemd.
# Usage: scripts/pg-test-start.sh            (env: PGPORT=5433 PGDATA_DIR=/tmp/kiln-pgtest PGDB=kiln_test)
# Prints DATABASE_URL on success. Stop with: runuser -u postgres -- $PGBIN/pg_ctl -D $PGDATA_DIR stop -m fast
set -euo pipefail
PGPORT="${PGPORT:-5433}"
PGDATA_DIR="${PGDATA_DIR:-/tmp/kiln-pgtest}"
PGDB="${PGDB:-kiln_test}"
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
PGBIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
# the package creates the 'postgres' system user; postgres refuses to run as root
id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql --shell /bin/bash postgres
if [ ! -s "$PGDATA_DIR/PG_VERSION" ]; then
  rm -rf "$PGDATA_DIR"; mkdir -p "$PGDATA_DIR"; chown postgres:postgres "$PGDATA_DIR"; chmod 700 "$PGDATA_DIR"
  runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
fi
SOCKDIR="$PGDATA_DIR/sock"; mkdir -p "$SOCKDIR"; chown postgres:postgres "$SOCKDIR"
if ! runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
  runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PGPORT -k $SOCKDIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off" start >/dev/null
fi
for _ in $(seq 1 60); do "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$PGPORT" && break; sleep 0.5; done
psql -h 127.0.0.1 -p "$PGPORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$PGDB'" | grep -q 1 \
  || psql -h 127.0.0.1 -p "$PGPORT" -U postgres -qc "CREATE DATABASE $PGDB"
echo "DATABASE_URL=postgres://postgres@127.0.0.1:$PGPORT/$PGDB"
