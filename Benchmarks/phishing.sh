#!/usr/bin/env bash
# Phishing benchmark (release build, SQLite):
#   1. send a campaign to 100,000 people through a local SMTP sink (aiosmtpd from PyPI): messages per second
#   2. wrk on the open and click tracking routes (random tokens) beside /health: req/s and p99, and the number of
#      events stored against the number of requests wrk completed.
# Writes Benchmarks/PHISHING.md. Needs wrk and sqlite3 (apt-get install wrk sqlite3) and aiosmtpd (pip install aiosmtpd).
# With DATABASE_URL the server runs on a fresh database `bulwark_phishing` of that PostgreSQL server instead (psql is
# needed) and the figures go to Benchmarks/PHISHING-POSTGRES.md.
# BENCH_SINK=postfix uses Postfix's smtp-sink instead (apt-get install postfix), a C sink much faster than aiosmtpd, and
# first measures its ceiling with Postfix's smtp-source (8 sessions, 20,000 messages) so sending is reported as a share.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
people="${BENCH_PEOPLE:-100000}"
duration="${BENCH_SECONDS:-15}"
port="${BENCH_PORT:-18184}"
smtp_port="${BENCH_SMTP_PORT:-12525}"
work="$(mktemp -d)"
if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
  (cd "$root" && swift build -c release --scratch-path .build-release --product bulwark >/dev/null)
fi
binary="$root/.build-release/release/bulwark"
cleanup() { kill ${server:-} ${sink:-} 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

sink_kind="${BENCH_SINK:-aiosmtpd}"
ceiling=""
if [ "$sink_kind" = postfix ]; then
  command -v smtp-sink >/dev/null || { echo "smtp-sink is needed: apt-get install postfix"; exit 1; }
  (cd "$work" && exec smtp-sink -u nobody -c "127.0.0.1:$smtp_port" 1000 > "$work/sink.out") &
  sink=$!
  sleep 1
  start=$(date +%s.%N)
  smtp-source -d -s 8 -m 20000 -f bench@sim.test -t person@bench.test "127.0.0.1:$smtp_port"
  ceiling=$(python3 -c "import time; print(f'{20000 / ($(date +%s.%N) - $start):.0f}')")
  echo "== smtp-sink ceiling (smtp-source, 8 sessions): $ceiling msg/s"
else
  python3 "$root/Benchmarks/smtp_sink.py" "$smtp_port" "$work/sink-count" &
  sink=$!
fi
# Messages the sink has received: aiosmtpd's count file, or the last of smtp-sink's running counters (minus the
# ceiling run's messages).
sink_count() {
  if [ "$sink_kind" = postfix ]; then
    python3 -c "import re,sys; counts=re.findall(r'mesg=(\d+)', open(sys.argv[1]).read()); print(int(counts[-1]) - 20000 if counts else 0)" "$work/sink.out"
  else
    cat "$work/sink-count"
  fi
}
export BULWARK_ADMIN_EMAIL=bench@bulwark.test BULWARK_ADMIN_PASSWORD=bench-password LOG_LEVEL=error \
  BULWARK_RATE_LIMIT_READ=100000000/60 BULWARK_RATE_LIMIT_WRITE=1000000/60 BULWARK_RATE_LIMIT_AUTH=1000000/60 \
  BULWARK_PHISHING_SCANNER_SECONDS=0 BULWARK_OUTBOUND_ALLOW=127.0.0.1
if [ -n "${DATABASE_URL:-}" ]; then
  psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS bulwark_phishing" -qc "CREATE DATABASE bulwark_phishing" >/dev/null
  database_url="${DATABASE_URL%/*}/bulwark_phishing"
  database_label="PostgreSQL"
  output="PHISHING-POSTGRES.md"
  sql() { psql "$database_url" -Atqc "$1"; }
else
  database_url=""
  database_label="SQLite in WAL mode"
  output="PHISHING.md"
  sql() { sqlite3 "$work/bulwark.sqlite" "$1"; }
fi
(cd "$work" && if [ -n "$database_url" ]; then export DATABASE_URL="$database_url"; else unset DATABASE_URL; fi
 exec env BULWARK_PORT="$port" "$binary" serve --env production) &
server=$!
for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 1; done
api="http://127.0.0.1:$port/api"
token=$(curl -sf -X POST "$api/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@bulwark.test","password":"bench-password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["token"])')
auth="Authorization: Bearer $token"

echo "== importing $people people"
for part in $(seq 0 $(( (people - 1) / 50000 ))); do
  python3 - "$work/users.csv" "$part" "$people" <<'PY'
import sys
path, part, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "w") as f:
    f.write("first_name,last_name,email,department\n")
    for i in range(part * 50000, min(total, (part + 1) * 50000)):
        f.write(f"First{i},Last{i:06d},person{i}@bench.test,Dept{i % 25}\n")
PY
  curl -sf -X POST "$api/v1/users/import" -H "$auth" -H 'content-type: text/csv' --data-binary @"$work/users.csv" >/dev/null
done

profile=$(curl -sf -X POST "$api/v1/phishing/sending-profiles" -H "$auth" -H 'content-type: application/json' \
  -d "{\"name\":\"Sink\",\"host\":\"127.0.0.1\",\"port\":$smtp_port,\"security\":\"none\",\"envelope_from\":\"bench@sim.test\",\"throttle_per_minute\":1000000}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
template=$(curl -sf "$api/v1/phishing/templates?per_page=1" -H "$auth" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"][0]["id"])')
campaign=$(curl -sf -X POST "$api/v1/phishing/campaigns" -H "$auth" -H 'content-type: application/json' \
  -d "{\"name\":\"Bench\",\"template_ids\":[\"$template\"],\"sending_profile_id\":\"$profile\",\"tracking_url\":\"http://127.0.0.1:$port\"}" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
echo "== sending to $people people"
start=$(date +%s.%N)
curl -sf -X POST "$api/v1/phishing/campaigns/$campaign/send" -H "$auth" >/dev/null
launched=$(date +%s.%N)
while true; do
  sent=$(curl -sf "$api/v1/phishing/campaigns/$campaign" -H "$auth" | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["progress"]["sent"])')
  [ "$sent" -ge "$people" ] && break
  sleep 1
done
finished=$(date +%s.%N)
sleep 2   # the sink rewrites its count file once a second
received=$(sink_count)
send_seconds=$(python3 -c "print(f'{$finished - $start:.1f}')")
launch_seconds=$(python3 -c "print(f'{$launched - $start:.1f}')")
rate=$(python3 -c "print(f'{$people / ($finished - $start):.0f}')")
share=""
[ -n "$ceiling" ] && share=" ($(python3 -c "print(f'{100 * $rate / $ceiling:.0f}')")% of the sink's ceiling of $ceiling msg/s)"
echo "sent $sent in ${send_seconds}s (launch ${launch_seconds}s) = $rate msg/s$share; sink received $received"

sql "select token from phishing_simulations" > "$work/tokens.txt"
# BENCH_PERF_DIR=dir records the server with perf (linux-perf) during each tracking run: dir/open.data, dir/click.data.
measure() {
  local name="$1" path="$2"
  local recorder=""
  if [ -n "${BENCH_PERF_DIR:-}" ]; then
    (sleep 3; perf record -F 999 -g -p "$server" -o "$BENCH_PERF_DIR/$name.data" -- sleep 8 >/dev/null 2>&1) &
    recorder=$!
  fi
  TOKENS_FILE="$work/tokens.txt" TRACK_PREFIX="$path" wrk -t2 -c32 -d"${duration}s" --latency -s "$root/Benchmarks/random_token.lua" \
    "http://127.0.0.1:$port" > "$work/$name.txt"
  if [ -n "$recorder" ]; then wait "$recorder"; fi
}
wrk -t2 -c32 -d"${duration}s" --latency "http://127.0.0.1:$port/health" > "$work/health.txt"
measure open /api/phishing/track/open/
measure click /api/phishing/track/click/
figure() { awk -v key="$2" '$1==key {print $2}' "$work/$1.txt"; }
rps() { awk '/Requests\/sec/ {print $2}' "$work/$1.txt"; }
requests() { awk '/requests in/ {print $1}' "$work/$1.txt"; }
# Answers other than 2xx/3xx: a tracking hit the journal could not take (it is full while the database falls behind)
# is answered 503 with Retry-After, and nothing is stored for it.
refused() { awk '/Non-2xx or 3xx responses/ {print $5}' "$work/$1.txt" | grep . || echo 0; }
# The tracking journal moves what it holds into the database every 10 ms; when hits come faster than it writes them
# they wait in the journal (answered, on disk). Counted once the counts stop moving, with how long that took.
drain_started=$(date +%s.%N)
previous=""
still=0
for _ in $(seq 1 180); do
  sleep 1
  opens=$(sql "select count(*) from phishing_events where kind='open'")
  clicks=$(sql "select count(*) from phishing_events where kind='click'")
  if [ "$opens:$clicks" = "$previous" ]; then still=$((still + 1)); else still=0; fi
  [ "$still" -ge 3 ] && break
  previous="$opens:$clicks"
done
drain_seconds=$(python3 -c "print(f'{$(date +%s.%N) - $drain_started - 3:.0f}')")
echo "journal drained $drain_seconds s after the click run"
# Then the server is stopped as an operator would (SIGTERM): it writes what its journal still holds before it exits,
# and the events are counted again. Stored = answered is checked on these counts.
kill -TERM "$server"
wait "$server" 2>/dev/null || true
server=""
drained_opens=$opens drained_clicks=$clicks
opens=$(sql "select count(*) from phishing_events where kind='open'")
clicks=$(sql "select count(*) from phishing_events where kind='click'")
at_shutdown=$(( opens + clicks - drained_opens - drained_clicks ))
echo "after the server stopped: $opens opens, $clicks clicks ($at_shutdown written at shutdown)"

echo "health $(rps health) req/s p99 $(figure health 99%); open $(rps open) req/s p99 $(figure open 99%) ($(requests open) requests, $(refused open) refused, $opens events); click $(rps click) req/s p99 $(figure click 99%) ($(requests click) requests, $(refused click) refused, $clicks events); drained after ${drain_seconds} s"

cat > "$root/Benchmarks/$output" <<MD
# Phishing benchmark

\`Benchmarks/phishing.sh\` (release build, $database_label, local $sink_kind sink), measured $(date -u +%Y-%m-%d) on this
project's 2-core machine.

## Sending
$people simulations, one template, one sending profile (throttle 1,000,000/min), batches of 1,600 over 32 SMTP connections:
all $sent sent in ${send_seconds} s (the launch request, which writes the first 2,000 simulations and queues a job for the rest: ${launch_seconds} s),
**$rate messages per second**$share; the sink counted $received messages.

## Tracking (wrk, 2 threads, 32 connections, ${duration} s each, random tokens of this campaign)

| route | requests/s | p50 | p99 | requests completed | of which refused (503, journal full) | events stored |
|---|---|---|---|---|---|---|
| \`GET /health\` | $(rps health) | $(figure health 50%) | $(figure health 99%) | $(requests health) | $(refused health) | – |
| \`GET /api/phishing/track/open/{token}\` | $(rps open) | $(figure open 50%) | $(figure open 99%) | $(requests open) | $(refused open) | $opens |
| \`GET /api/phishing/track/click/{token}\` | $(rps click) | $(figure click 50%) | $(figure click 99%) | $(requests click) | $(refused click) | $clicks |

Every tracking response is sent after its hit is in the tracking journal (a local append-only file, replayed after a
crash; its flusher writes what it gathered, up to 8,000 hits, into the database in one transaction), so events stored
should be the requests completed less those refused, plus at most the requests still in flight when wrk stopped (one
per connection). While more than 10,000 hits wait for the database, hits are let through at the pace it takes them,
each waiting a little (past 40,000 they wait for room); a hit is refused (503 with Retry-After, nothing stored) only if
the journal is still full after 2 s. The counts
stopped moving ${drain_seconds} s after the click run ended; the server was then stopped with SIGTERM (it writes what its
journal still holds before it exits) and the events counted again: $at_shutdown of them were written at shutdown.
MD
echo "== written to Benchmarks/$output"
