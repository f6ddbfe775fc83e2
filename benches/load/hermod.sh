#!/usr/bin/env bash
# Load test for the Hermod REST front: provision commands/s, then complete provisionings/s
# (command, mailbox fetch, verified answer, callback delivered), with the server's CPU time
# per operation (from /proc/<pid>/stat, utime+stime, in seconds) and as a multiple of the
# CPU time of one GET /health measured first in the same run (x_health). Where that CPU goes:
# benches/hermod_profile.sh.
#
# Usage: benches/load/hermod.sh
# Build first (release):
#   cargo build --release --bin provd --example hermod_load
# Env:   BACKEND   sqlite (default: a temp file) or postgres (a fresh database provd_hload_<pid>
#                  on PROVD_PG_ADMIN_URL, dropped at the end)
#        THREADS   concurrent clients (default 4); COUNT per phase (default 300)
#        PROVD, LOAD_BIN  binaries (default target/release/{provd,examples/hermod_load})
set -euo pipefail

BACKEND="${BACKEND:-sqlite}"
THREADS="${THREADS:-4}"
COUNT="${COUNT:-300}"
TARGET="${CARGO_TARGET_DIR:-target}"
PROVD="${PROVD:-$TARGET/release/provd}"
LOAD_BIN="${LOAD_BIN:-$TARGET/release/examples/hermod_load}"
PG_ADMIN="${PROVD_PG_ADMIN_URL:-postgres://127.0.0.1:5432/test}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PROVD="$(realpath "$PROVD")"
LOAD_BIN="$(realpath "$LOAD_BIN")"
export PROVD_LOG="${PROVD_LOG:-warn}"
export PROVD_MASTER_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

TMP="$(mktemp -d)"
DBNAME=""
source "$REPO/benches/load/lib.sh"
cleanup() {
  stop_pid "$SERVER_PID" TERM
  [[ -n "$DBNAME" ]] && psql "$PG_ADMIN" -q -c "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" || true
  rm -rf "$TMP"
}
trap cleanup EXIT

if [[ "$BACKEND" == postgres ]]; then
  DBNAME="provd_hload_$$"
  psql "$PG_ADMIN" -q -c "CREATE DATABASE $DBNAME"
  export PROVD_DATABASE_URL="${PG_ADMIN%/*}/$DBNAME"
else
  export PROVD_DATABASE_URL="$TMP/provd.db"
fi
RECEIVER="127.0.0.1:$(( 20000 + $$ % 20000 ))"
(cd "$TMP" && "$PROVD" init >/dev/null 2>&1)
(cd "$TMP" && echo "Load.Pass1" | "$PROVD" user add --user john.doe@nexusgroup.com --password-stdin >/dev/null)
XKEY="$(cd "$TMP" && "$PROVD" --json hermod client add --id load --callback-url "http://$RECEIVER/" \
        | sed -n 's/.*"x_api_key": *"\([^"]*\)".*/\1/p')"
(cd "$TMP" && "$PROVD" hermod attestation load "$REPO/fixtures/hermod/trust_store.json" >/dev/null)
start_server PROVD_RATE_LIMIT_PER_MINUTE=0

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat"; }
sys_ticks() { awk '{ print $15 }' "/proc/$SERVER_PID/stat"; }
HZ="$(getconf CLK_TCK)"
# health first: the same-run baseline (GET /health, keep-alive) the other phases are divided
# by. /proc counts in ticks of 1/HZ s, so the health phase runs 10 times COUNT requests.
declare -A cpu_s
for mode in health provision complete; do
  n="$COUNT"; [[ "$mode" == health ]] && n=$(( COUNT * 10 ))
  before="$(cpu_ticks)"; sys_before="$(sys_ticks)"
  out="$("$LOAD_BIN" --url "$URL" --api-key "$XKEY" --attestation-key "$REPO/fixtures/hermod/keys/attestation_rsa2048.pem" \
          --mode "$mode" --threads "$THREADS" --count "$n" --receiver "$RECEIVER")"
  after="$(cpu_ticks)"; sys_after="$(sys_ticks)"
  sys_share="$(awk -v s=$(( sys_after - sys_before )) -v t=$(( after - before )) 'BEGIN { if (t > 0) printf "%.0f%%", 100 * s / t; else print "n/a" }')"
  done_n="$(sed -n 's/.*done=\([0-9]*\).*/\1/p' <<<"$out")"
  cpu_s[$mode]="$(awk -v t=$(( after - before )) -v hz="$HZ" -v n="$done_n" 'BEGIN { if (n > 0) printf "%.6f", t / hz / n; else print "nan" }')"
  ratio="$(awk -v a="${cpu_s[$mode]}" -v b="${cpu_s[health]}" 'BEGIN { if (b > 0) printf "%.1f", a / b; else print "n/a" }')"
  echo "backend=$BACKEND $out server_cpu_s_per_op=${cpu_s[$mode]} server_cpu_ms_per_op=$(awk -v a="${cpu_s[$mode]}" 'BEGIN { printf "%.3f", 1000 * a }') x_health=$ratio system_share=$sys_share"
done
stop_server
