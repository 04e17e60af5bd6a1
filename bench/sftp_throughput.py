#!/usr/bin/env python3
"""SFTP throughput: get and put of SIZE bytes (default 1 GiB) over loopback,
aes128-gcm, same machine, same run:

- our `sftp` example against sshd (internal-sftp), and OpenSSH's `sftp`
  against the same sshd;
- OpenSSH's `sftp` and ours against our `server --sftp-root`.

Prints MB/s for each and the ratios. Needs root (sshd) and:

    cargo build --release --examples && python3 bench/sftp_throughput.py [--size-mib 1024] [--runs 3]
"""
import argparse, os, shutil, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port, make_keys, start_sshd, wait_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EX = os.path.join(ROOT, "target", "release", "examples")

def timed(argv, batch):
    t0 = time.monotonic()
    p = subprocess.run(argv[:-1] + ["-b", batch, argv[-1]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        sys.exit(f"{argv[0]} failed: {p.stderr.decode(errors='replace').strip()}")
    return dt

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mib", type=int, default=1024)
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    size = args.size_mib << 20
    for b in ("sftp", "server"):
        if not os.path.exists(os.path.join(EX, b)):
            sys.exit("build first: cargo build --release --examples")
    d = tempfile.mkdtemp(prefix="sshlib-sftpbench-")
    procs = []
    try:
        make_keys(d)
        user = os.environ.get("USER") or "root"
        sshd_port, our_port = free_port(), free_port()
        with open(f"{d}/kh", "w") as f:
            pub = open(f"{d}/hk.pub").read()
            f.write(f"[127.0.0.1]:{sshd_port} {pub}[127.0.0.1]:{our_port} {pub}")
        procs.append(start_sshd(d, sshd_port, "aes128-gcm@openssh.com"))
        os.makedirs(f"{d}/root")
        procs.append(subprocess.Popen(
            [os.path.join(EX, "server"), "-p", str(our_port), "-h", f"{d}/hk",
             "--authorized-keys", f"{d}/authorized_keys", "--sftp-root", f"{d}/root"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        wait_port(our_port)
        src = f"{d}/src.bin"
        with open(src, "wb") as f:
            chunk = os.urandom(1 << 20)
            for _ in range(args.size_mib):
                f.write(chunk)
        common = ["-i", f"{d}/id", "-o", f"UserKnownHostsFile={d}/kh", "-o", "BatchMode=yes",
                  "-o", "StrictHostKeyChecking=yes"]
        ossh = ["sftp", "-F", "/dev/null", "-o", "Ciphers=aes128-gcm@openssh.com"] + common
        ours = [os.path.join(EX, "sftp"), "-o", "Ciphers=aes128-gcm@openssh.com"] + common
        rows = [
            ("ours -> sshd", ours + ["-P", str(sshd_port), f"{user}@127.0.0.1"], f"{d}/up.bin"),
            ("openssh -> sshd", ossh + ["-P", str(sshd_port), f"{user}@127.0.0.1"], f"{d}/up.bin"),
            ("openssh -> ours", ossh + ["-P", str(our_port), f"{user}@127.0.0.1"], "/up.bin"),
            ("ours -> ours", ours + ["-P", str(our_port), f"{user}@127.0.0.1"], "/up.bin"),
        ]
        print(f"SFTP {args.size_mib} MiB get and put, aes128-gcm, {args.runs} run(s) each, best; "
              f"{os.uname().machine}, {os.cpu_count()} cpus, {time.strftime('%Y-%m-%d')}")
        print(f"{'client -> server':20} {'put MB/s':>9} {'get MB/s':>9}")
        res = {}
        for label, argv, remote in rows:
            put_b, get_b = f"{d}/put.batch", f"{d}/get.batch"
            with open(put_b, "w") as f:
                f.write(f"put {src} {remote}\n")
            with open(get_b, "w") as f:
                f.write(f"get {remote} {d}/down.bin\n")
            best_put = min(timed(argv, put_b) for _ in range(args.runs))
            best_get = min(timed(argv, get_b) for _ in range(args.runs))
            if os.path.getsize(f"{d}/down.bin") != size:
                sys.exit(f"{label}: downloaded size differs")
            res[label] = (size / best_put / 1e6, size / best_get / 1e6)
            print(f"{label:20} {res[label][0]:9.0f} {res[label][1]:9.0f}")
            os.remove(f"{d}/down.bin")
        a, b = res["ours -> sshd"], res["openssh -> sshd"]
        print(f"client ratio ours/openssh against sshd: put {a[0] / b[0]:.2f}x, get {a[1] / b[1]:.2f}x")
        c = res["openssh -> ours"]
        print(f"server ratio ours/sshd with openssh sftp: put {c[0] / b[0]:.2f}x, get {c[1] / b[1]:.2f}x")
        e = res["ours -> ours"]
        print(f"client ratio ours/openssh against our server: put {e[0] / c[0]:.2f}x, get {e[1] / c[1]:.2f}x")
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
