#!/usr/bin/env bash
# Scale benchmark (issue 9): release build; a client of --people N (default 1,000,000) built through the importer;
# wrk from this second process against /health, an authenticated small GET, the people lists (first page, deep page,
# cursor, search) in /api/v1 and /api/v4, the overdue list and the completion export of a campaign for everyone;
# import and export speed and memory, idle memory, cold start. On SQLite, and also on PostgreSQL when DATABASE_URL is
# set. Prints each target as met or not met and writes the table into Benchmarks/README.md.
# Usage: Benchmarks/scale.sh [--people N] [--postgres-people N] [--seconds S] [--no-readme]   (needs wrk and sqlite3: apt-get install wrk sqlite3)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk"; exit 1; }
command -v sqlite3 >/dev/null || { echo "sqlite3 is needed: apt-get install sqlite3"; exit 1; }
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  echo "== release build"
  (cd "$root" && swift build -c release --scratch-path .build-release --product bulwark >/dev/null)
fi
exec python3 "$root/Benchmarks/scale.py" "$@"
