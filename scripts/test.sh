#!/usr/bin/env bash
# The project's test command: installs the interoperability peers (OpenSSH,
# Dropbear, PuTTY tools, paramiko, AsyncSSH) when missing, builds the
# examples once, and runs every test (unit, in-memory, property and
# interoperability tests against the real peers, and the fuzz corpus
# replayed on stable), then cargo-deny's license, ban and source checks and
# a 20 s smoke run of each fuzz target when nightly Rust is present. A
# missing peer fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-peers.sh
cargo build --release --workspace --examples
cargo test --release --workspace -- --test-threads=2
bash scripts/deny.sh
bash scripts/fuzz-smoke.sh 20
