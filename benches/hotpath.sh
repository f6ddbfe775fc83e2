#!/usr/bin/env bash
# Instructions per PROVISIONCMD_SERVER_TIME request, provd against a bare actix-web handler
# answering the same body (examples/bare_actix.rs), both counted by callgrind in the same run:
# each server runs under valgrind once with no request and once with N keep-alive requests;
# the difference divided by N is its cost per request (start-up and shutdown cancel out).
# Instruction counts do not depend on the machine's load.
#
#   N=2000 benches/hotpath.sh        # needs valgrind and python3
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-2000}"
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
cargo build --release --quiet --bin provd --example bare_actix
target="${CARGO_TARGET_DIR:-$PWD/target}"
TMP=$(mktemp -d)
PID=""
trap '[[ -n "$PID" ]] && kill -KILL "$PID" 2>/dev/null; rm -rf "$TMP"' EXIT
export PROVD_LOG=warn PROVD_RATE_LIMIT_PER_MINUTE=0

# Runs `$@` under callgrind in $TMP, sends $REQUESTS requests, stops it; prints total Ir.
instructions() {
  local requests=$1; shift
  local out="$TMP/callgrind.$RANDOM"
  rm -f "$TMP/fifo"; mkfifo "$TMP/fifo"
  (cd "$TMP" && exec valgrind --tool=callgrind --callgrind-out-file="$out" "$@" >"$TMP/fifo" 2>"$TMP/valgrind.log") &
  PID=$!
  exec 3<"$TMP/fifo"
  local line
  read -r -t 120 line <&3 || { cat "$TMP/valgrind.log" >&2; exit 1; }
  local url="http://${line##*http://}/"
  python3 - "$url" "$requests" <<'PY'
import http.client, sys, urllib.parse
url, n = urllib.parse.urlparse(sys.argv[1]), int(sys.argv[2])
body = open("fixtures/01_server_time.request.xml", "rb").read()
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
for _ in range(n):
    conn.request("POST", "/", body, {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'})
    r = conn.getresponse()
    assert r.status == 200 and b"STAT_SUCCESS" in r.read()
PY
  kill -TERM "$PID"; wait "$PID" 2>/dev/null || true; PID=""
  exec 3<&-
  awk '/^(summary|totals):/ { print $2; exit }' "$out"
}

declare -A per_request
for server in provd bare; do
  if [[ $server == provd ]]; then cmd=("$target/release/provd" serve --listen 127.0.0.1:0)
  else cmd=("$target/release/examples/bare_actix"); fi
  base=$(instructions 0 "${cmd[@]}")
  loaded=$(instructions "$N" "${cmd[@]}")
  per_request[$server]=$(( (loaded - base) / N ))
  echo "$server: ${per_request[$server]} instructions per request ($N requests)"
done
python3 -c "print(f'ratio provd/bare: {${per_request[provd]}/${per_request[bare]}:.2f}')"
