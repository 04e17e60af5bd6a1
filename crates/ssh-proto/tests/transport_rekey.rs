//! Rekeying at the transport level, with two bare `Transport`s in memory and
//! the bytes between them recorded: what each NEWKEYS does to the
//! compression streams, as a third reader (modelled on OpenSSH's packet
//! code) sees them on the wire.

mod common;

use std::time::Instant;

use common::*;
use ssh_proto::transport::compress::Decompressor;
use ssh_proto::transport::{Input, Transport, TransportConfig};
use ssh_proto::wire::msg;
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
        }
    }

    /// Moves bytes both ways and processes them until nothing moves.
    fn run(&mut self) {
        for _ in 0..100_000 {
            let mut moved = 0;
            for from in 0..2 {
                let to = 1 - from;
                let out = self.ends[from].pending_output().to_vec();
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
        loop {
            let input = self.ends[i]
                .poll(&mut *self.rngs[i], self.now)
                .unwrap_or_else(|e| panic!("side {i}: {e}"));
            match input {
                None => return,
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
    }

    /// Side `i` sends an application message with `body`.
    fn send(&mut self, i: usize, body: &[u8]) {
        self.ends[i]
            .send(&mut *self.rngs[i], |b| {
                b.push(APP_MSG);
                b.extend_from_slice(body);
            })
            .expect("send");
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
            for side in 0..2 {
                for k in 0..20u32 {
                    let text = format!("side {side} round {round} message {k} ").repeat(50);
                    w.send(side, text.as_bytes());
                    let mut p = vec![APP_MSG];
                    p.extend_from_slice(text.as_bytes());
                    expect[side].push(p);
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
            let app: Vec<Vec<u8>> = payloads
                .into_iter()
                .filter(|p| p[0] == APP_MSG)
                .collect();
            assert_eq!(app, expect[side], "{method} {name}: payloads on the wire");
            // One stream for the first keys (delayed: from authentication
            // on), then one per rekey.
            assert_eq!(streams, 4, "{method} {name}: compression streams");
        }
    }
}
