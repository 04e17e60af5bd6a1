#!/usr/bin/env bash
# cargo-deny: licenses, bans (duplicate crate versions) and sources, as
# deny.toml states them. Installs cargo-deny when missing. Advisories need
# the RustSec database, which is fetched from GitHub: they are checked when
# a copy of the database is present (~/.cargo/advisory-dbs, as
# `cargo deny fetch` leaves it, or SSHLIB_ADVISORY_DB=/path/to/advisory-db),
# and the script says plainly when they are not.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo deny --version >/dev/null 2>&1; then
    cargo install cargo-deny --locked --version 0.20.2
fi
# cargo-deny reads the whole dependency graph (every platform's crates,
# e.g. wasi under mio): fetch them all first, then check offline.
cargo fetch --locked
cargo deny --offline check licenses bans sources
db_dir="$HOME/.cargo/advisory-dbs"
if [ -n "${SSHLIB_ADVISORY_DB:-}" ]; then
    mkdir -p "$db_dir"
    rm -rf "$db_dir/advisory-db-3157b0e258782691"
    cp -r "$SSHLIB_ADVISORY_DB" "$db_dir/advisory-db-3157b0e258782691"
fi
if ls "$db_dir"/advisory-db-* >/dev/null 2>&1; then
    cargo deny --offline check advisories
elif cargo deny check advisories 2>/dev/null; then
    :
else
    echo "cargo deny: advisories NOT checked: no RustSec database here and GitHub is unreachable" >&2
fi
