# Shared by the load scripts (sourced, not run): the server's start, its memory, and stopping
# what a script started. Expects TMP (a temp dir) and PROVD (the binary); sets SERVER_PID.

SERVER_PID=""

# A field of the server's /proc status in kB, e.g. `rss_kb VmRSS`.
rss_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$SERVER_PID/status" 2>/dev/null || true; }

# Stops a process we started, if it still runs: `stop_pid PID SIGNAL`.
stop_pid() {
  if [[ -n "$1" ]] && kill -0 "$1" 2>/dev/null; then
    kill "-$2" "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
  fi
}

# Starts `provd serve` in $TMP (so that no stray provd.toml is picked up) on a free loopback
# port, with any VAR=value arguments in its environment, and sets URL from its first stdout
# line. stdout goes through a FIFO kept open on fd 3 until the server has exited, so a later
# write to stdout cannot hit a closed pipe.
start_server() {
  mkfifo "$TMP/stdout"
  (
    cd "$TMP"
    exec env "$@" "$PROVD" serve --listen 127.0.0.1:0 >"$TMP/stdout" 2>"$TMP/server.log"
  ) &
  SERVER_PID=$!
  exec 3<"$TMP/stdout"
  local line=""
  if ! read -r -t 20 line <&3; then
    echo "server did not announce its address within 20 s; log:" >&2
    tail -n 20 "$TMP/server.log" >&2 || true
    exit 1
  fi
  local addr="${line#provd listening on http://}"
  [[ "$addr" != "$line" && "$addr" == 127.0.0.1:* ]] || { echo "unexpected first line: $line" >&2; exit 1; }
  URL="http://$addr/"
}

# Stops the server with SIGTERM and waits (bounded; actix drains for up to 30 s), SIGKILL
# after 40 s; sets SERVER_RC (its exit status) and STOP_SECS.
stop_server() {
  local start=$SECONDS
  kill -TERM "$SERVER_PID"
  for _ in $(seq 400); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "server still running 40 s after SIGTERM; killing it" >&2
    kill -KILL "$SERVER_PID" || true
  fi
  SERVER_RC=0
  wait "$SERVER_PID" || SERVER_RC=$?
  SERVER_PID=""
  STOP_SECS=$(( SECONDS - start ))
}
