#!/usr/bin/env python3
"""A paramiko SSH client for the interoperability tests of our server.

    paramiko_client.py HOST PORT USER KNOWN_HOSTS
                       (--password P | --key FILE | --kbdint P
                        | --bad-signature-key FILE) [--sig-alg ALG]
                       [--attempts N] COMMAND

Connects to HOST:PORT, checks the server's host key against KNOWN_HOSTS
(`[HOST]:PORT` entries; an unknown or changed key is refused), authenticates
as USER and runs COMMAND with `exec`. Its own stdin is sent to the command
(then EOF); the command's stdout and stderr are written to this process's
stdout and stderr, and this process exits with the remote exit status, or
255 when there is none (e.g. the command was killed by a signal) or on any
error.

--password and --key use paramiko's SSHClient (password or publickey
authentication only: no agent, no default keys). --kbdint P authenticates
with keyboard-interactive only, answering every prompt with P, and prints
each prompt on stderr as `kbdint prompt: PROMPT` (SSHClient cannot be
limited to keyboard-interactive, so this mode drives a Transport itself).

--sig-alg ALG makes publickey authentication sign with ALG (e.g. the SHA-1
`ssh-rsa` for an RSA key, which paramiko 3+ no longer does by itself)
whatever the server's server-sig-algs say.

--bad-signature-key FILE sends up to N (--attempts, default 10) publickey
requests for that key, each with a signature that does not verify, on one
connection; it prints `attempt I: failed` for each refusal, or `attempt I:
disconnected` when the server closed the connection instead, and then
exits 0 without running COMMAND.
"""

import argparse
import os
import socket
import sys
import threading

import paramiko


def fail(msg):
    sys.stderr.write("paramiko_client: %s\n" % msg)
    sys.stderr.flush()
    sys.stdout.flush()
    # No interpreter shutdown: see the end of main().
    os._exit(255)


def check_host_key(transport, known_hosts, host, port):
    key = transport.get_remote_server_key()
    name = host if port == 22 else "[%s]:%d" % (host, port)
    known = paramiko.HostKeys(known_hosts).lookup(name)
    if known is None:
        fail("no known_hosts entry for %s" % name)
    # known maps key type -> key; the server's key must be one of them.
    for k in known.values():
        if k.get_name() == key.get_name() and k.asbytes() == key.asbytes():
            return
    fail("host key %s of %s is not in %s" % (key.get_name(), name, known_hosts))


def connect_kbdint(args):
    sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
    t = paramiko.Transport(sock)
    t.start_client(timeout=args.timeout)
    check_host_key(t, args.known_hosts, args.host, args.port)

    def handler(title, instructions, prompts):
        for prompt, _echo in prompts:
            sys.stderr.write("kbdint prompt: %s\n" % prompt)
        return [args.kbdint for _ in prompts]

    t.auth_interactive(args.user, handler)
    if not t.is_authenticated():
        fail("keyboard-interactive authentication failed")
    return t


def bad_signatures(args):
    sock = socket.create_connection((args.host, args.port), timeout=args.timeout)
    t = paramiko.Transport(sock)
    t.start_client(timeout=args.timeout)
    check_host_key(t, args.known_hosts, args.host, args.port)
    key = paramiko.PKey.from_path(args.bad_signature_key)
    good_sign = key.sign_ssh_data

    def bad_sign(data, algorithm=None):
        sig = good_sign(data, algorithm)
        raw = bytearray(sig.asbytes())
        raw[-1] ^= 0x01  # one bit off: well formed, but does not verify
        return paramiko.Message(bytes(raw))

    key.sign_ssh_data = bad_sign
    for i in range(1, args.attempts + 1):
        try:
            t.auth_publickey(args.user, key)
            print("attempt %d: accepted" % i, flush=True)
            break
        except paramiko.AuthenticationException:
            pass
        except paramiko.SSHException:
            pass
        if not t.is_active():
            print("attempt %d: disconnected" % i, flush=True)
            break
        print("attempt %d: failed" % i, flush=True)
    t.close()
    sys.exit(0)


def connect_client(args):
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
    return client, client.get_transport()


def copy(read, out):
    while True:
        data = read(65536)
        if not data:
            break
        out.write(data)
        out.flush()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("user")
    p.add_argument("known_hosts")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--password")
    g.add_argument("--key")
    g.add_argument("--kbdint", metavar="PASSWORD")
    g.add_argument("--bad-signature-key", metavar="FILE")
    p.add_argument("--sig-alg")
    p.add_argument("--attempts", type=int, default=10)
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("command")
    args = p.parse_args()

    if args.sig_alg is not None:
        alg = args.sig_alg
        paramiko.auth_handler.AuthHandler._finalize_pubkey_algorithm = (
            lambda self, key_type: alg
        )
        if alg == "ssh-rsa" and alg not in paramiko.RSAKey.HASHES:
            # paramiko 3+ no longer signs with SHA-1; give it back the hash.
            from cryptography.hazmat.primitives import hashes

            paramiko.RSAKey.HASHES = dict(paramiko.RSAKey.HASHES, **{alg: hashes.SHA1})
    client = None
    try:
        if args.bad_signature_key is not None:
            bad_signatures(args)
        if args.kbdint is not None:
            transport = connect_kbdint(args)
        else:
            client, transport = connect_client(args)
        chan = transport.open_session(timeout=args.timeout)
        chan.exec_command(args.command)

        def feed():
            try:
                data = sys.stdin.buffer.read()
                if data:
                    chan.sendall(data)
                chan.shutdown_write()
            except Exception:  # the command may exit without reading
                pass

        threads = [
            threading.Thread(target=feed, daemon=True),
            threading.Thread(target=copy, args=(chan.recv, sys.stdout.buffer)),
            threading.Thread(target=copy, args=(chan.recv_stderr, sys.stderr.buffer)),
        ]
        for t in threads:
            t.start()
        threads[1].join()
        threads[2].join()
        status = chan.recv_exit_status()
        chan.close()
        transport.close()
    except SystemExit:
        raise
    except Exception as e:
        fail("%s: %s" % (type(e).__name__, e))
    finally:
        if client is not None:
            client.close()
    # The stdin feeder may still sit in a blocking read of stdin (the command
    # can finish without reading it); a normal interpreter shutdown then
    # aborts on the stdin buffer's lock. Flush and leave at once instead.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status if 0 <= status <= 255 else 255)


if __name__ == "__main__":
    main()
