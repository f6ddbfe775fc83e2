#!/usr/bin/env bash
# Load test for PROVISIONCMD_SERVER_TIME: throughput, latency and memory of `provd serve`.
#
# Usage: benches/load/server_time.sh [PATH_TO_PROVD]      (default: target/release/provd)
# Env:   DURATION (wrk -d, default 15s), CONNECTIONS (wrk -c, default 64),
#        THREADS (wrk -t, default 2). Any PROVD_* variables (e.g. PROVD_LOG=warn) are passed
#        to the server, except PROVD_DATABASE_URL, which points into a fresh temp dir.
# Needs: wrk (Debian: apt-get install -y wrk), curl. Targets 127.0.0.1 only.
# The run is bounded: server start 20 s, wrk DURATION + 30 s, server stop 40 s.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PROVD="${1:-target/release/provd}"
DURATION="${DURATION:-15s}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
LUA="$HERE/server_time.lua"

command -v wrk >/dev/null || { echo "wrk not found (apt-get install -y wrk)" >&2; exit 2; }
command -v curl >/dev/null || { echo "curl not found" >&2; exit 2; }
[[ -x "$PROVD" ]] || { echo "provd binary not found or not executable: $PROVD" >&2; exit 2; }
PROVD="$(cd "$(dirname "$PROVD")" && pwd)/$(basename "$PROVD")"

# DURATION in seconds (wrk syntax: N, Ns, Nm, Nh), for the overall time bound.
to_secs() {
  local d="$1"
  case "$d" in
    *h) echo $(( ${d%h} * 3600 )) ;;
    *m) echo $(( ${d%m} * 60 )) ;;
    *s) echo "${d%s}" ;;
    *) echo "$d" ;;
  esac
}
DUR_SECS="$(to_secs "$DURATION")"
[[ "$DUR_SECS" =~ ^[0-9]+$ ]] || { echo "bad DURATION: $DURATION" >&2; exit 2; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/provd-load.XXXXXX")"
# shellcheck source=benches/load/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
WRK_PID=""
cleanup() {
  stop_pid "$WRK_PID" TERM
  stop_pid "$SERVER_PID" KILL
  exec 3<&- 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM


start_server PROVD_DATABASE_URL="$TMP/provd.db"

BODY="$(sed -n "s/^wrk\.body = '\(.*\)'\$/\1/p" "$LUA")"
[[ -n "$BODY" ]] || { echo "no wrk.body line in $LUA" >&2; exit 2; }
WARM="$(curl -sS --max-time 5 -H 'Content-Type: text/xml' --data-binary "$BODY" -w '\n%{http_code}' "$URL")"
WARM_CODE="${WARM##*$'\n'}"
if [[ "$WARM_CODE" != 200 || "$WARM" != *STAT_SUCCESS* ]]; then
  echo "warm-up request failed (HTTP $WARM_CODE):" >&2
  echo "$WARM" >&2
  exit 1
fi
sleep 1
RSS_REST="$(rss_kb VmRSS)"
HWM_REST="$(rss_kb VmHWM)"
LOG_LINES_BEFORE="$(wc -l <"$TMP/server.log")"

# wrk in the background, sampling the server's VmRSS once a second meanwhile.
timeout --kill-after=5 "$((DUR_SECS + 30))" \
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$LUA" "$URL" >"$TMP/wrk.out" 2>&1 &
WRK_PID=$!
RSS_MAX=0
while kill -0 "$WRK_PID" 2>/dev/null; do
  r="$(rss_kb VmRSS)"
  [[ -n "$r" && "$r" -gt "$RSS_MAX" ]] && RSS_MAX="$r"
  sleep 1
done
WRK_RC=0
wait "$WRK_PID" || WRK_RC=$?
WRK_PID=""
HWM_AFTER="$(rss_kb VmHWM)"
RSS_AFTER="$(rss_kb VmRSS)"
LOG_LINES=$(( $(wc -l <"$TMP/server.log") - LOG_LINES_BEFORE ))
LOG_BYTES="$(stat -c %s "$TMP/server.log")"

stop_server

cat "$TMP/wrk.out"
echo
mb() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
field() { sed -n "s/.*LUA_RESULT.* $1=\([0-9]*\).*/\1/p" "$TMP/wrk.out"; }
RPS="$(awk '/^Requests\/sec:/ { print $2 }' "$TMP/wrk.out")"
P50="$(awk '$1 == "50%" { print $2 }' "$TMP/wrk.out")"
P99="$(awk '$1 == "99%" { print $2 }' "$TMP/wrk.out")"
TOTAL="$(awk '/requests in/ { print $1 }' "$TMP/wrk.out")"
echo "=== provd PROVISIONCMD_SERVER_TIME load: ${CONNECTIONS} conns, ${THREADS} wrk threads, ${DURATION}, PROVD_LOG=${PROVD_LOG:-(unset: info)} ==="
echo "requests/s         : ${RPS:-?}   (total ${TOTAL:-?})"
echo "latency p50 / p99  : ${P50:-?} / ${P99:-?}"
echo "responses checked  : $(field responses)   non-200: $(field non200)   without STAT_SUCCESS: $(field no_stat_success)"
echo "socket errors      : connect $(field connect_err), read $(field read_err), write $(field write_err), timeout $(field timeout_err)"
echo "RSS at rest        : $(mb "${RSS_REST:-0}") (VmHWM $(mb "${HWM_REST:-0}")) after 1 warm-up request"
echo "RSS under load max : $(mb "$RSS_MAX") (1 s samples); after load $(mb "${RSS_AFTER:-0}")"
echo "VmHWM after load   : $(mb "${HWM_AFTER:-0}")"
echo "server log         : $LOG_LINES lines during load ($LOG_BYTES bytes total on stderr)"
# The text log is coloured even when not on a terminal: strip ANSI codes before matching.
sed 's/\x1b\[[0-9;]*m//g' "$TMP/server.log" >"$TMP/server.plain.log"
WARN_ERR="$(grep -cE '^[^ ]+ +(WARN|ERROR) ' "$TMP/server.plain.log" || true)"
echo "server log WARN/ERR: ${WARN_ERR:-0} lines (whole run)"
grep -E '^[^ ]+ +(WARN|ERROR) ' "$TMP/server.plain.log" | sort -k2 | uniq -f1 -c | head -n 5 | cut -c1-200 | sed 's/^/    /' || true
echo "server stop        : exit $SERVER_RC ${STOP_SECS}s after SIGTERM; wrk exit $WRK_RC"
grep -q '^LUA_RESULT' "$TMP/wrk.out" || { echo "wrk produced no result line" >&2; exit 1; }
[[ "$WRK_RC" == 0 ]] || exit 1
