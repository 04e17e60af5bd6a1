//! Property test over whole sessions: random algorithm choices and random
//! chunkings of the byte stream. For each case a client and a server
//! `Connection` run against each other in memory: key exchange, password
//! authentication, an exec with stdout, stderr and exit status 7.
//!
//! The cleartext part of both byte streams (everything up to and including
//! each side's NEWKEYS) is also decoded with the typed `Message` codec: every
//! packet the core wrote must decode with the right kex flavor and re-encode
//! to the very same bytes.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

use proptest::prelude::*;
use proptest::sample::select;
use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use ssh_proto::algorithms::{CIPHER_ALL, HOST_KEY_ALL, KEX_ALL, MAC_ALL};
use ssh_proto::internal::msg;
use ssh_proto::internal::{names, Put};
use ssh_proto::internal::{KexFlavor, KexInit, Message};
use ssh_proto::*;

// ------------------------------------------------------------- host keys

struct HostKeys {
    keys: Vec<Arc<PrivateKey>>,
    /// False when `ssh-keygen` is missing: only ed25519 is available.
    keygen: bool,
}

fn host_keys() -> &'static HostKeys {
    static KEYS: OnceLock<HostKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let seed = [7u8; 32];
        let mut keys = vec![Arc::new(PrivateKey::generate_ed25519(
            &mut ChaCha20Rng::from_seed(seed),
        ))];
        let dir: PathBuf =
            std::env::temp_dir().join(format!("ssh-proto-proptest-pair-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut keygen = true;
        // RSA at 2048 bits: signing is the slow part of an RSA case.
        for (name, t, bits) in [
            ("p256", "ecdsa", "256"),
            ("p384", "ecdsa", "384"),
            ("p521", "ecdsa", "521"),
            ("rsa", "rsa", "2048"),
        ] {
            let path = dir.join(name);
            let status = Command::new("ssh-keygen")
                .args(["-q", "-t", t, "-b", bits, "-N", "", "-C", "", "-f"])
                .arg(&path)
                .status();
            match status {
                Ok(s) if s.success() => {
                    let data = std::fs::read(&path).expect("read generated key");
                    keys.push(Arc::new(
                        PrivateKey::from_bytes(&data, None).expect("load generated key"),
                    ));
                }
                _ => {
                    keygen = false;
                    break;
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
        if !keygen {
            eprintln!("ssh-keygen unavailable: only ssh-ed25519 host keys are exercised");
        }
        HostKeys { keys, keygen }
    })
}

fn key_for(alg: &str) -> Option<&'static Arc<PrivateKey>> {
    host_keys()
        .keys
        .iter()
        .find(|k| k.public_key().sig_algorithms().contains(&alg))
}

// ----------------------------------------------------------------- cases

#[derive(Clone, Debug)]
struct Case {
    kex: &'static str,
    host_key: &'static str,
    cipher: &'static str,
    mac: &'static str,
    compression: &'static str,
    max_chunk: usize,
    /// 0: no rekey; 1: the client rekeys right after authentication (its
    /// channel open and exec are held back until the rekey ends); 2: the
    /// server rekeys when it has authenticated the client; 3: both (their
    /// KEXINITs may cross).
    rekey: u8,
    seed: u64,
}

fn host_key_alg() -> impl Strategy<Value = &'static str> {
    // RSA signing is slow: RSA cases are rarer.
    prop_oneof![
        4 => Just("ssh-ed25519"),
        2 => Just("ecdsa-sha2-nistp256"),
        2 => Just("ecdsa-sha2-nistp384"),
        2 => Just("ecdsa-sha2-nistp521"),
        1 => Just("rsa-sha2-512"),
        1 => Just("rsa-sha2-256"),
        1 => Just("ssh-rsa"),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    (
        select(KEX_ALL),
        host_key_alg(),
        select(CIPHER_ALL),
        select(MAC_ALL),
        select(&["none", "zlib", "zlib@openssh.com"][..]),
        1usize..=4096,
        prop_oneof![3 => Just(0u8), 1 => Just(1u8), 1 => Just(2u8), 1 => Just(3u8)],
        any::<u64>(),
    )
        .prop_map(
            |(kex, host_key, cipher, mac, compression, max_chunk, rekey, seed)| Case {
                kex,
                host_key,
                cipher,
                mac,
                compression,
                max_chunk,
                rekey,
                seed,
            },
        )
}

fn is_aead(cipher: &str) -> bool {
    cipher.starts_with("chacha20-poly1305") || cipher.contains("-gcm")
}

// --------------------------------------------------------------- session

/// Moves pending output of `from` to `to` in random chunks of at most
/// `max_chunk` bytes, appending what `to` took to `tap`.
fn pump(
    from: &mut Connection,
    to: &mut Connection,
    now: Instant,
    chunker: &mut ChaCha20Rng,
    max_chunk: usize,
    tap: &mut Vec<u8>,
) -> usize {
    let mut moved = 0;
    while let Some(out) = from.transmit() {
        let n = out.len().min(1 + chunker.next_u32() as usize % max_chunk);
        let chunk = out[..n].to_vec();
        let taken = to.recv(now, &chunk).unwrap_or(0);
        tap.extend_from_slice(&chunk[..taken]);
        from.advance_transmit(taken);
        moved += taken;
        if taken < n {
            break;
        }
    }
    moved
}

#[derive(Default)]
struct Outcome {
    host_key: Option<PublicKey>,
    authenticated: bool,
    channel: Option<ChannelId>,
    out: Vec<u8>,
    err: Vec<u8>,
    exit: Option<u32>,
    closed: bool,
    c2s: Vec<u8>,
    s2c: Vec<u8>,
}

fn read_all(c: &mut Connection, ch: ChannelId, stream: Stream, into: &mut Vec<u8>) {
    let mut buf = [0u8; 4096];
    loop {
        let n = c.channel_read(ch, stream, &mut buf).expect("channel_read");
        if n == 0 {
            break;
        }
        into.extend_from_slice(&buf[..n]);
    }
}

fn run_session(case: &Case) -> Result<(Connection, Connection, Outcome), TestCaseError> {
    let mut cc = Config::default();
    cc.transport.algorithms = Algorithms::all();
    let a = &mut cc.transport.algorithms;
    a.kex = vec![case.kex.into()];
    a.host_key = vec![case.host_key.into()];
    a.cipher = vec![case.cipher.into()];
    a.mac = vec![case.mac.into()];
    a.compression = vec![case.compression.into()];
    let mut sc = Config::default();
    sc.transport.algorithms = Algorithms::all();
    sc.transport.host_keys = host_keys().keys.clone();

    let now = Instant::now();
    let seed = case.seed;
    let mut client = Connection::client(
        Arc::new(cc),
        Box::new(ChaCha20Rng::seed_from_u64(seed)),
        now,
    )
    .expect("client");
    let mut server = Connection::server(
        Arc::new(sc),
        Box::new(ChaCha20Rng::seed_from_u64(seed ^ 0x5eed)),
        now,
    )
    .expect("server");
    let mut chunker = ChaCha20Rng::seed_from_u64(seed.wrapping_add(7));
    let mut o = Outcome::default();
    let mut kex_done = false;
    let mut asked_auth = false;
    let mut idle = 0;
    let mut log: Vec<String> = Vec::new();

    for _ in 0..1_000_000 {
        let finished = o.closed && o.exit.is_some();
        if finished && idle > 0 {
            // Done, and nothing left in flight either way.
            break;
        }
        let a = pump(
            &mut client,
            &mut server,
            now,
            &mut chunker,
            case.max_chunk,
            &mut o.c2s,
        );
        let b = pump(
            &mut server,
            &mut client,
            now,
            &mut chunker,
            case.max_chunk,
            &mut o.s2c,
        );
        let mut any = a + b > 0;
        while let Some(e) = client.poll_event() {
            any = true;
            log.push(format!("client: {e:?}"));
            match e {
                Event::HostKey(k) => {
                    o.host_key = Some(k);
                    client.accept_host_key().expect("accept host key");
                }
                Event::KexDone(_) => kex_done = true,
                Event::AuthSuccess => {
                    o.authenticated = true;
                    if case.rekey & 1 != 0 {
                        client.rekey().expect("client rekey");
                    }
                    let ch = client.open_session().expect("open session");
                    client
                        .exec(ch, "echo out; echo err >&2; exit 7")
                        .expect("exec");
                    o.channel = Some(ch);
                }
                Event::ChannelData { channel, stream } => {
                    let into = if stream == Stream::Stdout {
                        &mut o.out
                    } else {
                        &mut o.err
                    };
                    read_all(&mut client, channel, stream, into);
                }
                Event::ExitStatus { status, .. } => o.exit = Some(status),
                Event::ChannelClosed { channel } => {
                    read_all(&mut client, channel, Stream::Stdout, &mut o.out);
                    read_all(&mut client, channel, Stream::Stderr, &mut o.err);
                    o.closed = true;
                }
                Event::Disconnected(e) => {
                    return Err(TestCaseError::fail(format!(
                        "client disconnected: {e}; log: {log:#?}"
                    )));
                }
                _ => {}
            }
        }
        if kex_done && !asked_auth {
            asked_auth = true;
            client
                .auth_password("alice", "secret")
                .expect("auth_password");
            any = true;
        }
        while let Some(e) = server.poll_event() {
            any = true;
            log.push(format!("server: {e:?}"));
            match e {
                Event::AuthRequest {
                    user,
                    request: AuthRequest::Password { password, .. },
                } => {
                    if user == "alice" && password == "secret" {
                        server.auth_accept().expect("auth_accept");
                    } else {
                        server.auth_reject().expect("auth_reject");
                    }
                }
                Event::AuthRequest { .. } => server.auth_reject().expect("auth_reject"),
                Event::Authenticated { .. } if case.rekey & 2 != 0 => {
                    server.rekey().expect("server rekey")
                }
                Event::ChannelOpenRequest { channel, kind, .. } => {
                    if kind == "session" {
                        server.accept_channel(channel).expect("accept_channel");
                    } else {
                        server
                            .reject_channel(
                                channel,
                                ssh_proto::ChannelOpenFailureReason::UnknownChannelType,
                                "unknown channel type",
                            )
                            .expect("reject_channel");
                    }
                }
                Event::ChannelRequest {
                    channel,
                    request: ChannelRequest::Exec { .. },
                    want_reply,
                } => {
                    if want_reply {
                        server.channel_request_reply(channel, true).expect("reply");
                    }
                    let n = server.send_data(channel, b"out\n").expect("send_data");
                    prop_assert_eq!(n, 4);
                    let n = server.send_stderr(channel, b"err\n").expect("send_stderr");
                    prop_assert_eq!(n, 4);
                    server.send_eof(channel).expect("send_eof");
                    server.send_exit_status(channel, 7).expect("exit status");
                    server.close_channel(channel).expect("close");
                }
                Event::ChannelRequest {
                    channel,
                    want_reply: true,
                    ..
                } => {
                    server.channel_request_reply(channel, false).expect("reply");
                }
                Event::Disconnected(e) => {
                    return Err(TestCaseError::fail(format!(
                        "server disconnected: {e}; log: {log:#?}"
                    )));
                }
                _ => {}
            }
        }
        if any {
            idle = 0;
        } else {
            idle += 1;
            if idle > 3 && !finished {
                return Err(TestCaseError::fail(format!(
                    "session stalled; log: {log:#?}"
                )));
            }
        }
    }
    Ok((client, server, o))
}

// ------------------------------------------------- cleartext kex packets

/// The payloads of the unencrypted packets at the start of one direction of
/// the stream: after the version line, up to and including NEWKEYS.
fn cleartext_payloads(stream: &[u8]) -> Result<Vec<&[u8]>, TestCaseError> {
    let nl = stream
        .windows(2)
        .position(|w| w == b"\r\n")
        .ok_or_else(|| TestCaseError::fail("no version line"))?;
    prop_assert!(stream.starts_with(b"SSH-2.0-"));
    let mut at = nl + 2;
    let mut out = Vec::new();
    loop {
        let head = stream
            .get(at..at + 5)
            .ok_or_else(|| TestCaseError::fail("stream ends inside cleartext packets"))?;
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let pad = head[4] as usize;
        prop_assert!(
            pad >= 4 && pad < len && (4 + len) & 7 == 0,
            "bad cleartext framing len {} pad {}",
            len,
            pad
        );
        let payload = stream
            .get(at + 5..at + 4 + len - pad)
            .ok_or_else(|| TestCaseError::fail("truncated cleartext packet"))?;
        out.push(payload);
        at += 4 + len;
        if payload.first() == Some(&msg::NEWKEYS) {
            return Ok(out);
        }
        prop_assert!(
            out.len() < 8,
            "no NEWKEYS among the first cleartext packets"
        );
    }
}

/// Decodes every cleartext packet with the typed codec (it must re-encode to
/// the same bytes) and checks it is the message the core should have sent.
fn check_kex_stream(
    case: &Case,
    client_side: bool,
    stream: &[u8],
    host_key_blob: &[u8],
) -> Result<(), TestCaseError> {
    let flavor =
        KexFlavor::for_kex(case.kex).ok_or_else(|| TestCaseError::fail("kex has no flavor"))?;
    let payloads = cleartext_payloads(stream)?;
    let mut msgs = Vec::new();
    for p in &payloads {
        let m = Message::decode_kex(p, flavor);
        prop_assert!(
            m.is_ok(),
            "core's packet {:02x?} does not decode: {:?}",
            &p[..p.len().min(32)],
            m
        );
        let m = m.unwrap();
        prop_assert_eq!(
            &m.to_vec()[..],
            *p,
            "re-encoding {:?} differs from the core's bytes",
            m
        );
        msgs.push(m);
    }
    let side = if client_side { "client" } else { "server" };
    let kexinit = match msgs.first() {
        Some(Message::KexInit(k)) => *k,
        other => {
            return Err(TestCaseError::fail(format!(
                "{side} did not start with KEXINIT: {other:?}"
            )))
        }
    };
    prop_assert!(!kexinit.first_kex_packet_follows);
    prop_assert_eq!(kexinit.reserved, 0);
    prop_assert_eq!(kexinit.languages_c2s, "");
    prop_assert_eq!(kexinit.languages_s2c, "");
    if client_side {
        prop_assert_eq!(
            kexinit.kex_algorithms,
            format!("{},ext-info-c,kex-strict-c-v00@openssh.com", case.kex)
        );
        prop_assert_eq!(kexinit.server_host_key_algorithms, case.host_key);
        prop_assert_eq!(kexinit.encryption_c2s, case.cipher);
        prop_assert_eq!(kexinit.encryption_s2c, case.cipher);
        prop_assert_eq!(kexinit.mac_c2s, case.mac);
        prop_assert_eq!(kexinit.mac_s2c, case.mac);
        prop_assert_eq!(kexinit.compression_c2s, case.compression);
        prop_assert_eq!(kexinit.compression_s2c, case.compression);
    } else {
        prop_assert_eq!(
            kexinit.kex_algorithms,
            format!(
                "{},ext-info-s,kex-strict-s-v00@openssh.com",
                KEX_ALL.join(",")
            )
        );
        let offered: Vec<&str> = names(kexinit.server_host_key_algorithms).collect();
        prop_assert!(offered.contains(&case.host_key));
        prop_assert!(
            offered.iter().all(|a| key_for(a).is_some()),
            "server offers a host key algorithm it has no key for"
        );
        prop_assert_eq!(kexinit.encryption_c2s, CIPHER_ALL.join(","));
        prop_assert_eq!(kexinit.mac_s2c, MAC_ALL.join(","));
    }
    let body: Vec<&Message<'_>> = msgs[1..msgs.len() - 1].iter().collect();
    prop_assert_eq!(msgs.last(), Some(&Message::NewKeys));
    match (client_side, flavor, &body[..]) {
        (true, KexFlavor::Ecdh, [Message::KexEcdhInit { q_c }]) => prop_assert!(!q_c.is_empty()),
        (true, KexFlavor::Dh, [Message::KexDhInit { e }]) => prop_assert!(e.len() >= 64),
        (
            true,
            KexFlavor::DhGex,
            [Message::KexDhGexRequest { min, n, max }, Message::KexDhGexInit { e }],
        ) => {
            prop_assert_eq!((*min, *n, *max), (2048, 3072, 8192));
            prop_assert!(e.len() >= 64);
        }
        (
            false,
            KexFlavor::Ecdh,
            [Message::KexEcdhReply {
                k_s,
                q_s,
                signature,
            }],
        ) => {
            prop_assert_eq!(*k_s, host_key_blob);
            prop_assert!(!q_s.is_empty() && !signature.is_empty());
        }
        (false, KexFlavor::Dh, [Message::KexDhReply { k_s, f, signature }]) => {
            prop_assert_eq!(*k_s, host_key_blob);
            prop_assert!(f.len() >= 64 && !signature.is_empty());
        }
        (
            false,
            KexFlavor::DhGex,
            [Message::KexDhGexGroup { p, g }, Message::KexDhGexReply { k_s, f, signature }],
        ) => {
            prop_assert!(!p.is_empty());
            let bits = p.len() * 8 - p[0].leading_zeros() as usize;
            prop_assert!((2048..=8192).contains(&bits), "group of {} bits", bits);
            prop_assert!(!g.is_empty());
            prop_assert_eq!(*k_s, host_key_blob);
            prop_assert!(!f.is_empty() && !signature.is_empty());
        }
        _ => {
            return Err(TestCaseError::fail(format!(
                "{side}: unexpected kex messages for {}: {body:?}",
                case.kex
            )))
        }
    }
    // The signature names the negotiated host key algorithm.
    if !client_side {
        let sig = match body.last() {
            Some(Message::KexEcdhReply { signature, .. })
            | Some(Message::KexDhReply { signature, .. })
            | Some(Message::KexDhGexReply { signature, .. }) => *signature,
            _ => &[][..],
        };
        let mut r = ssh_proto::internal::Reader::new(sig);
        prop_assert_eq!(r.utf8().ok(), Some(case.host_key));
    }
    Ok(())
}

// ------------------------------------------------------------------ test

/// `PROPTEST_CASES` from the environment (for long local runs), else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(64), ..ProptestConfig::default() })]

    #[test]
    fn random_algorithms_and_chunking(case in case()) {
        if !host_keys().keygen {
            prop_assume!(case.host_key == "ssh-ed25519");
        }
        let (client, server, o) = run_session(&case)?;
        prop_assert!(o.authenticated);
        prop_assert!(client.is_authenticated() && server.is_authenticated());
        prop_assert_eq!(&o.out[..], b"out\n");
        prop_assert_eq!(&o.err[..], b"err\n");
        prop_assert_eq!(o.exit, Some(7));
        prop_assert!(o.channel.is_some());

        let aead = is_aead(case.cipher);
        prop_assert_eq!(
            ssh_proto::internal::cipher_spec(case.cipher).map(|s| s.aead),
            Some(aead)
        );
        let mac = if aead { None } else { Some(case.mac.to_string()) };
        let want = Negotiated {
            kex: case.kex.into(),
            host_key: case.host_key.into(),
            cipher_c2s: case.cipher.into(),
            cipher_s2c: case.cipher.into(),
            mac_c2s: mac.clone(),
            mac_s2c: mac,
            compression_c2s: case.compression.into(),
            compression_s2c: case.compression.into(),
        };
        prop_assert_eq!(client.negotiated(), Some(&want));
        prop_assert_eq!(server.negotiated(), Some(&want));
        prop_assert!(client.strict_kex() && server.strict_kex());
        let kexes = if case.rekey == 0 { 1 } else { 2 };
        prop_assert_eq!(client.kex_count(), kexes);
        prop_assert_eq!(server.kex_count(), kexes);

        let key = key_for(case.host_key).expect("host key for the algorithm").public_key();
        prop_assert_eq!(o.host_key.as_ref(), Some(&key));
        prop_assert_eq!(client.host_key(), Some(&key));
        let blob = key.to_blob();
        check_kex_stream(&case, true, &o.c2s, &blob)?;
        check_kex_stream(&case, false, &o.s2c, &blob)?;
    }
}

/// Every algorithm name the test draws from is one this crate knows, and
/// every kex has a typed-codec flavor.
#[test]
fn algorithm_lists_are_covered() {
    for k in KEX_ALL {
        assert!(KexFlavor::for_kex(k).is_some(), "{k}");
    }
    for h in HOST_KEY_ALL {
        assert!(
            [
                "ssh-ed25519",
                "ecdsa-sha2-nistp256",
                "ecdsa-sha2-nistp384",
                "ecdsa-sha2-nistp521",
                "rsa-sha2-512",
                "rsa-sha2-256",
                "ssh-rsa"
            ]
            .contains(h),
            "host key algorithm {h} is not drawn by host_key_alg()"
        );
    }
}

// ------------------------------------------- a raw peer speaking cleartext

/// Frames a payload as an unencrypted packet (before the first NEWKEYS).
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut pad = 8 - (5 + payload.len()) % 8;
    if pad < 4 {
        pad += 8;
    }
    let mut v = Vec::with_capacity(5 + payload.len() + pad);
    v.put_u32((1 + payload.len() + pad) as u32);
    v.push(pad as u8);
    v.extend_from_slice(payload);
    v.resize(v.len() + pad, 0);
    v
}

fn kexinit(kex: &str, host_key: &str, follows: bool) -> Vec<u8> {
    Message::KexInit(KexInit {
        cookie: &[0x11; 16],
        kex_algorithms: kex,
        server_host_key_algorithms: host_key,
        encryption_c2s: "aes128-ctr",
        encryption_s2c: "aes128-ctr",
        mac_c2s: "hmac-sha2-256",
        mac_s2c: "hmac-sha2-256",
        compression_c2s: "none",
        compression_s2c: "none",
        languages_c2s: "",
        languages_s2c: "",
        first_kex_packet_follows: follows,
        reserved: 0,
    })
    .to_vec()
}

/// Feeds `input` to `conn` in chunks of at most `max_chunk` bytes and
/// answers a host key question with yes; returns the connection's output.
fn feed(conn: &mut Connection, input: &[u8], max_chunk: usize) -> Vec<u8> {
    let now = Instant::now();
    for chunk in input.chunks(max_chunk.max(1)) {
        let _ = conn.recv(now, chunk);
        while let Some(e) = conn.poll_event() {
            if let Event::HostKey(_) = e {
                let _ = conn.accept_host_key();
            }
        }
    }
    let mut out = Vec::new();
    conn.take_transmit(&mut out);
    out
}

/// The cleartext payloads in a connection's output (after its version line),
/// up to and including NEWKEYS.
fn output_payloads(out: &[u8]) -> Vec<Vec<u8>> {
    let mut at = out
        .windows(2)
        .position(|w| w == b"\r\n")
        .map_or(0, |i| i + 2);
    let mut v = Vec::new();
    while let Some(head) = out.get(at..at + 5) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let Some(p) = out.get(at + 5..(at + 4 + len).saturating_sub(head[4] as usize)) else {
            break;
        };
        v.push(p.to_vec());
        at += 4 + len;
        if p.first() == Some(&msg::NEWKEYS) {
            break;
        }
    }
    v
}

fn raw_server() -> Connection {
    let mut sc = Config::default();
    sc.transport.algorithms = Algorithms::all();
    sc.transport.host_keys = host_keys().keys.clone();
    Connection::server(
        Arc::new(sc),
        Box::new(ChaCha20Rng::seed_from_u64(1)),
        Instant::now(),
    )
    .expect("server")
}

fn raw_client(kex: &str, host_key: &str) -> Connection {
    let mut cc = Config::default();
    cc.transport.algorithms = Algorithms::all();
    cc.transport.algorithms.kex = vec![kex.into()];
    cc.transport.algorithms.host_key = vec![host_key.into()];
    Connection::client(
        Arc::new(cc),
        Box::new(ChaCha20Rng::seed_from_u64(2)),
        Instant::now(),
    )
    .expect("client")
}

/// Lengths of the client's and the server's public values for string-valued
/// key exchanges.
fn public_lens(kex: &str) -> (usize, usize) {
    match kex {
        k if k.starts_with("curve25519") => (32, 32),
        "ecdh-sha2-nistp256" => (65, 65),
        "ecdh-sha2-nistp384" => (97, 97),
        "ecdh-sha2-nistp521" => (133, 133),
        k if k.starts_with("mlkem768") => (1184 + 32, 1088 + 32),
        k if k.starts_with("sntrup761") => (1158 + 32, 1039 + 32),
        _ => (256, 256),
    }
}

/// A public value: random bytes of the right length, of a wrong length, or
/// a degenerate value.
fn public_value(right_len: usize) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => proptest::collection::vec(any::<u8>(), right_len),
        1 => proptest::collection::vec(any::<u8>(), 0..2 * right_len + 2),
        1 => Just(vec![0u8; right_len]),
        1 => Just(vec![0xffu8; right_len]),
        1 => Just(vec![1u8]),
    ]
}

fn kex_and_public(client_side: bool) -> impl Strategy<Value = (&'static str, Vec<u8>)> {
    select(KEX_ALL).prop_flat_map(move |k| {
        let (c, s) = public_lens(k);
        (Just(k), public_value(if client_side { c } else { s }))
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(128), ..ProptestConfig::default() })]

    /// A server fed a client KEXINIT and a garbage kex message: no panic; it
    /// either fails with an error or answers with a reply that decodes.
    #[test]
    fn server_survives_garbage_kex_init(
        (kex, q_c) in kex_and_public(true),
        strict in any::<bool>(),
        follows in any::<bool>(),
        gex in (0u32..10_000, 0u32..10_000, 0u32..10_000),
        max_chunk in 1usize..2048,
    ) {
        let flavor = KexFlavor::for_kex(kex).unwrap();
        let mut list = kex.to_string();
        if strict {
            list.push_str(",kex-strict-c-v00@openssh.com");
        }
        let mut input = b"SSH-2.0-raw\r\n".to_vec();
        input.extend(frame(&kexinit(&list, "ssh-ed25519", follows)));
        let init = match flavor {
            KexFlavor::Ecdh => Message::KexEcdhInit { q_c: &q_c },
            KexFlavor::Dh => Message::KexDhInit { e: &q_c },
            KexFlavor::DhGex => {
                let (min, n, max) = gex;
                input.extend(frame(&Message::KexDhGexRequest { min, n, max }.to_vec()));
                Message::KexDhGexInit { e: &q_c }
            }
        };
        input.extend(frame(&init.to_vec()));
        let mut server = raw_server();
        let out = feed(&mut server, &input, max_chunk);
        let replies = output_payloads(&out);
        prop_assert!(matches!(replies.first().map(|p| p[0]), Some(msg::KEXINIT)));
        for p in &replies {
            let m = Message::decode_kex(p, flavor);
            prop_assert!(m.is_ok(), "server sent an undecodable {:?}", m);
            prop_assert_eq!(m.unwrap().to_vec(), p.clone());
        }
        if server.error().is_none() && !follows {
            // No error: the init was accepted and answered, NEWKEYS included.
            let last = replies.last().map(|p| p[0]);
            prop_assert_eq!(last, Some(msg::NEWKEYS), "server neither failed nor answered");
        }
    }

    /// A client fed a server KEXINIT and a garbage reply (a real host key
    /// blob, a random public value, a random signature): no panic, and the
    /// client never accepts it.
    #[test]
    fn client_survives_garbage_kex_reply(
        (kex, q_s) in kex_and_public(false),
        host_key in host_key_alg(),
        sig in proptest::collection::vec(any::<u8>(), 0..600),
        wrap_sig in any::<bool>(),
        real_blob in any::<bool>(),
        max_chunk in 1usize..2048,
    ) {
        let flavor = KexFlavor::for_kex(kex).unwrap();
        if !host_keys().keygen {
            prop_assume!(host_key == "ssh-ed25519");
        }
        let blob = if real_blob { key_for(host_key).unwrap().public_key().to_blob() } else { sig.clone() };
        let mut signature = Vec::new();
        if wrap_sig {
            signature.put_str(host_key);
            signature.put_string(&sig);
        } else {
            signature = sig.clone();
        }
        let mut input = b"SSH-2.0-raw\r\n".to_vec();
        input.extend(frame(&kexinit(&format!("{kex},kex-strict-s-v00@openssh.com"), host_key, false)));
        let group = ssh_proto::internal::gex_choose(2048, 3072, 8192).unwrap();
        let reply = match flavor {
            KexFlavor::Ecdh => Message::KexEcdhReply { k_s: &blob, q_s: &q_s, signature: &signature },
            KexFlavor::Dh => Message::KexDhReply { k_s: &blob, f: &q_s, signature: &signature },
            KexFlavor::DhGex => {
                input.extend(frame(&Message::KexDhGexGroup { p: group.p, g: &[group.g] }.to_vec()));
                Message::KexDhGexReply { k_s: &blob, f: &q_s, signature: &signature }
            }
        };
        input.extend(frame(&reply.to_vec()));
        let mut client = raw_client(kex, host_key);
        let out = feed(&mut client, &input, max_chunk);
        prop_assert!(client.error().is_some(), "client accepted a garbage key exchange reply");
        prop_assert!(client.session_id().is_none());
        for p in output_payloads(&out) {
            prop_assert_ne!(p[0], msg::NEWKEYS, "client sent NEWKEYS after a garbage reply");
        }
    }
}

/// RFC 4419 §3: the client asks for min <= n <= max. The core's check
/// `n > max.max(n)` (transport/mod.rs, ServerAwaitGexRequest) can never be
/// true, so a request with n outside [min, max] is answered with a group.
#[test]
fn gex_request_with_n_outside_min_max_is_refused() {
    for (min, n, max) in [(2048, 9000, 4096), (3072, 1024, 8192)] {
        let mut input = b"SSH-2.0-raw\r\n".to_vec();
        input.extend(frame(&kexinit(
            "diffie-hellman-group-exchange-sha256",
            "ssh-ed25519",
            false,
        )));
        input.extend(frame(&Message::KexDhGexRequest { min, n, max }.to_vec()));
        let mut server = raw_server();
        let out = feed(&mut server, &input, 4096);
        let sent: Vec<u8> = output_payloads(&out).iter().map(|p| p[0]).collect();
        assert!(
            server.error().is_some(),
            "{min}/{n}/{max} accepted; server sent {sent:?}"
        );
    }
}
