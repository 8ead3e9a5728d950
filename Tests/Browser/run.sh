#!/usr/bin/env bash
# Browser check: starts Bulwark on a fresh SQLite file and drives the dashboard with headless Chromium.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
port="${BULWARK_BROWSER_PORT:-18080}"
binary="$root/.build/debug/bulwark"
[ -x "$binary" ] || (cd "$root" && swift build)

cleanup() { [ -n "${server:-}" ] && kill "$server" 2>/dev/null || true; cp "$work/server.log" "${TMPDIR:-/tmp}/bulwark-browser-server.log" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# A fresh SQLite file whatever the shell exports (CI exports DATABASE_URL for the PostgreSQL run before this check).
(cd "$work" && exec env -u DATABASE_URL BULWARK_PORT="$port" BULWARK_RATE_LIMIT_WRITE=1000/60 BULWARK_ADMIN_EMAIL=admin@browser.test BULWARK_ADMIN_PASSWORD=browser-pass-1 \
  "$binary" serve --env development > "$work/server.log" 2>&1) &
server=$!
for _ in $(seq 1 60); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 1
done
WORK_DIR="$work" BASE_URL="http://127.0.0.1:$port" SCREENSHOT_DIR="${SCREENSHOT_DIR:-$work}" python3 "$root/Tests/Browser/dashboard_check.py" \
  || { echo "--- server log"; tail -50 "$work/server.log"; exit 1; }
