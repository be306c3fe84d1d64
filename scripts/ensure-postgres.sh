#!/usr/bin/env bash
# Makes sure a PostgreSQL server answers. With DATABASE_URL set, only checks it.
# Otherwise uses the local server on 127.0.0.1:5432, starting the installed cluster
# when it is down, or, failing that, a throwaway cluster in .pgdata/ of this folder.
set -euo pipefail
if [ -n "${DATABASE_URL:-}" ]; then
  for _ in $(seq 1 30); do
    pg_isready -d "$DATABASE_URL" -q && exit 0
    sleep 1
  done
  echo "PostgreSQL at DATABASE_URL does not answer" >&2; exit 1
fi
if pg_isready -h 127.0.0.1 -p 5432 -q 2>/dev/null; then exit 0; fi
if ls /etc/postgresql >/dev/null 2>&1 && command -v pg_ctlcluster >/dev/null; then
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
  for _ in $(seq 1 30); do
    pg_isready -h 127.0.0.1 -p 5432 -q && exit 0
    sleep 1
  done
fi
# A throwaway cluster owned by the current user (initdb refuses root, so use postgres then).
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bindir" ] || { echo "no PostgreSQL binaries found; install postgresql" >&2; exit 1; }
data="$PWD/.pgdata"
run_as=()
if [ "$(id -u)" = 0 ]; then run_as=(runuser -u postgres --); mkdir -p "$data"; chown postgres "$data"; fi
if [ ! -f "$data/PG_VERSION" ]; then
  "${run_as[@]}" "$bindir/initdb" -D "$data" -A trust -U postgres >/dev/null
fi
"${run_as[@]}" "$bindir/pg_ctl" -D "$data" -o "-p 5432 -k /tmp -c listen_addresses=127.0.0.1" -l "$data/log" -w start
"${run_as[@]}" "$bindir/createdb" -h 127.0.0.1 -U postgres test 2>/dev/null || true
