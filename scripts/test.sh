#!/usr/bin/env bash
# The project's test command: installs the interoperability peers (OpenSSH,
# Dropbear, PuTTY tools, paramiko, AsyncSSH) when missing, builds the
# examples once, and runs every test (unit, in-memory, property and
# interoperability tests against the real peers, and the fuzz corpus
# replayed on stable), the interop suites once more under each runtime
# (blocking, tokio, mio), then cargo-deny's license, ban and source checks and
# a 20 s smoke run of each fuzz target when nightly Rust is present. A
# missing peer fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-peers.sh
cargo build --release --workspace --examples
# Every public item documented, every intra-doc link resolved.
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --workspace
cargo test --release --workspace -- --test-threads=2
# The interop suites again over the other adapters: the examples' default
# runtimes (blocking clients, mio server) ran above; SSHLIB_RUNTIME makes
# every client, sftp and server example the tests start use that one.
for rt in tokio mio blocking; do
    echo "== interop suites with --runtime $rt"
    SSHLIB_RUNTIME=$rt cargo test --release --test interop_client --test interop_server \
        --test interop_sftp -- --test-threads=2
done
bash scripts/deny.sh
bash scripts/fuzz-smoke.sh 20
