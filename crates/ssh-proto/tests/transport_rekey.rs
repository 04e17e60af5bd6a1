//! Rekeying at the transport level, with two bare `Transport`s in memory and
//! the bytes between them recorded: what each NEWKEYS does to the
//! compression streams, as a third reader (modelled on OpenSSH's packet
//! code) sees them on the wire, and the packet limits that keep a sequence
//! number (the nonce of chacha20-poly1305 and of the MACs) from repeating
//! under one set of keys.

mod common;

use std::time::Instant;

use common::*;
use ssh_proto::internal::Decompressor;
use ssh_proto::internal::{msg, Put};
use ssh_proto::internal::{Input, Transport, MAX_REKEY_PACKETS};
use ssh_proto::TransportConfig;
use ssh_proto::*;

/// A message number from the local-extension range: the transport hands it
/// up as it is.
const APP_MSG: u8 = 192;
/// The EtM MAC of [`clear_algorithms`].
const TAG_LEN: usize = 32;

/// No encryption and an EtM MAC, so packets can be read on the wire.
fn clear_algorithms(compression: &str) -> Algorithms {
    Algorithms {
        kex: vec!["curve25519-sha256".into()],
        cipher: vec!["none".into()],
        mac: vec!["hmac-sha2-256-etm@openssh.com".into()],
        compression: vec![compression.into()],
        ..Algorithms::default()
    }
}

/// A client and a server transport, the bytes each sent (client to server
/// first) and the application payloads each received.
struct Wire {
    ends: [Transport; 2],
    rngs: [Box<rand_chacha::ChaCha20Rng>; 2],
    sent: [Vec<u8>; 2],
    received: [Vec<Vec<u8>>; 2],
    now: Instant,
    /// Bytes from side `i` are dropped instead of delivered.
    mute: [bool; 2],
    /// The first error each side reported.
    errors: [Option<Error>; 2],
}

impl Wire {
    fn new(client: TransportConfig, mut server: TransportConfig) -> Wire {
        let now = Instant::now();
        server.host_keys = vec![host_key(77)];
        Wire {
            ends: [
                Transport::new(Role::Client, client, now).expect("client"),
                Transport::new(Role::Server, server, now).expect("server"),
            ],
            rngs: [rng(1), rng(2)],
            sent: [Vec::new(), Vec::new()],
            received: [Vec::new(), Vec::new()],
            now,
            mute: [false, false],
            errors: [None, None],
        }
    }

    /// Moves bytes both ways and processes them until nothing moves; each
    /// side checks its rekey limits after its input (as `Connection` does).
    fn run(&mut self) {
        for _ in 0..100_000 {
            let mut moved = 0;
            for from in 0..2 {
                let to = 1 - from;
                let out = self.ends[from].pending_output().to_vec();
                if self.mute[from] {
                    self.ends[from].advance_output(out.len());
                    continue;
                }
                let n = self.ends[to].feed(&out);
                self.ends[from].advance_output(n);
                self.sent[from].extend_from_slice(&out[..n]);
                moved += n;
                self.poll(to);
            }
            if moved == 0 {
                return;
            }
        }
        panic!("transports did not settle");
    }

    fn poll(&mut self, i: usize) {
        while self.errors[i].is_none() {
            let input = match self.ends[i].poll(&mut *self.rngs[i], self.now) {
                Ok(input) => input,
                Err(e) => {
                    self.errors[i] = Some(e);
                    return;
                }
            };
            match input {
                None => break,
                Some(Input::HostKey(_)) => self.ends[i]
                    .accept_host_key(&mut *self.rngs[i])
                    .expect("accept host key"),
                Some(Input::Packet(p)) => {
                    self.received[i].push(p.payload().to_vec());
                    self.ends[i].restore(p);
                }
                Some(_) => {}
            }
        }
        if self.errors[i].is_none() {
            if let Err(e) = self.ends[i].check_rekey(&mut *self.rngs[i], self.now) {
                self.errors[i] = Some(e);
            }
        }
    }

    /// Side `i` sends an application message with `body`.
    fn send(&mut self, i: usize, body: &[u8]) {
        self.ends[i]
            .send(&mut *self.rngs[i], |b| {
                b.push(APP_MSG);
                b.extend_from_slice(body);
            })
            .expect("send");
        self.ends[i]
            .check_rekey(&mut *self.rngs[i], self.now)
            .expect("check_rekey");
    }

    /// Client and server after the first key exchange.
    fn ready(client: TransportConfig, server: TransportConfig) -> Wire {
        let mut w = Wire::new(client, server);
        w.run();
        assert!(w.ends[0].is_ready() && w.ends[1].is_ready());
        w
    }
}

/// How a peer that follows OpenSSH reads one direction of the wire (cipher
/// `none`, EtM MAC, compression `method`): plaintext until the first
/// NEWKEYS, then a new inflate stream at each NEWKEYS once compression is
/// on (`zlib`: always; `zlib@openssh.com`: from byte `auth_at` of the
/// stream on, where authentication succeeded). Returns every payload and
/// how many streams were started; the first packet of each must carry a
/// zlib header.
fn read_like_openssh(stream: &[u8], method: &str, auth_at: usize) -> (Vec<Vec<u8>>, usize) {
    let mut at = stream.iter().position(|&b| b == b'\n').expect("version") + 1;
    let mut keyed = false;
    let mut inflate: Option<Decompressor> = None;
    let mut fresh = false;
    let mut streams = 0;
    let mut payloads = Vec::new();
    let wanted = |at: usize| method == "zlib" || (method == "zlib@openssh.com" && at >= auth_at);
    while at < stream.len() {
        if keyed && inflate.is_none() && wanted(at) {
            // Delayed compression turned on with the keys in use.
            inflate = Some(Decompressor::new());
            fresh = true;
            streams += 1;
        }
        let len = u32::from_be_bytes(stream[at..at + 4].try_into().unwrap()) as usize;
        let pad = stream[at + 4] as usize;
        let body = &stream[at + 5..at + 4 + len - pad];
        let payload = match inflate.as_mut() {
            Some(d) => {
                if fresh {
                    assert_eq!(
                        &body[..2],
                        &[0x78, 0x9c],
                        "{method}: the first packet of a new stream (at byte {at}) \
                         has no zlib header"
                    );
                    fresh = false;
                }
                let mut out = Vec::new();
                d.decompress(body, &mut out, 1 << 20)
                    .unwrap_or_else(|e| panic!("{method}: packet at byte {at}: {e}"));
                out
            }
            None => body.to_vec(),
        };
        at += 4 + len + if keyed { TAG_LEN } else { 0 };
        if payload[0] == msg::NEWKEYS {
            keyed = true;
            inflate = None;
            if wanted(at) {
                inflate = Some(Decompressor::new());
                fresh = true;
                streams += 1;
            }
        }
        payloads.push(payload);
    }
    (payloads, streams)
}

/// RFC 4253 section 6.2: "The compression context is initialized after
/// each key exchange". OpenSSH starts a new zlib stream in each direction
/// at every NEWKEYS, so the bytes after a rekey must start a new stream
/// (zlib header first) that a fresh inflater reads, for `zlib` and for
/// `zlib@openssh.com`, rekeys started by either side.
#[test]
fn compression_starts_a_new_stream_at_every_newkeys() {
    for method in ["zlib", "zlib@openssh.com"] {
        let config = TransportConfig {
            algorithms: clear_algorithms(method),
            ..TransportConfig::default()
        };
        let mut w = Wire::new(config.clone(), config);
        w.run();
        assert!(w.ends[0].is_ready() && w.ends[1].is_ready());
        let auth_at = [w.sent[0].len(), w.sent[1].len()];
        w.ends[0].set_authenticated();
        w.ends[1].set_authenticated();
        let mut expect: [Vec<Vec<u8>>; 2] = [Vec::new(), Vec::new()];
        for round in 0..4u32 {
            for (side, expected) in expect.iter_mut().enumerate() {
                for k in 0..20u32 {
                    let text = format!("side {side} round {round} message {k} ").repeat(50);
                    w.send(side, text.as_bytes());
                    let mut p = vec![APP_MSG];
                    p.extend_from_slice(text.as_bytes());
                    expected.push(p);
                }
            }
            w.run();
            if round < 3 {
                // Rekeys started by the client, then the server, in turn.
                w.ends[(round % 2) as usize]
                    .rekey(&mut *w.rngs[(round % 2) as usize])
                    .unwrap();
                w.run();
            }
        }
        assert_eq!(w.ends[0].kex_count(), 4, "{method}");
        for side in 0..2 {
            let name = ["client to server", "server to client"][side];
            assert_eq!(w.received[1 - side], expect[side], "{method} {name}");
            let (payloads, streams) = read_like_openssh(&w.sent[side], method, auth_at[side]);
            let app: Vec<Vec<u8>> = payloads.into_iter().filter(|p| p[0] == APP_MSG).collect();
            assert_eq!(app, expect[side], "{method} {name}: payloads on the wire");
            // One stream for the first keys (delayed: from authentication
            // on), then one per rekey.
            assert_eq!(streams, 4, "{method} {name}: compression streams");
        }
    }
}

fn with_rekey_packets(n: Option<u64>, strict: bool) -> TransportConfig {
    TransportConfig {
        rekey_packets: n,
        strict_kex: strict,
        ..TransportConfig::default()
    }
}

/// The default packet limit is RFC 4344's and OpenSSH's 2^31.
#[test]
fn the_default_packet_limit_is_2_to_the_31() {
    assert_eq!(MAX_REKEY_PACKETS, 1 << 31);
    assert_eq!(TransportConfig::default().rekey_packets, None);
}

/// Rekeying counts packets, not only bytes: a side whose limit is 50
/// packets rekeys after every 50 small messages it sends, and after every
/// 50 it receives, while the byte limit is nowhere near.
#[test]
fn rekey_after_the_packet_limit_in_each_direction() {
    for strict in [true, false] {
        let mut w = Wire::ready(
            with_rekey_packets(Some(50), strict),
            with_rekey_packets(None, strict),
        );
        assert_eq!(w.ends[0].kex_count(), 1);
        // Client to server: counted by the client as it sends.
        for k in 0..120u32 {
            w.send(0, &k.to_be_bytes());
            w.run();
        }
        assert_eq!(
            w.ends[0].kex_count(),
            3,
            "strict {strict}: after 120 packets out"
        );
        // Server to client: counted by the client as it receives.
        for k in 0..120u32 {
            w.send(1, &k.to_be_bytes());
            w.run();
        }
        assert_eq!(
            w.ends[0].kex_count(),
            5,
            "strict {strict}: after 120 packets in"
        );
        assert_eq!(w.ends[1].kex_count(), 5);
        assert!(w.errors.iter().all(Option::is_none), "{:?}", w.errors);
        let numbers = |v: &[Vec<u8>]| -> Vec<u32> {
            v.iter()
                .filter(|p| p[0] == APP_MSG)
                .map(|p| u32::from_be_bytes(p[1..5].try_into().unwrap()))
                .collect()
        };
        assert_eq!(numbers(&w.received[1]), (0..120).collect::<Vec<_>>());
        assert_eq!(numbers(&w.received[0]), (0..120).collect::<Vec<_>>());
    }
}

/// A peer that keeps sending but never answers the rekey: the receiving
/// side takes at most twice its packet limit under one set of keys (2^32 by
/// default, where the sequence number would repeat) and then ends the
/// connection with an error naming the reason, with strict kex (sequence
/// numbers restart at each NEWKEYS) and without (they run on).
#[test]
fn a_peer_that_never_finishes_the_rekey_is_cut_off_before_a_nonce_repeats() {
    for strict in [true, false] {
        let mut w = Wire::ready(
            with_rekey_packets(Some(50), strict),
            with_rekey_packets(None, strict),
        );
        let before = w.received[0].len();
        // The client's KEXINIT never reaches the server.
        w.mute[0] = true;
        for k in 0..200u32 {
            w.send(1, &k.to_be_bytes());
            w.run();
        }
        let e = w.errors[0].clone().expect("the client must give up");
        assert_eq!(e.kind(), ErrorKind::Limit, "strict {strict}: {e}");
        assert!(
            e.detail().contains(
                "the peer sent 100 packets under one set of keys without finishing a rekey"
            ),
            "strict {strict}: {e:?}"
        );
        assert!(w.ends[0].in_kex(), "the client started a rekey");
        // EXT_INFO came under these keys too, so 99 of the messages.
        assert_eq!(w.received[0].len() - before, 99, "strict {strict}");
    }
}

/// Our side keeps sending transport messages (IGNORE goes out even while a
/// key exchange runs) during a rekey the peer never answers: it stops at
/// twice its packet limit under one set of keys instead of reusing a
/// sequence number.
#[test]
fn sending_stops_before_a_nonce_repeats_when_the_rekey_is_not_answered() {
    for strict in [true, false] {
        let mut w = Wire::ready(
            with_rekey_packets(Some(50), strict),
            with_rekey_packets(None, strict),
        );
        w.mute[0] = true;
        w.ends[0].rekey(&mut *w.rngs[0]).unwrap();
        let mut sent = 1; // the KEXINIT
        let err = loop {
            match w.ends[0].send(&mut *w.rngs[0], |b| {
                b.push(msg::IGNORE);
                b.put_string(b"");
            }) {
                Ok(()) => sent += 1,
                Err(e) => break e,
            }
            assert!(sent < 1000, "strict {strict}: the client never stopped");
        };
        assert_eq!(err.kind(), ErrorKind::Limit, "strict {strict}: {err}");
        assert!(
            err.detail().contains(
                "100 packets sent under one set of keys and the peer has not finished the rekey"
            ),
            "strict {strict}: {err:?}"
        );
        // The client sent nothing after its NEWKEYS before the rekey.
        assert_eq!(sent, 100, "strict {strict}");
    }
}

/// Through `Connection`, whose `recv` and `send_data` check the limits: a
/// client with a 100-packet limit rekeys all along a transfer made of 1000
/// small writes (and their 1000 small echoes), and the echo comes back
/// whole.
#[test]
fn connection_rekeys_by_packets_during_a_transfer() {
    let mut cc = Config::default();
    cc.transport.rekey_packets = Some(100);
    let mut p = Pair::new(cc, server_config(vec![host_key(8)]), 8);
    p.policy.echo = true;
    let ch = open_cat(&mut p);
    let kex_before = p.client.kex_count();
    let data: Vec<u8> = (0..2000u32).flat_map(|i| i.to_be_bytes()).collect();
    for chunk in data.chunks(8) {
        let mut off = 0;
        while off < chunk.len() {
            off += p.client.send_data(ch, &chunk[off..]).unwrap();
            p.step();
        }
    }
    p.run_until(|p| p.client_out.len() == data.len());
    assert_eq!(p.client_out, data);
    let rekeys = p.client.kex_count() - kex_before;
    assert!(
        (9..=12).contains(&rekeys),
        "expected a rekey about every 100 packets of 1000, got {rekeys}"
    );
    assert_eq!(p.server.kex_count(), p.client.kex_count());
    assert!(p.client.error().is_none() && p.server.error().is_none());
}
