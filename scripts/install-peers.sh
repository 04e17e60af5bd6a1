#!/usr/bin/env bash
# Installs the interoperability peers the tests need: OpenSSH (server and
# clients), Dropbear, PuTTY tools, curl (a SOCKS client), paramiko and
# AsyncSSH. Idempotent: each
# peer is installed only when missing. A peer that cannot be installed makes
# this script (and so the test run) fail.
set -euo pipefail

PY=${PYTHON:-python3}
need_apt=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need_apt+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need_apt+=(openssh-client)
command -v ssh-keygen >/dev/null 2>&1 || need_apt+=(openssh-client)
[ -x /usr/lib/openssh/sftp-server ] || need_apt+=(openssh-sftp-server)
command -v dropbear >/dev/null 2>&1 || [ -x /usr/sbin/dropbear ] || need_apt+=(dropbear-bin)
command -v dbclient >/dev/null 2>&1 || need_apt+=(dropbear-bin)
command -v plink >/dev/null 2>&1 || need_apt+=(putty-tools)
command -v puttygen >/dev/null 2>&1 || need_apt+=(putty-tools)
command -v sha256sum >/dev/null 2>&1 || need_apt+=(coreutils)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
[ -x /usr/bin/curl ] || need_apt+=(curl)

if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then SUDO=sudo; else SUDO=; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update
    # shellcheck disable=SC2068
    $SUDO apt-get install -y --no-install-recommends $(printf '%s\n' ${need_apt[@]} | sort -u)
fi

if ! "$PY" -c 'import paramiko, asyncssh' >/dev/null 2>&1; then
    "$PY" -m pip install --quiet paramiko asyncssh
fi

# Verify every peer is really there: a missing peer fails the run.
missing=()
for b in ssh ssh-keygen ssh-agent sftp scp dbclient plink puttygen psftp openssl; do
    command -v "$b" >/dev/null 2>&1 || missing+=("$b")
done
[ -x /usr/sbin/sshd ] || missing+=(sshd)
[ -x /usr/sbin/dropbear ] || command -v dropbear >/dev/null 2>&1 || missing+=(dropbear)
"$PY" -c 'import paramiko, asyncssh' >/dev/null 2>&1 || missing+=(paramiko/asyncssh)
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-peers: missing peers: ${missing[*]}" >&2
    exit 1
fi
mkdir -p /run/sshd
echo "install-peers: all peers present ($(ssh -V 2>&1))"
