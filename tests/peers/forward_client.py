#!/usr/bin/env python3
"""Port forwarding through our server with paramiko or AsyncSSH clients.

    forward_client.py HOST PORT USER KNOWN_HOSTS --key FILE
                      --lib paramiko|asyncssh --echo-port N
                      [--size BYTES] [--timeout S] CHECK...

Connects to HOST:PORT (host key checked against KNOWN_HOSTS), logs in as
USER with the key FILE and runs each CHECK in order on that one
connection. ECHO_PORT is a TCP echo server on 127.0.0.1 (it sends back
what it reads and half-closes after the client's EOF). Each check prints
one line on stdout, `CHECK: ok` or `CHECK: FAIL: WHY`, and the run ends
with `done`; the exit status is 0 when the run got that far, 255 when the
connection could not be made or broke.

Round trips send BYTES (default 256 KiB) of pseudo-random data while
reading the echo, then half-close and read to EOF; the bytes read must be
the bytes sent.

paramiko checks (`Transport` API):

- direct: `open_channel('direct-tcpip', ('127.0.0.1', ECHO), ...)`, round
  trip.
- direct-closed: the same to a port nobody listens on fails with
  ChannelException code 2 (connect failed).
- direct-refused: the open fails with ChannelException code 1
  (administratively prohibited).
- direct-refused-closed: an open to a port nobody listens on fails with
  code 1 (the policy refuses it before any connect).
- remote: `request_port_forward('127.0.0.1', 0)` returns a port; a
  connection to it arrives as a forwarded-tcpip channel (`accept`) naming
  that address and port and the connection's source; the script echoes on
  the channel, round trip from the socket; then `cancel-tcpip-forward` (as
  `cancel_port_forward` sends it, the reply checked) and the port refuses
  connections.
- remote@ADDR: the same with ADDR as the address (`localhost`, or empty
  for every address): the connection goes to 127.0.0.1, the channel names
  ADDR, and after the cancel neither 127.0.0.1 nor ::1 accepts.
- remote-refused: `request_port_forward` raises SSHException.
- late-window-adjust: a direct-tcpip channel to the echo server, a small
  round trip, both CLOSEs; then a CHANNEL_WINDOW_ADJUST for that channel,
  as paramiko sends one when `Channel.recv` races its transport thread's
  CLOSE (sshd logs "Received window adjust for non-open channel" and goes
  on); the check passes when the connection still works (`exec` after it
  tells).
- exec: `exec_command('echo ok')` prints `ok` and exits 0.

AsyncSSH checks (`SSHClientConnection` API):

- local: `forward_local_port('127.0.0.1', 0, '127.0.0.1', ECHO)`, round
  trip through the local listener.
- remote: `forward_remote_port('127.0.0.1', 0, '127.0.0.1', ECHO)`, round
  trip through the port the server allocated; closing the listener
  cancels the forward and the port refuses connections.
- socks: `forward_socks('127.0.0.1', 0)`, a SOCKS5 CONNECT to
  127.0.0.1:ECHO by hand, round trip.
- direct-refused: `open_connection('127.0.0.1', ECHO)` raises
  ChannelOpenError code 1.
- remote-refused: `forward_remote_port` raises ChannelListenError.
- exec: `run('echo ok')` gives `ok` and exit 0.
"""

import argparse
import asyncio
import os
import random
import socket
import struct
import sys
import threading
import time

# How long a cancelled forward's port may keep accepting after the reply.
CANCEL_GRACE = 3.0


def payload(size, seed):
    return random.Random(seed).randbytes(size)


def connect_refused(host, port):
    """True if HOST:PORT refuses a connection (for ::1 also when the host
    has no IPv6 loopback)."""
    v6 = ":" in host
    s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((host, port))
    except ConnectionRefusedError:
        return True
    except OSError:
        return v6
    finally:
        s.close()
    return False


def wait_refused(port, hosts=("127.0.0.1",)):
    """None once PORT refuses connections on each of HOSTS (at once or
    within CANCEL_GRACE), else a reason."""
    start = time.monotonic()
    while True:
        if all(connect_refused(h, port) for h in hosts):
            waited = time.monotonic() - start
            if waited > 0.5:
                sys.stderr.write(
                    "port %d refused connections only %.2f s after the cancel\n" % (port, waited)
                )
            return None
        if time.monotonic() - start > CANCEL_GRACE:
            return "port %d still accepts connections on %s %.1f s after the cancel" % (
                port,
                " or ".join(h for h in hosts if not connect_refused(h, port)),
                CANCEL_GRACE,
            )
        time.sleep(0.05)


def closed_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def compare(sent, got):
    if got == sent:
        return None
    n = min(len(sent), len(got))
    first = next((i for i in range(n) if sent[i] != got[i]), n)
    return "round trip: sent %d bytes, got %d back, first difference at %d" % (
        len(sent),
        len(got),
        first,
    )


# ---------------------------------------------------------------------------
# paramiko
# ---------------------------------------------------------------------------


def roundtrip_blocking(send, shutdown_write, recv, data):
    """Sends DATA on one thread, reads to EOF on this one."""
    err = []

    def feed():
        try:
            send(data)
            shutdown_write()
        except Exception as e:  # reported below
            err.append(e)

    t = threading.Thread(target=feed, daemon=True)
    t.start()
    got = bytearray()
    while True:
        chunk = recv(65536)
        if not chunk:
            break
        got += chunk
    t.join(30)
    if err:
        return "sending: %s: %s" % (type(err[0]).__name__, err[0])
    return compare(data, bytes(got))


def paramiko_connect(args):
    import paramiko

    client = paramiko.SSHClient()
    client.load_host_keys(args.known_hosts)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        args.host,
        port=args.port,
        username=args.user,
        key_filename=args.key,
        look_for_keys=False,
        allow_agent=False,
        timeout=args.timeout,
        banner_timeout=args.timeout,
        auth_timeout=args.timeout,
    )
    return client


def paramiko_open_error(t, port, args, want_code):
    import paramiko

    try:
        chan = t.open_channel(
            "direct-tcpip", ("127.0.0.1", port), ("127.0.0.1", 0), timeout=args.timeout
        )
    except paramiko.ChannelException as e:
        if e.code == want_code:
            return None
        return "ChannelException code %d (%r), expected code %d" % (e.code, e.text, want_code)
    except Exception as e:
        return "%s: %s, expected ChannelException code %d" % (type(e).__name__, e, want_code)
    chan.close()
    return "the open succeeded, expected ChannelException code %d" % want_code


def paramiko_remote(t, addr, args):
    """request_port_forward(ADDR, 0), a round trip through the port, the
    cancel; None or a reason."""
    arrived = []

    def handler(chan, origin, server):
        arrived.append((origin, server))
        t._queue_incoming_channel(chan)

    port = t.request_port_forward(addr, 0, handler=handler)
    if not 0 < port < 65536:
        return "request_port_forward returned port %r" % (port,)
    sock = socket.create_connection(("127.0.0.1", port), timeout=args.timeout)
    chan = t.accept(args.timeout)
    if chan is None:
        sock.close()
        return "no forwarded-tcpip channel within %s s of connecting to port %d" % (
            args.timeout,
            port,
        )
    want = (("127.0.0.1", sock.getsockname()[1]), (addr, port))
    if arrived != [want]:
        sock.close()
        chan.close()
        return "forwarded-tcpip (origin, connected) %r, expected %r" % (arrived, [want])
    chan.settimeout(args.timeout)

    def echo():
        try:
            while True:
                d = chan.recv(65536)
                if not d:
                    break
                chan.sendall(d)
            chan.shutdown_write()
        except Exception as e:
            sys.stderr.write("echo on the forwarded channel: %s\n" % e)

    e = threading.Thread(target=echo, daemon=True)
    e.start()
    try:
        r = roundtrip_blocking(
            sock.sendall, lambda: sock.shutdown(socket.SHUT_WR), sock.recv, payload(args.size, 2)
        )
    finally:
        sock.close()
        e.join(args.timeout)
        chan.close()
    if r:
        return r
    # What cancel_port_forward sends, with its reply checked (paramiko's
    # method ignores a failure).
    t._tcp_handler = None
    if t.global_request("cancel-tcpip-forward", (addr, port), wait=True) is None:
        return "cancel-tcpip-forward for (%r, %d) failed" % (addr, port)
    hosts = ["127.0.0.1"] if addr == "127.0.0.1" else ["127.0.0.1", "::1"]
    return wait_refused(port, hosts)


def paramiko_check(name, client, args):
    import paramiko

    t = client.get_transport()
    if name == "direct":
        chan = t.open_channel(
            "direct-tcpip", ("127.0.0.1", args.echo_port), ("127.0.0.1", 0), timeout=args.timeout
        )
        chan.settimeout(args.timeout)
        try:
            return roundtrip_blocking(
                chan.sendall, chan.shutdown_write, chan.recv, payload(args.size, 1)
            )
        finally:
            chan.close()
    if name == "direct-closed":
        return paramiko_open_error(t, closed_port(), args, 2)
    if name == "direct-refused":
        return paramiko_open_error(t, args.echo_port, args, 1)
    if name == "direct-refused-closed":
        return paramiko_open_error(t, closed_port(), args, 1)
    if name == "remote" or name.startswith("remote@"):
        addr = name.partition("@")[2] if "@" in name else "127.0.0.1"
        return paramiko_remote(t, addr, args)
    if name == "late-window-adjust":
        chan = t.open_channel(
            "direct-tcpip", ("127.0.0.1", args.echo_port), ("127.0.0.1", 0), timeout=args.timeout
        )
        chan.settimeout(args.timeout)
        r = roundtrip_blocking(chan.sendall, chan.shutdown_write, chan.recv, b"x" * 1000)
        if r:
            return r
        deadline = time.monotonic() + args.timeout
        while not chan.closed and time.monotonic() < deadline:
            time.sleep(0.01)
        if not chan.closed:
            return "the server did not close the channel"
        # Let the transport thread send its CLOSE reply first.
        time.sleep(0.5)
        m = paramiko.Message()
        m.add_byte(bytes([paramiko.common.MSG_CHANNEL_WINDOW_ADJUST]))
        m.add_int(chan.remote_chanid)
        m.add_int(65536)
        t._send_user_message(m)
        return None
    if name == "remote-refused":
        try:
            port = t.request_port_forward("127.0.0.1", 0)
        except paramiko.SSHException:
            return None
        return "request_port_forward succeeded (port %r), expected SSHException" % (port,)
    if name == "exec":
        _, out, err = client.exec_command("echo ok", timeout=args.timeout)
        text = out.read()
        status = out.channel.recv_exit_status()
        if text != b"ok\n" or status != 0:
            return "exec echo ok: stdout %r, status %r, stderr %r" % (text, status, err.read())
        return None
    return "unknown check"


def run_paramiko(args):
    client = paramiko_connect(args)
    try:
        for name in args.checks:
            if not client.get_transport().is_active():
                print("%s: FAIL: the connection is gone" % name, flush=True)
                continue
            try:
                r = paramiko_check(name, client, args)
            except Exception as e:
                r = "%s: %s" % (type(e).__name__, e)
            print("%s: %s" % (name, "ok" if r is None else "FAIL: " + r), flush=True)
    finally:
        client.close()


# ---------------------------------------------------------------------------
# AsyncSSH
# ---------------------------------------------------------------------------


async def roundtrip_stream(reader, writer, data):
    async def feed():
        writer.write(data)
        await writer.drain()
        writer.write_eof()

    async def drain():
        got = bytearray()
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return bytes(got)
            got += chunk

    _, got = await asyncio.gather(feed(), drain())
    return compare(data, got)


async def tcp_roundtrip(port, data, timeout):
    reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
    try:
        return await asyncio.wait_for(roundtrip_stream(reader, writer, data), timeout)
    finally:
        writer.close()


async def socks5_roundtrip(socks_port, dest_port, data, timeout):
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", socks_port), timeout
    )
    try:
        writer.write(b"\x05\x01\x00")
        reply = await asyncio.wait_for(reader.readexactly(2), timeout)
        if reply != b"\x05\x00":
            return "SOCKS5 greeting reply %r, expected 05 00" % reply
        writer.write(b"\x05\x01\x00\x01" + socket.inet_aton("127.0.0.1") + struct.pack(">H", dest_port))
        head = await asyncio.wait_for(reader.readexactly(4), timeout)
        if head[:2] != b"\x05\x00":
            return "SOCKS5 CONNECT reply %r, expected 05 00 (success)" % head
        alen = {1: 4, 4: 16}.get(head[3])
        if alen is None and head[3] == 3:
            alen = (await reader.readexactly(1))[0]
        if alen is None:
            return "SOCKS5 CONNECT reply with address type %d" % head[3]
        await asyncio.wait_for(reader.readexactly(alen + 2), timeout)
        return await asyncio.wait_for(roundtrip_stream(reader, writer, data), timeout)
    finally:
        writer.close()


async def asyncssh_check(name, conn, args):
    import asyncssh

    if name == "local":
        listener = await conn.forward_local_port("127.0.0.1", 0, "127.0.0.1", args.echo_port)
        try:
            return await tcp_roundtrip(listener.get_port(), payload(args.size, 3), args.timeout)
        finally:
            listener.close()
            await listener.wait_closed()
    if name == "remote":
        listener = await conn.forward_remote_port("127.0.0.1", 0, "127.0.0.1", args.echo_port)
        port = listener.get_port()
        if not 0 < port < 65536:
            return "forward_remote_port gave port %r" % (port,)
        try:
            r = await tcp_roundtrip(port, payload(args.size, 4), args.timeout)
        finally:
            # Sends cancel-tcpip-forward and waits for the reply.
            listener.close()
            await listener.wait_closed()
        if r:
            return r
        return await asyncio.get_running_loop().run_in_executor(None, wait_refused, port)
    if name == "socks":
        listener = await conn.forward_socks("127.0.0.1", 0)
        try:
            return await socks5_roundtrip(
                listener.get_port(), args.echo_port, payload(args.size, 5), args.timeout
            )
        finally:
            listener.close()
            await listener.wait_closed()
    if name == "direct-refused":
        try:
            reader, writer = await asyncio.wait_for(
                conn.open_connection("127.0.0.1", args.echo_port), args.timeout
            )
        except asyncssh.ChannelOpenError as e:
            if e.code == asyncssh.OPEN_ADMINISTRATIVELY_PROHIBITED:
                return None
            return "ChannelOpenError code %d (%r), expected code 1" % (e.code, e.reason)
        writer.close()
        return "the open succeeded, expected ChannelOpenError code 1"
    if name == "remote-refused":
        try:
            listener = await conn.forward_remote_port("127.0.0.1", 0, "127.0.0.1", args.echo_port)
        except asyncssh.ChannelListenError:
            return None
        port = listener.get_port()
        listener.close()
        return "forward_remote_port succeeded (port %r), expected ChannelListenError" % (port,)
    if name == "exec":
        r = await asyncio.wait_for(conn.run("echo ok", check=False), args.timeout)
        if r.stdout != "ok\n" or r.exit_status != 0:
            return "run echo ok: stdout %r, status %r, stderr %r" % (r.stdout, r.exit_status, r.stderr)
        return None
    return "unknown check"


async def run_asyncssh(args):
    import asyncssh

    async with asyncssh.connect(
        args.host,
        port=args.port,
        username=args.user,
        known_hosts=args.known_hosts,
        client_keys=[args.key],
        preferred_auth="publickey",
        agent_path=None,
        config=[],
        connect_timeout=args.timeout,
        login_timeout=args.timeout,
    ) as conn:
        for name in args.checks:
            try:
                r = await asyncssh_check(name, conn, args)
            except Exception as e:
                r = "%s: %s" % (type(e).__name__, e)
            print("%s: %s" % (name, "ok" if r is None else "FAIL: " + r), flush=True)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("user")
    p.add_argument("known_hosts")
    p.add_argument("--key", required=True)
    p.add_argument("--lib", choices=["paramiko", "asyncssh"], required=True)
    p.add_argument("--echo-port", type=int, required=True)
    p.add_argument("--size", type=int, default=256 * 1024)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("checks", nargs="+")
    args = p.parse_args()
    try:
        if args.lib == "paramiko":
            run_paramiko(args)
        else:
            asyncio.run(run_asyncssh(args))
    except Exception as e:
        sys.stderr.write("forward_client: %s: %s\n" % (type(e).__name__, e))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(255)
    print("done", flush=True)
    sys.stdout.flush()
    sys.stderr.flush()
    # Daemon threads may still sit in blocking reads; leave at once.
    os._exit(0)


if __name__ == "__main__":
    main()
