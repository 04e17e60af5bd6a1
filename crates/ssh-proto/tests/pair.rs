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
    for (i, k) in ssh_proto::transport::algorithms::KEX_ALL.iter().enumerate() {
        let p = one_alg(100 + i as u64, |a| a.kex = vec![k.to_string()]);
        assert_eq!(&p.client.negotiated().unwrap().kex, k);
    }
}

#[test]
fn every_cipher_and_mac() {
    let ciphers = ssh_proto::transport::algorithms::CIPHER_ALL;
    for (i, c) in ciphers.iter().enumerate() {
        let p = one_alg(200 + i as u64, |a| a.cipher = vec![c.to_string()]);
        assert_eq!(&p.client.negotiated().unwrap().cipher_c2s, c);
    }
    for (i, m) in ssh_proto::transport::algorithms::MAC_ALL.iter().enumerate() {
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
