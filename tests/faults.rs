//! Faults: the connection dies under a client in the middle of key
//! exchange, authentication, a transfer, or an SFTP put. Each side reports
//! a clear error within its timeout and never hangs.
//!
//! A proxy on 127.0.0.1 forwards between our blocking client and our
//! blocking server and cuts both directions once a byte budget is spent.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use ssh_blocking::proto::sftp::SftpServerConfig;
use ssh_blocking::proto::{ChannelId, ChannelRequest, Config};
use ssh_blocking::sftp_server::{serve, LocalFs};
use ssh_blocking::{
    Auth, Channel, Client, Handler, HostKeyCheck, PrivateKey, PublicKey, Server, ServerHandle,
    ShutdownHandle,
};

struct Echo {
    chans: HashMap<ChannelId, Channel>,
    root: std::path::PathBuf,
}

impl Handler for Echo {
    fn auth_password(&mut self, _u: &str, p: &str) -> Auth {
        if p == "pw" {
            Auth::Accept
        } else {
            Auth::Reject
        }
    }
    fn channel_opened(&mut self, channel: Channel, _kind: &str) {
        self.chans.insert(channel.id(), channel);
    }
    fn channel_request(&mut self, id: ChannelId, req: ChannelRequest) -> bool {
        let Some(ch) = self.chans.remove(&id) else {
            return false;
        };
        match req {
            ChannelRequest::Exec { .. } => {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut &ch, &mut &ch);
                    let _ = ch.close();
                });
                true
            }
            ChannelRequest::Subsystem { name } if name == "sftp" => {
                let Ok(fs) = LocalFs::new(&self.root, None) else {
                    return false;
                };
                std::thread::spawn(move || {
                    let _ = serve(&ch, &ch, fs, SftpServerConfig::default());
                    let _ = ch.close();
                });
                true
            }
            _ => false,
        }
    }
}

struct Fixture {
    server_port: u16,
    host_key: PublicKey,
    stop: ShutdownHandle,
    _root: TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.stop.shutdown();
    }
}

fn start_server() -> Fixture {
    let root = TempDir::new("faults-root");
    let host = PrivateKey::generate_ed25519(&mut *ssh_blocking::os_rng());
    let host_key = host.public_key();
    let mut config = Config::default();
    config.transport.host_keys.push(Arc::new(host));
    config.auth_methods = vec!["password".into()];
    let server = Server::bind("127.0.0.1:0", Arc::new(config)).unwrap();
    let server_port = server.local_addr().port();
    let stop = server.shutdown_handle();
    let r = root.path().to_path_buf();
    std::thread::spawn(move || {
        let _ = server.run(move |_h: &ServerHandle| Echo {
            chans: HashMap::new(),
            root: r.clone(),
        });
    });
    Fixture {
        server_port,
        host_key,
        stop,
        _root: root,
    }
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

fn connect(fx: &Fixture, port: u16) -> Result<Client, ssh_blocking::Error> {
    Client::connect_with(
        ("127.0.0.1", port),
        Arc::new(Config::default()),
        HostKeyCheck::Exact(fx.host_key.clone()),
        Some(Duration::from_secs(10)),
    )
}

#[test]
fn cut_during_key_exchange_fails_the_handshake_promptly() {
    let fx = start_server();
    // Enough for the version lines and part of the KEXINITs.
    let port = cutting_proxy(fx.server_port, 900);
    let t0 = Instant::now();
    let err = connect(&fx, port).err().expect("the handshake must fail");
    assert!(t0.elapsed() < LIMIT, "took {:?}", t0.elapsed());
    let s = err.to_string();
    assert!(
        s.contains("closed") || s.contains("i/o"),
        "unclear error: {s}"
    );
    // The server still serves others.
    let c = connect(&fx, fx.server_port).unwrap();
    c.auth_password("u", "pw").unwrap();
}

#[test]
fn cut_during_authentication_is_an_error_not_a_hang() {
    let fx = start_server();
    // Measure how many bytes a handshake takes, then cut just after it,
    // inside the password request.
    let big = 1 << 30;
    let (probe, left) = cutting_proxy_counted(fx.server_port, big);
    let c = connect(&fx, probe).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let handshake = big - *left.lock().unwrap();
    drop(c);
    let port = cutting_proxy(fx.server_port, handshake + 40);
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
    let port = cutting_proxy(fx.server_port, 3 << 20);
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
    let port = cutting_proxy(fx.server_port, 4 << 20);
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
