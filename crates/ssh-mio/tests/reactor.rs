//! The mio reactor in one process over loopback: a server and client
//! connections on reactor threads, exec and 64 MiB through `cat` with equal
//! hashes, hundreds of idle connections held with no thread per connection,
//! and a reactor embedded in a caller's own mio loop.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use ssh_mio::{Auth, Channel, Client, Config, Handler, HostKeyCheck, Reactor, Runtime, Server};
use ssh_proto::{ChannelRequest, PrivateKey, Stream};

/// Password `secret` for `alice`; `exec cat` echoes on a thread of its own,
/// any other command prints and exits 7. Decisions never block.
struct Echo;

impl Handler for Echo {
    fn auth_password(&mut self, user: &str, password: &str) -> Auth {
        if user == "alice" && password == "secret" {
            Auth::Accept
        } else {
            Auth::Reject
        }
    }
    fn channel_request(&mut self, channel: &Channel, request: ChannelRequest) -> bool {
        let ChannelRequest::Exec { command } = request else {
            return false;
        };
        assert!(command != b"panic", "a handler bug");
        let ch = channel.clone();
        std::thread::spawn(move || {
            if command == b"cat" {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = (&ch).read(&mut buf).unwrap_or(0);
                    if n == 0 || (&ch).write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                let _ = ch.send_exit_status(0);
            } else {
                let _ = (&ch).write_all(b"out\n");
                let _ = ch.write_stderr(b"err\n");
                let _ = ch.send_exit_status(7);
            }
            let _ = ch.send_eof();
            let _ = ch.close();
        });
        true
    }
}

fn server_config() -> Arc<Config> {
    server_config_with(|_| {})
}

fn server_config_with(tune: impl FnOnce(&mut Config)) -> Arc<Config> {
    let mut config = Config::default();
    let key = PrivateKey::generate_ed25519(&mut *ssh_proto::os_rng());
    config.transport.host_keys.push(Arc::new(key));
    config.auth_methods = vec!["password".into()];
    tune(&mut config);
    Arc::new(config)
}

fn start_server(max_startups: usize) -> (std::net::SocketAddr, ssh_mio::ReactorHandle) {
    let n = u32::try_from(max_startups).unwrap();
    let config = server_config_with(|c| {
        c.admission = ssh_proto::MaxStartups::hard(n).unwrap().into();
    });
    let server = Server::bind("127.0.0.1:0", config).unwrap();
    let addr = server.local_addr();
    let stop = server.shutdown_handle();
    std::thread::spawn(move || server.run(|_| Echo));
    (addr, stop)
}

fn connect(rt: &Runtime, addr: std::net::SocketAddr) -> Client {
    let c = connect_unauthenticated(rt, addr, 20).unwrap();
    c.auth_password("alice", "secret").unwrap();
    c
}

/// A connection to `addr` accepting any host key, not yet authenticated.
fn connect_unauthenticated(
    rt: &Runtime,
    addr: std::net::SocketAddr,
    timeout_secs: u64,
) -> Result<Client, ssh_proto::Error> {
    rt.connect_with(
        addr,
        Arc::new(Config::default()),
        HostKeyCheck::InsecureAcceptAny,
        Some(Duration::from_secs(timeout_secs)),
    )
}

fn threads() -> usize {
    std::fs::read_dir("/proc/self/task").unwrap().count()
}

#[test]
fn exec_and_cat_64_mib() {
    let (addr, stop) = start_server(10);
    let rt = Runtime::new().unwrap();
    let c = connect(&rt, addr);
    let out = c.exec("hello").unwrap();
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice(), out.status),
        (&b"out\n"[..], &b"err\n"[..], Some(7))
    );

    let ch = Arc::new(c.channel_session().unwrap());
    ch.exec("cat").unwrap();
    let total = 64usize << 20;
    let data: Vec<u8> = (0..total).map(|i| (i * 31 % 251) as u8).collect();
    let want = Sha256::digest(&data);
    let w = ch.clone();
    let writer = std::thread::spawn(move || {
        for chunk in data.chunks(256 * 1024) {
            (&*w).write_all(chunk).unwrap();
        }
        w.send_eof().unwrap();
    });
    let mut h = Sha256::new();
    let mut got = 0;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = ch.read_stream(Stream::Stdout, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        got += n;
    }
    writer.join().unwrap();
    assert_eq!(got, total);
    assert_eq!(h.finalize(), want);
    assert_eq!(ch.exit_status().unwrap(), Some(0));
    stop.shutdown();
}

#[test]
fn hundreds_of_connections_on_one_thread() {
    let (addr, stop) = start_server(1000);
    let rt = Runtime::new().unwrap();
    // Warm up (first connection) so lazily made threads are counted.
    let first = connect(&rt, addr);
    let before = threads();
    let mut clients = vec![first];
    for _ in 0..299 {
        clients.push(connect(&rt, addr));
    }
    // 300 client and 300 server connections, all authenticated, held by
    // two reactor threads: no thread was added per connection (threads of
    // tests running alongside may only come and go by a few).
    let after = threads();
    assert!(
        after <= before + 4,
        "threads grew with connections: {before} before, {after} with 300 connections"
    );
    // Every one still answers.
    for c in clients.iter().step_by(37) {
        assert_eq!(c.exec("x").unwrap().status, Some(7));
    }
    drop(clients);
    stop.shutdown();
}

#[test]
fn wrong_password_and_max_startups() {
    let (addr, stop) = start_server(2);
    let rt = Runtime::new().unwrap();
    let c = connect_unauthenticated(&rt, addr, 10).unwrap();
    let e = c.auth_password("alice", "wrong").unwrap_err();
    assert_eq!(e.kind(), ssh_proto::ErrorKind::AuthFailed, "{e}");
    // c and a second unauthenticated connection fill MaxStartups=2; a
    // third is closed right after accept.
    let _d = connect_unauthenticated(&rt, addr, 10).unwrap();
    let third = connect_unauthenticated(&rt, addr, 10);
    assert!(third.is_err(), "a third unauthenticated connection got in");
    stop.shutdown();
}

/// Echo, but the password check of user "slow" takes a second (a slow
/// hash, a database): a decision that blocks.
struct SlowAuth(Echo);

impl Handler for SlowAuth {
    fn auth_password(&mut self, user: &str, password: &str) -> Auth {
        if user == "slow" {
            std::thread::sleep(Duration::from_secs(1));
            return if password == "secret" {
                Auth::Accept
            } else {
                Auth::Reject
            };
        }
        self.0.auth_password(user, password)
    }
    fn channel_request(&mut self, channel: &Channel, request: ChannelRequest) -> bool {
        self.0.channel_request(channel, request)
    }
}

/// A handler decision that blocks for a second does not run on the
/// reactor's thread: another connection's handshake, auth and exec on the
/// same server complete meanwhile.
#[test]
fn a_slow_decision_does_not_stall_other_connections() {
    let server = Server::bind("127.0.0.1:0", server_config()).unwrap();
    let addr = server.local_addr();
    let stop = server.shutdown_handle();
    std::thread::spawn(move || server.run(|_| SlowAuth(Echo)));
    let rt = Runtime::new().unwrap();
    let slow_client = connect_unauthenticated(&rt, addr, 20).unwrap();
    let t0 = Instant::now();
    let slow = std::thread::spawn(move || {
        slow_client.auth_password("slow", "secret").unwrap();
        (Instant::now(), slow_client)
    });
    std::thread::sleep(Duration::from_millis(100));
    let c = connect(&rt, addr);
    assert_eq!(c.exec("quick").unwrap().status, Some(7));
    let fast_done = Instant::now();
    let (slow_done, _slow_client) = slow.join().unwrap();
    assert!(slow_done - t0 >= Duration::from_secs(1));
    assert!(
        fast_done < slow_done && fast_done - t0 < Duration::from_millis(700),
        "the other connection waited for the slow decision ({:?} vs {:?})",
        fast_done - t0,
        slow_done - t0
    );
    stop.shutdown();
}

/// A caller's own mio loop, with a token of its own (a UDP socket), hosts
/// a reactor serving SSH; clients on another reactor talk to it.
#[test]
fn embedded_in_a_callers_mio_loop() {
    use mio::{Events, Interest, Poll, Token};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let d2 = done.clone();
    let udp_addr = Arc::new(std::sync::Mutex::new(None));
    let u2 = udp_addr.clone();
    let caller = std::thread::spawn(move || {
        let mut poll = Poll::new().unwrap();
        // The caller's own source, under the caller's own token.
        let mut udp = mio::net::UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        *u2.lock().unwrap() = Some(udp.local_addr().unwrap());
        poll.registry()
            .register(&mut udp, Token(0), Interest::READABLE)
            .unwrap();
        let mut reactor = Reactor::embedded(poll.registry(), Token(1000)).unwrap();
        reactor.listen(listener, server_config(), |_| Echo).unwrap();
        let mut events = Events::with_capacity(256);
        let mut pings = 0;
        while !d2.load(std::sync::atomic::Ordering::SeqCst) {
            let t = reactor
                .next_timeout(Instant::now())
                .map_or(Duration::from_millis(100), |t| {
                    t.min(Duration::from_millis(100))
                });
            poll.poll(&mut events, Some(t)).unwrap();
            for ev in events.iter() {
                if ev.token() == Token(0) {
                    let mut b = [0u8; 16];
                    while udp.recv_from(&mut b).is_ok() {
                        pings += 1;
                    }
                } else if reactor.owns(ev.token()) {
                    reactor.handle_event(ev);
                }
            }
            reactor.process(Instant::now());
        }
        pings
    });
    let rt = Runtime::new().unwrap();
    let c = connect(&rt, addr);
    let out = c.exec("hi").unwrap();
    assert_eq!(out.stdout, b"out\n");
    assert_eq!(out.status, Some(7));
    // The caller's own events still arrive.
    let to = udp_addr.lock().unwrap().unwrap();
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.send_to(b"ping", to).unwrap();
    let out = c.exec("again").unwrap();
    assert_eq!(out.status, Some(7));
    std::thread::sleep(Duration::from_millis(200));
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(caller.join().unwrap(), 1);
}

/// A handler that panics ends its own connection; the reactor's other
/// connections go on.
#[test]
fn a_panicking_handler_ends_only_its_connection() {
    let (addr, stop) = start_server(10);
    let rt = Runtime::new().unwrap();
    let good = connect(&rt, addr);
    let bad = connect(&rt, addr);
    let e = bad.exec("panic").unwrap_err();
    assert!(
        matches!(
            e.kind(),
            ssh_proto::ErrorKind::PeerDisconnected | ssh_proto::ErrorKind::Closed
        ),
        "{e}"
    );
    assert_eq!(good.exec("still").unwrap().status, Some(7));
    let again = connect(&rt, addr);
    assert_eq!(again.exec("new").unwrap().status, Some(7));
    stop.shutdown();
}
