#!/usr/bin/env python3
"""Local forwarding (`-L`) throughput and connection rate: our `client` and
`server` examples against OpenSSH's `ssh` and `sshd`, same machine, same
cipher (aes128-gcm@openssh.com), same run.

Rows, each a `-N -L LPORT:127.0.0.1:TARGET` tunnel over one SSH connection
(after a first row without a tunnel: what the load and sink themselves
reach, so that a tunnel row near it is known to be held back by them):
  (a) OpenSSH ssh  -> sshd            (the baseline)
  (b) our client   -> sshd
  (c) OpenSSH ssh  -> our server
  (d) our client   -> our server

bulk:  SIZE bytes (default 1 GiB) sent into the tunnel to a sink behind it;
       timed from the first byte to the last byte the sink receives; MB/s,
       and the CPU seconds the tunnel's client and server used over its
       whole life (login, transfer, close; sshd: all its processes).
conn/s: CYCLES short connections through one tunnel (connect, send one
       byte, read it back from an echo server, close), CONCURRENCY at a time.

Each figure is the median of RUNS runs (default 3), the rows alternating
within each run; every row's ratio is to (a). The sink, the echo server and
the load run in processes of their own (not the script's), on 127.0.0.1
and high ports; keys and known_hosts are throwaway; everything started is
stopped by its PID at the end.

A row that cannot run (a client without `-L`, a server that refuses
`direct-tcpip`, ...) is reported as FAILED with the reason and the
program's own words, and the script exits 1: nothing is skipped silently.

Needs root (sshd) and the release examples:

    cargo build --release --example client --example server
    python3 bench/tunnel.py [--size-mib 1024] [--runs 3] [--cycles 2000] [--concurrency 4]
        [--runtimes blocking,tokio,mio] [--quick]

`--quick`: 64 MiB and 500 cycles. `--runtimes`: our client runs once per
adapter (rows (b) and (d) per runtime); our server uses its default.
"""
import argparse, multiprocessing, os, shutil, socket, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import CLIENT, client_setup, free_port, start_sshd, wait_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, "target", "release", "examples", "server")
CIPHER = "aes128-gcm@openssh.com"
# How long a tunnel may take to listen, and a stalled transfer to move.
START_TIMEOUT = 15.0
IO_TIMEOUT = 30.0
# Workers are forked (the sockets they serve are inherited).
MP = multiprocessing.get_context("fork")


class RowFailed(Exception):
    """A row that could not be measured, and why."""


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return os.uname().machine


def cpu_of(pid, children=True):
    """utime+stime of pid (and of its reaped children), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15 if children else 13]) / os.sysconf("SC_CLK_TCK")


def listening(port):
    """Whether something listens on 127.0.0.1:port (or any address), read
    from /proc so that no probe connection goes through a tunnel."""
    want = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[1].endswith(want) and fields[3] == "0A":
                        return True
        except OSError:
            pass
    return False


# --- the sink and the echo server, each in a process of its own ---------

def sink_main(sock, results):
    """Accepts connections on `sock`; for each that sends anything, reads
    to EOF and reports (bytes, first byte time, last byte time)."""
    buf = bytearray(1 << 20)
    while True:
        c, _ = sock.accept()
        n, first, last = 0, None, None
        while True:
            k = c.recv_into(buf)
            if not k:
                break
            last = time.monotonic()
            if first is None:
                first = last
            n += k
        c.close()
        if n:
            results.put((n, first, last))


def echo_main(sock):
    """Echoes every connection on `sock` until its EOF (one selector loop)."""
    import selectors
    sel = selectors.DefaultSelector()
    sock.setblocking(False)
    sel.register(sock, selectors.EVENT_READ, None)
    while True:
        for key, _ in sel.select():
            if key.data is None:
                try:
                    c, _ = sock.accept()
                except BlockingIOError:
                    continue
                c.setblocking(True)
                c.settimeout(IO_TIMEOUT)
                sel.register(c, selectors.EVENT_READ, True)
                continue
            c = key.fileobj
            try:
                data = c.recv(65536)
                if data:
                    c.sendall(data)
                    continue
            except OSError:
                pass
            sel.unregister(c)
            c.close()


def listener():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1024)
    return s


# --- tunnels -------------------------------------------------------------

class Tunnel:
    """A `-N -L` client process; stopped by its PID."""

    def __init__(self, label, argv, lport, d):
        self.label, self.lport = label, lport
        self.log_path = os.path.join(d, f"tunnel-{lport}.log")
        self.log = open(self.log_path, "wb")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                  stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT
        while not listening(lport):
            if self.p.poll() is not None:
                raise RowFailed(f"{self.label}: the client exited with status {self.p.returncode} "
                                f"before its forward listened: {self.said()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RowFailed(f"{self.label}: nothing listened on port {lport} after "
                                f"{START_TIMEOUT:.0f} s: {self.said()}")
            time.sleep(0.02)

    def said(self, limit=600):
        """The client's output, last `limit` characters, on one line."""
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode(errors="replace").strip()
        except OSError:
            text = ""
        text = " | ".join(line for line in text.splitlines() if line.strip())
        return repr(text[-limit:]) if text else "(it said nothing)"

    def check_alive(self):
        if self.p.poll() is not None:
            raise RowFailed(f"{self.label}: the client exited with status {self.p.returncode}: "
                            f"{self.said()}")

    def stop(self):
        """Stops the client; the CPU seconds it used (None if it had exited)."""
        cpu = None
        if self.p.poll() is None:
            try:
                cpu = cpu_of(self.p.pid, children=False)
            except OSError:
                pass
            self.p.terminate()
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return cpu


class Direct:
    """No tunnel: the sink or echo server itself (the harness's ceiling)."""
    label = "no tunnel"

    def __init__(self, port):
        self.lport = port

    def said(self):
        return "(no tunnel)"

    def check_alive(self):
        pass

    def stop(self):
        return None


def bulk(t, size, results):
    """SIZE bytes through tunnel t to the sink; MB/s first to last byte."""
    while not results.empty():
        results.get_nowait()
    chunk = os.urandom(1 << 20)
    view = memoryview(chunk)
    try:
        s = socket.create_connection(("127.0.0.1", t.lport), IO_TIMEOUT)
        left = size
        while left > 0:
            n = min(left, len(chunk))
            s.sendall(view[:n])
            left -= n
        s.shutdown(socket.SHUT_WR)
        # The tunnel closes its end once the sink closed (after its EOF).
        while s.recv(65536):
            pass
        s.close()
    except OSError as e:
        t.check_alive()
        raise RowFailed(f"{t.label}: sending through the tunnel failed after "
                        f"{(size - left) >> 20} MiB ({e}): {t.said()}")
    try:
        n, first, last = results.get(timeout=IO_TIMEOUT)
    except Exception:
        t.check_alive()
        raise RowFailed(f"{t.label}: the sink behind the tunnel received nothing (the server "
                        f"refused or could not open the direct-tcpip channel?): {t.said()}")
    if n != size:
        raise RowFailed(f"{t.label}: the sink received {n} of {size} bytes: {t.said()}")
    return size / max(last - first, 1e-9) / 1e6


def cycles_worker(port, count, go, out):
    """Once `go` is set, `count` connect/send 1 byte/read it back/close
    cycles; puts the number done and the first error (or None)."""
    done = 0
    go.wait()
    try:
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", port), IO_TIMEOUT)
            s.sendall(b"x")
            b = s.recv(1)
            s.close()
            if b != b"x":
                raise OSError(f"got {b!r} back instead of b'x' (connection closed by the tunnel)")
            done += 1
        out.put((done, None))
    except OSError as e:
        out.put((done, str(e)))


def conn_rate(t, cycles, concurrency):
    """CYCLES short connections through tunnel t, CONCURRENCY processes at
    once; connections per second."""
    out, go = MP.Queue(), MP.Event()
    per = [cycles // concurrency + (1 if i < cycles % concurrency else 0) for i in range(concurrency)]
    procs = [MP.Process(target=cycles_worker, args=(t.lport, n, go, out)) for n in per]
    for p in procs:
        p.start()
    t0 = time.monotonic()
    go.set()
    got = []
    try:
        for _ in procs:
            got.append(out.get(timeout=IO_TIMEOUT + cycles * 0.1))
    except Exception:
        pass
    dt = time.monotonic() - t0
    for p in procs:
        p.join(5)
        if p.is_alive():
            p.terminate()
            p.join()
    done = sum(g[0] for g in got)
    errors = [g[1] for g in got if g[1]]
    if done != cycles or errors:
        t.check_alive()
        raise RowFailed(f"{t.label}: {done} of {cycles} short connections completed "
                        f"({errors[0] if errors else 'a worker stalled'}): {t.said()}")
    return cycles / dt


# --- main ------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mib", type=int, default=None, help="bulk size (default 1024, --quick 64)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cycles", type=int, default=None, help="short connections (default 2000, --quick 500)")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--runtimes", default="blocking",
                    help="comma-separated adapters for our client: blocking,tokio,mio")
    ap.add_argument("--quick", action="store_true", help="64 MiB and 500 cycles")
    args = ap.parse_args()
    size = (args.size_mib if args.size_mib is not None else (64 if args.quick else 1024)) << 20
    cycles = args.cycles if args.cycles is not None else (500 if args.quick else 2000)
    runtimes = [r for r in args.runtimes.split(",") if r]
    for exe in (CLIENT, SERVER):
        if not os.path.exists(exe):
            sys.exit(f"{exe} missing: cargo build --release --example client --example server")
    if shutil.which("ssh") is None or not os.path.exists("/usr/sbin/sshd"):
        sys.exit("OpenSSH's ssh and /usr/sbin/sshd are needed")

    d = tempfile.mkdtemp(prefix="sshlib-tunnel-")
    procs = []
    try:
        sshd_port, our_port = free_port(), free_port()
        user = client_setup(d, sshd_port)
        with open(f"{d}/kh", "a") as f:
            f.write(f"[127.0.0.1]:{our_port} " + open(f"{d}/hk.pub").read())
        sshd = start_sshd(d, sshd_port, CIPHER)
        procs.append(sshd)
        server_log = open(f"{d}/server.log", "wb")
        ours = subprocess.Popen([SERVER, "-p", str(our_port), "-h", f"{d}/hk",
                                 "--authorized-keys", f"{d}/authorized_keys"],
                                stdout=server_log, stderr=subprocess.STDOUT)
        procs.append(ours)
        wait_port(our_port)

        sink_sock, echo_sock = listener(), listener()
        sink_port, echo_port = sink_sock.getsockname()[1], echo_sock.getsockname()[1]
        results = MP.Queue()
        for target, a in ((sink_main, (sink_sock, results)), (echo_main, (echo_sock,))):
            p = MP.Process(target=target, args=a, daemon=True)
            p.start()
            procs.append(p)
        sink_sock.close(); echo_sock.close()

        auth = ["-i", f"{d}/id", "-o", f"UserKnownHostsFile={d}/kh", "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=yes", "-c", CIPHER]

        def openssh(port):
            return lambda lport, target: (
                ["ssh", "-F", "/dev/null", "-p", str(port)] + auth +
                ["-o", "ExitOnForwardFailure=yes", "-N", "-L", f"{lport}:127.0.0.1:{target}",
                 f"{user}@127.0.0.1"])

        def ours_client(port, rt):
            return lambda lport, target: (
                [CLIENT, "--runtime", rt, "-p", str(port)] + auth +
                ["-N", "-L", f"{lport}:127.0.0.1:{target}", f"{user}@127.0.0.1"])

        tag = (lambda rt: f" ({rt})") if len(runtimes) > 1 else (lambda rt: "")
        direct = "no tunnel (harness ceiling)"
        rows = [(direct, None), ("(a) openssh -> sshd", openssh(sshd_port))]
        rows += [(f"(b) ours -> sshd{tag(rt)}", ours_client(sshd_port, rt)) for rt in runtimes]
        rows += [("(c) openssh -> ours", openssh(our_port))]
        rows += [(f"(d) ours -> ours{tag(rt)}", ours_client(our_port, rt)) for rt in runtimes]

        print(f"-L tunnel, {CIPHER}: bulk {size >> 20} MiB to a sink (first to last byte), "
              f"{cycles} short connections ({args.concurrency} at a time); "
              f"median of {args.runs} alternating runs")
        print(f"{os.cpu_count()} cpus, {cpu_model()}, {time.strftime('%Y-%m-%d %H:%M')}")
        sys.stdout.flush()

        bulk_res = {name: [] for name, _ in rows}
        rate_res = {name: [] for name, _ in rows}
        # Per row: client and server CPU seconds of each bulk run's whole
        # tunnel (login, transfer, close).
        cpu_res = {name: ([], []) for name, _ in rows}
        server_of = {name: (sshd.pid if "-> sshd" in name else ours.pid)
                     for name, argv_of in rows if argv_of is not None}
        failed = {}
        for run in range(args.runs):
            for name, argv_of in rows:
                if name in failed:
                    continue
                for kind, target, res in (("bulk", sink_port, bulk_res), ("conn", echo_port, rate_res)):
                    lport = free_port()
                    t = None
                    server = server_of.get(name)
                    s0 = cpu_of(server) if server else None
                    try:
                        if argv_of is None:
                            t = Direct(target)
                        else:
                            t = Tunnel(name, argv_of(lport, target), lport, d)
                        if kind == "bulk":
                            res[name].append(bulk(t, size, results))
                        else:
                            res[name].append(conn_rate(t, cycles, args.concurrency))
                    except RowFailed as e:
                        failed[name] = f"{kind}: {e}"
                        print(f"FAILED {e}", file=sys.stderr)
                        sys.stderr.flush()
                        break
                    finally:
                        ccpu = t.stop() if t else None
                    if kind == "bulk" and ccpu is not None:
                        cpu_res[name][0].append(ccpu)
                        # sshd's per-connection processes are reaped a moment later.
                        time.sleep(0.3)
                        cpu_res[name][1].append(cpu_of(server) - s0)

        base = "(a) openssh -> sshd"
        med = lambda v: statistics.median(v) if v else None  # noqa: E731
        b0, r0 = med(bulk_res[base]), med(rate_res[base])
        print(f"{'row':28} {'MB/s':>8} {'ratio':>7} {'cli CPU s':>9} {'srv CPU s':>9} "
              f"{'conn/s':>8} {'ratio':>7}")
        for name, _ in rows:
            if name in failed:
                print(f"{name:28} FAILED: {failed[name]}")
                continue
            b, r = med(bulk_res[name]), med(rate_res[name])
            rb = f"{b / b0:6.2f}x" if b0 and name != direct else ""
            rr = f"{r / r0:6.2f}x" if r0 and name != direct else ""
            cc, sc = med(cpu_res[name][0]), med(cpu_res[name][1])
            cc = f"{cc:9.2f}" if cc is not None else f"{'':9}"
            sc = f"{sc:9.2f}" if sc is not None else f"{'':9}"
            print(f"{name:28} {b:8.0f} {rb:>7} {cc} {sc} {r:8.0f} {rr:>7}")
        if failed:
            print(f"{len(failed)} row(s) FAILED (see above)", file=sys.stderr)
            sys.exit(1)
    finally:
        for p in procs:
            if isinstance(p, subprocess.Popen):
                if p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(5)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait()
            else:
                p.terminate()
                p.join(5)
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
