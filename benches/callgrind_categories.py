#!/usr/bin/env python3
"""Where the instructions of a callgrind dump go, per operation, against a baseline dump.

    callgrind_categories.py BASELINE_DUMP BASELINE_COUNT DUMP COUNT [LABEL]

Each dump covers one phase of a server's life (callgrind_control -z, the requests, then
callgrind_control -d); BASELINE_COUNT and COUNT are the operations in each phase. Prints the
instructions per operation of both phases and their ratio, then, per operation of the
second phase, the inclusive cost of a few categories of functions (entered from outside the
category, so nesting inside a category is counted once; categories may overlap each other)
and of the top functions, each also as a multiple of one baseline operation. Callgrind's
inclusive costs count a call cycle's members more than once, so a category that wraps the
work it calls back into (e.g. the store's connection closures) is not listed.

Names are matched as callgrind demangles them; functions inlined into their callers are
counted as their callers. Kernel time (syscalls, the network stack) is not instructions of
the process and is not in these numbers.
"""

import re
import sys
from collections import defaultdict

CATEGORIES = [
    ("signature verification (jws::PublicKey::verify, csr::Csr::verify)",
     r"provd::hermod::jws::PublicKey::verify|provd::hermod::csr::Csr::verify"),
    ("  RSA in ring (ring::rsa)", r"\bring::rsa::"),
    ("  P-256 ECDSA in ring (ring::ec)", r"\bring::ec::"),
    ("proof of possession, per key (hermod::verify::verify_key)", r"provd::hermod::verify::verify_key"),
    ("answer verified and stored (hermod::service::Hermod::complete)",
     r"provd::hermod::service::Hermod::complete"),
    ("Argon2", r"argon2"),
    ("SHA-256 and HMAC (sha2, hmac: tokens, API keys, callback HMAC)", r"\bsha2::|\bhmac::"),
    ("JSON (serde_json)", r"\bserde_json::"),
    ("SQL: diesel", r"\bdiesel::"),
    ("SQL: SQLite library", r"^sqlite3"),
    ("SQL: libpq", r"^(PQ|pq[a-zA-Z])"),
    ("HTTP/1 parsing and encoding (actix-http h1, httparse)", r"actix_http::h1::|\bhttparse::"),
    ("callback delivery (hermod::worker, ureq)", r"provd::hermod::worker::|\bureq::"),
    ("audit rows (provd functions named *audit*)", r"provd::\S*audit"),
    ("memory allocator (malloc, free, realloc)",
     r"^(malloc|free|realloc|calloc|_int_malloc|_int_free|_int_realloc|malloc_consolidate|cfree)$"),
]

COST = re.compile(r"^[+\-*]?\d")


def parse(path):
    """Self cost per function, inclusive cost per call edge, and the total."""
    names = {}

    def name(v):
        m = re.match(r"\((\d+)\)(?: (.*))?$", v)
        if not m:
            return v
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), v)

    self_cost = defaultdict(int)
    edges = defaultdict(int)
    total = None
    fn = None
    callee = None
    pending_call = False
    with open(path, errors="replace") as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("fn="):
                fn = name(line[3:])
            elif line.startswith("cfn="):
                callee = name(line[4:])
            elif line.startswith("calls="):
                pending_call = True
            elif COST.match(line):
                parts = line.split()
                ir = int(parts[1]) if len(parts) > 1 else 0
                if pending_call:
                    edges[(fn, callee)] += ir
                    pending_call = False
                else:
                    self_cost[fn] += ir
            elif line.startswith(("summary:", "totals:")):
                total = int(line.split()[1])
    if total is None:
        total = sum(self_cost.values())
    return self_cost, edges, total


def inclusive(self_cost, edges):
    inc = defaultdict(int, self_cost)
    for (caller, callee), c in edges.items():
        if caller != callee:
            inc[caller] += c
    return inc


def category(edges, self_cost, pattern):
    rx = re.compile(pattern)
    cost = 0
    for (caller, callee), c in edges.items():
        if rx.search(callee or "") and not rx.search(caller or ""):
            cost += c
    if cost == 0:
        # Functions of the category that nothing outside it calls (thread roots).
        cost = sum(c for f, c in self_cost.items() if rx.search(f or ""))
    return cost


def main():
    base_path, base_n, path, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    label = sys.argv[5] if len(sys.argv) > 5 else "operation"
    _, _, base_total = parse(base_path)
    self_cost, edges, total = parse(path)
    per_base = base_total / base_n
    per_op = total / n
    print(f"baseline: {per_base:,.0f} instructions per baseline operation ({base_n} in the phase)")
    print(f"{label}: {per_op:,.0f} instructions per operation ({n} in the phase), "
          f"= {per_op / per_base:,.1f} baseline operations")
    print(f"\n{'category (inclusive, per ' + label + ')':<72} {'instr':>13} {'share':>6} {'x base':>8}")
    for title, pattern in CATEGORIES:
        c = category(edges, self_cost, pattern) / n
        print(f"{title:<72} {c:>13,.0f} {100 * c / per_op:>5.1f}% {c / per_base:>8.2f}")
    inc = inclusive(self_cost, edges)
    skip = re.compile(r"^(0x|\?\?\?|_start|__libc_start|main$|start_thread|clone3?$|std::rt::|std::sys::|"
                      r"core::ops::function::|std::thread::|tokio::runtime::|__rust_begin|"
                      r"std::panicking|std::panic|actix_rt::|<alloc::boxed::Box)")
    print(f"\n{'top functions (inclusive, per ' + label + ')':<72} {'instr':>13} {'share':>6} {'x base':>8}")
    shown = 0
    for f, c in sorted(inc.items(), key=lambda kv: -kv[1]):
        if skip.search(f or ""):
            continue
        c /= n
        short = f if len(f) <= 72 else f[:69] + "..."
        print(f"{short:<72} {c:>13,.0f} {100 * c / per_op:>5.1f}% {c / per_base:>8.2f}")
        shown += 1
        if shown == 25:
            break


if __name__ == "__main__":
    main()
