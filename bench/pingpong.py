#!/usr/bin/env python3
"""Request/response latency through pipes: our `client` example against
OpenSSH's `ssh`, same sshd, same run.

Each client runs `cat` on a throwaway sshd on 127.0.0.1 with stdin and
stdout as pipes (no terminal). After one warm-up round (which includes
connecting), the benchmark writes one byte and waits for it to come back,
ROUNDS times (default 1000), and prints rounds/s and microseconds per round
for each client and the ratio to `ssh`. Needs root (sshd) and the release
examples:

    cargo build --release --examples && python3 bench/pingpong.py [--rounds 1000] [--runs 3]
        [--runtimes blocking,tokio,mio] [--stderr]

`--stderr` runs `cat >&2` and reads the echo from the client's stderr.
"""
import argparse, os, select, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (add_runtimes_option, client_options, client_setup, clients,  # noqa: E402
                      cleanup, free_port, parse_runtimes, start_sshd)

ROUND_TIMEOUT = 10.0


def echo(wfd, rfd, byte):
    """Writes one byte and reads it back (or exits after ROUND_TIMEOUT)."""
    os.write(wfd, byte)
    ready, _, _ = select.select([rfd], [], [], ROUND_TIMEOUT)
    if not ready:
        sys.exit(f"no echo of {byte!r} within {ROUND_TIMEOUT} s")
    got = os.read(rfd, 16)
    if got != byte:
        sys.exit(f"sent {byte!r}, got back {got!r}")


def run_one(argv, rounds, on_stderr):
    """Seconds for `rounds` one-byte round trips through argv (after a warm-up round)."""
    p = subprocess.Popen(argv, stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE if not on_stderr else subprocess.DEVNULL,
                         stderr=subprocess.PIPE if on_stderr else subprocess.DEVNULL)
    wfd = p.stdin.fileno()
    rfd = (p.stderr if on_stderr else p.stdout).fileno()
    try:
        echo(wfd, rfd, b"w")
        t0 = time.perf_counter()
        for i in range(rounds):
            echo(wfd, rfd, bytes([97 + i % 26]))
        dt = time.perf_counter() - t0
    finally:
        p.stdin.close()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill(); p.wait()
    if p.returncode != 0:
        sys.exit(f"{argv[0]} exited with {p.returncode}")
    return dt


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=1)
    add_runtimes_option(ap)
    ap.add_argument("--stderr", action="store_true", help="echo through `cat >&2` (stderr)")
    args = ap.parse_args()
    runtimes = parse_runtimes(args)
    d = tempfile.mkdtemp(prefix="sshlib-bench-")
    port = free_port()
    sshd_proc = None
    try:
        user = client_setup(d, port)
        sshd_proc = start_sshd(d, port, "aes128-gcm@openssh.com,chacha20-poly1305@openssh.com")
        common = client_options(d, port) + ["-o", "Ciphers=aes128-gcm@openssh.com"]
        cmd = "cat >&2" if args.stderr else "cat"
        argvs = clients(runtimes, common, [f"{user}@127.0.0.1", cmd])
        print(f"{args.rounds} one-byte round trips through `{cmd}` over pipes, best of {args.runs}, "
              f"{os.uname().machine}, {os.cpu_count()} cpus, {time.strftime('%Y-%m-%d')}")
        print(f"{'client':16} {'rounds/s':>10} {'us/round':>10}")
        # Runs alternate between the clients, so a change in machine load
        # during the run falls on all of them alike.
        res = {}
        for _ in range(args.runs):
            for name, argv in argvs:
                dt = run_one(argv, args.rounds, args.stderr)
                res[name] = min(res.get(name, dt), dt)
        for name, _ in argvs:
            best = res[name]
            print(f"{name:16} {args.rounds / best:10.0f} {best / args.rounds * 1e6:10.1f}")
        for name, _ in argvs[:-1]:
            print(f"ratio  rounds/s {name}/openssh = {res['openssh'] / res[name]:.2f}x")
    finally:
        cleanup(sshd_proc, d)


if __name__ == "__main__":
    main()
