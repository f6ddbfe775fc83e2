#!/usr/bin/env bash
# Issue 11, point 1: slow-body connections against `provd serve` while PROVISIONCMD_SERVER_TIME
# is probed. CONNECTIONS connections (default 1500) send complete headers (Content-Length
# 100000) and then one body byte a second for DURATION_SECS (default 25); a probe opens a fresh
# connection every 250 ms. Targets: probe p95 < 1 s, >= 90% of the slow connections closed by
# the server within 20 s, server RSS < 100 MiB.
#
# Usage: benches/load/slow_bodies.sh [PATH_TO_PROVD]      (default: target/release/provd)
# Env:   CONNECTIONS, DURATION_SECS; PROVD_* variables reach the server (default PROVD_LOG=warn),
#        except PROVD_DATABASE_URL, which points into a fresh temp dir.
# Needs: python3 (standard library only). Targets 127.0.0.1 only; needs CONNECTIONS + 100
# open files in this shell (ulimit -n).
# Bounded: server start 20 s, load DURATION_SECS + 60 s, server stop 40 s.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROVD="${1:-target/release/provd}"
CONNECTIONS="${CONNECTIONS:-1500}"
SECONDS_LOAD="${DURATION_SECS:-25}"
export PROVD_LOG="${PROVD_LOG:-warn}"
command -v python3 >/dev/null || { echo "python3 not found" >&2; exit 2; }
[[ -x "$PROVD" ]] || { echo "provd binary not found or not executable: $PROVD" >&2; exit 2; }
PROVD="$(cd "$(dirname "$PROVD")" && pwd)/$(basename "$PROVD")"
ulimit -n "$((CONNECTIONS + 200))" 2>/dev/null || true

TMP="$(mktemp -d "${TMPDIR:-/tmp}/provd-slow.XXXXXX")"
# shellcheck source=benches/load/lib.sh
source "$HERE/lib.sh"
cleanup() {
  stop_pid "$SERVER_PID" KILL
  exec 3<&- 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_server PROVD_DATABASE_URL="$TMP/provd.db"
HOSTPORT="${URL#http://}"; HOSTPORT="${HOSTPORT%/}"
echo "=== provd slow bodies: $CONNECTIONS connections, 1 byte/s for ${SECONDS_LOAD}s; SERVER_TIME probe every 250 ms ==="
timeout --kill-after=5 "$((SECONDS_LOAD + 60))" \
  python3 "$HERE/overload.py" slow "${HOSTPORT%:*}" "${HOSTPORT##*:}" "$SERVER_PID" "$CONNECTIONS" "$SECONDS_LOAD"
stop_server
echo "server stop: exit $SERVER_RC ${STOP_SECS}s after SIGTERM"
