#!/usr/bin/env bash
# Bulk user import: 100,000 users without passwords (target: under 60 s) on SQLite and, when
# PROVD_TEST_POSTGRES_URL names a server, on PostgreSQL. Baseline in the same run: 200 users
# added one by one with `provd user add`; the ratio is the import's rate over that.
#   benches/user_import.sh [COUNT]        (release build; needs python3; psql for PostgreSQL)
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-100000}
baseline=200
cargo build --release --quiet
bin=$PWD/target/release/provd
work=$(mktemp -d)
pgdb=provd_bench_import_$$
cleanup() {
  rm -rf "$work"
  if [ -n "${PROVD_TEST_POSTGRES_URL:-}" ]; then
    psql "$PROVD_TEST_POSTGRES_URL" -q -c "DROP DATABASE IF EXISTS $pgdb WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT
python3 - "$work/users.csv" "$count" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("user_id,domain,organizational_unit,email\n")
    for i in range(int(sys.argv[2])):
        f.write(f"user{i:07d},master,ou{i % 50},user{i}@example.test\n")
PY
export PROVD_MASTER_KEY=000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f
export PROVD_LOG=warn
now() { date +%s.%N; }
run() { # backend url
  local name=$1 url=$2
  (cd "$work" && PROVD_DATABASE_URL=$url "$bin" migrate >/dev/null)
  local t0 t1 t2
  t0=$(now)
  for i in $(seq 1 "$baseline"); do
    (cd "$work" && PROVD_DATABASE_URL=$url "$bin" user add --user "one$i" --domain base </dev/null >/dev/null)
  done
  t1=$(now)
  (cd "$work" && PROVD_DATABASE_URL=$url "$bin" user import --file users.csv >/dev/null 2>&1)
  t2=$(now)
  python3 - "$name" "$count" "$baseline" "$t0" "$t1" "$t2" <<'PY'
import sys
name, n, b, t0, t1, t2 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *map(float, sys.argv[4:])
one, imp = (t1 - t0) / b, t2 - t1
print(f"{name}: import of {n} users {imp:.1f} s ({n / imp:,.0f} users/s); "
      f"user add one by one {one * 1000:.0f} ms/user; import is {one * n / imp:,.0f}x faster; "
      f"target < 60 s: {'met' if imp < 60 else 'MISSED'}")
PY
}
run sqlite "$work/bench.db"
if [ -n "${PROVD_TEST_POSTGRES_URL:-}" ]; then
  psql "$PROVD_TEST_POSTGRES_URL" -q -c "CREATE DATABASE $pgdb" >/dev/null
  run postgres "${PROVD_TEST_POSTGRES_URL%/*}/$pgdb"
fi
