#!/usr/bin/env bash
# cargo-deny: licenses, bans (duplicate crate versions), sources and
# advisories, as deny.toml states them. Installs cargo-deny when missing.
#
# Advisories need the RustSec database. In order of preference:
#   1. SSHLIB_ADVISORY_DB=/path/to/advisory-db (a checkout), when set;
#   2. a fresh copy fetched from the database's home, when it is reachable;
#   3. the offline snapshot ../shared/advisory-db/advisory-db.bundle beside
#      this repository (or SSHLIB_ADVISORY_BUNDLE=/path/to/bundle), cloned
#      where cargo-deny looks for its database.
# With none of them the advisory check fails: it is never skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo deny --version >/dev/null 2>&1; then
    cargo install cargo-deny --locked --version 0.20.2
fi
# cargo-deny reads the whole dependency graph (every platform's crates,
# e.g. wasi under mio): fetch them all first, then check offline.
cargo fetch --locked
cargo deny --offline check licenses bans sources

# cargo-deny's directory for the default database URL.
db="$HOME/.cargo/advisory-dbs/advisory-db-3157b0e258782691"
bundle="${SSHLIB_ADVISORY_BUNDLE:-$PWD/../shared/advisory-db/advisory-db.bundle}"
mkdir -p "$(dirname "$db")"
if [ -n "${SSHLIB_ADVISORY_DB:-}" ]; then
    rm -rf "$db"
    cp -r "$SSHLIB_ADVISORY_DB" "$db"
    source="SSHLIB_ADVISORY_DB ($SSHLIB_ADVISORY_DB)"
elif rm -rf "$db" && timeout 120 cargo deny fetch db >/dev/null 2>&1 \
        && git -C "$db" rev-parse -q --verify HEAD >/dev/null 2>&1; then
    source="fetched now"
elif [ -f "$bundle" ]; then
    rm -rf "$db"
    git -c init.defaultBranch=main clone -q -b main "$bundle" "$db"
    source="offline snapshot $bundle"
else
    echo "cargo deny: no RustSec advisory database: none could be fetched and no snapshot at $bundle" >&2
    echo "  (set SSHLIB_ADVISORY_DB=/path/to/advisory-db or SSHLIB_ADVISORY_BUNDLE=/path/to/bundle)" >&2
    exit 1
fi
echo "cargo deny: advisories from $source, database commit $(git -C "$db" log -1 --format='%h %cs')"
cargo deny --offline check advisories
