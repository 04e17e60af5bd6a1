#!/usr/bin/env python3
"""An AsyncSSH client for the interoperability tests of our server.

    asyncssh_client.py HOST PORT USER KNOWN_HOSTS
                       (--password P | --key FILE | --kbdint P)
                       [--sessions N] COMMAND

Connects to HOST:PORT with `asyncssh.connect` (host key checked against
KNOWN_HOSTS; no agent, no default keys, no ssh config), authenticates as
USER and runs COMMAND with `SSHClientConnection.run`. Its own stdin is sent
to the command (then EOF); the command's stdout and stderr are written to
this process's stdout and stderr, and this process exits with the remote
exit status. When the command was killed by a signal it prints
`remote command killed by signal NAME` on stderr and exits 255; any error
also exits 255.

--sessions N: opens N sessions on the one connection, one after the other
without closing any, each running COMMAND (stdin empty), then waits for
them; prints `session I: exit STATUS` or `session I: refused: ERROR` per
session on stdout and exits 0.

--password: password authentication only. --key: publickey only, with
FILE. --kbdint P: keyboard-interactive only, answering every prompt with P
and printing each prompt on stderr as `kbdint prompt: PROMPT` (at most three
challenges are answered).
"""

import argparse
import asyncio
import sys

import asyncssh


class KbdintClient(asyncssh.SSHClient):
    # A server may challenge again after a wrong answer: give up after a few.
    MAX_CHALLENGES = 3

    def __init__(self, answer):
        self.answer = answer
        self.challenges = 0

    def kbdint_auth_requested(self):
        return ""

    def kbdint_challenge_received(self, name, instructions, lang, prompts):
        self.challenges += 1
        if self.challenges > self.MAX_CHALLENGES:
            return None
        for prompt, _echo in prompts:
            sys.stderr.write("kbdint prompt: %s\n" % prompt)
            sys.stderr.flush()
        return [self.answer for _ in prompts]


async def run(args, data):
    opts = dict(
        port=args.port,
        username=args.user,
        known_hosts=args.known_hosts,
        agent_path=None,
        config=[],
        connect_timeout=args.timeout,
        login_timeout=args.timeout,
    )
    client_factory = None
    if args.kex:
        opts["kex_algs"] = [args.kex]
    if args.password is not None:
        opts.update(password=args.password, client_keys=[], preferred_auth="password")
    elif args.key is not None:
        opts.update(client_keys=[args.key], preferred_auth="publickey")
    else:
        opts.update(client_keys=[], preferred_auth="keyboard-interactive")
        client_factory = lambda: KbdintClient(args.kbdint)  # noqa: E731
    if client_factory is not None:
        opts["client_factory"] = client_factory
    async with asyncssh.connect(args.host, **opts) as conn:
        if args.sessions is not None:
            return await sessions(conn, args.sessions, args.command)
        return await conn.run(args.command, input=data, encoding=None, check=False)


async def sessions(conn, n, command):
    procs = []
    for i in range(n):
        try:
            proc = await conn.create_process(command, encoding=None)
            proc.stdin.write_eof()
            procs.append((i, proc, None))
        except asyncssh.Error as e:
            procs.append((i, None, e))
    lines = []
    for i, proc, err in procs:
        if proc is None:
            lines.append("session %d: refused: %s" % (i, err))
        else:
            result = await proc.wait(check=False)
            lines.append("session %d: exit %s" % (i, result.exit_status))
    return lines


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("user")
    p.add_argument("known_hosts")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--password")
    g.add_argument("--key")
    g.add_argument("--kbdint", metavar="PASSWORD")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--sessions", type=int, metavar="N")
    p.add_argument("--kex", metavar="ALG", help="offer only this key exchange algorithm")
    p.add_argument("command")
    args = p.parse_args()

    data = sys.stdin.buffer.read()
    try:
        result = asyncio.run(run(args, data))
    except Exception as e:
        sys.stderr.write("asyncssh_client: %s: %s\n" % (type(e).__name__, e))
        sys.exit(255)
    if args.sessions is not None:
        for line in result:
            print(line)
        sys.exit(0)
    sys.stdout.buffer.write(result.stdout or b"")
    sys.stdout.flush()
    sys.stderr.buffer.write(result.stderr or b"")
    if result.exit_signal:
        sys.stderr.write("remote command killed by signal %s\n" % result.exit_signal[0])
    sys.stderr.flush()
    status = result.exit_status
    if result.exit_signal or status is None or not 0 <= status <= 255:
        sys.exit(255)
    sys.exit(status)


if __name__ == "__main__":
    main()
