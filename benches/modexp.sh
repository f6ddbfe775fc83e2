#!/usr/bin/env bash
# provd's constant-time 2048-bit modular exponentiation (256-bit exponent, the SRP g^b) against
# OpenSSL's BN_mod_exp_mont_consttime on the same machine in the same run; prints both and the
# ratio. Needs a C compiler and libssl-dev.
#   benches/modexp.sh
set -euo pipefail
cd "$(dirname "$0")/.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cc -O2 -o "$work/openssl_modexp" benches/modexp/openssl_modexp.c -lcrypto
openssl_ns=$("$work/openssl_modexp" 2000)
cargo bench --bench srp -- --warm-up-time 1 --measurement-time 5 modexp_client_public 2>/dev/null \
  | tee "$work/criterion.txt" | grep -A1 modexp_client_public || true
# criterion prints: time:   [low mid high] with units; take the middle estimate.
provd_ns=$(python3 - "$work/criterion.txt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
m = re.search(r"modexp_client_public\s*\n?\s*time:\s*\[\S+ \S+ (\S+) (\S+)", text)
value, unit = float(m.group(1)), m.group(2)
print(round(value * {"ns": 1, "µs": 1e3, "us": 1e3, "ms": 1e6}[unit]))
PY
)
echo "OpenSSL BN_mod_exp_mont_consttime: ${openssl_ns} ns"
echo "provd (crypto-bigint):             ${provd_ns} ns"
python3 -c "print(f'ratio provd/OpenSSL: {${provd_ns}/${openssl_ns}:.2f}')"
