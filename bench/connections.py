#!/usr/bin/env python3
"""Connection rate and idle memory: our `server` example (each --runtime)
against OpenSSH's sshd, same machine, same run, driven by our `loadgen`
example (one ssh-mio reactor thread moving every connection's bytes).

(a) connections/s: N whole connections, C at a time (curve25519-sha256,
    ssh-ed25519 host key, publickey auth, `exec true`, close); prints
    conn/s, latency p50/p99, server CPU per connection and the ratio to sshd.
(b) idle memory: N authenticated idle sessions held on our server (the mio
    runtime when listed, else the first one) and M on sshd; prints the
    server's bytes per idle connection (sshd: summed over the processes it
    forks per connection, VmRSS and PSS).

The login user matters for sshd: it runs commands through the user's
shell, and bash run by sshd reads ~/.bashrc (which can cost more than the
whole SSH connection). Our server runs `sh -c`. So the default user is the
interop tests' `sshtest` (shell /bin/sh) when it exists, else the current
user (with a warning when its shell is not /bin/sh); see --user.

Needs root (sshd). Builds the two examples it runs, then:

    python3 bench/connections.py [--connections 1000] [--concurrency 32]
        [--idle 10000] [--idle-sshd 200] [--runtimes mio,blocking,tokio]
"""
import argparse, os, pwd, re, resource, shlex, shutil, socket, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import free_port, make_keys, start_sshd  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "target", "release", "examples")
SERVER = os.path.join(EXAMPLES, "server")
LOADGEN = os.path.join(EXAMPLES, "loadgen")
KEX, HOSTKEY, CIPHER = "curve25519-sha256", "ssh-ed25519", "aes128-gcm@openssh.com"
# Descriptors a process needs besides one per connection.
SPARE_FDS = 64

SUMMARY = re.compile(r"([\d.]+) conn/s; latency ms p50 ([\d.]+) p90 ([\d.]+) p99 ([\d.]+) "
                     r"max ([\d.]+); (\d+) failed")
SERVER_IDLE = re.compile(r"server RSS before (\d+) KiB, after (\d+) KiB: (\d+) bytes per connection")
OWN_IDLE = re.compile(r"loadgen RSS before (\d+) KiB, after (\d+) KiB: (\d+) bytes per connection")

def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.uname().machine

def cpu_of(pid):
    """utime+stime of pid plus its reaped children, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")

def status_field(pid, name):
    """A `Name: value kB` field of /proc/PID/status (0 when absent)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(name + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0

def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0

def tree(root):
    """root and all its descendants, found through the PPid of every process."""
    parent = {}
    for e in os.listdir("/proc"):
        if e.isdigit():
            pp = status_field(e, "PPid")
            parent[int(e)] = pp
    pids = {root}
    grew = True
    while grew:
        grew = False
        for p, pp in parent.items():
            if pp in pids and p not in pids:
                pids.add(p); grew = True
    return pids

def tree_memory(root):
    """(processes, summed VmRSS KiB, summed PSS KiB) of root's process tree."""
    pids = tree(root)
    return len(pids), sum(status_field(p, "VmRSS") for p in pids), sum(pss_kib(p) for p in pids)

def stop(p):
    """Stops one process we started, by its pid."""
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill(); p.wait()

def loadgen_argv(d, port, user, extra):
    return [LOADGEN, "-p", str(port), "-i", f"{d}/id", "-o", f"UserKnownHostsFile={d}/kh",
            "-o", f"KexAlgorithms={KEX}", "-o", f"HostKeyAlgorithms={HOSTKEY}",
            "-o", f"Ciphers={CIPHER}"] + extra + [f"{user}@127.0.0.1"]

def run_loadgen(argv, timeout):
    """Runs loadgen to the end; exits the script (cleanup runs) if it fails."""
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        sys.exit(f"loadgen took longer than {timeout:.0f} s: {shlex.join(argv)}")
    if r.returncode != 0:
        sys.exit(f"loadgen failed (status {r.returncode}): {shlex.join(argv)}\n"
                 f"{r.stdout.strip()}\n{r.stderr.strip()}")
    return r.stdout

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--idle", type=int, default=10000, help="idle sessions on our server (0: skip)")
    ap.add_argument("--idle-sshd", type=int, default=200, help="idle sessions on sshd (0: skip)")
    ap.add_argument("--runtimes", default="mio,blocking,tokio")
    ap.add_argument("--user", help="login user (default: sshtest if it exists, else $USER)")
    ap.add_argument("--no-build", action="store_true", help="use the binaries already built")
    args = ap.parse_args()
    runtimes = [r for r in args.runtimes.split(",") if r]
    if not runtimes:
        sys.exit("--runtimes lists nothing")

    user = args.user
    if user is None:
        try:
            pwd.getpwnam("sshtest"); user = "sshtest"
        except KeyError:
            user = os.environ.get("USER") or pwd.getpwuid(os.getuid()).pw_name
    try:
        shell = pwd.getpwnam(user).pw_shell
    except KeyError:
        sys.exit(f"no such user {user!r}")

    print(f"# {shlex.join([sys.executable] + sys.argv)}")
    print(f"# {time.strftime('%Y-%m-%d %H:%M:%S %z')}, {os.uname().sysname} {os.uname().release}, "
          f"{os.cpu_count()} cpus ({len(os.sched_getaffinity(0))} usable), {cpu_model()}")
    print(f"# login user {user} (shell {shell})")
    if os.path.basename(shell) not in ("sh", "dash"):
        print(f"# warning: sshd runs commands through {shell}, our server through sh: "
              f"sshd's numbers include that shell's start-up files (use --user)")
    sys.stdout.flush()

    # Every connection is a descriptor in loadgen and in our server: raise
    # the soft limit to the hard one here; the children inherit it.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = max(args.idle, args.idle_sshd, args.concurrency) + SPARE_FDS
    if soft != resource.RLIM_INFINITY and need > soft:
        sys.exit(f"RLIMIT_NOFILE hard limit is {hard}, {need} descriptors are needed: "
                 f"raise it (ulimit -Hn) or lower --idle / --idle-sshd")

    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--example", "loadgen", "--example", "server"],
                       cwd=ROOT, check=True)
    for b in (SERVER, LOADGEN):
        if not os.path.exists(b):
            sys.exit(f"{b} is missing: cargo build --release --example loadgen --example server")
    idle_rt = "mio" if "mio" in runtimes else runtimes[0]

    d = tempfile.mkdtemp(prefix="sshlib-connbench-")
    procs = []
    try:
        make_keys(d)
        # sshd reads authorized_keys as the login user.
        os.chmod(d, 0o755); os.chmod(f"{d}/authorized_keys", 0o644)
        sshd_port = free_port()
        ports = {r: free_port() for r in runtimes}
        ports["idle"] = free_port()
        pub = open(f"{d}/hk.pub").read().strip()
        with open(f"{d}/kh", "w") as f:
            for p in [sshd_port] + list(ports.values()):
                f.write(f"[127.0.0.1]:{p} {pub}\n")
        sshd = start_sshd(d, sshd_port, CIPHER, "MaxStartups 1000\nMaxSessions 100\n")
        procs.append(sshd)

        def start_ours(rt, port):
            argv = [SERVER, "-p", str(port), "-h", f"{d}/hk", "--authorized-keys", f"{d}/authorized_keys",
                    "-o", "MaxStartups=1000", "--runtime", rt]
            log = open(f"{d}/server-{rt}.log", "ab")
            p = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=log)
            log.close()
            procs.append(p)
            for _ in range(100):
                if p.poll() is not None:
                    with open(f"{d}/server-{rt}.log", errors="replace") as f:
                        sys.exit(f"server --runtime {rt} exited with status {p.returncode}: "
                                 f"{f.read().strip()[-2000:]}")
                try:
                    socket.create_connection(("127.0.0.1", port), 0.2).close()
                    break
                except OSError:
                    time.sleep(0.05)
            else:
                sys.exit(f"server --runtime {rt} does not listen on {port}")
            return p

        # (a) connections per second.
        n, c = args.connections, args.concurrency
        if n > 0:
            print(f"\n(a) {n} connections, {c} at a time: {KEX}, {HOSTKEY} host key, {CIPHER}, "
                  f"publickey auth, exec `true`, close")
            print(f"{'server':16} {'conn/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8} {'max ms':>8} "
                  f"{'CPU ms/conn':>11} {'vs sshd':>8}")
            timeout = 120 + n / 5
            base = None
            for name, rt in [("sshd", None)] + [(f"ours ({r})", r) for r in runtimes]:
                if rt is None:
                    srv, port = sshd, sshd_port
                else:
                    port = ports[rt]
                    srv = start_ours(rt, port)
                cpu0 = cpu_of(srv.pid)
                out = run_loadgen(loadgen_argv(d, port, user, ["--connections", str(n), "--concurrency", str(c)]),
                                  timeout)
                time.sleep(0.5)  # sshd reaps its per-connection processes a moment later
                cpu = cpu_of(srv.pid) - cpu0
                m = SUMMARY.search(out)
                if not m:
                    sys.exit(f"cannot read loadgen's summary: {out!r}")
                rate, p50, p90, p99, mx = (float(x) for x in m.groups()[:5])
                if base is None:
                    base = rate
                print(f"{name:16} {rate:8.1f} {p50:8.1f} {p90:8.1f} {p99:8.1f} {mx:8.1f} "
                      f"{cpu * 1e3 / n:11.2f} {rate / base:7.2f}x")
                sys.stdout.flush()
                if rt is not None:
                    stop(srv); procs.remove(srv)

        # (b) idle memory.
        if args.idle > 0 or args.idle_sshd > 0:
            print(f"\n(b) idle authenticated sessions (no channel), server memory per connection")
        if args.idle > 0:
            srv = start_ours(idle_rt, ports["idle"])
            time.sleep(0.5)
            out = run_loadgen(loadgen_argv(d, ports["idle"], user,
                                           ["--idle", str(args.idle), "--server-pid", str(srv.pid)]),
                              180 + args.idle / 20)
            m, own = SERVER_IDLE.search(out), OWN_IDLE.search(out)
            if not m:
                sys.exit(f"cannot read loadgen's idle report: {out!r}")
            before, after, per = (int(x) for x in m.groups())
            print(f"ours ({idle_rt}): {args.idle} sessions, 1 process, RSS {before} -> {after} KiB: "
                  f"{per} bytes per connection")
            if own:
                print(f"  (loadgen, client side on one mio reactor: {own.group(3)} bytes per connection)")
            sys.stdout.flush()
            stop(srv); procs.remove(srv)
        if args.idle_sshd > 0:
            m_ = args.idle_sshd
            nproc0, rss0, pss0 = tree_memory(sshd.pid)
            hold = 6
            argv = loadgen_argv(d, sshd_port, user, ["--idle", str(m_), "--hold", str(hold)])
            lg = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            procs.append(lg)
            line = lg.stdout.readline()  # "idle: M sessions open in ..." once all are up
            if "sessions open" not in line:
                lg.wait(30)
                sys.exit(f"loadgen failed: {line}{lg.stdout.read()}{lg.stderr.read()}")
            time.sleep(2)  # settle, as loadgen does for our server
            nproc1, rss1, pss1 = tree_memory(sshd.pid)
            try:
                rest, err = lg.communicate(timeout=hold + 60)
            except subprocess.TimeoutExpired:
                sys.exit("loadgen did not end after holding the sshd sessions")
            procs.remove(lg)
            if lg.returncode != 0:
                sys.exit(f"loadgen failed (status {lg.returncode}): {line}{rest}{err}")
            up = int(re.search(r"idle: (\d+) sessions open", line).group(1))
            print(f"sshd: {up} sessions, {nproc1 - nproc0} processes forked "
                  f"({(nproc1 - nproc0) / up:.1f} per connection), "
                  f"VmRSS sum {rss0} -> {rss1} KiB: {(rss1 - rss0) * 1024 // up} bytes per connection; "
                  f"PSS sum {pss0} -> {pss1} KiB: {(pss1 - pss0) * 1024 // up} bytes per connection")
    finally:
        for p in reversed(procs):
            stop(p)
        shutil.rmtree(d, ignore_errors=True)

if __name__ == "__main__":
    main()
