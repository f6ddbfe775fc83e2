#!/usr/bin/env bash
# Load test for complete DSAPP-SRP online activations (register, ephemeral key, activation
# data, activate): activations/s, latency per complete activation, and server memory.
#
# Usage: benches/load/activations.sh
# Build first (release):
#   cargo build --release --bin provd --example activation_load
# Env:   BACKEND      sqlite (default: a temp file) or postgres (a fresh database
#                     provd_load_<pid> on PROVD_PG_ADMIN_URL, dropped at the end)
#        PROVD_PG_ADMIN_URL  default postgres://127.0.0.1:5432/test (the role needs CREATEDB)
#        USERS        users load0001..loadNNNN to seed, each with an authenticator (default 200)
#        THREADS      concurrent clients (default 8)
#        FLOW         srp (DSAPP-SRP, default) or dsapp (PROVISIONCMD_DSAPPREGISTER v2, CPace)
#        ACTIVATIONS  complete activations in total (default USERS); may exceed USERS, since
#                     re-registering a user reuses the user's (already active) authenticator
#        PROVD        provd binary (default ${CARGO_TARGET_DIR:-target}/release/provd)
#        LOAD_BIN     load generator (default ${CARGO_TARGET_DIR:-target}/release/examples/activation_load)
#        LOAD_SECS    bound on the load phase in seconds (default 600)
#        PROVD_LOG    server log level (default warn); other PROVD_* variables reach the
#                     server and the CLI (e.g. PROVD_POOL_SIZE), except PROVD_DATABASE_URL and
#                     PROVD_MASTER_KEY, which this script sets.
# Seeding runs `provd user add` once per user (an Argon2 hash each, ~0.1 s per user).
# Bounded: each seeding command 60 s, server start 20 s, load LOAD_SECS + 30 s, stop 40 s.
set -euo pipefail

BACKEND="${BACKEND:-sqlite}"
USERS="${USERS:-200}"
THREADS="${THREADS:-8}"
ACTIVATIONS="${ACTIVATIONS:-$USERS}"
LOAD_SECS="${LOAD_SECS:-600}"
TARGET="${CARGO_TARGET_DIR:-target}"
PROVD="${PROVD:-$TARGET/release/provd}"
LOAD_BIN="${LOAD_BIN:-$TARGET/release/examples/activation_load}"
PG_ADMIN="${PROVD_PG_ADMIN_URL:-postgres://127.0.0.1:5432/test}"
export PROVD_LOG="${PROVD_LOG:-warn}"
# All load comes from 127.0.0.1, one client address: the per-address limit would refuse it.
export PROVD_RATE_LIMIT_PER_MINUTE="${PROVD_RATE_LIMIT_PER_MINUTE:-0}"

for n in USERS THREADS ACTIVATIONS LOAD_SECS; do
  [[ "${!n}" =~ ^[1-9][0-9]*$ ]] || { echo "$n must be a positive integer: ${!n}" >&2; exit 2; }
done
(( USERS <= 9999 )) || { echo "USERS must be at most 9999 (load0001..load9999)" >&2; exit 2; }
case "$BACKEND" in
  sqlite) ;;
  postgres) command -v psql >/dev/null || { echo "psql not found" >&2; exit 2; } ;;
  *) echo "BACKEND must be sqlite or postgres: $BACKEND" >&2; exit 2 ;;
esac
for b in PROVD LOAD_BIN; do
  [[ -x "${!b}" ]] || {
    echo "$b not found or not executable: ${!b}" >&2
    echo "build it: cargo build --release --bin provd --example activation_load" >&2
    exit 2
  }
  printf -v "$b" '%s' "$(cd "$(dirname "${!b}")" && pwd)/$(basename "${!b}")"
done

TMP="$(mktemp -d "${TMPDIR:-/tmp}/provd-actload.XXXXXX")"
# shellcheck source=benches/load/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOAD_PID=""
PG_DB=""
cleanup() {
  stop_pid "$LOAD_PID" TERM
  stop_pid "$SERVER_PID" KILL
  exec 3<&- 2>/dev/null || true
  if [[ -n "$PG_DB" ]]; then
    timeout 30 psql "$PG_ADMIN" -q -v ON_ERROR_STOP=1 \
      -c "DROP DATABASE IF EXISTS $PG_DB WITH (FORCE)" >/dev/null 2>&1 ||
      echo "warning: could not drop database $PG_DB" >&2
  fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A fresh database and master key for this run.
export PROVD_MASTER_KEY="$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"
if [[ "$BACKEND" == postgres ]]; then
  PG_DB="provd_load_$$"
  timeout 30 psql "$PG_ADMIN" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE $PG_DB" >/dev/null
  export PROVD_DATABASE_URL="${PG_ADMIN%/*}/$PG_DB"
else
  export PROVD_DATABASE_URL="$TMP/provd.db"
fi
PASSWORD="Load.Pass1"

# Every provd command runs in the temp dir, so that no stray provd.toml is picked up.
provd() { (cd "$TMP" && timeout 60 "$PROVD" "$@"); }

seed_failed() { echo "seeding failed:" >&2; tail -n 20 "$TMP/seed.log" >&2; exit 1; }
SEED_START=$SECONDS
provd init >"$TMP/seed.log" 2>&1 || seed_failed
for i in $(seq 1 "$USERS"); do
  printf '%s\n' "$PASSWORD" | provd user add --user "$(printf 'load%04d' "$i")" \
    --password-stdin >>"$TMP/seed.log" 2>&1 || seed_failed
done
provd authenticator generate --prefix VDS --count "$USERS" >>"$TMP/seed.log" 2>&1 || seed_failed
SEED_SECS=$(( SECONDS - SEED_START ))

# The server's user + system CPU time so far, in clock ticks (fields 14 and 15 of stat; the
# command name in field 2 has no spaces here).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$SERVER_PID/stat" 2>/dev/null || echo 0; }

start_server
sleep 0.5
RSS_REST="$(rss_kb VmRSS)"
CPU_BEFORE="$(cpu_ticks)"

# The load in the background, sampling the server's VmRSS once a second meanwhile.
timeout --kill-after=5 "$((LOAD_SECS + 30))" "$LOAD_BIN" --url "$URL" --users "$USERS" \
  --threads "$THREADS" --activations "$ACTIVATIONS" --password "$PASSWORD" \
  --flow "${FLOW:-srp}" --max-secs "$LOAD_SECS" >"$TMP/load.out" 2>&1 &
LOAD_PID=$!
RSS_MAX=0
while kill -0 "$LOAD_PID" 2>/dev/null; do
  r="$(rss_kb VmRSS)"
  [[ -n "$r" && "$r" -gt "$RSS_MAX" ]] && RSS_MAX="$r"
  sleep 1
done
LOAD_RC=0
wait "$LOAD_PID" || LOAD_RC=$?
LOAD_PID=""
RSS_AFTER="$(rss_kb VmRSS)"
HWM_AFTER="$(rss_kb VmHWM)"
CPU_TICKS=$(( $(cpu_ticks) - CPU_BEFORE ))

# What the database says: authenticators active, registrations activated.
ACTIVE="$(provd --json authenticator list 2>/dev/null | grep -o '"status": *"active"' | wc -l || true)"

stop_server

mb() { awk -v k="$1" 'BEGIN { printf "%.1f MiB", k / 1024 }'; }
echo "=== provd activation load: BACKEND=$BACKEND USERS=$USERS THREADS=$THREADS ACTIVATIONS=$ACTIVATIONS PROVD_LOG=$PROVD_LOG ==="
echo "seeding            : ${SEED_SECS}s for $USERS users + $USERS authenticators"
grep -v '^RESULT' "$TMP/load.out" || true
echo "active authenticators after load: ${ACTIVE:-?} of $USERS"
OK_COUNT="$(sed -n 's/^RESULT .* ok=\([0-9]*\) .*/\1/p' "$TMP/load.out")"
awk -v t="$CPU_TICKS" -v hz="$(getconf CLK_TCK)" -v ok="${OK_COUNT:-0}" 'BEGIN {
  printf "server CPU         : %.2f s during load", t / hz
  if (ok > 0) printf " (%.1f ms per successful activation)", 1000 * t / hz / ok
  printf "\n" }'
echo "RSS at rest        : $(mb "${RSS_REST:-0}") before load"
echo "RSS under load max : $(mb "$RSS_MAX") (1 s samples); after load $(mb "${RSS_AFTER:-0}"); VmHWM $(mb "${HWM_AFTER:-0}")"
sed 's/\x1b\[[0-9;]*m//g' "$TMP/server.log" >"$TMP/server.plain.log"
WARN_ERR="$(grep -cE '^[^ ]+ +(WARN|ERROR) ' "$TMP/server.plain.log" || true)"
echo "server log WARN/ERR: ${WARN_ERR:-0} lines"
grep -E '^[^ ]+ +(WARN|ERROR) ' "$TMP/server.plain.log" | head -n 5 | cut -c1-240 | sed 's/^/    /' || true
echo "server stop        : exit $SERVER_RC ${STOP_SECS}s after SIGTERM; load exit $LOAD_RC"
grep '^RESULT' "$TMP/load.out" || { echo "the load generator printed no RESULT line" >&2; exit 1; }
[[ "$LOAD_RC" == 0 ]] || exit 1
