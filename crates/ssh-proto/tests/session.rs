//! The session layer in memory: a client `Session` against a server
//! `Connection` the test answers by hand. What every adapter relies on:
//! per-channel facts and the "is it finished" conditions, the refusal of
//! what the client never asked for, and host-key verdicts against a parsed
//! known_hosts.

use std::sync::Arc;
use std::time::Instant;

use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use ssh_proto::keys::known_hosts::KnownHosts;
use ssh_proto::session::known_hosts_verdict;
use ssh_proto::{
    AuthRequest, ChannelOpenFailureReason, ChannelRequest, Config, Connection, ErrorKind, Event,
    PrivateKey, Session, Stream,
};

fn rng(seed: u64) -> Box<ChaCha20Rng> {
    Box::new(ChaCha20Rng::seed_from_u64(seed))
}

struct Setup {
    client: Session,
    server: Connection,
    server_events: Vec<Event>,
    host: Arc<PrivateKey>,
    now: Instant,
}

impl Setup {
    fn new(seed: u64) -> Setup {
        let now = Instant::now();
        let host = Arc::new(PrivateKey::generate_ed25519(&mut *rng(seed)));
        let mut sc = Config::default();
        sc.transport.host_keys.push(host.clone());
        sc.auth_methods = vec!["password".into()];
        let server = Connection::server(Arc::new(sc), rng(seed + 1), now).unwrap();
        let client = Connection::client(Arc::new(Config::default()), rng(seed + 2), now).unwrap();
        Setup {
            client: Session::new(client),
            server,
            server_events: Vec::new(),
            host,
            now,
        }
    }

    /// Moves bytes both ways until nothing moves; the client absorbs its
    /// events, the server's are kept for the test.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            if let Some(out) = self.client.conn().transmit().map(<[u8]>::to_vec) {
                let n = self.server.recv(self.now, &out).unwrap_or(out.len());
                self.client.conn_mut().advance_transmit(n);
                moved |= n > 0;
            }
            if let Some(out) = self.server.transmit().map(<[u8]>::to_vec) {
                let n = self
                    .client
                    .conn_mut()
                    .recv(self.now, &out)
                    .unwrap_or(out.len());
                self.server.advance_transmit(n);
                moved |= n > 0;
            }
            self.client.absorb();
            while let Some(e) = self.server.poll_event() {
                moved = true;
                self.server_events.push(e);
            }
            if !moved {
                return;
            }
        }
        panic!("no quiet point");
    }

    /// Handshake with the host key accepted, password auth answered.
    fn authenticated(seed: u64) -> Setup {
        let mut s = Setup::new(seed);
        s.pump();
        let key = s.client.take_host_key().expect("host key event");
        assert_eq!(key, s.host.public_key());
        s.client.host_key_verdict(Ok(())).unwrap();
        s.client.conn_mut().auth_password("alice", "pw").unwrap();
        s.pump();
        let req = s
            .server_events
            .drain(..)
            .find(|e| matches!(e, Event::AuthRequest { .. }));
        assert!(matches!(
            req,
            Some(Event::AuthRequest {
                request: AuthRequest::Password { .. },
                ..
            })
        ));
        s.server.auth_accept().unwrap();
        s.pump();
        assert!(matches!(
            s.client.pop_auth_event(),
            Some(Event::AuthSuccess)
        ));
        assert!(s.client.kex_done() >= 1);
        s.server_events.clear();
        s
    }
}

#[test]
fn exec_facts_and_wait_conditions() {
    let mut s = Setup::authenticated(1);
    let ch = s.client.conn_mut().open_session().unwrap();
    assert!(
        s.client.poll_open(ch).is_none(),
        "open answered before the peer spoke"
    );
    s.pump();
    let sch = match s.server_events.drain(..).next() {
        Some(Event::ChannelOpenRequest { channel, .. }) => channel,
        e => panic!("expected an open request, got {e:?}"),
    };
    s.server.accept_channel(sch).unwrap();
    s.pump();
    assert!(matches!(s.client.poll_open(ch), Some(Ok(()))));

    s.client.conn_mut().exec(ch, "job").unwrap();
    assert!(s.client.poll_reply(ch, "exec").is_none());
    s.pump();
    match s.server_events.drain(..).next() {
        Some(Event::ChannelRequest {
            request: ChannelRequest::Exec { command },
            want_reply: true,
            ..
        }) => assert_eq!(command, b"job"),
        e => panic!("expected exec, got {e:?}"),
    }
    s.server.channel_request_reply(sch, true).unwrap();
    s.server.send_data(sch, b"out").unwrap();
    s.server.send_stderr(sch, b"err").unwrap();
    s.pump();
    assert!(matches!(s.client.poll_reply(ch, "exec"), Some(Ok(()))));
    let (mut out, mut err) = (Vec::new(), Vec::new());
    assert!(
        s.client.poll_read_all(ch, &mut out, &mut err).is_none(),
        "read_all finished before EOF"
    );
    assert!(s.client.poll_exit_status(ch).is_none());
    s.server.send_exit_status(sch, 3).unwrap();
    s.server.send_eof(sch).unwrap();
    s.server.close_channel(sch).unwrap();
    s.pump();
    assert!(matches!(
        s.client.poll_read_all(ch, &mut out, &mut err),
        Some(Ok(()))
    ));
    assert_eq!((out.as_slice(), err.as_slice()), (&b"out"[..], &b"err"[..]));
    assert!(matches!(s.client.poll_exit_status(ch), Some(Ok(Some(3)))));
    let facts = s.client.channel(ch).expect("facts kept until released");
    assert!(facts.eof() && facts.closed());
    let mut buf = [0u8; 4];
    assert!(matches!(
        s.client.poll_read(ch, Stream::Stdout, &mut buf),
        Some(Ok(0))
    ));
    s.client.release(ch);
    assert!(
        s.client.channel(ch).is_none(),
        "a released, closed channel is forgotten"
    );
}

#[test]
fn a_refused_request_and_a_closed_channel_end_the_waits() {
    let mut s = Setup::authenticated(2);
    let ch = s.client.conn_mut().open_session().unwrap();
    s.pump();
    let sch = match s.server_events.drain(..).next() {
        Some(Event::ChannelOpenRequest { channel, .. }) => channel,
        e => panic!("expected an open request, got {e:?}"),
    };
    s.server.accept_channel(sch).unwrap();
    s.pump();
    s.client.conn_mut().subsystem(ch, "nope").unwrap();
    s.pump();
    s.server_events.clear();
    s.server.channel_request_reply(sch, false).unwrap();
    s.pump();
    let e = s.client.poll_reply(ch, "subsystem").unwrap().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ChannelRequest);
    assert!(e.to_string().contains("subsystem request refused"), "{e}");

    // Once the channel has closed, reads end and writes fail.
    s.server.close_channel(sch).unwrap();
    s.pump();
    let mut buf = [0u8; 8];
    assert!(matches!(
        s.client.poll_read(ch, Stream::Stdout, &mut buf),
        Some(Ok(0))
    ));
    let e = s
        .client
        .poll_write(ch, Stream::Stdout, b"x")
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Closed);
    assert!(matches!(s.client.poll_exit_status(ch), Some(Ok(None))));
}

#[test]
fn a_client_session_refuses_what_it_never_asked_for() {
    let mut s = Setup::authenticated(3);
    // The server opens a channel of a kind the core passes up towards
    // the client, and asks a global request: the session answers both
    // with a refusal by itself.
    let sch = s.server.open_channel("example@example.org", &[]).unwrap();
    s.server
        .global_request("keepalive@openssh.com", true, &[])
        .unwrap();
    s.pump();
    let refused = s.server_events.iter().any(|e| {
        matches!(e, Event::ChannelOpenFailed { channel, reason, .. }
            if *channel == sch && *reason == ChannelOpenFailureReason::AdministrativelyProhibited)
    });
    assert!(refused, "open not refused: {:?}", s.server_events);
    let replied = s
        .server_events
        .iter()
        .any(|e| matches!(e, Event::GlobalRequestReply { success: false, .. }));
    assert!(
        replied,
        "global request not answered: {:?}",
        s.server_events
    );
    assert!(
        s.client.check().is_ok(),
        "the refusals ended the connection"
    );
}

#[test]
fn a_changed_host_key_is_refused_and_ends_the_connection() {
    let mut s = Setup::new(4);
    s.pump();
    let key = s.client.take_host_key().expect("host key event");
    let other = PrivateKey::generate_ed25519(&mut *rng(99)).public_key();
    let known = KnownHosts::parse(&format!("[example.org]:2222 {}\n", other.to_openssh()));
    let verdict = known_hosts_verdict(&known, "known_hosts", "example.org", 2222, &key);
    let why = verdict.clone().unwrap_err();
    assert!(
        why.contains("REMOTE HOST IDENTIFICATION HAS CHANGED"),
        "{why}"
    );
    assert!(why.contains("[example.org]:2222"), "{why}");
    let e = s.client.host_key_verdict(verdict).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::HostKey);
    s.client.absorb();
    assert!(s.client.closed().is_some(), "the connection went on");

    // The same key listed for the host is a match; another host is unknown.
    let known = KnownHosts::parse(&format!("[example.org]:2222 {}\n", key.to_openssh()));
    assert!(known_hosts_verdict(&known, "kh", "example.org", 2222, &key).is_ok());
    let why = known_hosts_verdict(&known, "kh", "example.org", 22, &key).unwrap_err();
    assert!(
        why.starts_with("no ssh-ed25519 host key is known for example.org"),
        "{why}"
    );
}

#[test]
fn exchange_feeds_input_larger_than_the_window_while_reading_output() {
    let mut s = Setup::authenticated(5);
    let ch = s.client.conn_mut().open_session().unwrap();
    s.pump();
    let sch = match s.server_events.drain(..).next() {
        Some(Event::ChannelOpenRequest { channel, .. }) => channel,
        e => panic!("expected an open request, got {e:?}"),
    };
    s.server.accept_channel(sch).unwrap();
    s.pump();
    s.client.conn_mut().exec(ch, "cat").unwrap();
    s.pump();
    s.server.channel_request_reply(sch, true).unwrap();
    s.pump();
    assert!(matches!(s.client.poll_reply(ch, "exec"), Some(Ok(()))));

    // 8 MiB each way: far beyond both windows, so the input can only all
    // go if the output is read meanwhile (the server echoes like `cat`).
    let data: Vec<u8> = (0..8u32 << 20).map(|i| (i % 251) as u8).collect();
    let mut input = &data[..];
    let (mut eof, mut out, mut err) = (false, Vec::new(), Vec::new());
    let mut buf = vec![0u8; 64 * 1024];
    let mut server_eof = false;
    for _ in 0..100_000 {
        if let Some(r) = s
            .client
            .poll_exchange(ch, &mut input, &mut eof, &mut out, &mut err)
        {
            r.unwrap();
            break;
        }
        s.pump();
        // The server echoes what it has while its window allows.
        while s.server.channel_buffered(sch, Stream::Stdout) > 0 && s.server.send_window(sch) > 0 {
            let n = s
                .server
                .channel_buffered(sch, Stream::Stdout)
                .min(s.server.send_window(sch) as usize)
                .min(buf.len());
            let n = s
                .server
                .channel_read(sch, Stream::Stdout, &mut buf[..n])
                .unwrap();
            let w = s.server.send_data(sch, &buf[..n]).unwrap();
            assert_eq!(w, n);
        }
        if !server_eof
            && s.server.channel_eof_received(sch)
            && s.server.channel_buffered(sch, Stream::Stdout) == 0
        {
            s.server.send_eof(sch).unwrap();
            s.server.close_channel(sch).unwrap();
            server_eof = true;
        }
        s.pump();
    }
    assert!(eof, "EOF never sent");
    assert_eq!(out.len(), data.len());
    assert!(out == data, "echo differs");
    assert!(err.is_empty());
}

#[test]
fn forward_replies_go_to_their_tickets_and_forwarded_channels_queue() {
    use ssh_proto::forward::ChannelKind;
    use ssh_proto::session::MAX_QUEUED_FORWARDED;
    use ssh_proto::GlobalRequest;
    let mut s = Setup::authenticated(9);
    let a = s
        .client
        .send_global_request(&GlobalRequest::TcpipForward {
            address: "localhost".into(),
            port: 0,
        })
        .unwrap();
    let b = s
        .client
        .send_global_request(&GlobalRequest::TcpipForward {
            address: "localhost".into(),
            port: 8022,
        })
        .unwrap();
    s.pump();
    assert!(s.client.poll_global_reply(a).is_none());
    s.server
        .global_request_reply(true, &GlobalRequest::bound_port_reply(41000))
        .unwrap();
    s.server.global_request_reply(false, &[]).unwrap();
    s.pump();
    // Taken in the other order: each ticket gets its own reply.
    let rb = s.client.poll_global_reply(b).unwrap().unwrap();
    let ra = s.client.poll_global_reply(a).unwrap().unwrap();
    assert!(!rb.success && rb.bound_port.is_none());
    assert!(ra.success && ra.bound_port == Some(41000));
    assert!(s.client.poll_forwarded().is_none());

    // The server opens more forwarded channels than the queue holds.
    let kind = ChannelKind::ForwardedTcpip {
        address: "localhost".into(),
        port: 41000,
        originator: "127.0.0.1".into(),
        originator_port: 5,
    };
    let opened: Vec<_> = (0..MAX_QUEUED_FORWARDED + 2)
        .map(|_| s.server.open(&kind).unwrap())
        .collect();
    s.pump();
    let refused: Vec<_> = s
        .server_events
        .iter()
        .filter_map(|e| match e {
            Event::ChannelOpenFailed {
                channel, reason, ..
            } => Some((*channel, *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        refused,
        opened[MAX_QUEUED_FORWARDED..]
            .iter()
            .map(|c| (*c, ChannelOpenFailureReason::ResourceShortage))
            .collect::<Vec<_>>()
    );
    // Queued opens are not confirmed (no window granted) until taken.
    let confirmed = |s: &Setup| {
        s.server_events
            .iter()
            .filter(|e| matches!(e, Event::ChannelOpened { .. }))
            .count()
    };
    assert_eq!(confirmed(&s), 0);
    for i in 0..MAX_QUEUED_FORWARDED {
        let (_, k) = s.client.poll_forwarded().unwrap().unwrap();
        assert_eq!(k, kind);
        s.pump();
        assert_eq!(confirmed(&s), i + 1);
    }
    assert!(s.client.poll_forwarded().is_none());
    assert!(s.client.check().is_ok());
}

#[test]
fn an_abandoned_ticket_keeps_no_reply() {
    use ssh_proto::GlobalRequest;
    let mut s = Setup::authenticated(11);
    let req = GlobalRequest::Other {
        name: "x@example.com".into(),
        data: Vec::new(),
    };
    let a = s.client.send_global_request(&req).unwrap();
    let b = s.client.send_global_request(&req).unwrap();
    s.pump();
    // The waiter of `a` gives up before the reply comes.
    s.client.abandon_global_reply(a);
    s.server.global_request_reply(true, b"first").unwrap();
    s.server.global_request_reply(true, b"second").unwrap();
    s.pump();
    assert!(s.client.poll_global_reply(a).is_none());
    assert_eq!(
        s.client.poll_global_reply(b).unwrap().unwrap().data,
        b"second"
    );
    // Abandoning after the reply came drops it too.
    let c = s.client.send_global_request(&req).unwrap();
    s.pump();
    s.server.global_request_reply(false, &[]).unwrap();
    s.pump();
    s.client.abandon_global_reply(c);
    assert!(s.client.poll_global_reply(c).is_none());
}
