//! `direct-tcpip` and `direct-streamlocal@openssh.com` channels through
//! OpenSSH's sshd in every adapter: a byte stream to an echo server on
//! 127.0.0.1 (TCP) and on a Unix socket, both directions at once with equal
//! hashes, a refused destination as a typed error with sshd's reason, and
//! the session going on afterwards.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::*;
use ssh_blocking::{Config, ErrorKind, HostKeyCheck, PrivateKey};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TIMEOUT: Duration = Duration::from_secs(30);

fn user_key() -> Arc<PrivateKey> {
    Arc::new(ssh_std::load_private_key(&keys().ed25519, None).expect("user key"))
}

fn mio_rt() -> &'static ssh_mio::Runtime {
    static RT: OnceLock<ssh_mio::Runtime> = OnceLock::new();
    RT.get_or_init(|| ssh_mio::Runtime::new().expect("mio runtime"))
}

/// Echoes every connection (each on a thread) until its peer's EOF.
fn echo<S: Read + Write + Send + 'static>(mut s: S) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    });
}

/// A TCP echo server on 127.0.0.1; its port.
fn tcp_echo() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            echo(s);
        }
    });
    port
}

/// A Unix socket echo server the test user (sshd connects as them) may
/// reach; its path.
fn unix_echo(dir: &Path) -> PathBuf {
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.join("echo.sock");
    let l = UnixListener::bind(&path).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            echo(s);
        }
    });
    path
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Sends `data` through a blocking channel while reading it back.
fn round_trip(ch: &ssh_std::Channel, data: &[u8]) -> Vec<u8> {
    std::thread::scope(|s| {
        let reader = ch.clone();
        let r = s.spawn(move || {
            let mut got = Vec::new();
            (&reader).read_to_end(&mut got).unwrap();
            got
        });
        (&*ch).write_all(data).unwrap();
        ch.send_eof().unwrap();
        r.join().unwrap()
    })
}

fn check_std_client(c: &ssh_std::Client, echo_port: u16, sock: &Path) {
    let data = pseudo_random_bytes(3 << 20, 21);
    let ch = c
        .direct_tcpip("127.0.0.1", echo_port, ("127.0.0.1", 50000))
        .unwrap();
    assert_eq!(sha256_hex(&round_trip(&ch, &data)), sha256_hex(&data));
    drop(ch);

    let small = pseudo_random_bytes(300 << 10, 22);
    let ch = c.direct_streamlocal(sock.to_str().unwrap()).unwrap();
    assert_eq!(sha256_hex(&round_trip(&ch, &small)), sha256_hex(&small));
    drop(ch);

    // sshd: "connect failed" (reason 2) with the socket's error.
    let e = c
        .direct_tcpip("127.0.0.1", closed_port(), ("127.0.0.1", 0))
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ChannelOpen, "{e}");
    assert_eq!(e.code(), Some(2), "{e}");
    assert!(e.to_string().contains("Connection refused"), "{e}");
    let e = c.direct_streamlocal("/nonexistent/socket").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ChannelOpen, "{e}");

    // The connection goes on.
    assert_eq!(c.exec("echo ok").unwrap().stdout, b"ok\n");
}

#[test]
fn direct_channels_through_sshd_blocking_and_mio() {
    let d = Sshd::start();
    let echo_port = tcp_echo();
    let dir = TempDir::new("direct-streamlocal");
    let sock = unix_echo(dir.path());
    let check = || HostKeyCheck::KnownHostsFile(d.known_hosts.clone());
    let config = Arc::new(Config::default());

    let c = ssh_blocking::Client::connect_with(
        ("127.0.0.1", d.port),
        config.clone(),
        check(),
        Some(TIMEOUT),
    )
    .unwrap();
    c.auth_publickey(USER, user_key()).unwrap();
    check_std_client(&c, echo_port, &sock);

    let c = mio_rt()
        .connect_with(("127.0.0.1", d.port), config, check(), Some(TIMEOUT))
        .unwrap();
    c.auth_publickey(USER, user_key()).unwrap();
    check_std_client(&c, echo_port, &sock);
}

/// Sends `data` through a tokio channel while a task reads it back.
async fn round_trip_async(ch: ssh_tokio::Channel, data: &[u8]) -> Vec<u8> {
    let mut reader = ch.clone();
    let r = tokio::spawn(async move {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.unwrap();
        got
    });
    let mut w = ch;
    w.write_all(data).await.unwrap();
    w.shutdown().await.unwrap();
    r.await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_channels_through_sshd_tokio() {
    let d = Sshd::start();
    let echo_port = tcp_echo();
    let dir = TempDir::new("direct-streamlocal-tokio");
    let sock = unix_echo(dir.path());
    let c = ssh_tokio::Client::connect_with(
        ("127.0.0.1", d.port),
        Arc::new(Config::default()),
        HostKeyCheck::KnownHostsFile(d.known_hosts.clone()),
        Some(TIMEOUT),
    )
    .await
    .unwrap();
    c.auth_publickey(USER, user_key()).await.unwrap();

    let data = pseudo_random_bytes(3 << 20, 23);
    let ch = c
        .direct_tcpip("127.0.0.1", echo_port, ("127.0.0.1", 50000))
        .await
        .unwrap();
    assert_eq!(
        sha256_hex(&round_trip_async(ch, &data).await),
        sha256_hex(&data)
    );
    let small = pseudo_random_bytes(300 << 10, 24);
    let ch = c.direct_streamlocal(sock.to_str().unwrap()).await.unwrap();
    assert_eq!(
        sha256_hex(&round_trip_async(ch, &small).await),
        sha256_hex(&small)
    );
    let e = c
        .direct_tcpip("127.0.0.1", closed_port(), ("127.0.0.1", 0))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.code()),
        (ErrorKind::ChannelOpen, Some(2)),
        "{e}"
    );
    assert_eq!(c.exec("echo ok").await.unwrap().stdout, b"ok\n");
}
