#!/usr/bin/env bash
# The store at scale: SERVER_TIME and first-registration latency with 1k and with 1M users and
# authenticators (all but 50 authenticators taken, their serials sorting before the free ones,
# PostgreSQL's statistics taken while every authenticator was still free, so they are stale),
# measured in the same run; prints both and their ratio.
#
#   BACKEND=sqlite|postgres SIZES="1000 1000000" benches/store_scale.sh [target/release/provd]
#
# PostgreSQL: PGURL (default postgres://127.0.0.1:5432/test) must allow CREATE DATABASE; the
# script uses and drops a database named provd_scale. Needs python3 (and psql for PostgreSQL).
set -euo pipefail
cd "$(dirname "$0")/.."
PROVD="${1:-target/release/provd}"
PROVD="$(realpath "$PROVD")"
BACKEND="${BACKEND:-sqlite}"
SIZES="${SIZES:-1000 1000000}"
PGURL="${PGURL:-postgres://127.0.0.1:5432/test}"
MEASURED_USERS="${MEASURED_USERS:-20}"
[[ -x "$PROVD" ]] || { echo "build first: cargo build --release --bin provd" >&2; exit 1; }

export PROVD_MASTER_KEY=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
export PROVD_RATE_LIMIT_PER_MINUTE=0
export PROVD_LOG=warn

TMP=$(mktemp -d)
# shellcheck source=benches/load/lib.sh
source benches/load/lib.sh
trap 'stop_pid "$SERVER_PID" KILL; rm -rf "$TMP"' EXIT

pg_db_url() { echo "${PGURL%/*}/provd_scale"; }

# Fills a fresh store with $1 users and authenticators (all taken but 50 free ones) and
# $MEASURED_USERS users with the password 1.Password.
fill() {
  local n=$1
  if [[ "$BACKEND" == postgres ]]; then
    psql -q "$PGURL" -c 'DROP DATABASE IF EXISTS provd_scale' -c 'CREATE DATABASE provd_scale'
    export PROVD_DATABASE_URL; PROVD_DATABASE_URL=$(pg_db_url)
  else
    rm -rf "$TMP/db"; mkdir -p "$TMP/db"
    export PROVD_DATABASE_URL="$TMP/db/provd.db"
  fi
  "$PROVD" init >/dev/null
  "$PROVD" authenticator generate --prefix ZZF --count 50 >/dev/null 2>&1
  local t0=$SECONDS
  if [[ "$BACKEND" == postgres ]]; then
    psql -q "$PROVD_DATABASE_URL" <<SQL
INSERT INTO users (user_id, domain, created_at, updated_at)
  SELECT 'u' || lpad(i::text, 9, '0'), 'master', 0, 0 FROM generate_series(1, $n) i;
INSERT INTO authenticators (serial_no, auth_type, applications, status, sealed_key, created_at)
  SELECT 'A' || lpad(i::text, 9, '0'), a.auth_type, a.applications, 'available', '\\x00', 0
  FROM generate_series(1, $n) i, (SELECT auth_type, applications FROM authenticators LIMIT 1) a;
ANALYZE;
UPDATE authenticators SET status = 'active', user_pk = u.id
  FROM users u WHERE u.user_id = 'u' || substr(authenticators.serial_no, 2)
  AND authenticators.serial_no LIKE 'A%';
SQL
  else
    python3 - "$PROVD_DATABASE_URL" "$n" <<'PY'
import sqlite3, sys
db, n = sys.argv[1], int(sys.argv[2])
c = sqlite3.connect(db)
auth_type, apps = c.execute("SELECT auth_type, applications FROM authenticators LIMIT 1").fetchone()
c.executemany("INSERT INTO users (id, user_id, domain, created_at, updated_at) VALUES (?, ?, 'master', 0, 0)",
              ((1_000_000 + i, f"u{i:08d}") for i in range(1, n + 1)))
c.executemany("INSERT INTO authenticators (serial_no, auth_type, applications, status, user_pk, sealed_key, created_at)"
              " VALUES (?, ?, ?, 'active', ?, x'00', 0)",
              ((f"A{i:09d}", auth_type, apps, 1_000_000 + i) for i in range(1, n + 1)))
c.commit()
PY
  fi
  echo "  filled $n rows per table in $((SECONDS - t0)) s"
  local pick="SELECT serial_no FROM authenticators WHERE status = 'available' AND user_pk IS NULL AND disabled = false ORDER BY serial_no LIMIT 8"
  if [[ "$BACKEND" == postgres ]]; then
    echo "  plan of the free-authenticator pick: $(psql -qAt "$PROVD_DATABASE_URL" -c "EXPLAIN $pick" | grep -o 'Index[^(]*' | head -n1)"
  else
    echo "  plan of the free-authenticator pick: $(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('EXPLAIN QUERY PLAN ' + sys.argv[2]).fetchall()[-1][-1])" "$PROVD_DATABASE_URL" "$pick")"
  fi
  for i in $(seq 1 "$MEASURED_USERS"); do
    echo '1.Password' | "$PROVD" user add --user "bench$i" --password-stdin >/dev/null
  done
}

# Prints "server_time_p50_ms register_p50_ms" for the running server at $URL.
measure() {
  python3 - "$URL" "$MEASURED_USERS" <<'PY'
import http.client, statistics, sys, time, urllib.parse
url, users = urllib.parse.urlparse(sys.argv[1]), int(sys.argv[2])
conn = http.client.HTTPConnection(url.hostname, url.port)
ns = 'xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/" xmlns:PROV-TYPES="http://www.vasco.com/IdentikeyServer/IdentikeyTypes/Provisioning"'
def call(body):
    env = f'<?xml version="1.0"?><SOAP-ENV:Envelope {ns}><SOAP-ENV:Body>{body}</SOAP-ENV:Body></SOAP-ENV:Envelope>'
    t = time.perf_counter()
    conn.request("POST", "/", env, {"Content-Type": "text/xml", "SOAPAction": '""'})
    text = conn.getresponse().read().decode()
    return (time.perf_counter() - t) * 1000, text
st = '<PROV-TYPES:provisioningExecute><cmd>PROVISIONCMD_SERVER_TIME</cmd><attributeSet/></PROV-TYPES:provisioningExecute>'
for _ in range(50): call(st)
server_time = [call(st)[0] for _ in range(500)]
register = []
for i in range(1, users + 1):
    ms, text = call(f'<PROV-TYPES:dsappSRPRegister><componentType>bench</componentType><user><userID>bench{i}</userID>'
                    f'<domain>master</domain></user><credential><staticPassword>1.Password</staticPassword></credential></PROV-TYPES:dsappSRPRegister>')
    assert "registrationID" in text, text[:600]
    register.append(ms)
print(f"{statistics.median(server_time):.3f} {statistics.median(register):.1f}")
PY
}

declare -A ST RG
for n in $SIZES; do
  echo "== $BACKEND, $n users and authenticators"
  fill "$n"
  start_server PROVD_DATABASE_URL="$PROVD_DATABASE_URL"
  read -r st rg < <(measure)
  stop_server
  exec 3<&-
  rm -f "$TMP/stdout"
  ST[$n]=$st; RG[$n]=$rg
  echo "  SERVER_TIME p50 ${st} ms, first registration p50 ${rg} ms"
done
[[ "$BACKEND" == postgres ]] && psql -q "$PGURL" -c 'DROP DATABASE IF EXISTS provd_scale'

set -- $SIZES
first=$1; last=${!#}
python3 -c "print(f'ratio ${last}/${first}: SERVER_TIME {${ST[$last]}/${ST[$first]}:.2f}, registration {${RG[$last]}/${RG[$first]}:.2f}')"
