#!/usr/bin/env python3
"""An AsyncSSH server for the interoperability tests.

    asyncssh_server.py PORT HOST_KEY AUTHORIZED_KEYS [--user U] [--password P]
                       [--sftp-root DIR] [--allow-forwarding]

Listens on 127.0.0.1:PORT, prints "READY" on stdout once listening, and
serves connections until killed.

Authentication: password P for user U; publickey for keys listed in
AUTHORIZED_KEYS; keyboard-interactive with one "Password: " prompt whose
answer must be P. Each successful authentication is logged on stdout as
"auth METHOD ok for USER".

Channels: `exec` runs the command with `/bin/sh -c`, stdin/stdout/stderr are
piped in both directions, then exit-status (or exit-signal when the command
was killed by a signal) is sent and the channel closed.

--sftp-root DIR: the `sftp` subsystem is served by AsyncSSH's SFTPServer
chrooted to DIR (`asyncssh.SFTPServer(chan, chroot=DIR)`: clients see DIR
as `/`, the start directory too). AsyncSSH reads the SYMLINK arguments in
the order of the SFTP draft unless the client's version string names
OpenSSH or paramiko. Without this option the subsystem is refused, as
before.

--allow-forwarding: `direct-tcpip` opens are connected by AsyncSSH to
their destination and `tcpip-forward` requests get a listener (port 0: one
AsyncSSH picks, named in the reply; `cancel-tcpip-forward` closes it);
each is logged on stdout as `direct-tcpip to HOST:PORT from HOST:PORT` or
`tcpip-forward HOST:PORT`. Without it both are refused (AsyncSSH's
default: open failure code 1, request failure).
"""

import argparse
import asyncio
import signal
import sys

import asyncssh

CHUNK = 256 * 1024
WINDOW = 8 * 1024 * 1024


def log(*args):
    print(*args, flush=True)


class Server(asyncssh.SSHServer):
    def __init__(self, args, authorized):
        self.args = args
        self.authorized = authorized
        self.conn = None
        self.pending = {}

    def connection_made(self, conn):
        self.conn = conn

    def begin_auth(self, username):
        return True

    def public_key_auth_supported(self):
        return True

    def validate_public_key(self, username, key):
        # AsyncSSH verifies the signature itself once this accepts the key.
        ok = username == self.args.user and key.public_data in self.authorized
        if ok:
            log("auth publickey ok for %s (%s)" % (username, key.get_algorithm()))
        return ok

    def password_auth_supported(self):
        return True

    def validate_password(self, username, password):
        ok = username == self.args.user and password == self.args.password
        if ok:
            log("auth password ok for %s" % username)
        return ok

    def kbdint_auth_supported(self):
        return True

    def get_kbdint_challenge(self, username, lang, submethods):
        if username != self.args.user:
            return False
        return "", "", "", [("Password: ", False)]

    def validate_kbdint_response(self, username, responses):
        ok = list(responses) == [self.args.password]
        if ok:
            log("auth keyboard-interactive ok for %s" % username)
        return ok

    def auth_completed(self):
        pass

    def connection_requested(self, dest_host, dest_port, orig_host, orig_port):
        if not self.args.allow_forwarding:
            return False
        log("direct-tcpip to %s:%d from %s:%d" % (dest_host, dest_port, orig_host, orig_port))
        return True

    def server_requested(self, listen_host, listen_port):
        if not self.args.allow_forwarding:
            return False
        log("tcpip-forward %s:%d" % (listen_host, listen_port))
        return True


async def handle_process(process):
    command = process.command
    if command is None:
        process.stderr.write(b"this test server only supports exec\n")
        process.exit(1)
        return
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        command,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )

    async def pump_in():
        try:
            while True:
                data = await process.stdin.read(CHUNK)
                if not data:
                    break
                proc.stdin.write(data)
                await proc.stdin.drain()
        except Exception:
            pass
        finally:
            try:
                proc.stdin.close()
            except Exception:
                pass

    async def pump_out(reader, writer):
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                writer.write(data)
                await writer.drain()
        except Exception:
            pass

    tin = asyncio.ensure_future(pump_in())
    await asyncio.gather(pump_out(proc.stdout, process.stdout), pump_out(proc.stderr, process.stderr))
    rc = await proc.wait()
    if not tin.done():
        tin.cancel()
    if rc < 0:
        name = signal.Signals(-rc).name
        process.exit_with_signal(name[3:] if name.startswith("SIG") else name)
    else:
        process.exit(rc)


async def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("host_key")
    p.add_argument("authorized_keys")
    p.add_argument("--user", default="sshtest")
    p.add_argument("--password", default="sshtest-pw")
    p.add_argument("--sftp-root", default=None)
    p.add_argument("--allow-forwarding", action="store_true")
    args = p.parse_args()

    authorized = set()
    with open(args.authorized_keys) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                authorized.add(asyncssh.import_public_key(line).public_data)
    extra = {}
    if args.sftp_root:
        root = args.sftp_root
        extra["sftp_factory"] = lambda chan: asyncssh.SFTPServer(chan, chroot=root)
    await asyncssh.create_server(
        lambda: Server(args, authorized),
        "127.0.0.1",
        args.port,
        server_host_keys=[args.host_key],
        process_factory=handle_process,
        encoding=None,
        window=WINDOW,
        reuse_address=True,
        **extra,
    )
    log("READY")
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
