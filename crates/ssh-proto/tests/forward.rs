//! Forwarding in the core, in memory, both roles: typed channel kinds and
//! global requests on the wire, the bound port of a `tcpip-forward`, and
//! the refusal of forwarded, X11 and agent channels nobody asked for.

mod common;

use common::Pair;
use ssh_proto::forward::{ChannelKind, GlobalRequest, MAX_FORWARDS};
use ssh_proto::{ChannelId, ChannelOpenFailureReason, Config, ErrorKind, Event};

/// An authenticated pair whose server leaves global requests to the test.
fn authed(seed: u64) -> Pair {
    authed_with(seed, Config::default())
}

fn authed_with(seed: u64, client: Config) -> Pair {
    let mut p = Pair::new(
        client,
        common::server_config(vec![common::host_key(seed + 99)]),
        seed,
    );
    p.policy.manual_requests = true;
    p.run_until(|p| p.client.session_id().is_some());
    p.client.auth_password("alice", "secret").unwrap();
    p.run_until(|p| p.client_authenticated());
    p
}

/// The client's open requests so far: (channel, kind parsed).
fn client_open_requests(p: &Pair) -> Vec<(ChannelId, ChannelKind)> {
    p.client_events
        .iter()
        .filter_map(|e| match e {
            Event::ChannelOpenRequest {
                channel,
                kind,
                data,
            } => Some((*channel, ChannelKind::parse(kind, data).unwrap())),
            _ => None,
        })
        .collect()
}

/// Why the server's open of `ch` failed, if it did.
fn server_open_failure(p: &Pair, ch: ChannelId) -> Option<(ChannelOpenFailureReason, String)> {
    p.server_events.iter().find_map(|e| match e {
        Event::ChannelOpenFailed {
            channel,
            reason,
            description,
        } if *channel == ch => Some((*reason, description.clone())),
        _ => None,
    })
}

fn server_opens(p: &mut Pair, kind: ChannelKind) -> ChannelId {
    let ch = p.server.open(&kind).unwrap();
    p.run();
    ch
}

fn forwarded(address: &str, port: u32) -> ChannelKind {
    ChannelKind::ForwardedTcpip {
        address: address.into(),
        port,
        originator: "192.0.2.7".into(),
        originator_port: 50123,
    }
}

#[test]
fn every_kind_and_request_round_trips_through_its_wire_form() {
    let kinds = [
        ChannelKind::Session,
        ChannelKind::direct_tcpip("example.org", 80, "127.0.0.1", 5555),
        forwarded("localhost", 8080),
        ChannelKind::DirectStreamlocal {
            path: "/run/app.sock".into(),
        },
        ChannelKind::ForwardedStreamlocal {
            path: "/tmp/fwd.sock".into(),
        },
        ChannelKind::X11 {
            originator: "127.0.0.1".into(),
            originator_port: 6010,
        },
        ChannelKind::AuthAgent,
        ChannelKind::Other {
            name: "tun@openssh.com".into(),
            data: vec![0, 0, 0, 1, 0, 0, 0, 2],
        },
    ];
    for k in kinds {
        assert_eq!(ChannelKind::parse(k.name(), &k.data()).unwrap(), k);
    }
    let reqs = [
        GlobalRequest::TcpipForward {
            address: "".into(),
            port: 0,
        },
        GlobalRequest::CancelTcpipForward {
            address: "localhost".into(),
            port: 2222,
        },
        GlobalRequest::StreamlocalForward {
            path: "/tmp/s".into(),
        },
        GlobalRequest::CancelStreamlocalForward {
            path: "/tmp/s".into(),
        },
        GlobalRequest::Other {
            name: "no-more-sessions@openssh.com".into(),
            data: vec![],
        },
    ];
    for r in reqs {
        assert_eq!(GlobalRequest::parse(r.name(), &r.data()).unwrap(), r);
    }
    // Known kinds with short or trailing data are errors naming them.
    let short = ChannelKind::parse("direct-tcpip", &[0, 0, 0, 9, b'x']).unwrap_err();
    assert!(
        short.to_string().contains("malformed direct-tcpip"),
        "{short}"
    );
    let mut long = ChannelKind::AuthAgent.data();
    long.push(0);
    let e = ChannelKind::parse("auth-agent@openssh.com", &long).unwrap_err();
    assert!(e.to_string().contains("trailing"), "{e}");
    let e = GlobalRequest::parse("tcpip-forward", &[0, 0, 0, 0]).unwrap_err();
    assert!(
        e.to_string().contains("malformed tcpip-forward request"),
        "{e}"
    );
}

#[test]
fn a_direct_tcpip_open_reaches_the_server_typed() {
    let mut p = authed(201);
    let kind = ChannelKind::direct_tcpip("db.internal", 5432, "127.0.0.1", 41000);
    let ch = p.client.open(&kind).unwrap();
    p.run();
    let seen: Vec<ChannelKind> = p
        .server_events
        .iter()
        .filter_map(|e| match e {
            Event::ChannelOpenRequest { kind, data, .. } => {
                Some(ChannelKind::parse(kind, data).unwrap())
            }
            _ => None,
        })
        .collect();
    assert_eq!(seen, [kind]);
    // The test server refuses every kind but session.
    assert!(p.client_events.iter().any(|e| matches!(
        e,
        Event::ChannelOpenFailed { channel, reason: ChannelOpenFailureReason::UnknownChannelType, .. }
            if *channel == ch
    )));
    // Kinds a client never opens are usage errors, not packets.
    let e = p.client.open(&forwarded("localhost", 1)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Usage);
    let e = p.server.open(&ChannelKind::Session).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Usage);
}

#[test]
fn forwarded_tcpip_is_accepted_only_for_a_granted_forward() {
    let mut p = authed(202);
    // Before any forward: refused by the client's core.
    let early = server_opens(&mut p, forwarded("localhost", 40000));
    let (reason, text) = server_open_failure(&p, early).expect("refused");
    assert_eq!(reason, ChannelOpenFailureReason::AdministrativelyProhibited);
    assert!(text.contains("not requested"), "{text}");

    // Port 0: the server picks 40000 and says so.
    p.client.forward_tcpip("localhost", 0).unwrap();
    p.run();
    let asked: Vec<GlobalRequest> = p
        .server_events
        .iter()
        .filter_map(|e| match e {
            Event::GlobalRequest { name, data, .. } => {
                Some(GlobalRequest::parse(name, data).unwrap())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        asked,
        [GlobalRequest::TcpipForward {
            address: "localhost".into(),
            port: 0
        }]
    );
    p.server
        .global_request_reply(true, &GlobalRequest::bound_port_reply(40000))
        .unwrap();
    p.run();
    assert!(p.client_events.iter().any(|e| matches!(
        e,
        Event::GlobalRequestReply {
            success: true,
            bound_port: Some(40000),
            ..
        }
    )));
    assert_eq!(
        p.client.tcpip_forwards(),
        [("localhost".to_string(), 40000)]
    );

    // The bound port and address: passed up; any other: refused.
    let ok = server_opens(&mut p, forwarded("localhost", 40000));
    let wrong_port = server_opens(&mut p, forwarded("localhost", 40001));
    let wrong_addr = server_opens(&mut p, forwarded("0.0.0.0", 40000));
    assert!(server_open_failure(&p, ok).is_none());
    assert_eq!(client_open_requests(&p).len(), 1);
    assert_eq!(client_open_requests(&p)[0].1, forwarded("localhost", 40000));
    for ch in [wrong_port, wrong_addr] {
        let (reason, _) = server_open_failure(&p, ch).expect("refused");
        assert_eq!(reason, ChannelOpenFailureReason::AdministrativelyProhibited);
    }

    // A refused forward grants nothing; a cancelled one ends.
    p.client.forward_tcpip("", 2222).unwrap();
    p.run();
    p.server.global_request_reply(false, &[]).unwrap();
    p.run();
    assert_eq!(p.client.tcpip_forwards().len(), 1);
    p.client.cancel_forward_tcpip("localhost", 40000).unwrap();
    p.run();
    p.server.global_request_reply(true, &[]).unwrap();
    p.run();
    assert!(p.client.tcpip_forwards().is_empty());
    let after = server_opens(&mut p, forwarded("localhost", 40000));
    assert!(server_open_failure(&p, after).is_some());
    // The connection went on throughout.
    assert!(p.client.error().is_none() && p.server.error().is_none());
}

#[test]
fn forwarded_streamlocal_only_for_its_path() {
    let mut p = authed(203);
    p.client.forward_streamlocal("/tmp/app.sock").unwrap();
    p.run();
    p.server.global_request_reply(true, &[]).unwrap();
    p.run();
    assert_eq!(p.client.streamlocal_forwards(), ["/tmp/app.sock"]);
    let ok = server_opens(
        &mut p,
        ChannelKind::ForwardedStreamlocal {
            path: "/tmp/app.sock".into(),
        },
    );
    let other = server_opens(
        &mut p,
        ChannelKind::ForwardedStreamlocal {
            path: "/tmp/other.sock".into(),
        },
    );
    assert!(server_open_failure(&p, ok).is_none());
    let (_, text) = server_open_failure(&p, other).expect("refused");
    assert!(text.contains("/tmp/other.sock"), "{text}");
    assert_eq!(client_open_requests(&p).len(), 1);
}

#[test]
fn x11_and_agent_channels_only_after_asking_for_them() {
    let mut p = authed(204);
    let x11 = ChannelKind::X11 {
        originator: "127.0.0.1".into(),
        originator_port: 6010,
    };
    let a = server_opens(&mut p, x11.clone());
    let b = server_opens(&mut p, ChannelKind::AuthAgent);
    for ch in [a, b] {
        let (reason, _) = server_open_failure(&p, ch).expect("refused");
        assert_eq!(reason, ChannelOpenFailureReason::AdministrativelyProhibited);
    }
    let session = p.client.open_session().unwrap();
    p.run();
    p.client
        .channel_request(session, "auth-agent-req@openssh.com", false, &[])
        .unwrap();
    p.run();
    let c = server_opens(&mut p, ChannelKind::AuthAgent);
    assert!(server_open_failure(&p, c).is_none());
    let d = server_opens(&mut p, x11.clone());
    assert!(
        server_open_failure(&p, d).is_some(),
        "x11 still not asked for"
    );
    let mut req = Vec::new();
    // single-connection, auth protocol, cookie, screen
    req.push(0);
    for s in ["MIT-MAGIC-COOKIE-1", "0123456789abcdef0123456789abcdef"] {
        req.extend_from_slice(&(s.len() as u32).to_be_bytes());
        req.extend_from_slice(s.as_bytes());
    }
    req.extend_from_slice(&0u32.to_be_bytes());
    p.client
        .channel_request(session, "x11-req", false, &req)
        .unwrap();
    p.run();
    let e = server_opens(&mut p, x11.clone());
    assert!(server_open_failure(&p, e).is_none());
    let kinds: Vec<ChannelKind> = client_open_requests(&p)
        .into_iter()
        .map(|(_, k)| k)
        .collect();
    assert_eq!(kinds, [ChannelKind::AuthAgent, x11]);
}

#[test]
fn kinds_only_servers_open_are_unknown_to_a_server_and_malformed_opens_end_the_connection() {
    let mut p = authed(205);
    // Raw, bypassing the typed check: the server's core refuses it.
    let k = forwarded("localhost", 1);
    let ch = p.client.open_channel(k.name(), &k.data()).unwrap();
    p.run();
    let text = p.client_events.iter().find_map(|e| match e {
        Event::ChannelOpenFailed {
            channel,
            reason: ChannelOpenFailureReason::UnknownChannelType,
            description,
        } if *channel == ch => Some(description.clone()),
        _ => None,
    });
    assert_eq!(text.as_deref(), Some("unknown channel type"));
    assert!(p.server.error().is_none());
    // A server may not ask a client to listen.
    let e = p.server.forward_tcpip("", 0).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Usage);
    // A direct-tcpip whose data is cut short is a protocol error.
    p.client
        .open_channel("direct-tcpip", &[0, 0, 0, 40, b'h'])
        .unwrap();
    p.run();
    let err = p.server.error().expect("the server closed the connection");
    assert_eq!(err.kind(), ErrorKind::Protocol);
    assert!(
        err.to_string()
            .contains("malformed direct-tcpip channel open"),
        "{err}"
    );
}

#[test]
fn forwards_a_client_holds_are_bounded() {
    let mut p = authed(206);
    for i in 0..MAX_FORWARDS {
        p.client
            .send_global_request(
                &GlobalRequest::TcpipForward {
                    address: "localhost".into(),
                    port: 10000 + i as u32,
                },
                false,
            )
            .unwrap();
    }
    assert_eq!(p.client.tcpip_forwards().len(), MAX_FORWARDS);
    let e = p.client.forward_tcpip("localhost", 9).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Limit);
}

#[test]
fn a_keepalive_reply_is_never_taken_for_the_applications() {
    // A keepalive and a forward in flight together: each reply is matched
    // to its own request.
    let cfg = Config {
        keepalive_interval: Some(std::time::Duration::from_secs(15)),
        ..Config::default()
    };
    let mut p = authed_with(207, cfg);
    p.client.forward_tcpip("localhost", 0).unwrap();
    p.run();
    p.advance(std::time::Duration::from_secs(16));
    p.run();
    p.server
        .global_request_reply(true, &GlobalRequest::bound_port_reply(40100))
        .unwrap();
    p.run();
    let replies: Vec<Option<u32>> = p
        .client_events
        .iter()
        .filter_map(|e| match e {
            Event::GlobalRequestReply { bound_port, .. } => Some(*bound_port),
            _ => None,
        })
        .collect();
    assert_eq!(replies, [Some(40100)]);
    assert!(p.client.error().is_none());
}

#[test]
fn kinds_only_clients_open_are_unknown_to_a_client() {
    let mut p = authed(208);
    for kind in [
        ChannelKind::Session,
        ChannelKind::direct_tcpip("h", 1, "127.0.0.1", 2),
    ] {
        // Raw opens from the server, as a hostile server would send them.
        let ch = p.server.open_channel(kind.name(), &kind.data()).unwrap();
        p.run();
        let (reason, text) = server_open_failure(&p, ch).expect("refused");
        assert_eq!(reason, ChannelOpenFailureReason::UnknownChannelType);
        assert_eq!(text, "unknown channel type");
    }
    assert!(client_open_requests(&p).is_empty());
    assert!(p.client.error().is_none());
}

#[test]
fn no_keepalive_goes_out_before_login() {
    // A client idle at a prompt past its keepalive interval: nothing is
    // sent (a server would answer UNIMPLEMENTED, or as ours, disconnect),
    // and after login the first forward's reply is its own.
    let cfg = Config {
        keepalive_interval: Some(std::time::Duration::from_secs(5)),
        ..Config::default()
    };
    let mut p = Pair::new(cfg, common::server_config(vec![common::host_key(309)]), 209);
    p.policy.manual_requests = true;
    p.run_until(|p| p.client.session_id().is_some());
    for _ in 0..4 {
        p.advance(std::time::Duration::from_secs(6));
        p.run();
    }
    assert!(p.server.error().is_none() && p.client.error().is_none());
    p.client.auth_password("alice", "secret").unwrap();
    p.run_until(|p| p.client_authenticated());
    p.client.forward_tcpip("localhost", 0).unwrap();
    p.run();
    p.server
        .global_request_reply(true, &GlobalRequest::bound_port_reply(40200))
        .unwrap();
    p.run();
    assert_eq!(
        p.client.tcpip_forwards(),
        [("localhost".to_string(), 40200)]
    );
}
