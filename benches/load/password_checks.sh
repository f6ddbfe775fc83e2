#!/usr/bin/env bash
# Issue 11, point 2: password-checking calls flood `provd serve` while PROVISIONCMD_SERVER_TIME
# is probed. CALLS clients (default 200) spread over ADDRESSES loopback source addresses
# (127.0.0.2 ..., default 100; provd sees each as its own client address) send
# dsappSRPRegister for unknown users (one Argon2 check each) back to back for DURATION_SECS (default
# 20); a refused call (HTTP 503) is sent again at once (RETRY=now, default) or after its
# Retry-After (RETRY=after). A probe, in a process of its own, opens a fresh connection every
# 50 ms. Target: SERVER_TIME p99 < 50 ms.
#
# Usage: benches/load/password_checks.sh [PATH_TO_PROVD]   (default: target/release/provd)
# Env:   CALLS, ADDRESSES, DURATION_SECS, RETRY; PROVD_* variables reach the server (default PROVD_LOG=warn),
#        except PROVD_DATABASE_URL, which points into a fresh temp dir.
# Needs: python3 (standard library only), Linux (any 127.0.0.0/8 address is local).
# Bounded: server start 20 s, load DURATION_SECS + 60 s, server stop 40 s.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROVD="${1:-target/release/provd}"
CALLS="${CALLS:-200}"
ADDRESSES="${ADDRESSES:-100}"
SECONDS_LOAD="${DURATION_SECS:-20}"
case "${RETRY:-now}" in now) AT_ONCE=1 ;; after) AT_ONCE=0 ;; *) echo "RETRY must be now or after" >&2; exit 2 ;; esac
export PROVD_LOG="${PROVD_LOG:-warn}"
command -v python3 >/dev/null || { echo "python3 not found" >&2; exit 2; }
[[ -x "$PROVD" ]] || { echo "provd binary not found or not executable: $PROVD" >&2; exit 2; }
(( ADDRESSES >= 1 && ADDRESSES <= 250 )) || { echo "ADDRESSES must be 1..250" >&2; exit 2; }
PROVD="$(cd "$(dirname "$PROVD")" && pwd)/$(basename "$PROVD")"

TMP="$(mktemp -d "${TMPDIR:-/tmp}/provd-pwload.XXXXXX")"
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
echo "=== provd password checks: $CALLS concurrent calls from $ADDRESSES addresses for ${SECONDS_LOAD}s; SERVER_TIME probe every 50 ms ==="
timeout --kill-after=5 "$((SECONDS_LOAD + 60))" \
  python3 "$HERE/overload.py" passwords "${HOSTPORT%:*}" "${HOSTPORT##*:}" "$SERVER_PID" "$CALLS" "$ADDRESSES" "$SECONDS_LOAD" "$AT_ONCE"
stop_server
echo "server stop: exit $SERVER_RC ${STOP_SECS}s after SIGTERM"
