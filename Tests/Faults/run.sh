#!/usr/bin/env bash
# Fault tests against the real binary (see faults.py). Needs Python with aiosmtpd; DATABASE_URL adds the two-server
# scenario on PostgreSQL.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
binary="$root/.build/debug/bulwark"
[ -x "$binary" ] || (cd "$root" && swift build)
python3 -c 'import aiosmtpd' 2>/dev/null || pip install -q aiosmtpd
python3 "$root/Tests/Faults/faults.py" "$binary" "$@"
