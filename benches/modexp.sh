#!/usr/bin/env bash
# provd's constant-time 2048-bit modular exponentiations (256-bit exponent) against OpenSSL's
# BN_mod_exp_mont_consttime on the same machine in the same run; prints each and the ratios:
#   fixed base     g^e as provd computes A = g^a, B's g^b and the verifier g^x (a table of
#                  powers of g built once per group: 64 multiplications per exponentiation)
#   variable base  crypto-bigint's pow_bounded_exp, as provd computes v^u and (A*v^u)^b
# OpenSSL's figure is its general exponentiation (it keeps no table of powers of g).
# Needs a C compiler and libssl-dev. Where it may (root, chrt and taskset present), each
# measurement runs pinned to one core at real-time priority, so that other work on the
# machine does not move the figures; otherwise it says so and runs as it is.
#   benches/modexp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/openssl_modexp" benches/modexp/openssl_modexp.c -lcrypto
cargo bench --bench srp --no-run 2>/dev/null
pin=()
if chrt -f 50 taskset -c 1 true 2>/dev/null; then
  pin=(chrt -f 50 taskset -c 1)
  echo "measuring pinned to CPU 1 at SCHED_FIFO priority 50"
else
  echo "measuring unpinned (no chrt/taskset or not permitted): other load moves the figures"
fi
openssl_ns=$("${pin[@]}" "$work/openssl_modexp" 2000)
"${pin[@]}" cargo bench --bench srp -- --warm-up-time 1 --measurement-time 5 modexp_ 2>/dev/null \
  | tee "$work/criterion.txt" | grep -A1 modexp_ || true
# criterion prints: time:   [low mid high] with units; take the middle estimate.
estimate() {
  python3 - "$work/criterion.txt" "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(sys.argv[2] + r"\s*\n?\s*time:\s*\[\S+ \S+ (\S+) (\S+)", text)
value, unit = float(m.group(1)), m.group(2)
print(round(value * {"ns": 1, "µs": 1e3, "us": 1e3, "ms": 1e6}[unit]))
PY
}
fixed_ns=$(estimate modexp_client_public)
variable_ns=$(estimate modexp_bounded_256_bits)
echo "OpenSSL BN_mod_exp_mont_consttime:        ${openssl_ns} ns"
echo "provd fixed base (g^e, table of powers):  ${fixed_ns} ns"
echo "provd variable base (crypto-bigint):      ${variable_ns} ns"
python3 -c "print(f'ratio fixed base/OpenSSL: {${fixed_ns}/${openssl_ns}:.2f}'); print(f'ratio variable base/OpenSSL: {${variable_ns}/${openssl_ns}:.2f}')"
