#!/usr/bin/env python3
"""Bulk throughput: our `client` example against OpenSSH's `ssh`, same sshd,
same cipher, same run.

Sends SIZE bytes (default 1 GiB) through `cat > /dev/null` on a throwaway
sshd on 127.0.0.1 and prints MB/s and client CPU seconds for each client and
the ratios. Needs root (sshd) and the release examples:

    cargo build --release --examples && python3 bench/throughput.py [--size-mib 1024] [--runs 3]
        [--runtimes blocking,tokio,mio]

With `--runtimes`, our client runs once per adapter (`--runtime R`) and the
ratios are given to the blocking client and to OpenSSH's `ssh`.
"""
import argparse, os, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import (add_runtimes_option, client_options, client_setup, clients,  # noqa: E402
                      cleanup, free_port, parse_runtimes, start_sshd)

CASES = [
    ("aes128-gcm@openssh.com", None),
    ("chacha20-poly1305@openssh.com", None),
    ("aes128-ctr", "hmac-sha2-256-etm@openssh.com"),
]

def run_one(argv, size):
    """Feeds `size` zero bytes to argv's stdin; returns (seconds, cpu seconds)."""
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    chunk = b"\0" * (1 << 20)
    left = size
    try:
        while left > 0:
            n = min(left, len(chunk))
            p.stdin.write(chunk[:n]); left -= n
        p.stdin.close()
    except BrokenPipeError:
        pass
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.monotonic() - t0
    err = p.stderr.read().decode(errors="replace")
    if status != 0:
        sys.exit(f"{argv[0]} failed (status {status}): {err.strip()}")
    return dt, ru.ru_utime + ru.ru_stime

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=1)
    add_runtimes_option(ap)
    args = ap.parse_args()
    runtimes = parse_runtimes(args)
    size = args.size_mib << 20
    d = tempfile.mkdtemp(prefix="sshlib-bench-")
    port = free_port()
    sshd_proc = None
    try:
        user = client_setup(d, port)
        sshd_proc = start_sshd(d, port, "aes128-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr")
        common = client_options(d, port)
        print(f"{size >> 20} MiB through `cat > /dev/null`, {args.runs} run(s) each, "
              f"{os.uname().machine}, {os.cpu_count()} cpus, {time.strftime('%Y-%m-%d')}")
        print(f"{'cipher':40} {'client':14} {'MB/s':>8} {'CPU s':>7}")
        for cipher, mac in CASES:
            alg = ["-o", f"Ciphers={cipher}"] + (["-o", f"MACs={mac}"] if mac else [])
            label = cipher + (f" + {mac}" if mac else "")
            res = {}
            argvs = clients(runtimes, common + alg, [f"{user}@127.0.0.1", "cat > /dev/null"])
            for name, argv in argvs:
                best = None
                for _ in range(args.runs):
                    dt, cpu = run_one(argv, size)
                    if best is None or dt < best[0]:
                        best = (dt, cpu)
                res[name] = best
                print(f"{label:40} {name:14} {size / best[0] / 1e6:8.0f} {best[1]:7.2f}")
            for name, _ in argvs[:-1]:
                tp = res["openssh"][0] / res[name][0]
                cpu = res[name][1] / max(res["openssh"][1], 1e-9)
                extra = ""
                if len(runtimes) > 1 and "ours-blocking" in res and name != "ours-blocking":
                    extra = f", throughput {name}/ours-blocking = {res['ours-blocking'][0] / res[name][0]:.2f}x"
                print(f"{label:40} ratio    throughput {name}/openssh = {tp:.2f}x, CPU {name}/openssh = {cpu:.2f}x{extra}")
    finally:
        cleanup(sshd_proc, d)

if __name__ == "__main__":
    main()
