"""What the benchmark scripts share: ports, keys, a throwaway sshd."""
import os, shutil, socket, subprocess, sys, time

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def wait_port(port):
    for _ in range(200):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")

def make_keys(d):
    """An ed25519 host key `d/hk`, a user key `d/id` and `d/authorized_keys`."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/hk"], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", f"{d}/id"], check=True)
    shutil.copy(f"{d}/id.pub", f"{d}/authorized_keys")

def start_sshd(d, port, ciphers, extra_config=""):
    """sshd on 127.0.0.1:port with d's keys (see make_keys); returns the Popen.
    extra_config: more sshd_config lines, appended."""
    with open(f"{d}/sshd_config", "w") as f:
        f.write(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {d}/hk
UsePAM no
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
PermitRootLogin prohibit-password
AuthorizedKeysFile {d}/authorized_keys
PidFile {d}/sshd.pid
Ciphers {ciphers}
Subsystem sftp internal-sftp
{extra_config}""")
    os.makedirs("/run/sshd", exist_ok=True)
    p = subprocess.Popen(["/usr/sbin/sshd", "-D", "-e", "-f", f"{d}/sshd_config"],
                         stderr=subprocess.DEVNULL)
    wait_port(port)
    return p

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENT = os.environ.get("SSHLIB_CLIENT") or os.path.join(ROOT, "target", "release", "examples", "client")

def add_runtimes_option(ap):
    """`--runtimes` (default blocking) on an argparse parser."""
    ap.add_argument("--runtimes", default="blocking",
                    help="comma-separated adapters for our client: blocking,tokio,mio")

def parse_runtimes(args):
    """The adapters `--runtimes` lists; exits if the client example is not built."""
    if not os.path.exists(CLIENT):
        sys.exit("build first: cargo build --release --examples")
    return [r for r in args.runtimes.split(",") if r]

def client_setup(d, port):
    """Keys in d (see make_keys), `d/kh` naming the host key for 127.0.0.1:port,
    and the user to log in as."""
    make_keys(d)
    with open(f"{d}/kh", "w") as f:
        f.write(f"[127.0.0.1]:{port} " + open(f"{d}/hk.pub").read())
    return os.environ.get("USER") or "root"

def client_options(d, port):
    """Options both clients take: port, user key, d/kh, batch mode."""
    return ["-p", str(port), "-i", f"{d}/id", "-o", f"UserKnownHostsFile={d}/kh",
            "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]

def clients(runtimes, opts, tail):
    """(name, argv) of our client once per runtime ("ours" if only one, else
    "ours-RT"), then OpenSSH's ssh ("openssh", last), each ending with tail."""
    out = [(f"ours-{rt}" if len(runtimes) > 1 else "ours", [CLIENT, "--runtime", rt] + opts + tail)
           for rt in runtimes]
    out.append(("openssh", ["ssh", "-F", "/dev/null"] + opts + tail))
    return out

def cleanup(sshd_proc, d):
    """Stops sshd (if started) and removes the directory d."""
    if sshd_proc:
        sshd_proc.terminate(); sshd_proc.wait()
    shutil.rmtree(d, ignore_errors=True)
