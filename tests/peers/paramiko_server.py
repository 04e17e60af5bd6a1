#!/usr/bin/env python3
"""A paramiko SSH server for the interoperability tests.

    paramiko_server.py PORT HOST_KEY AUTHORIZED_KEYS [--user U] [--password P]
                       [--pubkey-algs ALG,...] [--sftp-root DIR]

Listens on 127.0.0.1:PORT, prints "READY" on stdout once listening, and
serves each connection on its own thread until killed.

Authentication: password P for user U; publickey for any key listed in
AUTHORIZED_KEYS (compared by public blob); keyboard-interactive with one
"Password: " prompt whose answer must be P. Each successful authentication
is logged on stdout as "auth METHOD ok for USER", and each user-auth
signature as "auth publickey signature ALG".

--pubkey-algs limits the user-key signature algorithms: server-sig-algs
lists only those, and a signature made with another one is rejected (so a
client must choose the algorithm from server-sig-algs).

Channels: `exec` runs the command with `/bin/sh -c`, stdin/stdout/stderr are
piped in both directions, then exit-status (or exit-signal when the command
was killed by a signal) is sent, followed by EOF and close.

--sftp-root DIR: the `sftp` subsystem is served by paramiko's SFTPServer
over DIR, which clients see as `/` (the start directory too). Relative
symlink targets are stored as given, absolute ones are mapped into DIR. It
is SFTP version 3 with no extensions beyond paramiko's own (no statvfs).
Without this option the subsystem is refused, as before.
"""

import argparse
import base64
import errno
import os
import posixpath
import signal
import socket
import subprocess
import sys
import threading
import traceback

import paramiko
from paramiko.common import cMSG_CHANNEL_REQUEST
from paramiko.message import Message

CHUNK = 256 * 1024
WINDOW = 8 * 1024 * 1024


def log(*args):
    print(*args, flush=True)


def load_authorized_keys(path):
    blobs = set()
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split()
            # Options before the key type are not used by the tests.
            for i, p in enumerate(parts[:-1]):
                if p.startswith(("ssh-", "ecdsa-", "sk-")):
                    blobs.add((p, base64.b64decode(parts[i + 1])))
                    break
    return blobs


class Server(paramiko.ServerInterface):
    def __init__(self, args, authorized):
        self.args = args
        self.authorized = authorized

    def get_allowed_auths(self, username):
        return "publickey,password,keyboard-interactive"

    def check_auth_password(self, username, password):
        if username == self.args.user and password == self.args.password:
            log("auth password ok for %s" % username)
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_auth_publickey(self, username, key):
        if username != self.args.user:
            return paramiko.AUTH_FAILED
        name = key.get_name()
        blob = key.asbytes()
        for (_ktype, b) in self.authorized:
            if b == blob:
                log("auth publickey ok for %s (%s)" % (username, name))
                return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_auth_interactive(self, username, submethods):
        if username != self.args.user:
            return paramiko.AUTH_FAILED
        return paramiko.InteractiveQuery("", "", ("Password: ", False))

    def check_auth_interactive_response(self, responses):
        if len(responses) == 1 and responses[0] == self.args.password:
            log("auth keyboard-interactive ok for %s" % self.args.user)
            return paramiko.AUTH_SUCCESSFUL
        return paramiko.AUTH_FAILED

    def check_channel_request(self, kind, chanid):
        if kind == "session":
            return paramiko.OPEN_SUCCEEDED
        return paramiko.OPEN_FAILED_ADMINISTRATIVELY_PROHIBITED

    def check_channel_pty_request(self, *args):
        return True

    def check_channel_env_request(self, channel, name, value):
        return True

    def check_channel_exec_request(self, channel, command):
        cmd = command.decode("utf-8", "surrogateescape") if isinstance(command, bytes) else command
        threading.Thread(target=run_exec, args=(channel, cmd), daemon=True).start()
        return True


def send_exit_signal(chan, signum):
    name = signal.Signals(signum).name
    if name.startswith("SIG"):
        name = name[3:]
    m = Message()
    m.add_byte(cMSG_CHANNEL_REQUEST)
    m.add_int(chan.remote_chanid)
    m.add_string("exit-signal")
    m.add_boolean(False)
    m.add_string(name)
    m.add_boolean(False)
    m.add_string("")
    m.add_string("")
    chan.transport._send_user_message(m)


def run_exec(chan, command):
    try:
        proc = subprocess.Popen(
            ["/bin/sh", "-c", command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            bufsize=0,
            start_new_session=False,
        )
    except Exception as e:  # pragma: no cover - only on a broken system
        chan.sendall_stderr(("exec failed: %s\n" % e).encode())
        chan.send_exit_status(127)
        chan.close()
        return

    def pump_in():
        try:
            while True:
                data = chan.recv(CHUNK)
                if not data:
                    break
                proc.stdin.write(data)
        except Exception:
            pass
        finally:
            try:
                proc.stdin.close()
            except Exception:
                pass

    def pump_out(fd, send):
        try:
            while True:
                data = os.read(fd, CHUNK)
                if not data:
                    break
                send(data)
        except Exception:
            pass

    tin = threading.Thread(target=pump_in, daemon=True)
    tout = threading.Thread(target=pump_out, args=(proc.stdout.fileno(), chan.sendall), daemon=True)
    terr = threading.Thread(target=pump_out, args=(proc.stderr.fileno(), chan.sendall_stderr), daemon=True)
    tin.start()
    tout.start()
    terr.start()
    tout.join()
    terr.join()
    rc = proc.wait()
    try:
        if rc < 0:
            send_exit_signal(chan, -rc)
        else:
            chan.send_exit_status(rc)
        chan.shutdown_write()
        chan.close()
    except Exception:
        pass


# ---------------------------------------------------------------------------
# SFTP over a local directory (--sftp-root)
# ---------------------------------------------------------------------------


def sftp_error(e):
    return paramiko.SFTPServer.convert_errno(e.errno)


class LocalSFTPHandle(paramiko.SFTPHandle):
    def stat(self):
        try:
            return paramiko.SFTPAttributes.from_stat(os.fstat(self.readfile.fileno()))
        except OSError as e:
            return sftp_error(e)

    def chattr(self, attr):
        try:
            paramiko.SFTPServer.set_file_attr(self.filename, attr)
            return paramiko.SFTP_OK
        except OSError as e:
            return sftp_error(e)


class LocalSFTPServer(paramiko.SFTPServerInterface):
    """Serves ROOT as `/`. Paths are normalised lexically, so `..` cannot
    leave ROOT (symlinks inside ROOT are followed by the OS: this is a test
    peer, not a jail)."""

    def __init__(self, server, root, *args, **kwargs):
        super().__init__(server, *args, **kwargs)
        self.root = os.path.realpath(root)

    def _virtual(self, path):
        v = posixpath.normpath(posixpath.join("/", path))
        return "/" + v.lstrip("/")

    def _real(self, path):
        return os.path.join(self.root, self._virtual(path).lstrip("/"))

    def _attrs(self, real, name=None, follow=True):
        st = os.stat(real) if follow else os.lstat(real)
        a = paramiko.SFTPAttributes.from_stat(st, name if name is not None else os.path.basename(real))
        return a

    def list_folder(self, path):
        real = self._real(path)
        try:
            out = []
            for name in sorted(os.listdir(real)):
                out.append(self._attrs(os.path.join(real, name), name, follow=False))
            return out
        except OSError as e:
            return sftp_error(e)

    def stat(self, path):
        try:
            return self._attrs(self._real(path))
        except OSError as e:
            return sftp_error(e)

    def lstat(self, path):
        try:
            return self._attrs(self._real(path), follow=False)
        except OSError as e:
            return sftp_error(e)

    def open(self, path, flags, attr):
        real = self._real(path)
        try:
            mode = getattr(attr, "st_mode", None)
            fd = os.open(real, flags, (mode & 0o7777) if mode else 0o666)
        except OSError as e:
            return sftp_error(e)
        if (flags & os.O_CREAT) and attr is not None:
            attr._flags &= ~attr.FLAG_PERMISSIONS
            try:
                paramiko.SFTPServer.set_file_attr(real, attr)
            except OSError:
                pass
        if flags & os.O_WRONLY:
            fstr = "ab" if flags & os.O_APPEND else "wb"
        elif flags & os.O_RDWR:
            fstr = "a+b" if flags & os.O_APPEND else "r+b"
        else:
            fstr = "rb"
        try:
            f = os.fdopen(fd, fstr)
        except OSError as e:
            os.close(fd)
            return sftp_error(e)
        h = LocalSFTPHandle(flags)
        h.filename = real
        h.readfile = f
        h.writefile = f
        return h

    def remove(self, path):
        try:
            os.remove(self._real(path))
        except OSError as e:
            return sftp_error(e)
        return paramiko.SFTP_OK

    def rename(self, oldpath, newpath):
        old, new = self._real(oldpath), self._real(newpath)
        # SFTP v3: renaming onto an existing name is an error.
        if os.path.lexists(new):
            return sftp_error(OSError(errno.EEXIST, "exists"))
        try:
            os.rename(old, new)
        except OSError as e:
            return sftp_error(e)
        return paramiko.SFTP_OK

    def posix_rename(self, oldpath, newpath):
        try:
            os.rename(self._real(oldpath), self._real(newpath))
        except OSError as e:
            return sftp_error(e)
        return paramiko.SFTP_OK

    def mkdir(self, path, attr):
        real = self._real(path)
        try:
            os.mkdir(real)
            if attr is not None:
                paramiko.SFTPServer.set_file_attr(real, attr)
        except OSError as e:
            return sftp_error(e)
        return paramiko.SFTP_OK

    def rmdir(self, path):
        try:
            os.rmdir(self._real(path))
        except OSError as e:
            return sftp_error(e)
        return paramiko.SFTP_OK

    def chattr(self, path, attr):
        try:
            paramiko.SFTPServer.set_file_attr(self._real(path), attr)
        except OSError as e:
            return sftp_error(e)
        return paramiko.SFTP_OK

    def canonicalize(self, path):
        return self._virtual(path)

    def readlink(self, path):
        try:
            target = os.readlink(self._real(path))
        except OSError as e:
            return sftp_error(e)
        if os.path.isabs(target):
            if target == self.root or target.startswith(self.root + "/"):
                target = "/" + target[len(self.root):].lstrip("/")
            else:
                return paramiko.SFTP_PERMISSION_DENIED
        return target

    def symlink(self, target_path, path):
        if posixpath.isabs(target_path):
            target_path = self._real(target_path)
        try:
            os.symlink(target_path, self._real(path))
        except OSError as e:
            return sftp_error(e)
        return paramiko.SFTP_OK


def restrict_signature_algorithms(allowed):
    """Logs every user-auth signature algorithm and rejects those not in
    `allowed` (None: all)."""
    for cls in (paramiko.RSAKey, paramiko.ECDSAKey, paramiko.Ed25519Key):
        orig = cls.verify_ssh_sig

        def verify(self, data, msg, _orig=orig):
            alg = msg.get_text()
            msg.rewind()
            log("auth publickey signature %s" % alg)
            if allowed is not None and alg not in allowed:
                return False
            return _orig(self, data, msg)

        cls.verify_ssh_sig = verify


def serve(sock, args, host_key, authorized):
    t = None
    try:
        disabled = {}
        if args.pubkey_algs:
            allowed = args.pubkey_algs.split(",")
            disabled["pubkeys"] = [a for a in paramiko.Transport._preferred_pubkeys if a not in allowed]
        t = paramiko.Transport(sock, default_window_size=WINDOW, disabled_algorithms=disabled)
        t.add_server_key(host_key)
        if args.sftp_root:
            t.set_subsystem_handler("sftp", paramiko.SFTPServer, LocalSFTPServer, args.sftp_root)
        t.start_server(server=Server(args, authorized))
        # Keep a reference to every channel: paramiko closes a channel
        # object that gets garbage-collected.
        channels = []
        while t.is_active():
            chan = t.accept(timeout=1)
            if chan is not None:
                channels = [c for c in channels if not c.closed]
                channels.append(chan)
    except (EOFError, paramiko.SSHException, OSError) as e:
        # A client that went away early (e.g. the harness's readiness probe).
        print("connection ended: %s" % (e or e.__class__.__name__), file=sys.stderr, flush=True)
    except Exception:
        traceback.print_exc(file=sys.stderr)
    finally:
        if t is not None:
            t.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("port", type=int)
    p.add_argument("host_key")
    p.add_argument("authorized_keys")
    p.add_argument("--user", default="sshtest")
    p.add_argument("--password", default="sshtest-pw")
    p.add_argument("--pubkey-algs", default=None)
    p.add_argument("--sftp-root", default=None)
    args = p.parse_args()

    restrict_signature_algorithms(args.pubkey_algs.split(",") if args.pubkey_algs else None)
    host_key = paramiko.Ed25519Key.from_private_key_file(args.host_key)
    authorized = load_authorized_keys(args.authorized_keys)

    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", args.port))
    lsock.listen(64)
    log("READY")
    while True:
        sock, _addr = lsock.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=serve, args=(sock, args, host_key, authorized), daemon=True).start()


if __name__ == "__main__":
    main()
