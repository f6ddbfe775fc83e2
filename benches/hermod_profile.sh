#!/usr/bin/env bash
# Where a complete Hermod provisioning's server CPU goes: provd serve runs under callgrind;
# after a warm-up its counters are zeroed, N GET /health requests are made (the baseline)
# and dumped, then M complete provisionings (command, mailbox list and fetch, verified answer
# with one EC P-256 key attested by the RSA-2048 fixture key, callback delivered) and dumped.
# benches/callgrind_categories.py prints instructions per operation, the ratio to one
# /health request, and inclusive costs of categories (signature verification, hashing, JSON,
# SQL, HTTP, ...) and of the top functions. Instruction counts do not depend on the
# machine's load; kernel time is not in them (benches/load/hermod.sh measures CPU seconds).
#
#   cargo build --release --bin provd --example hermod_load
#   N=300 M=30 benches/hermod_profile.sh            # BACKENDS="sqlite postgres" by default
#
# Needs valgrind (callgrind_control) and python3; PostgreSQL at PROVD_PG_ADMIN_URL
# (default postgres://127.0.0.1:5432/test; a database provd_hprof_<pid> is made and dropped).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
N="${N:-300}"
M="${M:-30}"
BACKENDS="${BACKENDS:-sqlite postgres}"
TARGET="${CARGO_TARGET_DIR:-target}"
PROVD="$(realpath "${PROVD:-$TARGET/release/provd}")"
LOAD_BIN="$(realpath "${LOAD_BIN:-$TARGET/release/examples/hermod_load}")"
PG_ADMIN="${PROVD_PG_ADMIN_URL:-postgres://127.0.0.1:5432/test}"
command -v callgrind_control >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
export PROVD_LOG=warn PROVD_RATE_LIMIT_PER_MINUTE=0
export PROVD_MASTER_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
ATT="$REPO/fixtures/hermod/keys/attestation_rsa2048.pem"

TMP=""
PID=""
DBNAME=""
cleanup() {
  if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID" 2>/dev/null || true; fi
  [[ -n "$DBNAME" ]] && psql "$PG_ADMIN" -q -c "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)" || true
  if [[ -n "$TMP" ]]; then rm -rf "$TMP"; fi
}
trap cleanup EXIT

# The newest dump callgrind_control -d wrote.
latest_dump() { ls -t "$TMP"/cg.out.* | head -n 1; }

load() { # mode count
  "$LOAD_BIN" --url "$URL" --api-key "$XKEY" --attestation-key "$ATT" --mode "$1" \
    --threads 1 --count "$2" --receiver "$RECEIVER" --max-secs 1200
}

for BACKEND in $BACKENDS; do
  TMP="$(mktemp -d)"
  if [[ "$BACKEND" == postgres ]]; then
    DBNAME="provd_hprof_$$"
    psql "$PG_ADMIN" -q -c "CREATE DATABASE $DBNAME"
    export PROVD_DATABASE_URL="${PG_ADMIN%/*}/$DBNAME"
  else
    DBNAME=""
    export PROVD_DATABASE_URL="$TMP/provd.db"
  fi
  RECEIVER="127.0.0.1:$(( 20000 + ($$ + ${#BACKEND}) % 20000 ))"
  (cd "$TMP" && "$PROVD" init >/dev/null 2>&1)
  (cd "$TMP" && echo "Load.Pass1" | "$PROVD" user add --user john.doe@nexusgroup.com --password-stdin >/dev/null)
  XKEY="$(cd "$TMP" && "$PROVD" --json hermod client add --id load --callback-url "http://$RECEIVER/" \
          | sed -n 's/.*"x_api_key": *"\([^"]*\)".*/\1/p')"
  (cd "$TMP" && "$PROVD" hermod attestation load "$REPO/fixtures/hermod/trust_store.json" >/dev/null)

  mkfifo "$TMP/stdout"
  (cd "$TMP" && exec valgrind --tool=callgrind --compress-strings=no --compress-pos=no \
      --callgrind-out-file="$TMP/cg.out" "$PROVD" serve --listen 127.0.0.1:0 \
      >"$TMP/stdout" 2>"$TMP/valgrind.log") &
  PID=$!
  exec 3<"$TMP/stdout"
  line=""
  read -r -t 300 line <&3 || { tail -n 20 "$TMP/valgrind.log" >&2; exit 1; }
  URL="http://${line##*http://}/"

  # Warm-up: pools, lazy statics, first-use paths.
  load complete 3 >/dev/null
  load health 20 >/dev/null
  callgrind_control -z "$PID" >/dev/null
  out_h="$(load health "$N")"
  callgrind_control -d health "$PID" >/dev/null
  health_dump="$(latest_dump)"
  out_c="$(load complete "$M")"
  callgrind_control -d complete "$PID" >/dev/null
  complete_dump="$(latest_dump)"
  kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  exec 3<&-
  echo "== backend=$BACKEND (callgrind, 1 client thread)"
  echo "   health:   $out_h"
  echo "   complete: $out_c"
  for o in "$out_h" "$out_c"; do
    grep -q " failed=0 " <<<"$o" || { echo "a load phase had failures: $o" >&2; exit 1; }
  done
  python3 "$REPO/benches/callgrind_categories.py" "$health_dump" "$N" "$complete_dump" "$M" "complete provisioning"
  echo
  [[ -n "$DBNAME" ]] && psql "$PG_ADMIN" -q -c "DROP DATABASE IF EXISTS $DBNAME WITH (FORCE)"
  DBNAME=""
  rm -rf "$TMP"; TMP=""
done
