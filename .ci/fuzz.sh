#!/usr/bin/env bash
# Bounded coverage-guided fuzzing (cargo fuzz / libFuzzer) of the wire parsers.
#
#   FUZZ_SECONDS    time per target, default 60
#   FUZZ_TARGETS    space-separated targets, default every fuzz/fuzz_targets/*.rs
#   FUZZ_SANITIZER  address (default) or none; a failing build fails the run (no fallback)
#   FUZZ_TIMEOUT    libFuzzer per-input timeout in seconds, default 10
#   CARGO_TARGET_DIR is honoured (default: fuzz/target)
#
# Works on the stable toolchain: cargo fuzz passes nightly-only -Z flags, which
# RUSTC_BOOTSTRAP=1 unlocks. Saved crash reproducers in fuzz/regressions/<target>-* are
# replayed first and count as failures while they still crash.
# Exits non-zero if any target crashes; the last line is `fuzz: N passed, M failed`.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fuzz_dir="$repo/fuzz"
seconds="${FUZZ_SECONDS:-60}"
targets="${FUZZ_TARGETS:-$(cd "$fuzz_dir/fuzz_targets" && ls *.rs | sed 's/\.rs$//' | tr '\n' ' ')}"
sanitizer="${FUZZ_SANITIZER:-address}"
timeout="${FUZZ_TIMEOUT:-10}"
export RUSTC_BOOTSTRAP=1

cargo_fuzz_version=0.13.2
if [[ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $cargo_fuzz_version" ]]; then
    echo "fuzz: installing cargo-fuzz $cargo_fuzz_version"
    cargo install cargo-fuzz --version "$cargo_fuzz_version" --locked
fi
cargo fuzz --version

cd "$fuzz_dir"
# Resolve dependencies exactly as the main crate does (fuzz/Cargo.lock is not tracked).
if [[ ! -f Cargo.lock && -f "$repo/Cargo.lock" ]]; then
    cp "$repo/Cargo.lock" Cargo.lock
fi

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
ntargets="$(wc -w <<<"$targets")"

# Build every target once, up front; a failing build (sanitizer or code) fails the run.
for t in $targets; do
    if ! cargo fuzz build --sanitizer "$sanitizer" "$t"; then
        echo "fuzz: build of $t with --sanitizer $sanitizer failed" >&2
        echo "fuzz: 0 passed, $ntargets failed"
        exit 1
    fi
done
echo "fuzz: sanitizer $sanitizer, ${seconds}s per target"

passed=0
failed=0

for t in $targets; do
    log="$logs/$t.log"
    ok=1

    # 1. Replay saved reproducers: each must now run cleanly.
    shopt -s nullglob
    regressions=("$fuzz_dir"/regressions/"$t"-*)
    shopt -u nullglob
    if (( ${#regressions[@]} )); then
        echo "fuzz: $t: replaying ${#regressions[@]} regression input(s)"
        if ! cargo fuzz run --sanitizer "$sanitizer" "$t" "${regressions[@]}" \
            -- -timeout="$timeout" >"$log.replay" 2>&1; then
            ok=0
            grep -E "panicked at|^Running: |ERROR: |SUMMARY" "$log.replay" | head -20 >&2 || true
            echo "fuzz: $t: a regression input still crashes (see above)" >&2
        fi
    fi

    # 2. Fuzz. New inputs go to corpus-work/<t> (untracked); the tracked seeds are read only.
    dict="$fuzz_dir/dict/$t.dict"
    [[ -f "$dict" ]] || dict="$fuzz_dir/dict/xml.dict"
    mkdir -p "$fuzz_dir/corpus/$t"
    work="$fuzz_dir/corpus-work/$t"
    artifacts="$fuzz_dir/artifacts/$t"
    mkdir -p "$work" "$artifacts"
    echo "fuzz: $t: fuzzing for ${seconds}s"
    set +e
    cargo fuzz run --sanitizer "$sanitizer" "$t" "$work" "$fuzz_dir/corpus/$t" -- \
        -max_total_time="$seconds" -timeout="$timeout" \
        -dict="$dict" -artifact_prefix="$artifacts/" \
        -print_final_stats=1 >"$log" 2>&1
    rc=$?
    set -e
    grep -E "^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::new_units_added|stat::peak_rss_mb):" "$log" \
        | sed "s/^/fuzz: $t: /" || true
    grep -E "^Done [0-9]+ runs" "$log" | sed "s/^/fuzz: $t: /" || true
    if (( rc != 0 )); then
        ok=0
        # Show the panic and where it happened, then the reproducer.
        grep -E "panicked at|^thread '|==[0-9]+==ERROR|SUMMARY:|Failing input|Test unit written to|Output of .std::fmt::Debug." -A2 "$log" \
            | head -40 >&2 || tail -40 "$log" >&2
        artifact="$(grep -oE "Test unit written to [^ ]+" "$log" | tail -1 | sed 's/^Test unit written to //')"
        echo "fuzz: $t: CRASH (exit $rc); artifact: ${artifact:-none written, see log above}" >&2
        if [[ -n "$artifact" ]]; then
            echo "fuzz: $t: reproduce: RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer $sanitizer $t $artifact" >&2
            echo "fuzz: $t: minimise:  RUSTC_BOOTSTRAP=1 cargo fuzz tmin --sanitizer $sanitizer $t $artifact" >&2
        fi
    fi

    if (( ok )); then
        passed=$((passed + 1))
        echo "fuzz: $t: ok"
    else
        failed=$((failed + 1))
    fi
done

echo "fuzz: $passed passed, $failed failed"
(( failed == 0 ))
