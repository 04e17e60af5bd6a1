#!/usr/bin/env bash
# The full soak: 4 GiB through a channel for every cipher (rekey every
# 64 MiB, compression on) and 1 GiB of SFTP put and get with rekeys. CI
# runs the same tests at 128 MiB as part of scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
SSHLIB_SOAK_MIB="${SSHLIB_SOAK_MIB:-4096}" SSHLIB_SOAK_SFTP_MIB="${SSHLIB_SOAK_SFTP_MIB:-1024}" \
    cargo test --release --test soak -- --test-threads=1 --nocapture
