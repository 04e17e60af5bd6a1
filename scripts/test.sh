#!/usr/bin/env bash
# The project's test command: installs the interoperability peers (OpenSSH,
# Dropbear, PuTTY tools, paramiko, AsyncSSH) when missing, builds the
# examples once, and runs every test (unit, in-memory, property and
# interoperability tests against the real peers), then cargo-deny's
# license, ban and source checks. A missing peer fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-peers.sh
cargo build --release --workspace --examples
cargo test --release --workspace -- --test-threads=2
bash scripts/deny.sh
