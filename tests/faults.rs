//! Faults: the connection dies under a client in the middle of key
//! exchange, authentication, a transfer, or an SFTP put. Each side reports
//! a clear error within its timeout and never hangs.
//!
//! A proxy on 127.0.0.1 forwards between our blocking client and our
//! blocking server and cuts both directions once a byte budget is spent.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::cat_server::{start_cat_server, CatServer};
use common::*;
use ssh_blocking::proto::Config;
use ssh_blocking::{Client, HostKeyCheck};

fn start_server() -> CatServer {
    start_cat_server(|_| {})
}

/// A one-connection proxy to `port` that cuts everything once `budget`
/// bytes (both directions together) have passed. Returns its port.
fn cutting_proxy(port: u16, budget: usize) -> u16 {
    cutting_proxy_counted(port, budget).0
}

/// The same, with the budget left (to measure what passed).
fn cutting_proxy_counted(port: u16, budget: usize) -> (u16, Arc<Mutex<usize>>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let p = l.local_addr().unwrap().port();
    let left = Arc::new(Mutex::new(budget));
    let left2 = left.clone();
    std::thread::spawn(move || {
        let left = left2;
        let Ok((client, _)) = l.accept() else { return };
        let Ok(server) = TcpStream::connect(("127.0.0.1", port)) else {
            return;
        };
        let pipe = |mut from: TcpStream, mut to: TcpStream, left: Arc<Mutex<usize>>| {
            std::thread::spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    let n = match from.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    let pass = {
                        let mut l = left.lock().unwrap();
                        let p = n.min(*l);
                        *l -= p;
                        p
                    };
                    if pass > 0 && to.write_all(&buf[..pass]).is_err() {
                        break;
                    }
                    if pass < n {
                        break;
                    }
                }
                // The cut: both sockets closed in both directions.
                let _ = from.shutdown(Shutdown::Both);
                let _ = to.shutdown(Shutdown::Both);
            })
        };
        let a = pipe(
            client.try_clone().unwrap(),
            server.try_clone().unwrap(),
            left.clone(),
        );
        let b = pipe(server, client, left);
        let _ = a.join();
        let _ = b.join();
    });
    (p, left)
}

const LIMIT: Duration = Duration::from_secs(20);

fn connect(fx: &CatServer, port: u16) -> Result<Client, ssh_blocking::Error> {
    Client::connect_with(
        ("127.0.0.1", port),
        Arc::new(Config::default()),
        HostKeyCheck::Exact(fx.host.clone()),
        Some(Duration::from_secs(10)),
    )
}

#[test]
fn cut_during_key_exchange_fails_the_handshake_promptly() {
    let fx = start_server();
    // Enough for the version lines and part of the KEXINITs.
    let port = cutting_proxy(fx.port, 900);
    let t0 = Instant::now();
    let err = connect(&fx, port).err().expect("the handshake must fail");
    assert!(t0.elapsed() < LIMIT, "took {:?}", t0.elapsed());
    let s = err.to_string();
    assert!(
        s.contains("closed") || s.contains("i/o"),
        "unclear error: {s}"
    );
    // The server still serves others.
    let c = connect(&fx, fx.port).unwrap();
    c.auth_password("u", "pw").unwrap();
}

#[test]
fn cut_during_authentication_is_an_error_not_a_hang() {
    let fx = start_server();
    // Measure how many bytes a handshake takes, then cut just after it,
    // inside the password request.
    let big = 1 << 30;
    let (probe, left) = cutting_proxy_counted(fx.port, big);
    let c = connect(&fx, probe).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let handshake = big - *left.lock().unwrap();
    drop(c);
    let port = cutting_proxy(fx.port, handshake + 40);
    let t0 = Instant::now();
    let c = connect(&fx, port).expect("the handshake fits in the budget");
    let err = c
        .auth_password("u", "pw")
        .expect_err("authentication through a cut connection must fail");
    assert!(t0.elapsed() < LIMIT, "took {:?}", t0.elapsed());
    assert!(!err.to_string().is_empty());
}

#[test]
fn cut_during_a_transfer_reports_an_error_on_both_halves() {
    let fx = start_server();
    let port = cutting_proxy(fx.port, 3 << 20);
    let c = connect(&fx, port).unwrap();
    c.auth_password("u", "pw").unwrap();
    let ch = c.channel_session().unwrap();
    ch.exec("cat").unwrap();
    let t0 = Instant::now();
    let data = pseudo_random_bytes(16 << 20, 9);
    let (w, r) = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut got = Vec::new();
            let r = (&ch).read_to_end(&mut got);
            (r, got.len())
        });
        let w = (&ch).write_all(&data);
        (w, reader.join().unwrap())
    });
    assert!(t0.elapsed() < LIMIT, "took {:?}", t0.elapsed());
    assert!(
        w.is_err(),
        "writing 16 MiB through a cut connection succeeded"
    );
    // The reader ends (error or EOF) with less than everything.
    assert!(
        r.1 < data.len(),
        "all data arrived through a cut connection"
    );
    assert!(c.exec("true").is_err());
}

#[test]
fn cut_during_an_sftp_put_fails_the_put() {
    let fx = start_server();
    let port = cutting_proxy(fx.port, 4 << 20);
    let c = connect(&fx, port).unwrap();
    c.auth_password("u", "pw").unwrap();
    let sftp = c.sftp().unwrap();
    let local = TempDir::new("faults-put");
    let src = local.join("big.bin");
    std::fs::write(&src, pseudo_random_bytes(32 << 20, 3)).unwrap();
    let t0 = Instant::now();
    let r = sftp.put(&src, "/big.bin", None);
    assert!(t0.elapsed() < LIMIT, "took {:?}", t0.elapsed());
    let err = r.expect_err("a put through a cut connection must fail");
    assert!(!err.to_string().is_empty());
    // And the get of a file is reported the same way.
    assert!(sftp.stat("/big.bin").is_err());
}
