#!/usr/bin/env bash
# Foundation benchmark: release build, SQLite, 10,000 users; wrk from a second process against
#   GET /health and GET /api/v1/users?page=1. Writes the figures to Benchmarks/README.md.
# Usage: Benchmarks/run.sh [duration-seconds]   (needs wrk: apt-get install wrk)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
duration="${1:-20}"
port="${BENCH_PORT:-18181}"
threads=2
connections=32
work="$(mktemp -d)"
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk"; exit 1; }

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  echo "== release build"
  (cd "$root" && swift build -c release --scratch-path .build-release --product bulwark >/dev/null)
fi
binary="$root/.build-release/release/bulwark"

cleanup() { [ -n "${server:-}" ] && kill "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# Rate limits are raised so the benchmark measures the server, not the limiter's 429s (the limiter still runs).
(cd "$work" && exec env BULWARK_PORT="$port" BULWARK_ADMIN_EMAIL=bench@bulwark.test BULWARK_ADMIN_PASSWORD=bench-password \
  BULWARK_RATE_LIMIT_READ=1000000000/60 BULWARK_RATE_LIMIT_WRITE=1000000/60 BULWARK_RATE_LIMIT_AUTH=1000000/60 \
  LOG_LEVEL=warning "$binary" serve --env production) &
server=$!
for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 1; done

token=$(curl -sf -X POST "http://127.0.0.1:$port/api/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@bulwark.test","password":"bench-password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["token"])')

echo "== seeding 10,000 users through POST /api/v1/users/import"
python3 - "$work/users.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("first_name,last_name,email,position,department,manager_email\n")
    for i in range(10000):
        manager = f"user{i // 10 * 10}@bench.test" if i % 10 else ""
        f.write(f"First{i},Last{i:05d},user{i}@bench.test,Analyst,Dept{i % 20},{manager}\n")
PY
seed_start=$(date +%s.%N)
curl -sf -X POST "http://127.0.0.1:$port/api/v1/users/import" -H "Authorization: Bearer $token" \
  -H 'content-type: text/csv' --data-binary @"$work/users.csv" | python3 -c 'import json,sys; d=json.load(sys.stdin)["data"]; print("imported", d["imported"], "failed", d["failed"])'
seed_seconds=$(python3 -c "import time; print(f'{time.time() - $seed_start:.1f}')")

measure() {
  local name="$1" path="$2"
  shift 2
  wrk -t"$threads" -c"$connections" -d"${duration}s" --latency "$@" "http://127.0.0.1:$port$path" > "$work/$name.txt"
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$work/$name.txt")
  p50=$(awk '$1=="50%" {print $2}' "$work/$name.txt")
  p99=$(awk '$1=="99%" {print $2}' "$work/$name.txt")
  echo "| \`$path\` | $rps | $p50 | $p99 |"
}

echo "== wrk ($threads threads, $connections connections, ${duration}s each)"
health=$(measure health /health)
users=$(measure users "/api/v1/users?page=1" -H "Authorization: Bearer $token")
echo "$health"; echo "$users"

cat > "$root/Benchmarks/README.md" <<MD
# Benchmarks

Latest figures of \`Benchmarks/run.sh\` (release build, SQLite file in WAL mode, 10,000 users imported through
\`POST /api/v1/users/import\`; load from \`wrk\` in a second process, $threads threads, $connections connections,
${duration} s per route, on this project's 2-core machine). Rate limiting stays on (raised limits), so every API request
still pays its counter upsert.

Run: \`Benchmarks/run.sh [seconds]\` (needs \`wrk\`: \`apt-get install wrk\`).

Measured $(date -u +%Y-%m-%d):

| route | requests/s | p50 | p99 |
|---|---|---|---|
$health
$users

Seeding 10,000 users with one CSV import took ${seed_seconds} s.
MD
echo "== written to Benchmarks/README.md"
