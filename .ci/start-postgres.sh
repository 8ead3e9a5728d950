#!/usr/bin/env bash
# Starts the Debian PostgreSQL cluster and creates the test role and database (idempotent).
set -euo pipefail
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
cluster=main
if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -q "^$version $cluster$"; then
  pg_createcluster "$version" "$cluster" >/dev/null
fi
pg_ctlcluster "$version" "$cluster" start 2>/dev/null || true
for _ in $(seq 1 30); do
  su postgres -c "psql -qtAc 'select 1'" >/dev/null 2>&1 && break
  sleep 1
done
su postgres -c "psql -qtAc \"select 1 from pg_roles where rolname='bulwark'\"" | grep -q 1 \
  || su postgres -c "psql -qc \"create role bulwark login password 'bulwark' createdb\""
su postgres -c "psql -qtAc \"select 1 from pg_database where datname='bulwark_test'\"" | grep -q 1 \
  || su postgres -c "createdb -O bulwark bulwark_test"
