#!/usr/bin/env bash
# Training benchmark: release build, SQLite, 10,000 users.
#   1. enrol 10,000 users in a one-module campaign (one POST /api/v1/campaigns that activates it)
#   2. enrol them in a ten-module campaign that is already overdue (100,000 enrolments)
#   3. the overdue scans over those 100,000 enrolments: GET /api/v1/users/overdue (first and a deep page),
#      and one escalation pass (`bulwark run-jobs`, log mail transport)
# Reports times and the server's peak memory (VmHWM), and run-jobs' maximum RSS, into Benchmarks/TRAINING.md.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
port="${BENCH_PORT:-18183}"
work="$(mktemp -d)"
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  echo "== release build"
  (cd "$root" && swift build -c release --scratch-path .build-release --product bulwark >/dev/null)
fi
binary="$root/.build-release/release/bulwark"
cleanup() { [ -n "${server:-}" ] && kill "$server" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
export BULWARK_ADMIN_EMAIL=bench@bulwark.test BULWARK_ADMIN_PASSWORD=bench-password BULWARK_DISABLE_WORKER=1 LOG_LEVEL=error \
  BULWARK_RATE_LIMIT_READ=1000000/60 BULWARK_RATE_LIMIT_WRITE=1000000/60 BULWARK_RATE_LIMIT_AUTH=1000000/60
(cd "$work" && exec env BULWARK_PORT="$port" "$binary" serve --env production) &
server=$!
for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 1; done
api="http://127.0.0.1:$port/api"
token=$(curl -sf -X POST "$api/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@bulwark.test","password":"bench-password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["token"])')
auth="Authorization: Bearer $token"

python3 - "$work/users.csv" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("first_name,last_name,email,department,manager_email\n")
    for i in range(10000):
        manager = f"user{i // 10 * 10}@bench.test" if i % 10 else ""
        f.write(f"First{i},Last{i:05d},user{i}@bench.test,Dept{i % 20},{manager}\n")
PY
curl -sf -X POST "$api/v1/users/import" -H "$auth" -H 'content-type: text/csv' --data-binary @"$work/users.csv" >/dev/null

modules=$(curl -sf "$api/v1/modules?builtin=true&per_page=10" -H "$auth" | python3 -c 'import json,sys; print(json.dumps([m["id"] for m in json.load(sys.stdin)["data"]]))')
first=$(python3 -c "import json; print(json.dumps(json.loads('$modules')[:1]))")
timed() { python3 - "$@" <<'PY'
import json, subprocess, sys, time
start = time.time()
out = subprocess.run(sys.argv[1:], capture_output=True, text=True, check=True).stdout
print(f"{time.time() - start:.2f}")
PY
}
due=$(date -u -d '+30 days' +%Y-%m-%dT%H:%M:%SZ)
t_enrol=$(timed curl -sf -X POST "$api/v1/campaigns" -H "$auth" -H 'content-type: application/json' \
  -d "{\"name\":\"Everyone\",\"module_ids\":$first,\"due_at\":\"$due\",\"status\":\"active\"}")
echo "enrol 10,000: ${t_enrol}s"

start=$(date -u -d '-3 days' +%Y-%m-%dT%H:%M:%SZ)
past=$(date -u -d '-2 days' +%Y-%m-%dT%H:%M:%SZ)
t_enrol100=$(timed curl -sf -X POST "$api/v1/campaigns" -H "$auth" -H 'content-type: application/json' \
  -d "{\"name\":\"Overdue\",\"module_ids\":$modules,\"start_at\":\"$start\",\"due_at\":\"$past\",\"status\":\"active\"}")
echo "enrol 100,000: ${t_enrol100}s"

t_overdue1=$(timed curl -sf "$api/v1/users/overdue?page=1&per_page=100" -H "$auth")
t_overdue_deep=$(timed curl -sf "$api/v1/users/overdue?page=90&per_page=100" -H "$auth")
t_overdue_dept=$(timed curl -sf "$api/v1/users/overdue?department=Dept7&per_page=100" -H "$auth")
echo "overdue list: page 1 ${t_overdue1}s, page 90 ${t_overdue_deep}s, one department ${t_overdue_dept}s"

curl -sf -X PUT "$api/v1/escalation/settings" -H "$auth" -H 'content-type: application/json' \
  -d '{"enabled":true,"learner_after_days":1,"manager_after_days":2,"admin_after_days":30,"quiet_hours_start":0,"quiet_hours_end":0}' >/dev/null
(cd "$work" && /usr/bin/time -v "$binary" run-jobs --env production > "$work/jobs.txt" 2> "$work/time.txt")
t_scan=$(grep -o 'in [0-9.]* s' "$work/jobs.txt" | head -1 | awk '{print $2}')
rss_scan=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$work/time.txt")
sent=$(sqlite3 "$work/bulwark.sqlite" "select count(*) from escalations" 2>/dev/null || echo "?")
peak=$(awk '/VmHWM/ {print $2}' /proc/$server/status)
echo "escalation pass: ${t_scan}s, ${sent} escalations recorded, run-jobs max RSS ${rss_scan} kB; server peak ${peak} kB"

cat > "$root/Benchmarks/TRAINING.md" <<MD
# Training benchmark

\`Benchmarks/training.sh\` (release build, SQLite in WAL mode, 10,000 users imported by CSV, log mail transport),
measured $(date -u +%Y-%m-%d) on this project's 2-core machine:

| step | time |
|---|---|
| enrol 10,000 users in a one-module campaign (one \`POST /api/v1/campaigns\`, status active) | ${t_enrol} s |
| enrol 10,000 users in a ten-module campaign (100,000 enrolments, already overdue) | ${t_enrol100} s |
| \`GET /api/v1/users/overdue\` page 1 (100 people) over 110,000 enrolments | ${t_overdue1} s |
| the same, page 90 | ${t_overdue_deep} s |
| the same, one department | ${t_overdue_dept} s |
| one escalation pass (\`bulwark run-jobs\`): ${sent} escalations sent and recorded | ${t_scan} s |

Peak memory: server ${peak} kB (VmHWM after all steps); \`run-jobs\` ${rss_scan} kB maximum RSS.
An escalation pass handles at most 500 assignments per step and client; the next pass continues.
MD
echo "== written to Benchmarks/TRAINING.md"
