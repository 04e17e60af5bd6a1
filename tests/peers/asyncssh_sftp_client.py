#!/usr/bin/env python3
"""SFTP checks with AsyncSSH's SFTP client, for the interoperability tests.

    asyncssh_sftp_client.py HOST PORT USER KNOWN_HOSTS
                            (--password P | --key FILE) [--timeout S]
                            [--uid N] [--secret TEXT] ACTION ARGS...

Connects to HOST:PORT with `asyncssh.connect` (host key checked against
KNOWN_HOSTS; no agent, no default keys, no ssh config), authenticates as
USER, starts the SFTP client and runs ACTION. Prints one line per check on
stdout (`ok: ...`, and for jail attempts `refused: ...` / `allowed: ...`);
on the first failed check prints `FAIL: ...` on stderr and exits 1. Exits
255 when the connection or authentication fails. The last line on success
is `session ok` or `jail ok`.

ACTIONS

session REMOTE_DIR LOCAL_DIR
    As in paramiko_sftp_client.py: REMOTE_DIR holds `down.bin` and
    `dated.txt` ("hello", mode 0644, mtime 981201600), LOCAL_DIR holds
    `up.bin`. Puts up.bin, gets down.bin, readdir with sizes and longname,
    stat sizes/modes/times, mkdir/rmdir, rename (also onto an existing file,
    which SFTP v3 refuses, and posix_rename), symlink and readlink, chmod,
    chown to --uid (if given), utime, statvfs, exclusive open of an
    existing and of a new file, append (AsyncSSH writes at offset 0 and
    relies on the server honouring SSH_FXF_APPEND), remove. Leaves the same
    files on the server as the paramiko script.

jail LOCAL_DIR
    As in paramiko_sftp_client.py.
"""

import argparse
import asyncio
import os
import posixpath
import stat
import sys
import time
import traceback

import asyncssh

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


async def fails(coro):
    """True if awaiting coro raises an SFTP error."""
    try:
        await coro
    except (asyncssh.SFTPError, OSError):
        return True
    return False


async def read_remote(sftp, path):
    async with sftp.open(path, "rb") as f:
        return await f.read()


async def write_remote(sftp, path, data, mode="wb"):
    async with sftp.open(path, mode) as f:
        await f.write(data)


async def session(sftp, args):
    rdir, ldir = args.action_args
    r = lambda n: posixpath.join(rdir, n)  # noqa: E731
    l = lambda n: os.path.join(ldir, n)  # noqa: E731

    up_size = os.path.getsize(l("up.bin"))
    t = time.time()
    await sftp.put(l("up.bin"), r("up.bin"))
    size = (await sftp.stat(r("up.bin"))).size
    check(size == up_size, "put up.bin: remote size %s, expected %d" % (size, up_size))
    ok("put up.bin (%d bytes, %.1fs)" % (up_size, time.time() - t))

    down_size = (await sftp.stat(r("down.bin"))).size
    t = time.time()
    await sftp.get(r("down.bin"), l("down.bin"))
    got = os.path.getsize(l("down.bin"))
    check(got == down_size, "get down.bin: %d bytes, remote size %d" % (got, down_size))
    ok("get down.bin (%d bytes, %.1fs)" % (got, time.time() - t))

    entries = {e.filename: e for e in await sftp.readdir(rdir)}
    for name, size in (("up.bin", up_size), ("down.bin", down_size), ("dated.txt", 5)):
        check(name in entries, "readdir: %s missing from %s" % (name, sorted(entries)))
        check(entries[name].attrs.size == size,
              "readdir: %s size %s, expected %d" % (name, entries[name].attrs.size, size))
    dated = entries["dated.txt"]
    check(stat.S_IMODE(dated.attrs.permissions) == 0o644, "readdir: dated.txt mode %o" % dated.attrs.permissions)
    longname = dated.longname or ""
    check(longname.startswith("-rw-r--r--") and longname.split()[-1] == "dated.txt",
          "readdir: dated.txt longname %r" % longname)
    ok("readdir: %d entries, sizes and longname %r" % (len(entries), longname))

    st = await sftp.stat(r("dated.txt"))
    check(st.size == 5, "stat dated.txt: size %s" % st.size)
    check(stat.S_ISREG(st.permissions) and stat.S_IMODE(st.permissions) == 0o644,
          "stat dated.txt: mode %o" % st.permissions)
    check(st.mtime == DATED_MTIME, "stat dated.txt: mtime %s, expected %d" % (st.mtime, DATED_MTIME))
    ok("stat dated.txt: size 5, mode 0644, mtime %d" % st.mtime)

    await sftp.mkdir(r("newdir"))
    check(await sftp.isdir(r("newdir")), "mkdir newdir: not a directory")
    check(list(await sftp.listdir(r("newdir"))) in ([], [".", ".."], ["..", "."]), "newdir is not empty")
    await sftp.rmdir(r("newdir"))
    check(not await sftp.exists(r("newdir")), "rmdir newdir: it still exists")
    ok("mkdir/rmdir newdir")
    check(await fails(sftp.rmdir(r("no-such-dir"))), "rmdir of a missing directory succeeded")
    ok("rmdir no-such-dir fails")

    await sftp.rename(r("dated.txt"), r("renamed.txt"))
    check(not await sftp.exists(r("dated.txt")), "rename: dated.txt still exists")
    check((await sftp.stat(r("renamed.txt"))).size == 5, "rename: renamed.txt size")
    ok("rename dated.txt renamed.txt")

    await write_remote(sftp, r("a.txt"), b"a\n")
    await write_remote(sftp, r("b.txt"), b"b\n")
    check(await fails(sftp.rename(r("a.txt"), r("b.txt"))), "rename onto an existing file succeeded (SFTP v3 refuses it)")
    check(await read_remote(sftp, r("a.txt")) == b"a\n" and await read_remote(sftp, r("b.txt")) == b"b\n",
          "a refused rename changed a.txt or b.txt")
    ok("rename onto an existing file fails")
    await sftp.posix_rename(r("a.txt"), r("b.txt"))
    check(not await sftp.exists(r("a.txt")), "posix_rename: a.txt still exists")
    check(await read_remote(sftp, r("b.txt")) == b"a\n", "posix_rename: b.txt is not the old a.txt")
    ok("posix_rename a.txt b.txt (replaces)")

    await sftp.symlink("renamed.txt", r("link.txt"))
    try:
        target = await sftp.readlink(r("link.txt"))
    except (asyncssh.SFTPError, OSError) as e:
        raise CheckFailed("readlink link.txt failed after symlink('renamed.txt', 'link.txt') succeeded: %s "
                          "(did the server take the SSH_FXP_SYMLINK arguments in the other order?)" % e)
    check(target == "renamed.txt", "readlink link.txt: %r, expected 'renamed.txt'" % target)
    check(await sftp.islink(r("link.txt")), "lstat link.txt: not a symlink")
    check((await sftp.stat(r("link.txt"))).size == 5, "stat link.txt: size is not the target's")
    check(await read_remote(sftp, r("link.txt")) == b"hello", "reading through link.txt")
    ok("symlink/readlink link.txt -> renamed.txt")

    await sftp.chmod(r("renamed.txt"), 0o600)
    m = stat.S_IMODE((await sftp.stat(r("renamed.txt"))).permissions)
    check(m == 0o600, "chmod 600: mode %o" % m)
    ok("chmod 600 renamed.txt")

    if args.uid is not None:
        st = await sftp.stat(r("renamed.txt"))
        await sftp.chown(r("renamed.txt"), args.uid, st.gid)
        st = await sftp.stat(r("renamed.txt"))
        check(st.uid == args.uid, "chown: uid %s, expected %d" % (st.uid, args.uid))
        ok("chown %d renamed.txt" % args.uid)

    await sftp.utime(r("renamed.txt"), (SET_ATIME, SET_MTIME))
    st = await sftp.stat(r("renamed.txt"))
    check(st.mtime == SET_MTIME and st.atime == SET_ATIME,
          "utime: atime %s mtime %s, expected %d %d" % (st.atime, st.mtime, SET_ATIME, SET_MTIME))
    ok("utime renamed.txt")

    v = await sftp.statvfs(rdir)
    check(v.frsize > 0 and v.bsize > 0 and v.blocks > 0 and v.bfree <= v.blocks and v.bavail <= v.blocks,
          "statvfs: implausible %r" % (v,))
    ok("statvfs: frsize %d, %d blocks, %d free" % (v.frsize, v.blocks, v.bfree))

    check(await fails(sftp.open(r("renamed.txt"), "x")), "exclusive open of an existing file succeeded")
    check(await read_remote(sftp, r("renamed.txt")) == b"hello", "a refused exclusive open changed the file")
    await write_remote(sftp, r("new-x.txt"), b"x", mode="xb")
    check(await read_remote(sftp, r("new-x.txt")) == b"x", "exclusive create of new-x.txt")
    ok("exclusive open: existing file refused, new file created")

    await write_remote(sftp, r("app.txt"), b"one\n")
    await write_remote(sftp, r("app.txt"), b"two\n", mode="ab")
    got = await read_remote(sftp, r("app.txt"))
    check(got == b"one\ntwo\n", "append: app.txt is %r" % got)
    ok("append app.txt")

    await sftp.remove(r("new-x.txt"))
    check(not await sftp.exists(r("new-x.txt")), "remove new-x.txt: still there")
    check(await fails(sftp.remove(r("no-such-file"))), "remove of a missing file succeeded")
    ok("remove")

    await sftp.chdir(rdir)
    cwd = await sftp.getcwd()
    check(cwd == rdir, "chdir: getcwd %r, expected %r" % (cwd, rdir))
    check("renamed.txt" in await sftp.listdir("."), "relative listdir after chdir")
    ok("chdir/getcwd")
    print("session ok", flush=True)


async def jail(sftp, args):
    (ldir,) = args.action_args
    secret = args.secret.encode()
    with open("/etc/passwd", "rb") as f:
        passwd_first = f.readline().strip()

    async def attempt(label, coro):
        try:
            res = await coro
        except (asyncssh.SFTPError, OSError) as e:
            print("refused: %s (%s)" % (label, e), flush=True)
            return None
        print("allowed: %s -> %r" % (label, res if not isinstance(res, bytes) or len(res) < 80 else res[:80]), flush=True)
        return res

    def no_leak(label, data):
        if data is None:
            return
        check(secret not in data, "%s returned the secret outside the jail: %r" % (label, data[:200]))
        check(passwd_first not in data, "%s returned /etc/passwd: %r" % (label, data[:200]))

    async def check_cwd(when):
        cwd = await sftp.realpath(".")
        check(cwd == "/", "%s: the working directory is %r, not '/'" % (when, cwd))

    await check_cwd("at start")
    for p in ("../outside/secret", "/../outside/secret", "/etc/passwd", "../../../../../../etc/passwd"):
        no_leak("read %s" % p, await attempt("read %s" % p, read_remote(sftp, p)))
    for p in ("..", "/..", "../.."):
        st = await attempt("realpath %s" % p, sftp.realpath(p))
        check(st is None or st == "/", "realpath(%r) = %r, expected '/'" % (p, st))
    await attempt("chdir ..", sftp.chdir(".."))
    await check_cwd("after chdir ..")
    names = list(await sftp.listdir("."))
    check("file" in names, "listing / after chdir ..: 'file' missing from %r" % names)
    check("outside" not in names and "root" not in names, "listing / after chdir .. shows the outside: %r" % names)
    ok("chdir .. stays at /, listing %r" % sorted(names))

    await attempt("symlink /etc/passwd link", sftp.symlink("/etc/passwd", "link"))
    no_leak("read link", await attempt("read link", read_remote(sftp, "link")))
    await attempt("symlink ../outside up", sftp.symlink("../outside", "up"))
    await attempt("put x up/x", sftp.put(os.path.join(ldir, "x"), "up/x"))
    lst = await attempt("listdir up", sftp.listdir("up"))
    check(lst is None or "secret" not in lst, "listdir up shows the outside: %r" % lst)
    no_leak("read up/secret", await attempt("read up/secret", read_remote(sftp, "up/secret")))
    await attempt("rename file ../outside/moved", sftp.rename("file", "../outside/moved"))
    await attempt("rename file up/moved", sftp.rename("file", "up/moved"))
    await attempt("mkdir up/newdir", sftp.mkdir("up/newdir"))
    await attempt("remove up/secret", sftp.remove("up/secret"))
    await check_cwd("at the end")
    print("jail ok", flush=True)


async def run(args):
    opts = dict(
        port=args.port,
        username=args.user,
        known_hosts=args.known_hosts,
        agent_path=None,
        config=[],
        connect_timeout=args.timeout,
        login_timeout=args.timeout,
    )
    if args.password is not None:
        opts.update(password=args.password, client_keys=[], preferred_auth="password")
    else:
        opts.update(client_keys=[args.key], preferred_auth="publickey")
    try:
        conn = await asyncssh.connect(args.host, **opts)
    except Exception as e:
        sys.stderr.write("asyncssh_sftp_client: cannot connect: %s: %s\n" % (type(e).__name__, e))
        return 255
    async with conn:
        try:
            async with conn.start_sftp_client() as sftp:
                await {"session": session, "jail": jail}[args.action](sftp, args)
        except CheckFailed as e:
            sys.stderr.write("FAIL: %s\n" % e)
            return 1
        except Exception as e:
            sys.stderr.write("FAIL: unexpected %s: %s\n%s" % (type(e).__name__, e, traceback.format_exc()))
            return 1
    return 0


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
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
