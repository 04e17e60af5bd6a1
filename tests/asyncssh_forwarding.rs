//! Our client's port forwarding through AsyncSSH's server
//! (`tests/peers/asyncssh_server.py --allow-forwarding`), with the blocking,
//! mio and tokio adapters: a `direct-tcpip` channel to an echo server on
//! 127.0.0.1 that AsyncSSH connects, both directions at once with equal
//! hashes and the originator we name arriving as sent; a closed
//! destination as a typed open failure (code 2); `tcpip-forward` with port
//! 0 and the port AsyncSSH picked, a connection to it accepted as a
//! `forwarded-tcpip` channel naming the listener and the originator;
//! `cancel-tcpip-forward` closing the port. Without the flag (AsyncSSH's
//! default) the open is refused (AsyncSSH says code 2, "Connection
//! refused", not 1 as sshd) and the request with a typed error, and the
//! connection goes on.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

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

/// Copies what `s` reads back to it until EOF, then half-closes with
/// `shut`.
fn echo<S: Read + Write + Send + 'static>(mut s: S, shut: impl FnOnce(&S) + Send + 'static) {
    std::thread::spawn(move || {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            }
        }
        shut(&s);
    });
}

/// A TCP echo server on 127.0.0.1 for the rest of the test process; its
/// port.
fn tcp_echo() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            echo(s, |s| {
                let _ = s.shutdown(Shutdown::Write);
            });
        }
    });
    port
}

/// A port nothing listens on.
fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Writes `data` to `w` on another thread (then `eof`) while reading `r`
/// to its EOF here.
fn round_trip<R: Read, W: Write + Send>(
    mut r: R,
    mut w: W,
    eof: impl FnOnce(&mut W) + Send,
    data: &[u8],
) -> Vec<u8> {
    std::thread::scope(|s| {
        let writer = s.spawn(move || {
            w.write_all(data).unwrap();
            eof(&mut w);
        });
        let mut got = Vec::new();
        r.read_to_end(&mut got).unwrap();
        writer.join().unwrap();
        got
    })
}

fn connect(py: &PyServer, mio: bool) -> ssh_std::Client {
    let check = HostKeyCheck::KnownHostsFile(py.known_hosts.clone());
    let config = Arc::new(Config::default());
    let addr = ("127.0.0.1", py.port);
    let c = if mio {
        mio_rt().connect_with(addr, config, check, Some(TIMEOUT))
    } else {
        ssh_blocking::Client::connect_with(addr, config, check, Some(TIMEOUT))
    }
    .expect("connect to the AsyncSSH server");
    c.auth_publickey(USER, user_key()).expect("publickey auth");
    c
}

/// The forwards AsyncSSH allows with `--allow-forwarding`.
fn check_forwards(c: &ssh_std::Client, py: &PyServer, echo_port: u16, seed: u64) {
    // direct-tcpip: AsyncSSH connects to the echo server.
    let data = pseudo_random_bytes(1 << 20, seed);
    let ch = c
        .direct_tcpip("127.0.0.1", echo_port, ("127.0.0.1", 50000))
        .expect("direct-tcpip to the echo server");
    let got = round_trip(&ch, &ch, |ch| ch.send_eof().unwrap(), &data);
    assert_eq!(sha256_hex(&got), sha256_hex(&data), "direct-tcpip echo");
    drop(ch);
    let log = py.daemon.log();
    let line = format!("direct-tcpip to 127.0.0.1:{echo_port} from 127.0.0.1:50000");
    assert!(log.contains(&line), "AsyncSSH did not log {line:?}:\n{log}");

    // A closed destination: AsyncSSH's connect fails, code 2.
    let e = c
        .direct_tcpip("127.0.0.1", closed_port(), ("127.0.0.1", 0))
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.code()),
        (ErrorKind::ChannelOpen, Some(2)),
        "{e}"
    );

    // tcpip-forward on port 0: AsyncSSH picks the port and says which.
    let port = c.forward_tcpip("127.0.0.1", 0).expect("tcpip-forward");
    assert_ne!(port, 0);
    let small = pseudo_random_bytes(256 << 10, seed + 1);
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the forwarded port");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let origin = s.local_addr().unwrap().port();
    let (ch, kind) = c.accept_forwarded().expect("accept the forwarded channel");
    assert_eq!(
        kind,
        ssh_proto::ChannelKind::ForwardedTcpip {
            address: "127.0.0.1".into(),
            port: port.into(),
            originator: "127.0.0.1".into(),
            originator_port: origin.into(),
        }
    );
    echo(ch, |ch| {
        let _ = ch.send_eof();
    });
    let got = round_trip(
        s.try_clone().unwrap(),
        s,
        |s| s.shutdown(Shutdown::Write).unwrap(),
        &small,
    );
    assert_eq!(sha256_hex(&got), sha256_hex(&small), "forwarded-tcpip echo");

    // Cancelled: the port stops accepting (AsyncSSH closes its listener
    // as it replies; allow it a moment).
    c.cancel_forward_tcpip("127.0.0.1", port)
        .expect("cancel-tcpip-forward");
    wait_closed(port);

    assert_eq!(c.exec("echo ok").unwrap().stdout, b"ok\n");
}

/// AsyncSSH's default server refuses both kinds of forward (the open
/// with OPEN_CONNECT_FAILED and "Connection refused", as AsyncSSH's
/// `SSHServer.connection_requested` refusal does).
fn check_refusals(c: &ssh_std::Client, echo_port: u16) {
    let e = c
        .direct_tcpip("127.0.0.1", echo_port, ("127.0.0.1", 0))
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.code()),
        (ErrorKind::ChannelOpen, Some(2)),
        "{e}"
    );
    assert!(e.to_string().contains("Connection refused"), "{e}");
    let e = c.forward_tcpip("127.0.0.1", 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::GlobalRequest, "{e}");
    assert_eq!(c.exec("echo ok").unwrap().stdout, b"ok\n");
}

#[test]
fn forwarding_through_asyncssh_blocking_and_mio() {
    let py = PyServer::start_with(PyKind::AsyncSsh, &["--allow-forwarding"]);
    let echo_port = tcp_echo();
    check_forwards(&connect(&py, false), &py, echo_port, 41);
    check_forwards(&connect(&py, true), &py, echo_port, 43);
}

#[test]
fn forwarding_refused_by_default_asyncssh() {
    let py = PyServer::asyncssh();
    let echo_port = tcp_echo();
    check_refusals(&connect(&py, false), echo_port);
    check_refusals(&connect(&py, true), echo_port);
}

/// Waits (up to 5 s) until 127.0.0.1:`port` refuses connections.
fn wait_closed(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "port {port} still accepts 5 s after the cancel"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_through_asyncssh_tokio() {
    let py = PyServer::start_with(PyKind::AsyncSsh, &["--allow-forwarding"]);
    let echo_port = tcp_echo();
    let c = ssh_tokio::Client::connect_with(
        ("127.0.0.1", py.port),
        Arc::new(Config::default()),
        HostKeyCheck::KnownHostsFile(py.known_hosts.clone()),
        Some(TIMEOUT),
    )
    .await
    .expect("connect to the AsyncSSH server");
    c.auth_publickey(USER, user_key())
        .await
        .expect("publickey auth");

    // direct-tcpip, both directions at once.
    let data = pseudo_random_bytes(1 << 20, 47);
    let ch = c
        .direct_tcpip("127.0.0.1", echo_port, ("127.0.0.1", 50001))
        .await
        .expect("direct-tcpip to the echo server");
    let mut reader = ch.clone();
    let r = tokio::spawn(async move {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.unwrap();
        got
    });
    let mut w = ch;
    w.write_all(&data).await.unwrap();
    w.shutdown().await.unwrap();
    assert_eq!(sha256_hex(&r.await.unwrap()), sha256_hex(&data));
    let e = c
        .direct_tcpip("127.0.0.1", closed_port(), ("127.0.0.1", 0))
        .await
        .unwrap_err();
    assert_eq!(
        (e.kind(), e.code()),
        (ErrorKind::ChannelOpen, Some(2)),
        "{e}"
    );

    // tcpip-forward on port 0, one connection echoed by us.
    let port = c
        .forward_tcpip("127.0.0.1", 0)
        .await
        .expect("tcpip-forward");
    assert_ne!(port, 0);
    let small = pseudo_random_bytes(256 << 10, 48);
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the forwarded port");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    let origin = s.local_addr().unwrap().port();
    let sent = small.clone();
    let t = std::thread::spawn(move || {
        round_trip(
            s.try_clone().unwrap(),
            s,
            |s| s.shutdown(Shutdown::Write).unwrap(),
            &sent,
        )
    });
    let (ch, kind) = c
        .accept_forwarded()
        .await
        .expect("accept the forwarded channel");
    assert_eq!(
        kind,
        ssh_proto::ChannelKind::ForwardedTcpip {
            address: "127.0.0.1".into(),
            port: port.into(),
            originator: "127.0.0.1".into(),
            originator_port: origin.into(),
        }
    );
    let (mut r, mut w) = (ch.clone(), ch);
    tokio::io::copy(&mut r, &mut w).await.unwrap();
    w.shutdown().await.unwrap();
    let got = tokio::task::spawn_blocking(move || t.join().unwrap())
        .await
        .unwrap();
    assert_eq!(sha256_hex(&got), sha256_hex(&small));
    c.cancel_forward_tcpip("127.0.0.1", port)
        .await
        .expect("cancel-tcpip-forward");
    tokio::task::spawn_blocking(move || wait_closed(port))
        .await
        .unwrap();
    assert_eq!(c.exec("echo ok").await.unwrap().stdout, b"ok\n");
}
