#!/usr/bin/env python3
"""SFTP checks with paramiko's SFTPClient, for the interoperability tests.

    paramiko_sftp_client.py HOST PORT USER KNOWN_HOSTS
                            (--password P | --key FILE) [--timeout S]
                            [--uid N] [--secret TEXT] ACTION ARGS...

Connects to HOST:PORT (host key checked against the `[HOST]:PORT` entries of
KNOWN_HOSTS; no agent, no default keys), authenticates as USER, opens the
`sftp` subsystem and runs ACTION. Prints one line per check on stdout
(`ok: ...`, and for jail attempts `refused: ...` / `allowed: ...`); on the
first failed check prints `FAIL: ...` on stderr and exits 1. Exits 255 when
the connection or authentication fails. The last line on success is
`session ok` or `jail ok`.

ACTIONS

session REMOTE_DIR LOCAL_DIR
    REMOTE_DIR (a path as the server shows it) must hold `down.bin` (any
    size) and `dated.txt` ("hello", mode 0644, mtime 981201600); LOCAL_DIR
    must hold `up.bin`. Puts up.bin, gets down.bin (to LOCAL_DIR/down.bin),
    lists the directory, stats sizes/modes/times, mkdir/rmdir, rename (also
    onto an existing file, which SFTP v3 refuses, and posix-rename), symlink
    and readlink, chmod, chown to --uid (if given), utime, exclusive open of
    an existing and of a new file, append, remove. paramiko has no statvfs:
    that check is reported as skipped. Leaves on the server: up.bin,
    renamed.txt (mode 0600, atime 1234567000, mtime 1234567890, owner
    --uid), link.txt -> renamed.txt, app.txt ("one\\ntwo\\n"), b.txt
    ("a\\n"); removes dated.txt, newdir, new-x.txt and a.txt.

jail LOCAL_DIR
    For a server jailed to a directory holding the file `file`, next to a
    directory `outside` holding `secret` (whose content contains --secret):
    tries to read, list, write, rename and remove outside the jail through
    `..`, absolute paths and symlinks made by the client. Every attempt may
    be refused or allowed, but no read may return the secret or
    /etc/passwd, no listing may show the outside, and the working directory
    stays `/`. (Whether the outside tree changed is checked by the caller.)
    LOCAL_DIR must hold `x` (uploaded through a symlink).
"""

import argparse
import os
import posixpath
import stat
import sys
import time
import traceback

import paramiko

DATED_MTIME = 981201600  # 2001-02-03 12:00:00 UTC
SET_ATIME = 1234567000
SET_MTIME = 1234567890


class CheckFailed(Exception):
    pass


def ok(msg):
    print("ok: %s" % msg, flush=True)


def check(cond, msg):
    if not cond:
        raise CheckFailed(msg)


def fails(fn):
    """True if fn() raises an SFTP error (IOError/OSError)."""
    try:
        fn()
    except (IOError, OSError):
        return True
    return False


def connect(args):
    client = paramiko.SSHClient()
    client.load_host_keys(args.known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        args.host,
        port=args.port,
        username=args.user,
        password=args.password,
        key_filename=args.key,
        look_for_keys=False,
        allow_agent=False,
        timeout=args.timeout,
        banner_timeout=args.timeout,
        auth_timeout=args.timeout,
    )
    sftp = client.open_sftp()
    sftp.get_channel().settimeout(args.timeout)
    return client, sftp


def read_remote(sftp, path):
    with sftp.open(path, "rb") as f:
        return f.read()


def write_remote(sftp, path, data, mode="wb"):
    with sftp.open(path, mode) as f:
        f.write(data)


def session(sftp, args):
    rdir, ldir = args.action_args
    r = lambda n: posixpath.join(rdir, n)  # noqa: E731
    l = lambda n: os.path.join(ldir, n)  # noqa: E731

    up_size = os.path.getsize(l("up.bin"))
    t = time.time()
    a = sftp.put(l("up.bin"), r("up.bin"))  # confirm=True: stats the result
    check(a.st_size == up_size, "put up.bin: remote size %s, expected %d" % (a.st_size, up_size))
    ok("put up.bin (%d bytes, %.1fs)" % (up_size, time.time() - t))

    down_size = sftp.stat(r("down.bin")).st_size
    t = time.time()
    sftp.get(r("down.bin"), l("down.bin"))
    got = os.path.getsize(l("down.bin"))
    check(got == down_size, "get down.bin: %d bytes, remote size %d" % (got, down_size))
    ok("get down.bin (%d bytes, %.1fs)" % (got, time.time() - t))

    entries = {e.filename: e for e in sftp.listdir_attr(rdir)}
    for name, size in (("up.bin", up_size), ("down.bin", down_size), ("dated.txt", 5)):
        check(name in entries, "listdir_attr: %s missing from %s" % (name, sorted(entries)))
        check(entries[name].st_size == size, "listdir_attr: %s size %s, expected %d" % (name, entries[name].st_size, size))
    check(stat.S_IMODE(entries["dated.txt"].st_mode) == 0o644,
          "listdir_attr: dated.txt mode %o" % entries["dated.txt"].st_mode)
    longname = getattr(entries["dated.txt"], "longname", None) or ""
    check(longname.startswith("-rw-r--r--") and longname.split()[-1] == "dated.txt",
          "listdir_attr: dated.txt longname %r" % longname)
    ok("listdir_attr: %d entries, sizes and longname %r" % (len(entries), longname))

    st = sftp.stat(r("dated.txt"))
    check(st.st_size == 5, "stat dated.txt: size %s" % st.st_size)
    check(stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o644, "stat dated.txt: mode %o" % st.st_mode)
    check(st.st_mtime == DATED_MTIME, "stat dated.txt: mtime %s, expected %d" % (st.st_mtime, DATED_MTIME))
    ok("stat dated.txt: size 5, mode 0644, mtime %d" % st.st_mtime)

    sftp.mkdir(r("newdir"))
    check(stat.S_ISDIR(sftp.stat(r("newdir")).st_mode), "mkdir newdir: not a directory")
    check(sftp.listdir(r("newdir")) == [], "newdir is not empty")
    sftp.rmdir(r("newdir"))
    check(fails(lambda: sftp.stat(r("newdir"))), "rmdir newdir: it still exists")
    ok("mkdir/rmdir newdir")
    check(fails(lambda: sftp.rmdir(r("no-such-dir"))), "rmdir of a missing directory succeeded")
    ok("rmdir no-such-dir fails")

    sftp.rename(r("dated.txt"), r("renamed.txt"))
    check(fails(lambda: sftp.stat(r("dated.txt"))), "rename: dated.txt still exists")
    check(sftp.stat(r("renamed.txt")).st_size == 5, "rename: renamed.txt size")
    ok("rename dated.txt renamed.txt")

    write_remote(sftp, r("a.txt"), b"a\n")
    write_remote(sftp, r("b.txt"), b"b\n")
    check(fails(lambda: sftp.rename(r("a.txt"), r("b.txt"))), "rename onto an existing file succeeded (SFTP v3 refuses it)")
    check(read_remote(sftp, r("a.txt")) == b"a\n" and read_remote(sftp, r("b.txt")) == b"b\n",
          "a refused rename changed a.txt or b.txt")
    ok("rename onto an existing file fails")
    sftp.posix_rename(r("a.txt"), r("b.txt"))
    check(fails(lambda: sftp.stat(r("a.txt"))), "posix_rename: a.txt still exists")
    check(read_remote(sftp, r("b.txt")) == b"a\n", "posix_rename: b.txt is not the old a.txt")
    ok("posix_rename a.txt b.txt (replaces)")

    sftp.symlink("renamed.txt", r("link.txt"))
    try:
        target = sftp.readlink(r("link.txt"))
    except (IOError, OSError) as e:
        raise CheckFailed("readlink link.txt failed after symlink('renamed.txt', 'link.txt') succeeded: %s "
                          "(did the server take the SSH_FXP_SYMLINK arguments in the other order?)" % e)
    check(target == "renamed.txt", "readlink link.txt: %r, expected 'renamed.txt'" % target)
    check(stat.S_ISLNK(sftp.lstat(r("link.txt")).st_mode), "lstat link.txt: not a symlink")
    check(sftp.stat(r("link.txt")).st_size == 5, "stat link.txt: size is not the target's")
    check(read_remote(sftp, r("link.txt")) == b"hello", "reading through link.txt")
    ok("symlink/readlink link.txt -> renamed.txt")

    sftp.chmod(r("renamed.txt"), 0o600)
    m = stat.S_IMODE(sftp.stat(r("renamed.txt")).st_mode)
    check(m == 0o600, "chmod 600: mode %o" % m)
    ok("chmod 600 renamed.txt")

    if args.uid is not None:
        st = sftp.stat(r("renamed.txt"))
        sftp.chown(r("renamed.txt"), args.uid, st.st_gid)
        st = sftp.stat(r("renamed.txt"))
        check(st.st_uid == args.uid, "chown: uid %s, expected %d" % (st.st_uid, args.uid))
        ok("chown %d renamed.txt" % args.uid)

    sftp.utime(r("renamed.txt"), (SET_ATIME, SET_MTIME))
    st = sftp.stat(r("renamed.txt"))
    check(st.st_mtime == SET_MTIME and st.st_atime == SET_ATIME,
          "utime: atime %s mtime %s, expected %d %d" % (st.st_atime, st.st_mtime, SET_ATIME, SET_MTIME))
    ok("utime renamed.txt")

    print("skip: statvfs (paramiko's SFTPClient has no statvfs)", flush=True)

    check(fails(lambda: sftp.open(r("renamed.txt"), "x").close()), "exclusive open of an existing file succeeded")
    check(read_remote(sftp, r("renamed.txt")) == b"hello", "a refused exclusive open changed the file")
    write_remote(sftp, r("new-x.txt"), b"x", mode="wx")
    check(read_remote(sftp, r("new-x.txt")) == b"x", "exclusive create of new-x.txt")
    ok("exclusive open: existing file refused, new file created")

    write_remote(sftp, r("app.txt"), b"one\n")
    write_remote(sftp, r("app.txt"), b"two\n", mode="a")
    got = read_remote(sftp, r("app.txt"))
    check(got == b"one\ntwo\n", "append: app.txt is %r" % got)
    ok("append app.txt")

    sftp.remove(r("new-x.txt"))
    check(fails(lambda: sftp.stat(r("new-x.txt"))), "remove new-x.txt: still there")
    check(fails(lambda: sftp.remove(r("no-such-file"))), "remove of a missing file succeeded")
    ok("remove")

    sftp.chdir(rdir)
    check(sftp.getcwd() == rdir, "chdir: getcwd %r, expected %r" % (sftp.getcwd(), rdir))
    check(sftp.normalize(".") == rdir, "normalize('.') %r" % sftp.normalize("."))
    check("renamed.txt" in sftp.listdir("."), "relative listdir after chdir")
    ok("chdir/getcwd/normalize")
    print("session ok", flush=True)


def jail(sftp, args):
    (ldir,) = args.action_args
    secret = args.secret.encode()
    with open("/etc/passwd", "rb") as f:
        passwd_first = f.readline().strip()

    def attempt(label, fn):
        try:
            res = fn()
        except (IOError, OSError) as e:
            print("refused: %s (%s)" % (label, e), flush=True)
            return None
        print("allowed: %s -> %r" % (label, res if not isinstance(res, bytes) or len(res) < 80 else res[:80]), flush=True)
        return res

    def no_leak(label, data):
        if data is None:
            return
        check(secret not in data, "%s returned the secret outside the jail: %r" % (label, data[:200]))
        check(passwd_first not in data, "%s returned /etc/passwd: %r" % (label, data[:200]))

    def check_cwd(when):
        cwd = sftp.normalize(".")
        check(cwd == "/", "%s: the working directory is %r, not '/'" % (when, cwd))

    check_cwd("at start")
    for p in ("../outside/secret", "/../outside/secret", "/etc/passwd", "../../../../../../etc/passwd"):
        no_leak("read %s" % p, attempt("read %s" % p, lambda p=p: read_remote(sftp, p)))
    for p in ("..", "/..", "../.."):
        st = attempt("normalize %s" % p, lambda p=p: sftp.normalize(p))
        check(st is None or st == "/", "normalize(%r) = %r, expected '/'" % (p, st))
    attempt("chdir ..", lambda: sftp.chdir(".."))
    check_cwd("after chdir ..")
    names = sftp.listdir(".")
    check("file" in names, "listing / after chdir ..: 'file' missing from %r" % names)
    check("outside" not in names and "root" not in names, "listing / after chdir .. shows the outside: %r" % names)
    ok("chdir .. stays at /, listing %r" % sorted(names))
    lst = attempt("listdir ..", lambda: sftp.listdir(".."))
    check(lst is None or "outside" not in lst, "listdir .. shows the outside: %r" % lst)

    attempt("symlink /etc/passwd link", lambda: sftp.symlink("/etc/passwd", "link"))
    no_leak("read link", attempt("read link", lambda: read_remote(sftp, "link")))
    attempt("symlink ../outside up", lambda: sftp.symlink("../outside", "up"))
    attempt("put x up/x", lambda: sftp.put(os.path.join(ldir, "x"), "up/x", confirm=False))
    lst = attempt("listdir up", lambda: sftp.listdir("up"))
    check(lst is None or "secret" not in lst, "listdir up shows the outside: %r" % lst)
    no_leak("read up/secret", attempt("read up/secret", lambda: read_remote(sftp, "up/secret")))
    attempt("symlink /../outside/secret abs-link", lambda: sftp.symlink("/../outside/secret", "abs-link"))
    no_leak("read abs-link", attempt("read abs-link", lambda: read_remote(sftp, "abs-link")))
    attempt("rename file ../outside/moved", lambda: sftp.rename("file", "../outside/moved"))
    attempt("rename file up/moved", lambda: sftp.rename("file", "up/moved"))
    attempt("rename ../outside/secret stolen", lambda: sftp.rename("../outside/secret", "stolen"))
    attempt("rename up/secret stolen2", lambda: sftp.rename("up/secret", "stolen2"))
    for p in ("stolen", "stolen2"):
        no_leak("read %s" % p, attempt("read %s" % p, lambda p=p: read_remote(sftp, p)))
    attempt("mkdir ../outside/newdir", lambda: sftp.mkdir("../outside/newdir"))
    attempt("mkdir up/newdir", lambda: sftp.mkdir("up/newdir"))
    attempt("write ../outside/new", lambda: write_remote(sftp, "../outside/new", b"new\n"))
    attempt("chmod up/secret 777", lambda: sftp.chmod("up/secret", 0o777))
    attempt("remove ../outside/secret", lambda: sftp.remove("../outside/secret"))
    attempt("remove up/secret", lambda: sftp.remove("up/secret"))
    check_cwd("at the end")
    print("jail ok", flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("user")
    p.add_argument("known_hosts")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--password")
    g.add_argument("--key")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--uid", type=int, default=None)
    p.add_argument("--secret", default="top secret")
    p.add_argument("action", choices=["session", "jail"])
    p.add_argument("action_args", nargs="*")
    args = p.parse_args()
    want = {"session": 2, "jail": 1}[args.action]
    if len(args.action_args) != want:
        p.error("%s takes %d arguments" % (args.action, want))

    try:
        client, sftp = connect(args)
    except Exception as e:
        sys.stderr.write("paramiko_sftp_client: cannot connect: %s: %s\n" % (type(e).__name__, e))
        sys.exit(255)
    try:
        {"session": session, "jail": jail}[args.action](sftp, args)
    except CheckFailed as e:
        sys.stderr.write("FAIL: %s\n" % e)
        sys.exit(1)
    except Exception as e:
        sys.stderr.write("FAIL: unexpected %s: %s\n%s" % (type(e).__name__, e, traceback.format_exc()))
        sys.exit(1)
    finally:
        try:
            sftp.close()
            client.close()
        except Exception:
            pass


if __name__ == "__main__":
    main()
