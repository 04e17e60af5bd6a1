//! The blocking server API (`ssh_blocking::Server` + `Handler`), driven by
//! our blocking client and by OpenSSH's `ssh`.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use ssh_blocking::proto::{
    AdmissionConfig, ChannelId, ChannelKind, ChannelRequest, Config, MaxStartups,
};
use ssh_blocking::{
    Auth, Channel, ChannelOpenFailure, ChannelOpener, Client, ErrorKind, Handler, HostKeyCheck,
    KbdInt, PrivateKey, PublicKey, Server, ServerHandle, ShutdownHandle,
};

/// A handler for tests: password "pw" for user "slow" takes a second to
/// decide; exec echoes the command line and exits with its length;
/// "cat" echoes the input; "tcpip-forward" global requests get a port.
struct TestHandler {
    user_key: PublicKey,
    chans: HashMap<ChannelId, Channel>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Handler for TestHandler {
    fn auth_password(&mut self, user: &str, password: &str) -> Auth {
        if user == "slow" {
            // A decision taken after asking something slow: only this
            // connection waits.
            std::thread::sleep(Duration::from_secs(1));
        }
        if password == "pw" {
            Auth::Accept
        } else {
            Auth::Reject
        }
    }
    fn auth_publickey_offered(&mut self, user: &str, key: &PublicKey, algorithm: &str) -> bool {
        self.log
            .lock()
            .unwrap()
            .push(format!("publickey offered {user} {algorithm}"));
        *key == self.user_key
    }
    fn auth_publickey(&mut self, user: &str, key: &PublicKey, algorithm: &str) -> Auth {
        self.log
            .lock()
            .unwrap()
            .push(format!("publickey signed {user} {algorithm}"));
        if *key != self.user_key {
            Auth::Reject
        } else if user == "twofactor" {
            Auth::Partial(vec!["keyboard-interactive".into()])
        } else {
            Auth::Accept
        }
    }
    fn auth_keyboard_interactive(&mut self, _user: &str, _sub: &str) -> KbdInt {
        KbdInt::Prompt {
            name: "otp".into(),
            instruction: String::new(),
            prompts: vec![ssh_blocking::proto::Prompt {
                text: "Code: ".into(),
                echo: true,
            }],
        }
    }
    fn auth_keyboard_interactive_response(&mut self, _user: &str, r: &[String]) -> KbdInt {
        if r == ["123456"] {
            KbdInt::Accept
        } else {
            KbdInt::Reject
        }
    }
    fn authenticated(&mut self, user: &str) {
        self.log.lock().unwrap().push(format!("auth {user}"));
    }
    fn channel_open(&mut self, kind: &ChannelKind) -> Result<(), ChannelOpenFailure> {
        if *kind == ChannelKind::Session {
            Ok(())
        } else {
            Err(ChannelOpenFailure::prohibited(format!(
                "no {} here",
                kind.name()
            )))
        }
    }
    fn channel_opened(&mut self, channel: Channel, _kind: &ChannelKind) {
        self.chans.insert(channel.id(), channel);
    }
    // Keeps its channels from `channel_opened`, as a handler that needs
    // them before any request would; the request's channel is the same.
    fn channel_request(&mut self, channel: &Channel, request: ChannelRequest) -> bool {
        match request {
            ChannelRequest::Exec { command } => {
                let Some(ch) = self.chans.remove(&channel.id()) else {
                    return false;
                };
                std::thread::spawn(move || {
                    if command == b"vanish" {
                        // Ends without close(): dropping the handle closes.
                        return;
                    }
                    if command == b"cat" {
                        let _ = std::io::copy(&mut &ch, &mut &ch);
                        let _ = ch.send_exit_status(0);
                    } else {
                        let _ = (&ch).write_all(&command);
                        let _ = ch.write_stderr(b"to stderr");
                        if command == b"die" {
                            let _ = ch.send_exit_signal("KILL", false, "killed");
                        } else {
                            let _ = ch.send_exit_status(command.len() as u32);
                        }
                    }
                    let _ = ch.send_eof();
                    let _ = ch.close();
                });
                true
            }
            _ => false,
        }
    }
    fn channel_closed(&mut self, id: ChannelId) {
        self.chans.remove(&id);
    }
    fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: u32,
        _opener: &ChannelOpener,
    ) -> Option<u32> {
        Some(4242)
    }
}

struct Running {
    port: u16,
    host_key: PublicKey,
    user_key: Arc<PrivateKey>,
    stop: ShutdownHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    connections: Arc<AtomicUsize>,
    log: Arc<Mutex<Vec<String>>>,
}

impl Running {
    fn start(tune: impl FnOnce(&mut Config), max_startups: usize) -> Running {
        let n = u32::try_from(max_startups).unwrap();
        let admission = AdmissionConfig::from(MaxStartups::hard(n).unwrap());
        Self::start_at("127.0.0.1:0", tune, admission)
    }

    fn start_at(bind: &str, tune: impl FnOnce(&mut Config), admission: AdmissionConfig) -> Running {
        let host = PrivateKey::generate_ed25519(&mut *ssh_proto::os_rng());
        let user_key = Arc::new(PrivateKey::generate_ed25519(&mut *ssh_proto::os_rng()));
        let host_key = host.public_key();
        let mut config = Config::default();
        config.transport.host_keys.push(Arc::new(host));
        config.auth_methods = vec![
            "publickey".into(),
            "password".into(),
            "keyboard-interactive".into(),
        ];
        config.admission = admission;
        tune(&mut config);
        let srv = Server::bind(bind, Arc::new(config)).unwrap();
        let port = srv.local_addr().port();
        let stop = srv.shutdown_handle();
        let connections = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (c2, l2, uk) = (connections.clone(), log.clone(), user_key.public_key());
        let thread = std::thread::spawn(move || {
            srv.run(move |_h: &ServerHandle| {
                c2.fetch_add(1, Ordering::SeqCst);
                TestHandler {
                    user_key: uk.clone(),
                    chans: HashMap::new(),
                    log: l2.clone(),
                }
            })
            .unwrap();
        });
        Running {
            port,
            host_key,
            user_key,
            stop,
            thread: Some(thread),
            connections,
            log,
        }
    }

    fn connect(&self) -> Client {
        Client::connect(
            ("127.0.0.1", self.port),
            HostKeyCheck::Exact(self.host_key.clone()),
        )
        .expect("connect")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.shutdown();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn auth(c: &Client, user: &str) {
    c.auth_password(user, "pw").expect("password auth");
}

#[test]
fn server_without_host_key_is_refused() {
    let err = Server::bind("127.0.0.1:0", Arc::new(Config::default())).err();
    assert!(
        err.is_some_and(|e| e.to_string().contains("host key")),
        "a server needs a host key"
    );
}

#[test]
fn exec_output_exit_status_and_exit_signal() {
    let r = Running::start(|_| {}, 10);
    let c = r.connect();
    auth(&c, "alice");
    let out = c.exec("hello").unwrap();
    assert_eq!(out.stdout, b"hello");
    assert_eq!(out.stderr, b"to stderr");
    assert_eq!(out.status, Some(5));
    let out = c.exec("die").unwrap();
    assert_eq!(out.status, None);
    let sig = out.signal.expect("exit signal");
    assert_eq!(
        (sig.signal.as_str(), sig.message.as_str()),
        ("KILL", "killed")
    );
    assert_eq!(r.log.lock().unwrap().as_slice(), ["auth alice"]);

    // 8 MiB through the handler's cat, both ways at once.
    let ch = c.channel_session().unwrap();
    ch.exec("cat").unwrap();
    let data = pseudo_random_bytes(8 << 20, 7);
    let got = std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut got = Vec::new();
            (&ch).read_to_end(&mut got).unwrap();
            got
        });
        (&ch).write_all(&data).unwrap();
        ch.send_eof().unwrap();
        reader.join().unwrap()
    });
    assert_eq!(sha256_hex(&got), sha256_hex(&data));
    assert_eq!(ch.exit_status().unwrap(), Some(0));
}

#[test]
fn publickey_partial_success_then_keyboard_interactive() {
    let r = Running::start(|_| {}, 10);
    let c = r.connect();
    let err = c
        .auth_publickey("twofactor", r.user_key.clone())
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AuthFailed);
    assert!(err.to_string().contains("more required"), "{err}");
    assert_eq!(
        c.auth_methods_left().unwrap(),
        vec!["keyboard-interactive".to_string()]
    );
    let mut asked = Vec::new();
    c.auth_keyboard_interactive("twofactor", |name, _, prompts| {
        asked.push(format!("{name}: {}", prompts[0].text));
        vec!["123456".into()]
    })
    .unwrap();
    assert_eq!(asked, ["otp: Code: "]);
    assert!(c.is_authenticated());
    // The handler was told the signature algorithm, for the query and for
    // the signed attempt.
    let log = r.log.lock().unwrap().clone();
    for line in [
        "publickey offered twofactor ssh-ed25519",
        "publickey signed twofactor ssh-ed25519",
    ] {
        assert!(log.iter().any(|l| l == line), "{line:?} not in {log:?}");
    }

    // An unknown key is refused without a signature being asked for.
    let other = Arc::new(PrivateKey::generate_ed25519(&mut *ssh_proto::os_rng()));
    let c = r.connect();
    let err = c.auth_publickey("alice", other).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AuthFailed);
    c.auth_publickey("alice", r.user_key.clone()).unwrap();
}

#[test]
fn a_slow_decision_holds_only_its_own_connection() {
    let r = Running::start(|_| {}, 10);
    let t0 = Instant::now();
    let slow = {
        let c = r.connect();
        std::thread::spawn(move || {
            auth(&c, "slow");
            Instant::now()
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let c = r.connect();
    auth(&c, "fast");
    assert_eq!(c.exec("quick").unwrap().status, Some(5));
    let fast_done = Instant::now();
    let slow_done = slow.join().unwrap();
    assert!(
        fast_done < slow_done,
        "the fast connection waited for the slow decision ({:?} vs {:?})",
        fast_done - t0,
        slow_done - t0
    );
    assert!(slow_done - t0 >= Duration::from_secs(1));
}

#[test]
fn max_sessions_refuses_the_extra_channel() {
    let r = Running::start(|c| c.max_sessions = 2, 10);
    let c = r.connect();
    auth(&c, "alice");
    let a = c.channel_session().unwrap();
    let b = c.channel_session().unwrap();
    let err = c.channel_session().expect_err("third session refused");
    assert_eq!(err.kind(), ErrorKind::ChannelOpen);
    drop(a);
    // Once one closes, a new one may open.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match c.channel_session() {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                assert_eq!(e.kind(), ErrorKind::ChannelOpen);
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("no session after closing one: {e}"),
        }
    }
    drop(b);
}

/// Opens a TCP connection and reads the server's version line.
fn idle_connection(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while !line.ends_with(b"\n") {
        assert_eq!(
            s.read(&mut b).unwrap(),
            1,
            "server closed before its version"
        );
        line.push(b[0]);
    }
    assert!(line.starts_with(b"SSH-2.0-"));
    s
}

/// Connects, retrying for up to 5 s while the server refuses.
fn connect_soon(r: &Running) -> Client {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Client::connect(
            ("127.0.0.1", r.port),
            HostKeyCheck::Exact(r.host_key.clone()),
        ) {
            Ok(c) => return c,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("still refused after 5 s: {e}"),
        }
    }
}

#[test]
fn max_startups_refuses_connections_beyond_the_unauthenticated_limit() {
    let r = Running::start(|_| {}, 2);
    let a = idle_connection(r.port);
    let b = idle_connection(r.port);
    // A third connection is closed at once, told only what sshd tells.
    let mut s = TcpStream::connect(("127.0.0.1", r.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert_eq!(
        got, b"Exceeded MaxStartups\r\n",
        "third connection was served"
    );
    // Authenticated connections do not count (the server notices a close
    // or an authentication a moment after the client does: retry briefly).
    drop(a);
    let c = connect_soon(&r);
    auth(&c, "alice");
    let c2 = connect_soon(&r);
    auth(&c2, "bob");
    assert_eq!(c2.exec("abc").unwrap().status, Some(3));
    drop(b);
}

/// `MaxStartups 2:50:10` through the server API: with two idle
/// connections holding the unauthenticated slots, about half of new
/// clients get in (not none, not all).
#[test]
fn random_early_drop_lets_about_half_in_past_idle_slots() {
    let admission = AdmissionConfig::from(MaxStartups::new(2, 50, 10).unwrap());
    let r = Running::start_at("127.0.0.1:0", |_| {}, admission);
    let mut idle = Vec::new();
    for _ in 0..2 {
        let mut s = idle_connection(r.port);
        s.write_all(b"SSH-2.0-idle\r\n").unwrap();
        idle.push(s);
    }
    let tries = 40;
    let mut got_in = 0;
    for _ in 0..tries {
        if let Ok(c) = Client::connect(
            ("127.0.0.1", r.port),
            HostKeyCheck::Exact(r.host_key.clone()),
        ) {
            auth(&c, "alice");
            assert_eq!(c.exec("abc").unwrap().status, Some(3));
            got_in += 1;
        }
    }
    // Binomial(40, 0.5): outside 8..=32 is a 1 in 10^4 event.
    assert!(
        (8..=32).contains(&got_in),
        "{got_in} of {tries} clients got in at MaxStartups 2:50:10"
    );
    drop(idle);
}

/// `PerSourceMaxStartups 2` through the server API on a dual-stack
/// listener: a third connection from 127.0.0.1 is refused, one from ::1
/// is served; sockets that send no version line are closed after the
/// identification timeout, and the source has room again.
#[test]
fn per_source_limit_and_identification_timeout() {
    let admission = AdmissionConfig {
        per_source_max_startups: Some(2),
        ..Default::default()
    };
    let r = Running::start_at(
        "[::]:0",
        |c| c.identification_timeout = Some(Duration::from_secs(1)),
        admission,
    );
    let t0 = Instant::now();
    let mut idle = vec![idle_connection(r.port), idle_connection(r.port)];
    let mut s = TcpStream::connect(("127.0.0.1", r.port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut got = Vec::new();
    let _ = s.read_to_end(&mut got);
    assert_eq!(got, b"Exceeded MaxStartups\r\n");
    let c = Client::connect(("::1", r.port), HostKeyCheck::Exact(r.host_key.clone()))
        .expect("::1 is another source");
    auth(&c, "alice");
    assert_eq!(c.exec("ab").unwrap().status, Some(2));
    for s in &mut idle {
        let mut sink = Vec::new();
        let _ = s.read_to_end(&mut sink);
    }
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "silent sockets closed after {waited:?}"
    );
    let c = connect_soon(&r);
    auth(&c, "bob");
    assert_eq!(c.exec("abc").unwrap().status, Some(3));
}

#[test]
fn grace_time_and_auth_attempts_end_connections_cleanly() {
    let r = Running::start(
        |c| {
            c.login_grace_time = Some(Duration::from_secs(1));
            c.max_auth_tries = 2;
        },
        10,
    );
    // Silent after the version exchange: closed after the grace time.
    let mut s = idle_connection(r.port);
    s.write_all(b"SSH-2.0-silent\r\n").unwrap();
    let t0 = Instant::now();
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(800) && waited < Duration::from_secs(5),
        "closed after {waited:?}"
    );

    // Two wrong passwords: the second ends the connection.
    let c = r.connect();
    let e1 = c.auth_password("alice", "bad").unwrap_err();
    assert_eq!(e1.kind(), ErrorKind::AuthFailed);
    let e2 = c.auth_password("alice", "bad").unwrap_err();
    assert!(
        matches!(
            e2.kind(),
            ErrorKind::AuthFailed | ErrorKind::PeerDisconnected
        ),
        "{e2}"
    );
    assert!(c.auth_password("alice", "pw").is_err());

    // The server goes on serving others.
    let c = r.connect();
    auth(&c, "alice");
    assert_eq!(c.exec("ok").unwrap().status, Some(2));
    assert!(r.connections.load(Ordering::SeqCst) >= 3);
}

#[test]
fn shutdown_closes_the_listener_and_lets_live_sessions_finish() {
    let mut r = Running::start(|_| {}, 10);
    let c = r.connect();
    auth(&c, "alice");
    let ch = c.channel_session().unwrap();
    ch.exec("cat").unwrap();
    r.stop.shutdown();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        TcpStream::connect(("127.0.0.1", r.port)).is_err()
            || Client::connect(
                ("127.0.0.1", r.port),
                HostKeyCheck::Exact(r.host_key.clone())
            )
            .is_err(),
        "the listener still accepts"
    );
    // The live session still works.
    (&ch).write_all(b"still here").unwrap();
    ch.send_eof().unwrap();
    let mut got = Vec::new();
    (&ch).read_to_end(&mut got).unwrap();
    assert_eq!(got, b"still here");
    let run = r.thread.take().unwrap();
    assert!(!run.is_finished(), "run() returned with a session live");
    drop(ch);
    drop(c);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !run.is_finished() {
        assert!(Instant::now() < deadline, "run() did not return");
        std::thread::sleep(Duration::from_millis(20));
    }
    run.join().unwrap();
}

/// A `Channel` clone is another handle on the same channel: a reader
/// thread on one clone gets everything written through another, dropping
/// a clone leaves the channel open (MaxSessions 1 still refuses a second),
/// and dropping the last closes it (a new session may then open).
#[test]
fn channel_clones_share_the_channel_until_the_last_is_dropped() {
    let r = Running::start(|c| c.max_sessions = 1, 10);
    let c = r.connect();
    auth(&c, "alice");
    let ch = c.channel_session().unwrap();
    ch.exec("cat").unwrap();
    let reader = ch.clone();
    let t = std::thread::spawn(move || {
        let mut got = Vec::new();
        (&reader).read_to_end(&mut got).unwrap();
        got
    });
    let data = pseudo_random_bytes(3 << 20, 11);
    (&ch).write_all(&data[..1 << 20]).unwrap();
    drop(ch.clone());
    (&ch).write_all(&data[1 << 20..]).unwrap();
    let err = c.channel_session().expect_err("the channel is still open");
    assert_eq!(err.kind(), ErrorKind::ChannelOpen);
    ch.send_eof().unwrap();
    let got = t.join().unwrap();
    assert_eq!(sha256_hex(&got), sha256_hex(&data));
    assert_eq!(ch.exit_status().unwrap(), Some(0));
    drop(ch);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match c.channel_session() {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                assert_eq!(e.kind(), ErrorKind::ChannelOpen);
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("no session after dropping the last handle: {e}"),
        }
    }
}

/// A handler thread that ends without `close()` still closes its channel:
/// the client's exec returns (no exit status) instead of waiting forever,
/// and the connection goes on.
#[test]
fn a_handler_dropping_its_channel_closes_it() {
    let r = Running::start(|_| {}, 10);
    let c = r.connect();
    auth(&c, "alice");
    let t0 = Instant::now();
    let out = c.exec("vanish").unwrap();
    assert_eq!((out.status, out.signal.is_none()), (None, true));
    assert!(t0.elapsed() < Duration::from_secs(5));
    assert_eq!(c.exec("hello").unwrap().status, Some(5));
}
