//! The blocking client API against real servers.

mod common;

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use common::*;
use ssh_blocking::{Client, ErrorKind, HostKeyCheck};

fn connect(port: u16, known_hosts: &Path) -> Client {
    Client::connect(
        ("127.0.0.1", port),
        HostKeyCheck::KnownHostsFile(known_hosts.to_path_buf()),
    )
    .expect("connect")
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn exec_password_keyfile_and_two_threads_on_one_connection() {
    assert_send_sync::<Client>();
    let k = keys();
    let d = Sshd::start();

    // A wrong password is an AuthFailed error naming the methods; the right one works.
    let c = connect(d.port, &d.known_hosts);
    let err = c.auth_password(USER, "wrong").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AuthFailed);
    assert!(err.to_string().contains("publickey"), "{err}");
    c.auth_password(USER, PASSWORD).unwrap();
    let out = c.exec("echo out; echo err >&2; exit 7").unwrap();
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice(), out.status),
        (&b"out\n"[..], &b"err\n"[..], Some(7))
    );

    // A key file encrypted with a passphrase.
    let c = connect(d.port, &d.known_hosts);
    c.auth_key_file(USER, &k.ed25519_encrypted, Some(KEY_PASSPHRASE))
        .unwrap();

    // Two threads, one channel each, 16 MiB each through cat at the same time.
    let c = Arc::new(c);
    let handles: Vec<_> = (0..2u64)
        .map(|i| {
            let c = c.clone();
            std::thread::spawn(move || {
                let data = pseudo_random_bytes(16 << 20, 1000 + i);
                let ch = c.channel_session().unwrap();
                ch.exec("cat").unwrap();
                let got = std::thread::scope(|s| {
                    let ch = &ch;
                    let r = s.spawn(move || {
                        let mut got = Vec::new();
                        let mut buf = vec![0u8; 65536];
                        loop {
                            let n = (&*ch).read(&mut buf).unwrap();
                            if n == 0 {
                                break;
                            }
                            got.extend_from_slice(&buf[..n]);
                        }
                        got
                    });
                    (&*ch).write_all(&data).unwrap();
                    ch.send_eof().unwrap();
                    r.join().unwrap()
                });
                assert_eq!(ch.exit_status().unwrap(), Some(0));
                assert_eq!(sha256_hex(&got), sha256_hex(&data), "thread {i}");
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }

    // The host key the client saw is one of those in known_hosts.
    let hk = c.host_key().expect("host key");
    let kh = std::fs::read_to_string(&d.known_hosts).unwrap();
    assert!(kh.contains(hk.to_openssh().split_whitespace().nth(1).unwrap()));
}

#[test]
fn keyboard_interactive_and_stderr_reader() {
    let d = PyServer::paramiko();
    let c = connect(d.port, &d.known_hosts);
    let mut seen = Vec::new();
    c.auth_keyboard_interactive(USER, |_, _, prompts| {
        seen.extend(prompts.iter().map(|p| p.text.clone()));
        vec![PASSWORD.to_string(); prompts.len()]
    })
    .unwrap();
    assert_eq!(seen, ["Password: "]);
    let ch = c.channel_session().unwrap();
    ch.exec("echo to-stderr >&2; echo to-stdout").unwrap();
    let mut err = String::new();
    ch.stderr().read_to_string(&mut err).unwrap();
    let mut out = String::new();
    (&ch).read_to_string(&mut out).unwrap();
    assert_eq!((out.as_str(), err.as_str()), ("to-stdout\n", "to-stderr\n"));
    assert_eq!(ch.exit_status().unwrap(), Some(0));
}

#[test]
fn wrong_host_key_is_refused() {
    let d = Sshd::start();
    // Any key but the server's: one of the client keys.
    let key = ssh_blocking::PublicKey::from_openssh(
        &std::fs::read_to_string(keys().ed25519.with_extension("pub")).unwrap(),
    )
    .unwrap();
    let err = match Client::connect(("127.0.0.1", d.port), HostKeyCheck::Exact(key)) {
        Ok(_) => panic!("connected with a wrong host key"),
        Err(e) => e,
    };
    assert_eq!(err.kind(), ErrorKind::HostKey);
}

#[test]
fn exit_signal_is_reported() {
    let d = Sshd::start();
    let c = connect(d.port, &d.known_hosts);
    c.auth_key_file(USER, &keys().ed25519, None).unwrap();
    let out = c.exec("echo before; kill -TERM $$").unwrap();
    assert_eq!(out.stdout, b"before\n");
    assert_eq!(out.status, None);
    assert_eq!(out.signal.map(|s| s.signal), Some("TERM".to_string()));
}

/// Any splittable byte stream works: here a Unix socket pair whose other
/// end a relay thread copies to and from sshd's TCP port (as a proxy
/// command would).
#[test]
fn handshake_over_a_unix_socket_relay() {
    use std::os::unix::net::UnixStream;
    let d = Sshd::start();
    let (ours, relay_end) = UnixStream::pair().unwrap();
    let tcp = std::net::TcpStream::connect(("127.0.0.1", d.port)).unwrap();
    let (mut r1, mut w1) = (relay_end.try_clone().unwrap(), tcp.try_clone().unwrap());
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut r1, &mut w1);
        let _ = w1.shutdown(std::net::Shutdown::Write);
    });
    let (mut r2, mut w2) = (tcp, relay_end);
    let down = std::thread::spawn(move || {
        let _ = std::io::copy(&mut r2, &mut w2);
        let _ = w2.shutdown(std::net::Shutdown::Write);
    });
    let c = Client::handshake(
        ours,
        "127.0.0.1",
        d.port,
        Arc::new(ssh_blocking::Config::default()),
        HostKeyCheck::KnownHostsFile(d.known_hosts.clone()),
    )
    .unwrap();
    c.auth_key_file(USER, &keys().ed25519, None).unwrap();
    let out = c.exec("echo via-relay; exit 4").unwrap();
    assert_eq!(
        (out.stdout.as_slice(), out.status),
        (&b"via-relay\n"[..], Some(4))
    );
    drop(c);
    up.join().unwrap();
    down.join().unwrap();
}

#[test]
fn exec_with_input_larger_than_the_window_and_invoke_shell() {
    let d = Sshd::start();
    let c = connect(d.port, &d.known_hosts);
    c.auth_password(USER, PASSWORD).unwrap();

    // 8 MiB through `cat`: four times the channel window each way, which
    // deadlocks if all input is written before any output is read.
    let data = pseudo_random_bytes(8 << 20, 77);
    let out = c.exec_with_input("cat; echo done >&2", &data).unwrap();
    assert_eq!(out.status, Some(0));
    assert_eq!(out.stderr, b"done\n");
    assert!(out.stdout == data, "cat's output differs from its input");

    // An interactive shell on a pty of a given size (paramiko's invoke_shell).
    let mut sh = c.invoke_shell("xterm-256color", 132, 43).unwrap();
    sh.write_all(b"echo \"T=$TERM S=$(stty size)\"; exit\n")
        .unwrap();
    let mut got = String::new();
    let _ = sh.read_to_string(&mut got);
    assert!(got.contains("T=xterm-256color S=43 132"), "{got}");
}
