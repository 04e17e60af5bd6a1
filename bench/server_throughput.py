#!/usr/bin/env python3
"""Server bulk throughput: OpenSSH's `ssh` sending SIZE bytes (default 1 GiB)
through `cat > /dev/null` to our `server` example and to sshd, on the same
machine, same cipher, same run. Prints MB/s and the CPU seconds each server
(and the `cat` it ran) used, and the ratios. Needs root (sshd) and:

    cargo build --release --examples && python3 bench/server_throughput.py [--size-mib 1024] [--runs 3]
"""
import argparse, os, shutil, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port, make_keys, start_sshd, wait_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "target", "release", "examples", "server")
CASES = [
    ("aes128-gcm@openssh.com", None),
    ("chacha20-poly1305@openssh.com", None),
    ("aes128-ctr", "hmac-sha2-256-etm@openssh.com"),
]

def cpu_of(pid):
    """utime+stime of pid plus its reaped children, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return sum(int(x) for x in fields[11:15]) / ticks

def run_one(argv, size, server_pid):
    """Feeds `size` zero bytes to argv's stdin; returns (seconds, server CPU seconds)."""
    c0 = cpu_of(server_pid)
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
    status = p.wait()
    dt = time.monotonic() - t0
    err = p.stderr.read().decode(errors="replace")
    if status != 0:
        sys.exit(f"ssh failed (status {status}): {err.strip()}")
    # sshd's per-connection process is reaped by the listener a moment later.
    time.sleep(0.3)
    return dt, cpu_of(server_pid) - c0

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    size = args.size_mib << 20
    if not os.path.exists(SERVER):
        sys.exit("build first: cargo build --release --examples")
    d = tempfile.mkdtemp(prefix="sshlib-srvbench-")
    procs = []
    try:
        make_keys(d)
        user = os.environ.get("USER") or "root"
        sshd_port, our_port = free_port(), free_port()
        with open(f"{d}/kh", "w") as f:
            pub = open(f"{d}/hk.pub").read()
            f.write(f"[127.0.0.1]:{sshd_port} {pub}[127.0.0.1]:{our_port} {pub}")
        sshd = start_sshd(d, sshd_port, "aes128-gcm@openssh.com,chacha20-poly1305@openssh.com,aes128-ctr")
        procs.append(sshd)
        ours = subprocess.Popen([SERVER, "-p", str(our_port), "-h", f"{d}/hk",
                                 "--authorized-keys", f"{d}/authorized_keys",
                                 "-o", "Ciphers=+aes128-ctr"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(ours)
        wait_port(sshd_port); wait_port(our_port)
        common = ["-F", "/dev/null", "-i", f"{d}/id", "-o", f"UserKnownHostsFile={d}/kh",
                  "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
        print(f"{size >> 20} MiB from OpenSSH ssh through `cat > /dev/null`, {args.runs} run(s) each, "
              f"{os.uname().machine}, {os.cpu_count()} cpus, {time.strftime('%Y-%m-%d')}")
        print(f"{'cipher':40} {'server':8} {'MB/s':>8} {'CPU s':>7}")
        for cipher, mac in CASES:
            alg = ["-o", f"Ciphers={cipher}"] + (["-o", f"MACs={mac}"] if mac else [])
            label = cipher + (f" + {mac}" if mac else "")
            res = {}
            for name, port, pid in [("ours", our_port, ours.pid), ("sshd", sshd_port, sshd.pid)]:
                argv = ["ssh"] + common + ["-p", str(port)] + alg + [f"{user}@127.0.0.1", "cat > /dev/null"]
                best = None
                for _ in range(args.runs):
                    dt, cpu = run_one(argv, size, pid)
                    if best is None or dt < best[0]:
                        best = (dt, cpu)
                res[name] = best
                print(f"{label:40} {name:8} {size / best[0] / 1e6:8.0f} {best[1]:7.2f}")
            tp = res["sshd"][0] / res["ours"][0]
            cpu = res["ours"][1] / max(res["sshd"][1], 1e-9)
            print(f"{label:40} ratio    throughput ours/sshd = {tp:.2f}x, server CPU ours/sshd = {cpu:.2f}x")
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(d, ignore_errors=True)

if __name__ == "__main__":
    main()
