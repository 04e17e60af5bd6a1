//! The blocking client API against real servers.

mod support;

use std::io::{Read, Write};
use std::sync::Arc;

use ssh_blocking::{Client, ErrorKind, HostKeyCheck};
use support::*;

fn connect(d: &Daemon) -> Client {
    Client::connect(
        ("127.0.0.1", d.port),
        HostKeyCheck::KnownHostsFile(d.known_hosts.clone()),
    )
    .expect("connect")
}

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn exec_password_keyfile_and_two_threads_on_one_connection() {
    assert_send_sync::<Client>();
    let e = env();
    let d = sshd("");

    // Wrong password is an AuthFailed error naming the methods; right one works.
    let c = connect(&d);
    let err = c.auth_password(USER, "wrong").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AuthFailed);
    assert!(err.to_string().contains("publickey"), "{err}");
    c.auth_password(USER, PASSWORD).unwrap();
    let out = c.exec("echo out; echo err >&2; exit 7").unwrap();
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice(), out.status),
        (&b"out\n"[..], &b"err\n"[..], Some(7))
    );

    // Key file, encrypted with a passphrase.
    let c = connect(&d);
    c.auth_key_file(USER, &e.encrypted, Some(PASSPHRASE))
        .unwrap();

    // Two threads, one channel each, 16 MiB each through cat at the same time.
    let c = Arc::new(c);
    let handles: Vec<_> = (0..2u32)
        .map(|i| {
            let c = c.clone();
            std::thread::spawn(move || {
                let data = pseudo_random(16 << 20, 1000 + i);
                let ch = c.channel_session().unwrap();
                ch.exec("cat").unwrap();
                let reader = {
                    let expected = data.len();
                    let ch = &ch;
                    std::thread::scope(|s| {
                        let r = s.spawn(move || {
                            let mut got = Vec::with_capacity(expected);
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
                    })
                };
                assert_eq!(ch.exit_status().unwrap(), Some(0));
                assert_eq!(sha256(&reader), sha256(&data), "thread {i}");
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }

    // The host key the client saw is the one in known_hosts.
    let hk = c.host_key().expect("host key");
    let kh = std::fs::read_to_string(&d.known_hosts).unwrap();
    assert!(kh.contains(hk.to_openssh().split_whitespace().nth(1).unwrap()));
}

#[test]
fn keyboard_interactive_and_stderr_reader() {
    let d = pyserver("paramiko_server.py");
    let c = connect(&d);
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
    let d = sshd("");
    let other = d.dir.path("other");
    keygen(&other, "ed25519", None, "");
    let key = ssh_blocking::PublicKey::from_openssh(
        &std::fs::read_to_string(other.with_extension("pub")).unwrap(),
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
    let e = env();
    let d = sshd("");
    let c = connect(&d);
    c.auth_key_file(USER, &e.ed25519, None).unwrap();
    let out = c.exec("echo before; kill -TERM $$").unwrap();
    assert_eq!(out.stdout, b"before\n");
    assert_eq!(out.status, None);
    assert_eq!(out.signal.map(|s| s.signal), Some("TERM".to_string()));
}
