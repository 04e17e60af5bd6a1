//! `direct-tcpip` and `direct-streamlocal@openssh.com` channels through
//! OpenSSH's sshd in every adapter: a byte stream to an echo server on
//! 127.0.0.1 (TCP) and on a Unix socket, both directions at once with equal
//! hashes, a refused destination as a typed error with sshd's reason, and
//! the session going on afterwards.

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
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

/// Serves one forwarded channel as an echo: reads until EOF, sends it all
/// back, then EOF and close.
fn echo_channel(ch: ssh_std::Channel) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match (&ch).read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => (&ch).write_all(&buf[..n]).unwrap(),
            }
        }
        ch.send_eof().unwrap();
        ch.close().unwrap();
    })
}

/// Writes `data` to `s`, half-closes, reads everything back.
fn through<S: Read + Write + Send + 'static>(
    mut s: S,
    shut: impl FnOnce(&S) + Send + 'static,
    data: Vec<u8>,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        // Write in pieces while reading, so neither side's buffers fill.
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        for piece in data.chunks(64 * 1024) {
            s.write_all(piece).unwrap();
            let m = s.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..m]);
        }
        shut(&s);
        s.read_to_end(&mut got).unwrap();
        got
    })
}

fn check_remote_forwards(c: &ssh_std::Client, dir: &Path) {
    // TCP, port 0: sshd picks the port and says which.
    let port = c.forward_tcpip("127.0.0.1", 0).unwrap();
    assert_ne!(port, 0);
    let data = pseudo_random_bytes(1 << 20, 31);
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let origin = s.local_addr().unwrap().port();
    let t = through(
        s,
        |s| s.shutdown(std::net::Shutdown::Write).unwrap(),
        data.clone(),
    );
    let (ch, kind) = c.accept_forwarded().unwrap();
    assert_eq!(
        kind,
        ssh_proto::ChannelKind::ForwardedTcpip {
            address: "127.0.0.1".into(),
            port: port.into(),
            originator: "127.0.0.1".into(),
            originator_port: origin.into(),
        }
    );
    let e = echo_channel(ch);
    assert_eq!(sha256_hex(&t.join().unwrap()), sha256_hex(&data));
    e.join().unwrap();

    // Cancelled: sshd closes the listener.
    c.cancel_forward_tcpip("127.0.0.1", port).unwrap();
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());

    // A privileged port for a user that is not root: refused, typed.
    let e = c.forward_tcpip("127.0.0.1", 1).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::GlobalRequest, "{e}");

    // A Unix socket the server listens on for us.
    let path = dir.join("fwd.sock");
    let _ = std::fs::remove_file(&path);
    c.forward_streamlocal(path.to_str().unwrap()).unwrap();
    let small = pseudo_random_bytes(200 << 10, 32);
    let s = std::os::unix::net::UnixStream::connect(&path).unwrap();
    let t = through(
        s,
        |s| s.shutdown(std::net::Shutdown::Write).unwrap(),
        small.clone(),
    );
    let (ch, kind) = c.accept_forwarded().unwrap();
    assert_eq!(
        kind,
        ssh_proto::ChannelKind::ForwardedStreamlocal {
            path: path.to_str().unwrap().into()
        }
    );
    let e = echo_channel(ch);
    assert_eq!(sha256_hex(&t.join().unwrap()), sha256_hex(&small));
    e.join().unwrap();
    c.cancel_forward_streamlocal(path.to_str().unwrap())
        .unwrap();

    assert_eq!(c.exec("echo ok").unwrap().stdout, b"ok\n");
}

#[test]
fn remote_forwards_through_sshd_blocking_and_mio() {
    let d = Sshd::start();
    let dir = TempDir::new("remote-forward");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
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
    check_remote_forwards(&c, dir.path());

    let c = mio_rt()
        .connect_with(("127.0.0.1", d.port), config, check(), Some(TIMEOUT))
        .unwrap();
    c.auth_publickey(USER, user_key()).unwrap();
    check_remote_forwards(&c, dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_forward_through_sshd_tokio() {
    let d = Sshd::start();
    let c = ssh_tokio::Client::connect_with(
        ("127.0.0.1", d.port),
        Arc::new(Config::default()),
        HostKeyCheck::KnownHostsFile(d.known_hosts.clone()),
        Some(TIMEOUT),
    )
    .await
    .unwrap();
    c.auth_publickey(USER, user_key()).await.unwrap();
    let port = c.forward_tcpip("127.0.0.1", 0).await.unwrap();
    let data = pseudo_random_bytes(1 << 20, 33);
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let t = through(
        s,
        |s| s.shutdown(std::net::Shutdown::Write).unwrap(),
        data.clone(),
    );
    let (ch, kind) = c.accept_forwarded().await.unwrap();
    assert!(
        matches!(kind, ssh_proto::ChannelKind::ForwardedTcpip { port: p, .. } if p == u32::from(port))
    );
    let (mut r, mut w) = (ch.clone(), ch);
    tokio::io::copy(&mut r, &mut w).await.unwrap();
    w.shutdown().await.unwrap();
    w.close().unwrap();
    let got = tokio::task::spawn_blocking(move || t.join().unwrap())
        .await
        .unwrap();
    assert_eq!(sha256_hex(&got), sha256_hex(&data));
    c.cancel_forward_tcpip("127.0.0.1", port).await.unwrap();
    let e = c.forward_tcpip("127.0.0.1", 1).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::GlobalRequest, "{e}");
}

/// Round trips of `n` concurrent connections to `connect()`, each with
/// its own data; all must come back whole.
fn many_round_trips<S: Read + Write + Send + 'static>(
    n: usize,
    size: usize,
    connect: impl Fn() -> S,
    shut: fn(&S),
) {
    let runs: Vec<_> = (0..n)
        .map(|i| {
            let data = pseudo_random_bytes(size, 100 + i as u64);
            let want = sha256_hex(&data);
            (through(connect(), shut, data), want)
        })
        .collect();
    for (t, want) in runs {
        assert_eq!(sha256_hex(&t.join().unwrap()), want);
    }
}

fn check_local_forwards(c: &ssh_std::Client, echo_port: u16, dir: &Path) {
    use ssh_std::ForwardTarget;
    let to_echo = ForwardTarget::Tcp {
        host: "127.0.0.1".into(),
        port: echo_port,
    };
    let fwd = c.forward_local("127.0.0.1:0", to_echo.clone()).unwrap();
    let addr = fwd.local_addr().unwrap();
    let tcp_shut: fn(&std::net::TcpStream) = |s| s.shutdown(std::net::Shutdown::Write).unwrap();

    // A stalled tunnel: 8 MiB sent, nothing read. The others go on.
    let mut stalled = std::net::TcpStream::connect(addr).unwrap();
    let stall = std::thread::spawn(move || {
        let junk = vec![7u8; 8 << 20];
        let _ = stalled.write_all(&junk);
        stalled
    });
    many_round_trips(
        40,
        256 << 10,
        || std::net::TcpStream::connect(addr).unwrap(),
        tcp_shut,
    );
    drop(stall);

    // A Unix socket listener to the same target.
    let path = dir.join("local.sock");
    let ufwd = c.forward_local_unix(&path, to_echo).unwrap();
    let unix_shut: fn(&std::os::unix::net::UnixStream) =
        |s| s.shutdown(std::net::Shutdown::Write).unwrap();
    many_round_trips(
        4,
        128 << 10,
        || std::os::unix::net::UnixStream::connect(&path).unwrap(),
        unix_shut,
    );
    ufwd.stop();
    assert!(!path.exists(), "the socket file goes with the forward");

    // A target the server cannot reach: that connection is closed, the
    // forward goes on.
    let dead = c
        .forward_local(
            "127.0.0.1:0",
            ForwardTarget::Tcp {
                host: "127.0.0.1".into(),
                port: closed_port(),
            },
        )
        .unwrap();
    let mut s = std::net::TcpStream::connect(dead.local_addr().unwrap()).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0);
    drop(dead);
    many_round_trips(
        2,
        64 << 10,
        || std::net::TcpStream::connect(addr).unwrap(),
        tcp_shut,
    );

    // Stopped: the port no longer accepts.
    fwd.stop();
    assert!(std::net::TcpStream::connect(addr).is_err());
    assert_eq!(c.exec("echo ok").unwrap().stdout, b"ok\n");
}

#[test]
fn local_forwards_through_sshd_blocking_and_mio() {
    let d = Sshd::start();
    let echo_port = tcp_echo();
    let dir = TempDir::new("local-forward");
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
    check_local_forwards(&c, echo_port, dir.path());

    let c = mio_rt()
        .connect_with(("127.0.0.1", d.port), config, check(), Some(TIMEOUT))
        .unwrap();
    c.auth_publickey(USER, user_key()).unwrap();
    check_local_forwards(&c, echo_port, dir.path());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_forwards_through_sshd_tokio() {
    let d = Sshd::start();
    let echo_port = tcp_echo();
    let dir = TempDir::new("local-forward-tokio");
    let c = ssh_tokio::Client::connect_with(
        ("127.0.0.1", d.port),
        Arc::new(Config::default()),
        HostKeyCheck::KnownHostsFile(d.known_hosts.clone()),
        Some(TIMEOUT),
    )
    .await
    .unwrap();
    c.auth_publickey(USER, user_key()).await.unwrap();
    let to_echo = ssh_tokio::ForwardTarget::Tcp {
        host: "127.0.0.1".into(),
        port: echo_port,
    };
    let fwd = c
        .forward_local("127.0.0.1:0", to_echo.clone())
        .await
        .unwrap();
    let addr = fwd.local_addr().unwrap();
    let path = dir.path().join("local.sock");
    let ufwd = c.forward_local_unix(&path, to_echo).unwrap();
    let p2 = path.clone();
    tokio::task::spawn_blocking(move || {
        let mut stalled = std::net::TcpStream::connect(addr).unwrap();
        let stall = std::thread::spawn(move || {
            let _ = stalled.write_all(&vec![7u8; 8 << 20]);
            stalled
        });
        many_round_trips(
            40,
            256 << 10,
            || std::net::TcpStream::connect(addr).unwrap(),
            |s| s.shutdown(std::net::Shutdown::Write).unwrap(),
        );
        many_round_trips(
            4,
            128 << 10,
            || std::os::unix::net::UnixStream::connect(&p2).unwrap(),
            |s| s.shutdown(std::net::Shutdown::Write).unwrap(),
        );
        drop(stall);
    })
    .await
    .unwrap();
    drop(ufwd);
    assert!(!path.exists());
    fwd.stop();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(std::net::TcpStream::connect(addr).is_err());
    assert_eq!(c.exec("echo ok").await.unwrap().stdout, b"ok\n");
}

/// `curl` through the SOCKS listener at `socks` in each SOCKS flavour,
/// then a malformed handshake, then curl once more.
fn curl_through_socks(socks: std::net::SocketAddr, http: u16) {
    let curl = require_peer("/usr/bin/curl");
    let url = format!("http://127.0.0.1:{http}/");
    let run = |flag: &str| {
        let out = std::process::Command::new(&curl)
            .args(["-s", "--max-time", "20", flag, &socks.to_string(), &url])
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    for flag in ["--socks5-hostname", "--socks5", "--socks4a", "--socks4"] {
        assert_eq!(run(flag), (Some(0), "hello".to_string()), "{flag}");
    }
    // Garbage, and a SOCKS5 BIND: answered and closed, nothing else.
    let mut s = std::net::TcpStream::connect(socks).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert!(got.is_empty(), "{got:?}");
    let mut s = std::net::TcpStream::connect(socks).unwrap();
    s.write_all(&[5, 1, 0]).unwrap();
    let mut r = [0u8; 2];
    s.read_exact(&mut r).unwrap();
    assert_eq!(r, [5, 0]);
    s.write_all(&[5, 2, 0, 1, 127, 0, 0, 1, 0, 80]).unwrap();
    let mut r = Vec::new();
    let _ = s.read_to_end(&mut r);
    assert_eq!(r.get(1), Some(&7), "command not supported");
    assert_eq!(run("--socks5-hostname"), (Some(0), "hello".to_string()));
}

#[test]
fn dynamic_forward_through_sshd_blocking_and_mio() {
    let d = Sshd::start();
    let http = http_hello();
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
    let fwd = c
        .forward_local("127.0.0.1:0", ssh_std::ForwardTarget::Socks)
        .unwrap();
    curl_through_socks(fwd.local_addr().unwrap(), http);

    let c = mio_rt()
        .connect_with(("127.0.0.1", d.port), config, check(), Some(TIMEOUT))
        .unwrap();
    c.auth_publickey(USER, user_key()).unwrap();
    let fwd = c
        .forward_local("127.0.0.1:0", ssh_std::ForwardTarget::Socks)
        .unwrap();
    curl_through_socks(fwd.local_addr().unwrap(), http);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_forward_through_sshd_tokio() {
    let d = Sshd::start();
    let http = http_hello();
    let c = ssh_tokio::Client::connect_with(
        ("127.0.0.1", d.port),
        Arc::new(Config::default()),
        HostKeyCheck::KnownHostsFile(d.known_hosts.clone()),
        Some(TIMEOUT),
    )
    .await
    .unwrap();
    c.auth_publickey(USER, user_key()).await.unwrap();
    let fwd = c
        .forward_local("127.0.0.1:0", ssh_tokio::ForwardTarget::Socks)
        .await
        .unwrap();
    let addr = fwd.local_addr().unwrap();
    tokio::task::spawn_blocking(move || curl_through_socks(addr, http))
        .await
        .unwrap();
}
