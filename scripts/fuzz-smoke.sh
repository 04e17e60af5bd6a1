#!/usr/bin/env bash
# Fuzz smoke run: each cargo-fuzz target for SECONDS (default 20), one at a
# time. Fails when a target crashes (libFuzzer exits non-zero and leaves the
# input under fuzz/artifacts/<target>/). Installs cargo-fuzz when nightly
# Rust is present and cargo-fuzz is not. Without nightly it says so and
# exits 0: the stable test
#   cargo test --release -p ssh-proto --test fuzz_replay
# replays the corpus. The test command (scripts/test.sh) runs it with 20 s.
set -u -o pipefail
SECONDS_PER_TARGET="${1:-20}"
cd "$(dirname "$0")/../fuzz" || exit 1

if cargo +nightly --version >/dev/null 2>&1 && ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked || echo "fuzz-smoke: cannot install cargo-fuzz"
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: nightly Rust or cargo-fuzz is missing (rustup toolchain install nightly; cargo install cargo-fuzz); skipping."
    echo "fuzz-smoke: the stable replay test covers the corpus: cargo test --release -p ssh-proto --test fuzz_replay"
    exit 0
fi

# The fuzz_targets/*.rs files (`cargo fuzz list` also names the
# record_corpus helper binary, which is not a target).
targets=$(ls fuzz_targets | sed -n 's/\.rs$//p')
failed=()
for t in $targets; do
    echo "== $t (${SECONDS_PER_TARGET}s)"
    # Seeds are only read (a scratch dir takes new corpus entries), so a
    # smoke run leaves fuzz/corpus unchanged.
    scratch=$(mktemp -d)
    if ! cargo +nightly fuzz run "$t" "$scratch" "corpus/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" 2>&1 | tail -n 25; then
        failed+=("$t")
    fi
    rm -rf "$scratch"
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "fuzz-smoke: FAILED: ${failed[*]} (inputs under fuzz/artifacts/)"
    exit 1
fi
echo "fuzz-smoke: all targets ran ${SECONDS_PER_TARGET}s without a crash"
