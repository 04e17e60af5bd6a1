//! In-memory sessions: a client and a server `Connection` against each other.

mod common;

use std::sync::Arc;

use common::*;
use ssh_proto::*;

fn exec_session(p: &mut Pair) -> (ChannelId, u32) {
    p.run_until(|p| {
        p.client.session_id().is_some()
            && p.client_events
                .iter()
                .any(|e| matches!(e, Event::KexDone(_)))
    });
    p.client.auth_password("alice", "secret").unwrap();
    p.run_until(|p| p.client_authenticated());
    let ch = p.client.open_session().unwrap();
    p.client.exec(ch, "echo out; echo err >&2; exit 7").unwrap();
    p.run_until(|p| {
        p.client_events
            .iter()
            .any(|e| matches!(e, Event::ChannelClosed { .. }))
    });
    p.client_drain(ch);
    let status = p
        .client_events
        .iter()
        .find_map(|e| match e {
            Event::ExitStatus { status, .. } => Some(*status),
            _ => None,
        })
        .expect("exit status");
    (ch, status)
}

#[test]
fn exec_with_password_default_algorithms() {
    let mut p = Pair::default_pair(1);
    let (_, status) = exec_session(&mut p);
    assert_eq!(status, 7);
    assert_eq!(p.client_out, b"out\n");
    assert_eq!(p.client_err, b"err\n");
    assert!(p.client.strict_kex(), "strict kex negotiated by default");
    assert_eq!(
        p.client
            .server_sig_algs()
            .map(|s| s.contains("rsa-sha2-256")),
        Some(true)
    );
}

#[test]
fn exec_in_random_one_to_seven_byte_chunks() {
    for seed in 0..4 {
        let mut p = Pair::default_pair(10 + seed);
        p.max_chunk = 7;
        let (_, status) = exec_session(&mut p);
        assert_eq!(status, 7);
        assert_eq!(p.client_out, b"out\n");
    }
}

fn one_alg(seed: u64, f: impl Fn(&mut Algorithms)) -> Pair {
    let mut cc = Config::default();
    cc.transport.algorithms = Algorithms::all();
    f(&mut cc.transport.algorithms);
    let mut sc = server_config(vec![host_key(seed + 99)]);
    sc.transport.algorithms = Algorithms::all();
    let mut p = Pair::new(cc, sc, seed);
    p.max_chunk = 4000;
    let (_, status) = exec_session(&mut p);
    assert_eq!(status, 7);
    assert_eq!(p.client_out, b"out\n");
    assert_eq!(p.client_err, b"err\n");
    p
}

#[test]
fn every_kex() {
    for (i, k) in ssh_proto::algorithms::KEX_ALL.iter().enumerate() {
        let p = one_alg(100 + i as u64, |a| a.kex = vec![k.to_string()]);
        assert_eq!(&p.client.negotiated().unwrap().kex, k);
    }
}

#[test]
fn every_cipher_and_mac() {
    let ciphers = ssh_proto::algorithms::CIPHER_ALL;
    for (i, c) in ciphers.iter().enumerate() {
        let p = one_alg(200 + i as u64, |a| a.cipher = vec![c.to_string()]);
        assert_eq!(&p.client.negotiated().unwrap().cipher_c2s, c);
    }
    for (i, m) in ssh_proto::algorithms::MAC_ALL.iter().enumerate() {
        let p = one_alg(300 + i as u64, |a| {
            a.cipher = vec!["aes128-ctr".into()];
            a.mac = vec![m.to_string()];
        });
        assert_eq!(p.client.negotiated().unwrap().mac_c2s.as_deref(), Some(*m));
    }
}

#[test]
fn compression_both_kinds() {
    for (i, z) in ["zlib", "zlib@openssh.com"].iter().enumerate() {
        let p = one_alg(400 + i as u64, |a| a.compression = vec![z.to_string()]);
        assert_eq!(&p.client.negotiated().unwrap().compression_c2s, z);
    }
}

#[test]
fn no_common_cipher_names_both_lists() {
    let mut cc = Config::default();
    cc.transport.algorithms.cipher = vec!["aes128-ctr".into()];
    let mut sc = server_config(vec![host_key(5)]);
    sc.transport.algorithms.cipher = vec!["aes256-gcm@openssh.com".into()];
    let mut p = Pair::new(cc, sc, 5);
    p.run();
    let err = p.client.error().expect("client error").to_string();
    assert!(err.contains("no common cipher"), "{err}");
    assert!(
        err.contains("aes128-ctr") && err.contains("aes256-gcm@openssh.com"),
        "{err}"
    );
    assert_eq!(
        p.client.error().unwrap().kind(),
        ErrorKind::NoCommonAlgorithm
    );
}

#[test]
fn wrong_password_is_reported_and_methods_listed() {
    let mut p = Pair::default_pair(6);
    p.run();
    p.client.auth_password("alice", "nope").unwrap();
    p.run();
    let fail = p.client_events.iter().find_map(|e| match e {
        Event::AuthFailure {
            methods,
            partial_success,
        } => Some((methods.clone(), *partial_success)),
        _ => None,
    });
    let (methods, partial) = fail.expect("auth failure");
    assert!(!partial);
    assert!(methods.contains(&"password".to_string()));
    assert!(!p.client.is_authenticated());
}

#[test]
fn publickey_ed25519_and_partial_success() {
    let user_key = Arc::new(PrivateKey::generate_ed25519(&mut *rng(77)));
    let mut p = Pair::default_pair(7);
    p.policy.user_key = Some(user_key.public_key());
    p.policy.two_factor = true;
    p.run();
    p.client.auth_publickey("alice", user_key.clone()).unwrap();
    p.run();
    let partial = p.client_events.iter().any(|e| matches!(e, Event::AuthFailure { partial_success: true, methods } if methods == &["password".to_string()]));
    assert!(partial, "{:?}", p.client_events);
    p.client.auth_password("alice", "secret").unwrap();
    p.run();
    assert!(p.client_authenticated());
}

#[test]
fn keyboard_interactive_prompts_and_password_fallback() {
    // Explicit keyboard-interactive.
    let mut p = Pair::default_pair(8);
    p.run();
    p.client.auth_keyboard_interactive("alice", "").unwrap();
    p.run();
    let prompts = p.client_events.iter().find_map(|e| match e {
        Event::AuthPrompt { prompts, .. } => Some(prompts.clone()),
        _ => None,
    });
    assert_eq!(prompts.unwrap()[0].text, "Password: ");
    p.client.auth_respond(&["secret".to_string()]).unwrap();
    p.run();
    assert!(p.client_authenticated());

    // A server that only offers keyboard-interactive: password is answered through it.
    let mut sc = server_config(vec![host_key(9)]);
    sc.auth_methods = vec!["keyboard-interactive".into()];
    let mut p = Pair::new(Config::default(), sc, 9);
    p.run();
    p.client.auth_password("alice", "secret").unwrap();
    p.run();
    assert!(p.client_authenticated(), "{:?}", p.client_events);
}

#[test]
fn rejected_host_key_ends_connection() {
    let mut p = Pair::default_pair(11);
    p.auto_accept_host_key = false;
    p.run();
    assert!(p
        .client_events
        .iter()
        .any(|e| matches!(e, Event::HostKey(_))));
    p.client.reject_host_key("not in known_hosts");
    p.run();
    assert_eq!(p.client.error().unwrap().kind(), ErrorKind::HostKey);
    assert!(
        p.server.error().is_some(),
        "server learns of the disconnect"
    );
}

fn pseudo_random(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761).max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// Uploads `data` on a `cat`-like exec channel and collects the echo.
fn echo_round_trip(p: &mut Pair, data: &[u8]) -> ChannelId {
    p.policy.echo = true;
    let ch = open_cat(p);
    let mut off = 0;
    let mut eof = false;
    for _ in 0..10_000_000 {
        if off < data.len() {
            off += p.client.send_data(ch, &data[off..]).unwrap();
        } else if !eof {
            p.client.send_eof(ch).unwrap();
            eof = true;
        }
        let moved = p.step();
        if eof
            && !moved
            && p.client_events
                .iter()
                .any(|e| matches!(e, Event::ChannelClosed { .. }))
        {
            break;
        }
    }
    p.client_drain(ch);
    ch
}

#[test]
fn rekey_every_mebibyte_during_64_mib_round_trip() {
    let mut cc = Config::default();
    cc.transport.rekey_bytes = Some(1 << 20);
    let mut sc = server_config(vec![host_key(21)]);
    sc.transport.rekey_bytes = Some(3 << 20);
    let mut p = Pair::new(cc, sc, 21);
    p.max_chunk = 100_000;
    let data = pseudo_random(64 << 20, 5);
    echo_round_trip(&mut p, &data);
    assert_eq!(p.client_out.len(), data.len());
    assert!(p.client_out == data, "echoed data differs");
    let rekeys = p.client.kex_count();
    assert!(
        rekeys > 16,
        "expected a rekey every few MiB, got {rekeys} key exchanges"
    );
    assert_eq!(p.server.kex_count(), rekeys);
    let kexdone = p
        .client_events
        .iter()
        .filter(|e| matches!(e, Event::KexDone(_)))
        .count();
    assert_eq!(kexdone as u32, rekeys);
}

#[test]
fn rekey_with_compression_round_trips() {
    let mut cc = Config::default();
    cc.transport.rekey_bytes = Some(32 << 10);
    cc.transport.algorithms.compression = vec!["zlib@openssh.com".into()];
    let mut sc = server_config(vec![host_key(22)]);
    sc.transport.algorithms.compression =
        vec!["zlib@openssh.com".into(), "zlib".into(), "none".into()];
    let mut p = Pair::new(cc, sc, 22);
    p.max_chunk = 3000;
    let text: Vec<u8> = (0..200_000)
        .flat_map(|i| format!("line {i} of compressible text\n").into_bytes())
        .collect();
    echo_round_trip(&mut p, &text);
    assert!(p.client_out == text);
    assert!(p.client.kex_count() > 3);
    assert_eq!(
        p.client.negotiated().unwrap().compression_c2s,
        "zlib@openssh.com"
    );
}

#[test]
fn server_initiated_rekey_mid_transfer() {
    let mut p = Pair::default_pair(23);
    p.policy.echo = true;
    let data = pseudo_random(8 << 20, 9);
    let ch = open_cat(&mut p);
    let mut off = 0;
    let mut rekeyed = false;
    while off < data.len() {
        off += p.client.send_data(ch, &data[off..]).unwrap();
        if !rekeyed && off > data.len() / 2 {
            p.server.rekey().unwrap();
            rekeyed = true;
        }
        p.step();
    }
    p.client.send_eof(ch).unwrap();
    p.run_until(|p| {
        p.client_events
            .iter()
            .any(|e| matches!(e, Event::ChannelClosed { .. }))
    });
    p.client_drain(ch);
    assert!(p.client_out == data);
    assert_eq!(p.client.kex_count(), 2);
}

#[test]
fn slow_reader_window_bounds_memory_then_refills() {
    let mut p = Pair::default_pair(24);
    p.policy.echo = true;
    p.client_reads = false;
    let ch = open_cat(&mut p);
    let data = pseudo_random(12 << 20, 3);
    let mut off = 0;
    for _ in 0..200_000 {
        if off < data.len() {
            off += p.client.send_data(ch, &data[off..]).unwrap();
        }
        if !p.step() && p.client.send_window(ch) == 0 {
            break;
        }
    }
    let buffered = p.client.channel_buffered(ch, Stream::Stdout);
    assert!(
        buffered <= 2 * 1024 * 1024,
        "client buffered {buffered} bytes, more than its window"
    );
    assert!(
        buffered >= 1024 * 1024,
        "window should have filled, only {buffered}"
    );
    assert!(
        off < data.len(),
        "the sender must have been stopped by the windows"
    );
    // Now read: everything flows.
    p.client_reads = true;
    p.client_drain(ch);
    let mut eof = false;
    for _ in 0..10_000_000 {
        if off < data.len() {
            off += p.client.send_data(ch, &data[off..]).unwrap();
        } else if !eof {
            p.client.send_eof(ch).unwrap();
            eof = true;
        }
        p.client_drain(ch);
        let moved = p.step();
        if eof
            && !moved
            && p.client_events
                .iter()
                .any(|e| matches!(e, Event::ChannelClosed { .. }))
        {
            break;
        }
    }
    p.client_drain(ch);
    assert!(p.client_out == data);
}

#[test]
fn exit_status_after_eof_is_delivered() {
    let mut p = Pair::default_pair(25);
    exec_session(&mut p);
    let pos = |f: &dyn Fn(&Event) -> bool| p.client_events.iter().position(f).unwrap();
    let eof = pos(&|e| matches!(e, Event::ChannelEof { .. }));
    let status = pos(&|e| matches!(e, Event::ExitStatus { status: 7, .. }));
    let closed = pos(&|e| matches!(e, Event::ChannelClosed { .. }));
    assert!(eof < status && status < closed);
}

#[test]
fn channel_open_failure_is_typed() {
    let mut p = Pair::default_pair(26);
    p.run_until(|p| p.client.session_id().is_some());
    p.client.auth_password("alice", "secret").unwrap();
    p.run_until(|p| p.client_authenticated());
    let ch = p.client.open_channel("x11", &[]).unwrap();
    p.run();
    let failed = p.client_events.iter().find_map(|e| match e {
        Event::ChannelOpenFailed {
            channel,
            reason,
            description,
        } if *channel == ch => Some((*reason, description.clone())),
        _ => None,
    });
    assert_eq!(
        failed,
        Some((
            ssh_proto::ChannelOpenFailureReason::UnknownChannelType,
            "unknown channel type".to_string()
        ))
    );
}

/// Terrapin: an IGNORE slipped in before NEWKEYS must end a strict session.
#[test]
fn strict_kex_rejects_ignore_before_newkeys() {
    use ssh_proto::internal::{msg, Put};
    // An unencrypted IGNORE packet, as a man in the middle would inject it.
    let mut payload = vec![msg::IGNORE];
    payload.put_string(b"x");
    let pad = 8 - ((5 + payload.len()) % 8);
    let pad = if pad < 4 { pad + 8 } else { pad };
    let mut pkt = Vec::new();
    pkt.put_u32((1 + payload.len() + pad) as u32);
    pkt.push(pad as u8);
    pkt.extend_from_slice(&payload);
    pkt.extend(std::iter::repeat_n(0u8, pad));
    // A fresh strict pair whose client sees IGNORE right after the server's KEXINIT.
    let mut q = Pair::default_pair(28);
    // Move the version lines and KEXINITs only.
    let server_out = q.server.transmit().unwrap().to_vec();
    q.server.advance_transmit(server_out.len());
    let vline = server_out.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut stream = server_out[..vline].to_vec();
    stream.extend_from_slice(&server_out[vline..]);
    stream.extend_from_slice(&pkt);
    // The input ends the connection: recv says so.
    assert!(q.client.recv(q.now, &stream).is_err());
    let mut err = None;
    while let Some(e) = q.client.poll_event() {
        if let Event::Disconnected(e) = e {
            err = Some(e);
        }
    }
    let err = err.expect("client must disconnect");
    assert!(err.to_string().contains("strict key exchange"), "{err}");
}

#[test]
fn login_grace_time_disconnects_idle_client() {
    let mut p = Pair::default_pair(31);
    p.run();
    assert!(p.client.poll_timeout().is_none() || !p.client.is_closed());
    let deadline = p.server.poll_timeout().expect("server has a grace timer");
    assert!(deadline > p.now);
    p.advance(std::time::Duration::from_secs(121));
    p.run();
    let e = p.server.error().expect("server gave up");
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(e.to_string().contains("grace"), "{e}");
    let ce = p.client.error().expect("client told");
    assert_eq!(ce.kind(), ErrorKind::PeerDisconnected);
}

#[test]
fn max_auth_tries_disconnects() {
    let mut p = Pair::default_pair(32);
    p.run();
    for _ in 0..6 {
        if p.client.is_closed() {
            break;
        }
        p.client.auth_password("alice", "wrong").unwrap();
        p.run();
    }
    let e = p
        .client
        .error()
        .expect("disconnected after too many failures");
    assert_eq!(e.kind(), ErrorKind::PeerDisconnected);
    assert!(
        e.to_string().contains("Too many authentication failures"),
        "{e}"
    );
}

#[test]
fn keepalives_are_answered_and_a_silent_peer_times_out() {
    let mut sc = server_config(vec![host_key(33)]);
    sc.keepalive_interval = Some(std::time::Duration::from_secs(10));
    sc.keepalive_count_max = 2;
    let mut p = Pair::new(Config::default(), sc, 33);
    p.run();
    p.client.auth_password("alice", "secret").unwrap();
    p.run();
    // The client answers keepalive@openssh.com, so the server stays up.
    for _ in 0..5 {
        p.advance(std::time::Duration::from_secs(11));
        p.run();
    }
    assert!(!p.server.is_closed(), "{:?}", p.server.error());
    // Now the client goes silent: nothing is delivered to it.
    for _ in 0..4 {
        p.now += std::time::Duration::from_secs(11);
        p.server.handle_timeout(p.now);
        while p.server.transmit().is_some() {
            let n = p.server.transmit().unwrap().len();
            p.server.advance_transmit(n);
        }
    }
    let e = p.server.error().expect("server gives up on a silent peer");
    assert_eq!(e.kind(), ErrorKind::Timeout);
}

#[test]
fn client_refuses_keepalive_and_unknown_channel_requests() {
    let mut p = Pair::default_pair(34);
    p.run();
    p.client.auth_password("alice", "secret").unwrap();
    p.run();
    let ch = p.client.open_session().unwrap();
    p.client.exec(ch, "true").unwrap();
    p.run_until(|p| {
        p.client_events
            .iter()
            .any(|e| matches!(e, Event::ChannelOpened { .. }))
    });
    // A server-side keepalive on the channel is refused by the client core itself.
    let sch = p
        .server_events
        .iter()
        .find_map(|e| match e {
            Event::ChannelOpenRequest { channel, .. } => Some(*channel),
            _ => None,
        })
        .unwrap();
    p.server
        .channel_request(sch, "keepalive@openssh.com", true, &[])
        .unwrap();
    p.server
        .channel_request(sch, "x-unknown@example.com", true, &[])
        .unwrap();
    p.run();
    let replies: Vec<bool> = p
        .server_events
        .iter()
        .filter_map(|e| match e {
            Event::ChannelRequestReply { success, .. } => Some(*success),
            _ => None,
        })
        .collect();
    assert_eq!(replies, [false, false]);
}

#[test]
fn auth_banner_reaches_the_client() {
    let mut sc = server_config(vec![host_key(41)]);
    sc.auth_banner = Some("Authorized use only\n".into());
    let mut p = Pair::new(Config::default(), sc, 41);
    p.run();
    p.client.auth_password("alice", "secret").unwrap();
    p.run();
    assert!(p
        .client_events
        .iter()
        .any(|e| matches!(e, Event::AuthBanner(b) if b == "Authorized use only\n")));
    assert!(p.client_authenticated());
}

#[test]
fn password_change_request_round_trip() {
    let mut p = Pair::default_pair(42);
    p.run();
    p.client.auth_password("alice", "expired").unwrap();
    // Drive by hand: the server asks for a change instead of the harness policy.
    for _ in 0..50 {
        let mut any = false;
        while let Some(out) = p.client.transmit() {
            let v = out.to_vec();
            p.client.advance_transmit(v.len());
            p.server.recv(p.now, &v).unwrap();
            any = true;
        }
        while let Some(out) = p.server.transmit() {
            let v = out.to_vec();
            p.server.advance_transmit(v.len());
            p.client.recv(p.now, &v).unwrap();
            any = true;
        }
        while let Some(e) = p.server.poll_event() {
            if let Event::AuthRequest {
                request:
                    AuthRequest::Password {
                        password,
                        new_password,
                    },
                ..
            } = &e
            {
                if password == "expired" && new_password.is_none() {
                    p.server
                        .auth_password_change_request("Password expired, choose a new one")
                        .unwrap();
                } else if password == "expired" && new_password.as_deref() == Some("fresh") {
                    p.server.auth_accept().unwrap();
                } else {
                    p.server.auth_reject().unwrap();
                }
            }
            p.server_events.push(e);
        }
        while let Some(e) = p.client.poll_event() {
            match &e {
                Event::HostKey(_) => p.client.accept_host_key().unwrap(),
                Event::PasswordChangeRequired { prompt } => {
                    assert_eq!(prompt, "Password expired, choose a new one");
                    p.client
                        .auth_change_password("alice", "expired", "fresh")
                        .unwrap();
                }
                _ => {}
            }
            p.client_events.push(e);
            any = true;
        }
        if !any {
            break;
        }
    }
    assert!(p
        .client_events
        .iter()
        .any(|e| matches!(e, Event::PasswordChangeRequired { .. })));
    assert!(p.client_authenticated(), "{:?}", p.client_events);
}

#[test]
fn session_requests_are_parsed_for_the_server() {
    let mut p = Pair::default_pair(43);
    p.run();
    p.client.auth_password("alice", "secret").unwrap();
    p.run();
    let ch = p.client.open_session().unwrap();
    let pty = PtyRequest {
        term: "xterm-256color".into(),
        cols: 132,
        rows: 43,
        width_px: 0,
        height_px: 0,
        modes: vec![(53, 1), (128, 38400)],
    };
    p.client.request_pty(ch, &pty).unwrap();
    p.client.set_env(ch, "LANG", "C.UTF-8").unwrap();
    p.client.window_change(ch, 100, 30, 0, 0).unwrap();
    p.client.signal(ch, "INT").unwrap();
    p.client.subsystem(ch, "sftp").unwrap();
    p.client.shell(ch).unwrap();
    p.run();
    let reqs: Vec<ChannelRequest> = p
        .server_events
        .iter()
        .filter_map(|e| match e {
            Event::ChannelRequest { request, .. } => Some(request.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(
        reqs,
        vec![
            ChannelRequest::Pty(pty),
            ChannelRequest::Env {
                name: "LANG".into(),
                value: "C.UTF-8".into()
            },
            ChannelRequest::WindowChange {
                cols: 100,
                rows: 30,
                width_px: 0,
                height_px: 0
            },
            ChannelRequest::Signal { name: "INT".into() },
            ChannelRequest::Subsystem {
                name: "sftp".into()
            },
            ChannelRequest::Shell,
        ]
    );
    // pty-req, subsystem and shell wanted replies; the harness said yes to each, in order.
    let replies = p
        .client_events
        .iter()
        .filter(|e| matches!(e, Event::ChannelRequestReply { success: true, .. }))
        .count();
    assert_eq!(replies, 3);
}

#[test]
fn client_accepts_lines_before_the_server_version() {
    let now = std::time::Instant::now();
    let mut c = Connection::client(std::sync::Arc::new(Config::default()), rng(44), now).unwrap();
    c.recv(
        now,
        b"Welcome to the test host\r\nsecond line\nSSH-2.0-Other_1.0\r\n",
    )
    .unwrap();
    assert_eq!(
        c.pre_banner_lines(),
        ["Welcome to the test host", "second line"]
    );
    assert_eq!(c.peer_version(), Some("SSH-2.0-Other_1.0"));
    assert!(!c.is_closed());
    // A server does not accept that from a client.
    let mut s = Connection::server(
        std::sync::Arc::new(server_config(vec![host_key(45)])),
        rng(45),
        now,
    )
    .unwrap();
    assert!(s.recv(now, b"hello\r\n").is_err());
    assert!(s.is_closed());
    assert!(
        s.error().unwrap().to_string().contains("version"),
        "{}",
        s.error().unwrap()
    );
}

#[test]
fn request_reply_goes_out_before_the_commands_output() {
    let mut p = Pair::default_pair(51);
    p.policy.manual_requests = true;
    p.run();
    p.client.auth_password("alice", "secret").unwrap();
    p.run();
    let ch = p.client.open_session().unwrap();
    p.client.exec(ch, "true").unwrap();
    p.run();
    let sch = p
        .server_events
        .iter()
        .find_map(|e| match e {
            Event::ChannelRequest {
                channel,
                request: ChannelRequest::Exec { .. },
                ..
            } => Some(*channel),
            _ => None,
        })
        .expect("exec reached the server");
    // The command finishes before the application answers the request:
    // nothing it sends may overtake the reply.
    assert_eq!(p.server.send_window(sch), 0);
    assert_eq!(p.server.send_data(sch, b"early").unwrap(), 0);
    p.server.send_exit_status(sch, 3).unwrap();
    p.server.send_eof(sch).unwrap();
    p.server.close_channel(sch).unwrap();
    p.run();
    assert!(
        !p.client_events
            .iter()
            .any(|e| matches!(e, Event::ExitStatus { .. } | Event::ChannelEof { .. })),
        "output overtook the reply: {:?}",
        p.client_events
    );
    p.server.channel_request_reply(sch, true).unwrap();
    p.run();
    let order: Vec<&str> = p
        .client_events
        .iter()
        .filter_map(|e| match e {
            Event::ChannelRequestReply { success: true, .. } => Some("reply"),
            Event::ExitStatus { status: 3, .. } => Some("exit"),
            Event::ChannelEof { .. } => Some("eof"),
            Event::ChannelClosed { .. } => Some("closed"),
            _ => None,
        })
        .collect();
    assert_eq!(order, ["reply", "exit", "eof", "closed"]);
}

#[test]
fn global_requests_are_answered_by_the_application_in_order() {
    let mut p = Pair::default_pair(52);
    p.policy.manual_requests = true;
    p.run();
    p.client.auth_password("alice", "secret").unwrap();
    p.run();
    p.client
        .global_request("first@example.com", true, b"a")
        .unwrap();
    p.client
        .global_request("keepalive@openssh.com", true, &[])
        .unwrap();
    p.client
        .global_request("third@example.com", true, b"c")
        .unwrap();
    p.run();
    let seen: Vec<(String, Vec<u8>)> = p
        .server_events
        .iter()
        .filter_map(|e| match e {
            Event::GlobalRequest {
                name,
                want_reply: true,
                data,
            } => Some((name.clone(), data.clone())),
            _ => None,
        })
        .collect();
    // The keepalive is the core's to answer; the others wait for us.
    assert_eq!(
        seen,
        [
            ("first@example.com".to_string(), b"a".to_vec()),
            ("third@example.com".to_string(), b"c".to_vec())
        ]
    );
    assert!(!p
        .client_events
        .iter()
        .any(|e| matches!(e, Event::GlobalRequestReply { .. })));
    p.server
        .global_request_reply(true, b"\x00\x00\x00\x07")
        .unwrap();
    p.server.global_request_reply(false, &[]).unwrap();
    assert_eq!(
        p.server.global_request_reply(true, &[]).unwrap_err().kind(),
        ErrorKind::Usage
    );
    p.run();
    let replies: Vec<(bool, Vec<u8>)> = p
        .client_events
        .iter()
        .filter_map(|e| match e {
            Event::GlobalRequestReply { success, data, .. } => Some((*success, data.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        replies,
        [(true, vec![0, 0, 0, 7]), (false, vec![]), (false, vec![])]
    );
}

#[test]
fn unanswered_channel_requests_are_capped() {
    let mut p = Pair::default_pair(53);
    p.policy.manual_requests = true;
    p.run();
    p.client.auth_password("alice", "secret").unwrap();
    p.run();
    let ch = p.client.open_session().unwrap();
    p.run();
    // One more than the cap, all wanting replies, none answered yet.
    for i in 0..=ssh_proto::internal::MAX_PENDING_CHANNEL_REQUESTS {
        p.client
            .channel_request(ch, &format!("x-{i}@example.com"), true, &[])
            .unwrap();
    }
    // Nobody polls the server's events, so no request is answered: its
    // queue fills and the connection ends with a limit error.
    let mut steps = 0;
    while p.server.error().is_none() && steps < 1000 {
        let moved = p.client.transmit().map(<[u8]>::to_vec);
        if let Some(b) = moved {
            let n = p.server.recv(p.now, &b).unwrap_or(b.len());
            p.client.advance_transmit(n);
        }
        steps += 1;
    }
    let e = p.server.error().expect("the server gave up").clone();
    assert_eq!(e.kind(), ErrorKind::Limit, "{e}");
    assert!(e.to_string().contains("await a reply"), "{e}");
}
