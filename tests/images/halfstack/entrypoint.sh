#!/bin/bash
# Entry point of the test-bed halfstack image (Debian packages standing in for the official
# postgres, etcd and redis images). `postgres ...` behaves like the official postgres image:
# the data directory is initialised on first start from POSTGRES_USER, POSTGRES_PASSWORD,
# POSTGRES_DB and POSTGRES_INITDB_ARGS; anything else is executed as given.
set -euo pipefail
if [ "${1:-}" = "postgres" ]; then
  PGDATA=${PGDATA:-/var/lib/postgresql/data}
  mkdir -p "$PGDATA" /run/postgresql
  chown -R postgres:postgres "$PGDATA" /run/postgresql
  chmod 700 "$PGDATA"
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
    user=${POSTGRES_USER:-postgres}
    pwfile=$(mktemp); printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"; chown postgres "$pwfile"
    # shellcheck disable=SC2086
    su postgres -s /bin/bash -c "initdb -D '$PGDATA' --username='$user' --pwfile='$pwfile' \
      --auth-local=trust --auth-host=scram-sha-256 ${POSTGRES_INITDB_ARGS:-}" >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
    db=${POSTGRES_DB:-$user}
    if [ "$db" != "postgres" ]; then
      su postgres -s /bin/bash -c "pg_ctl -D '$PGDATA' -o '-c listen_addresses=' -w start" >/dev/null
      su postgres -s /bin/bash -c "psql -v ON_ERROR_STOP=1 -U '$user' -d postgres -c 'CREATE DATABASE \"$db\"'" >/dev/null
      su postgres -s /bin/bash -c "pg_ctl -D '$PGDATA' -m fast -w stop" >/dev/null
    fi
  fi
  exec su postgres -s /bin/bash -c 'exec "$0" "$@"' -- "$@"
fi
exec "$@"
