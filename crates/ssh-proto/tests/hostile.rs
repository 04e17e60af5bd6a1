//! Hostile peers, all in memory: each test makes one side misbehave at the
//! packet level and checks that the other side fails with a clear error
//! (kind and detail text), without a panic, with bounded memory, and that
//! it either tells its peer why (SSH_MSG_DISCONNECT with a reason) or keeps
//! working; data accepted before the fault stays readable.
//!
//! The hostile side is a bare [`Transport`] (the crate's own transport
//! layer, public): it runs a real key exchange against a victim
//! `Connection` and then sends whatever payload a test crafts, encrypted and
//! MACed as the victim expects. Before the first NEWKEYS everything is
//! plaintext, so pre-kex cases write raw packets by hand. Cases that need a
//! malformed *encrypted* packet take one the hostile transport sealed and
//! corrupt it in flight (with an EtM MAC the length field is in the clear).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use rand_chacha::ChaCha20Rng;
use ssh_proto::internal::msg;
use ssh_proto::internal::{Input, Transport, MAX_PACKET_LEN};
use ssh_proto::internal::{KexInit, Message};
use ssh_proto::internal::{Put, Reader};
use ssh_proto::internal::{
    MAX_PENDING_CHANNEL_REQUESTS, MAX_PENDING_GLOBAL_REQUESTS, MAX_UNHANDLED_REQUESTS,
};
use ssh_proto::sftp::codec::{self, MAX_PACKET};
use ssh_proto::sftp::{status, Attrs, NameEntry, Request, Response, SftpServer, SftpServerConfig};
use ssh_proto::*;

// ------------------------------------------------- per-thread heap meter

/// Counts live heap bytes per thread (each test runs on its own thread), so
/// a test can bound what one phase of it allocates.
struct Meter;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn note_alloc(n: usize) {
    let _ = LIVE.try_with(|l| {
        let v = l.get() + n;
        l.set(v);
        let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
    });
}

fn note_free(n: usize) {
    let _ = LIVE.try_with(|l| l.set(l.get().saturating_sub(n)));
}

// SAFETY: forwards to the system allocator, only counting bytes.
unsafe impl GlobalAlloc for Meter {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            note_alloc(l.size());
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        note_free(l.size());
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, n) };
        if !q.is_null() {
            note_free(l.size());
            note_alloc(n);
        }
        q
    }
}

#[global_allocator]
static METER: Meter = Meter;

/// Runs `f`; returns its result and the most heap (in bytes) this thread
/// held at once during it beyond what it held before.
fn peak_heap<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let r = f();
    (r, PEAK.with(Cell::get) - base)
}

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

// ------------------------------------------------------ plaintext framing

const RAW_VERSION: &[u8] = b"SSH-2.0-hostile_0.1\r\n";

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

fn kexinit(kex: &str) -> Vec<u8> {
    Message::KexInit(KexInit {
        cookie: &[0x11; 16],
        kex_algorithms: kex,
        server_host_key_algorithms: "ssh-ed25519",
        encryption_c2s: "aes128-ctr",
        encryption_s2c: "aes128-ctr",
        mac_c2s: "hmac-sha2-256",
        mac_s2c: "hmac-sha2-256",
        compression_c2s: "none",
        compression_s2c: "none",
        languages_c2s: "",
        languages_s2c: "",
        first_kex_packet_follows: false,
        reserved: 0,
    })
    .to_vec()
}

/// A client KEXINIT for curve25519, strict or not.
fn client_kexinit(strict: bool) -> Vec<u8> {
    let mut kex = "curve25519-sha256,ext-info-c".to_string();
    if strict {
        kex.push_str(",kex-strict-c-v00@openssh.com");
    }
    kexinit(&kex)
}

/// The plaintext packets at the start of `stream` (after a leading
/// version line, if any), up to and including NEWKEYS (what follows it is
/// encrypted): each packet's byte range in `stream` and its payload.
fn plain_packets(stream: &[u8]) -> Vec<(Range<usize>, Vec<u8>)> {
    let mut at = 0;
    if stream.starts_with(b"SSH-") {
        at = stream.iter().position(|&b| b == b'\n').map_or(0, |i| i + 1);
    }
    let mut v = Vec::new();
    while let Some(head) = stream.get(at..at + 5) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let pad = head[4] as usize;
        let Some(p) = stream.get(at + 5..(at + 4 + len).saturating_sub(pad)) else {
            break;
        };
        v.push((at..at + 4 + len, p.to_vec()));
        at += 4 + len;
        if p.first() == Some(&msg::NEWKEYS) {
            break;
        }
    }
    v
}

fn plain_payloads(stream: &[u8]) -> Vec<Vec<u8>> {
    plain_packets(stream).into_iter().map(|(_, p)| p).collect()
}

/// The payloads of packets sealed with cipher `none` and an EtM MAC of
/// `tag` bytes: the length is in the clear and nothing is encrypted.
fn clear_etm_payloads(stream: &[u8], tag: usize) -> Vec<Vec<u8>> {
    let mut at = 0;
    let mut v = Vec::new();
    while let Some(head) = stream.get(at..at + 5) {
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let pad = head[4] as usize;
        v.push(stream[at + 5..at + 4 + len - pad].to_vec());
        at += 4 + len + tag;
    }
    v
}

/// The (reason, description) of a DISCONNECT payload.
fn disconnect_of(p: &[u8]) -> Option<(u32, String)> {
    if p.first() != Some(&msg::DISCONNECT) {
        return None;
    }
    let mut r = Reader::new(&p[1..]);
    let code = r.u32().ok()?;
    let text = String::from_utf8_lossy(r.string().ok()?).into_owned();
    Some((code, text))
}

// ------------------------------------------------------ algorithm choices

/// aes128-ctr with an EtM MAC: the packet length travels in the clear.
fn etm() -> Algorithms {
    Algorithms {
        kex: vec!["curve25519-sha256".into()],
        cipher: vec!["aes128-ctr".into()],
        mac: vec!["hmac-sha2-256-etm@openssh.com".into()],
        ..Algorithms::default()
    }
}

/// No encryption, EtM MAC: packets can be read (not forged) on the wire.
fn clear() -> Algorithms {
    let mut a = etm();
    a.cipher = vec!["none".into()];
    a
}

fn one_cipher(cipher: &str, mac: &str) -> Algorithms {
    let mut a = etm();
    a.cipher = vec![cipher.into()];
    a.mac = vec![mac.into()];
    a
}

fn victim_server_config(algs: Algorithms) -> Config {
    let mut c = server_config(vec![host_key(900)]);
    c.transport.algorithms = algs;
    c
}

fn victim_client_config(algs: Algorithms) -> Config {
    let mut c = Config::default();
    c.transport.algorithms = algs;
    c
}

// --------------------------------------------------------- hostile harness

/// The channel number the hostile side uses for its first channel.
const RAW_CH: u32 = 500;
/// The window the hostile side grants on its channels.
const RAW_WINDOW: u32 = 1 << 20;

/// A victim `Connection` and a hostile peer that is a bare `Transport`.
struct Hostile {
    raw: Transport,
    rng: Box<ChaCha20Rng>,
    victim: Connection,
    now: Instant,
    /// Payloads the hostile transport handed up (what the victim sent
    /// beyond the transport's own messages), in order.
    got: Vec<Vec<u8>>,
    /// Why the hostile transport stopped (normally the victim's DISCONNECT).
    raw_error: Option<Error>,
    raw_kex_done: u32,
    /// Everything the victim reported, in order.
    events: Vec<Event>,
    /// Hostile server: answers service, auth and channel-open requests.
    raw_serves: bool,
    /// Leave requests that want no reply unhandled (by default the victim
    /// application handles each as it is reported).
    hold_requests: bool,
}

impl Hostile {
    /// A victim server and a hostile client.
    fn against_server(cfg: Config, raw_algs: Algorithms) -> Hostile {
        Hostile::against_server_strict(cfg, raw_algs, true)
    }

    /// A victim server and a hostile client that offers strict kex or not.
    fn against_server_strict(cfg: Config, raw_algs: Algorithms, strict: bool) -> Hostile {
        let now = Instant::now();
        let tc = TransportConfig {
            algorithms: raw_algs,
            version: "SSH-2.0-hostile_0.1".into(),
            strict_kex: strict,
            ..TransportConfig::default()
        };
        let raw = Transport::new(Role::Client, tc, now).expect("raw transport");
        let victim = Connection::server(Arc::new(cfg), rng(1), now).expect("victim server");
        Hostile::new(raw, victim, now, false)
    }

    /// A victim client and a hostile server.
    fn against_client(cfg: Config, raw_algs: Algorithms) -> Hostile {
        let now = Instant::now();
        let tc = TransportConfig {
            algorithms: raw_algs,
            version: "SSH-2.0-hostile_0.1".into(),
            host_keys: vec![host_key(901)],
            ..TransportConfig::default()
        };
        let raw = Transport::new(Role::Server, tc, now).expect("raw transport");
        let victim = Connection::client(Arc::new(cfg), rng(2), now).expect("victim client");
        Hostile::new(raw, victim, now, true)
    }

    fn new(raw: Transport, victim: Connection, now: Instant, raw_serves: bool) -> Hostile {
        let mut h = Hostile {
            raw,
            rng: rng(3),
            victim,
            now,
            got: Vec::new(),
            raw_error: None,
            raw_kex_done: 0,
            events: Vec::new(),
            raw_serves,
            hold_requests: false,
        };
        h.raw.start_kex(&mut *h.rng).expect("raw KEXINIT");
        h
    }

    /// The hostile side sends one message (sealed with the current keys).
    fn send(&mut self, encode: impl FnOnce(&mut Vec<u8>)) {
        self.raw.send(&mut *self.rng, encode).expect("raw send");
    }

    /// The bytes of one sealed packet, taken off the hostile side's output
    /// instead of being delivered (to corrupt them first).
    fn seal(&mut self, encode: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        self.run();
        assert_eq!(self.raw.pending_output_len(), 0, "hostile output pending");
        self.send(encode);
        let pkt = self.raw.pending_output().to_vec();
        self.raw.advance_output(pkt.len());
        pkt
    }

    /// Replaces the hostile side's next packet (while still unencrypted)
    /// with a hand-made one: the sequence numbers on both sides stay in
    /// step, so a key exchange can still complete afterwards.
    fn swap_next_plain(&mut self, payload: &[u8]) {
        self.raw_to_victim();
        self.send(|b| b.push(msg::IGNORE));
        let n = self.raw.pending_output_len();
        self.raw.advance_output(n);
        self.inject(&frame(payload));
    }

    /// Feeds bytes straight to the victim (as much as it takes).
    fn inject(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.victim.recv(self.now, bytes) {
                Ok(0) | Err(_) => break,
                Ok(n) => bytes = &bytes[n..],
            }
            self.victim_events();
        }
        self.victim_events();
    }

    fn raw_to_victim(&mut self) -> usize {
        let mut moved = 0;
        while self.raw.pending_output_len() > 0 {
            let out = self.raw.pending_output().to_vec();
            let taken = self.victim.recv(self.now, &out).unwrap_or_default();
            self.raw.advance_output(taken);
            moved += taken;
            self.victim_events();
            if taken < out.len() {
                break;
            }
        }
        moved
    }

    fn victim_to_raw(&mut self) -> usize {
        let mut moved = 0;
        while let Some(out) = self.victim.transmit() {
            let out = out.to_vec();
            let n = self.raw.feed(&out);
            self.victim.advance_transmit(n);
            moved += n;
            self.raw_poll();
            if n == 0 {
                break;
            }
        }
        moved
    }

    fn raw_poll(&mut self) {
        while self.raw_error.is_none() {
            match self.raw.poll(&mut *self.rng, self.now) {
                Ok(None) => break,
                Ok(Some(Input::HostKey(_))) => self
                    .raw
                    .accept_host_key(&mut *self.rng)
                    .expect("raw accept"),
                Ok(Some(Input::KexDone(_))) => self.raw_kex_done += 1,
                Ok(Some(Input::Debug(_))) => {}
                Ok(Some(Input::Packet(p))) => {
                    let payload = p.payload().to_vec();
                    self.raw.restore(p);
                    if self.raw_serves {
                        self.serve(&payload);
                    }
                    self.got.push(payload);
                }
                Err(e) => self.raw_error = Some(e),
            }
        }
    }

    /// Hostile server: says yes to the victim client's service request,
    /// any authentication and any channel open.
    fn serve(&mut self, p: &[u8]) {
        let mut r = Reader::new(&p[1..]);
        match p[0] {
            msg::SERVICE_REQUEST => self.send(|b| {
                b.push(msg::SERVICE_ACCEPT);
                b.put_str("ssh-userauth");
            }),
            msg::USERAUTH_REQUEST => self.send(|b| b.push(msg::USERAUTH_SUCCESS)),
            msg::CHANNEL_OPEN => {
                let _kind = r.string().unwrap();
                let sender = r.u32().unwrap();
                self.send(|b| {
                    b.push(msg::CHANNEL_OPEN_CONFIRMATION);
                    b.put_u32(sender);
                    b.put_u32(RAW_CH);
                    b.put_u32(RAW_WINDOW);
                    b.put_u32(32 * 1024);
                });
            }
            _ => {}
        }
    }

    fn victim_events(&mut self) {
        while let Some(e) = self.victim.poll_event() {
            match &e {
                Event::HostKey(_) => {
                    let _ = self.victim.accept_host_key();
                }
                Event::AuthRequest {
                    request: AuthRequest::Password { password, .. },
                    ..
                } => {
                    let _ = if password == "secret" {
                        self.victim.auth_accept()
                    } else {
                        self.victim.auth_reject()
                    };
                }
                Event::AuthRequest { .. } => {
                    let _ = self.victim.auth_reject();
                }
                // Session channels are accepted; others are left to the test.
                Event::ChannelOpenRequest { channel, kind, .. } if kind == "session" => {
                    let _ = self.victim.accept_channel(*channel);
                }
                Event::ChannelRequest {
                    want_reply: false, ..
                }
                | Event::GlobalRequest {
                    want_reply: false, ..
                } if !self.hold_requests && self.victim.role() == Role::Server => {
                    self.victim.request_handled();
                }
                _ => {}
            }
            self.events.push(e);
        }
    }

    fn step(&mut self) -> bool {
        let a = self.raw_to_victim();
        let b = self.victim_to_raw();
        self.victim_events();
        a + b > 0
    }

    /// Moves bytes both ways until nothing moves.
    fn run(&mut self) {
        for _ in 0..1_000_000 {
            if !self.step() {
                return;
            }
        }
        panic!("hostile pair did not settle");
    }

    /// Hostile client: key exchange, then password authentication.
    fn login(&mut self) {
        self.run();
        assert_eq!(self.raw_kex_done, 1, "key exchange: {:?}", self.events);
        self.send(|b| {
            b.push(msg::SERVICE_REQUEST);
            b.put_str("ssh-userauth");
        });
        self.password_auth();
    }

    /// Hostile client: password authentication as alice, which succeeds.
    fn password_auth(&mut self) {
        self.send(|b| {
            b.push(msg::USERAUTH_REQUEST);
            b.put_str("alice");
            b.put_str("ssh-connection");
            b.put_str("password");
            b.put_bool(false);
            b.put_str("secret");
        });
        self.run();
        assert!(self.victim.is_authenticated(), "{:?}", self.events);
    }

    /// Hostile client: opens a session channel numbered `ours` on its side;
    /// returns the victim's number for it.
    fn open(&mut self, ours: u32) -> ChannelId {
        self.send(|b| {
            b.push(msg::CHANNEL_OPEN);
            b.put_str("session");
            b.put_u32(ours);
            b.put_u32(RAW_WINDOW);
            b.put_u32(32 * 1024);
        });
        self.run();
        self.got
            .iter()
            .find_map(|p| {
                let mut r = Reader::new(p.get(1..)?);
                (p[0] == msg::CHANNEL_OPEN_CONFIRMATION && r.u32().ok()? == ours)
                    .then(|| ChannelId(r.u32().unwrap()))
            })
            .unwrap_or_else(|| panic!("channel not confirmed: {:?}", self.events))
    }

    /// Hostile client, logged in, with one session channel open.
    fn session(cfg: Config, raw_algs: Algorithms) -> (Hostile, ChannelId) {
        let mut h = Hostile::against_server(cfg, raw_algs);
        h.login();
        let ch = h.open(RAW_CH);
        (h, ch)
    }

    /// Hostile server, victim client logged in with one session channel open.
    fn client_session(cfg: Config, raw_algs: Algorithms) -> (Hostile, ChannelId) {
        let mut h = Hostile::against_client(cfg, raw_algs);
        h.run();
        h.victim.auth_password("alice", "secret").unwrap();
        h.run();
        assert!(h.victim.is_authenticated(), "{:?}", h.events);
        let ch = h.victim.open_session().unwrap();
        h.run();
        assert!(
            h.events
                .iter()
                .any(|e| matches!(e, Event::ChannelOpened { channel } if *channel == ch)),
            "{:?}",
            h.events
        );
        (h, ch)
    }

    /// Channel data from the hostile side to the victim's channel `ch`.
    fn data(&mut self, ch: ChannelId, bytes: &[u8]) {
        self.send(|b| {
            b.push(msg::CHANNEL_DATA);
            b.put_u32(ch.0);
            b.put_string(bytes);
        });
    }

    fn read_all(&mut self, ch: ChannelId, stream: Stream) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            let n = self.victim.channel_read(ch, stream, &mut buf).unwrap();
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    /// The victim failed: checks the error's kind and detail, that it was
    /// the last event, and that the hostile side received a DISCONNECT with
    /// reason `code` naming the problem too. Returns the error.
    fn assert_fault(&mut self, kind: ErrorKind, needle: &str, code: u32) -> Error {
        self.run();
        let e = self
            .victim
            .error()
            .cloned()
            .unwrap_or_else(|| panic!("victim did not fail; events {:?}", self.events));
        assert_eq!(e.kind(), kind, "{e}");
        assert!(e.detail().contains(needle), "{e:?} should name {needle:?}");
        assert!(self.victim.is_closed());
        match self.events.last() {
            Some(Event::Disconnected(d)) => assert_eq!(d, &e),
            other => panic!("last event {other:?}, expected Disconnected"),
        }
        let told = self
            .raw_error
            .clone()
            .expect("the hostile side got no DISCONNECT");
        assert_eq!(told.kind(), ErrorKind::PeerDisconnected, "{told}");
        assert_eq!(told.code(), Some(code), "{told}");
        assert!(told.detail().contains(needle), "{told:?}");
        // A closed connection refuses further input, without a panic.
        assert!(self.victim.recv(self.now, &[0u8; 64]).is_err());
        e
    }

    fn still_up(&self) {
        assert!(
            !self.victim.is_closed(),
            "victim closed: {:?}",
            self.victim.error()
        );
        assert!(self.raw_error.is_none(), "{:?}", self.raw_error);
    }
}

/// A victim server fed raw bytes (no hostile transport): returns it and
/// the plaintext payloads it answered with.
fn raw_server_fed(cfg: Config, input: &[u8]) -> (Connection, Vec<Vec<u8>>) {
    let now = Instant::now();
    let s = Connection::server(Arc::new(cfg), rng(4), now).unwrap();
    feed_raw(s, now, input)
}

/// A victim client fed raw bytes (the server's side of a plaintext
/// exchange): returns it and the plaintext payloads it answered with.
fn raw_client_fed(cfg: Config, input: &[u8]) -> (Connection, Vec<Vec<u8>>) {
    let now = Instant::now();
    let c = Connection::client(Arc::new(cfg), rng(5), now).unwrap();
    feed_raw(c, now, input)
}

/// Feeds `input` to `conn` (at `now`) until it is taken whole, refused or an error;
/// returns `conn` and the plaintext payloads it answered with.
fn feed_raw(mut conn: Connection, now: Instant, input: &[u8]) -> (Connection, Vec<Vec<u8>>) {
    let mut off = 0;
    while off < input.len() {
        match conn.recv(now, &input[off..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => off += n,
        }
    }
    let mut out = Vec::new();
    conn.take_transmit(&mut out);
    let payloads = plain_payloads(&out);
    (conn, payloads)
}

/// The victim closed the connection for more than
/// `MAX_PENDING_CHANNEL_REQUESTS` unanswered requests on `ch`.
fn assert_channel_request_cap(h: &mut Hostile, ch: ChannelId) {
    h.assert_fault(
        ErrorKind::Limit,
        &format!(
            "more than {MAX_PENDING_CHANNEL_REQUESTS} requests on channel {} await a reply",
            ch.0
        ),
        msg::disconnect::PROTOCOL_ERROR,
    );
}

fn last_disconnect(payloads: &[Vec<u8>]) -> (u32, String) {
    payloads
        .iter()
        .rev()
        .find_map(|p| disconnect_of(p))
        .unwrap_or_else(|| panic!("no DISCONNECT among {} packets", payloads.len()))
}

// ============================================================ framing

#[test]
fn packet_length_zero_after_kex() {
    let (mut h, ch) = Hostile::session(victim_server_config(etm()), etm());
    h.data(ch, b"sent before the fault");
    h.run();
    let mut pkt = h.seal(|b| {
        b.push(msg::IGNORE);
        b.put_string(b"x");
    });
    pkt[..4].copy_from_slice(&0u32.to_be_bytes());
    h.inject(&pkt);
    h.assert_fault(
        ErrorKind::Protocol,
        "bad packet length 0",
        msg::disconnect::PROTOCOL_ERROR,
    );
    assert_eq!(h.read_all(ch, Stream::Stdout), b"sent before the fault");
}

#[test]
fn packet_length_beyond_the_limit_is_refused_without_buffering() {
    for len in [MAX_PACKET_LEN as u32 + 16, 1 << 30, 0xffff_fff0] {
        let (mut h, ch) = Hostile::session(victim_server_config(etm()), etm());
        h.data(ch, b"kept");
        h.run();
        let mut pkt = h.seal(|b| {
            b.push(msg::IGNORE);
            b.put_string(b"x");
        });
        pkt[..4].copy_from_slice(&len.to_be_bytes());
        // The peer then streams 16 MiB as if the packet were that long.
        let junk = vec![0x5a_u8; 64 * KIB];
        let ((), peak) = peak_heap(|| {
            h.inject(&pkt);
            for _ in 0..256 {
                let _ = h.victim.recv(h.now, &junk);
            }
        });
        assert!(
            peak < MIB,
            "{peak} bytes held for a {len}-byte packet length"
        );
        h.assert_fault(
            ErrorKind::Protocol,
            &format!("bad packet length {len} (block size 16, maximum {MAX_PACKET_LEN})"),
            msg::disconnect::PROTOCOL_ERROR,
        );
        assert_eq!(h.read_all(ch, Stream::Stdout), b"kept");
    }
}

#[test]
fn packet_length_not_a_multiple_of_the_block_size() {
    for len in [5u32, 17, 33, 1000] {
        let (mut h, _) = Hostile::session(victim_server_config(etm()), etm());
        let mut pkt = h.seal(|b| {
            b.push(msg::IGNORE);
            b.put_string(&[7u8; 40]);
        });
        pkt[..4].copy_from_slice(&len.to_be_bytes());
        h.inject(&pkt);
        h.assert_fault(
            ErrorKind::Protocol,
            &format!("bad packet length {len} (block size 16"),
            msg::disconnect::PROTOCOL_ERROR,
        );
    }
}

/// Padding is only under the attacker's control before the first NEWKEYS
/// (afterwards the MAC covers it), so it is tested on the plaintext phase.
#[test]
fn bad_padding_is_refused() {
    // (packet_length, padding_length, what the error names)
    let payload = client_kexinit(true);
    let cases: [(usize, u8, &str); 4] = [
        (1 + payload.len() + 3, 3, "bad padding length 3"),
        (1 + payload.len() + 11, 255, "bad padding length 255"),
        (16 - 4, 11, "empty packet payload"),
        (16 - 4, 12, "bad padding length 12 in packet of 12 bytes"),
    ];
    for (len, pad, needle) in cases {
        let mut input = RAW_VERSION.to_vec();
        let body_len = len - 1;
        let mut pkt = Vec::new();
        pkt.put_u32(len as u32);
        pkt.push(pad);
        let mut body = payload.clone();
        body.resize(body_len, 0);
        pkt.extend_from_slice(&body);
        // Keep the framing aligned so that only the padding is wrong.
        assert_eq!((4 + len) % 8, 0, "case {needle}");
        input.extend_from_slice(&pkt);
        let (s, out) = raw_server_fed(victim_server_config(etm()), &input);
        let e = s.error().expect("server must refuse");
        assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
        assert!(e.detail().contains(needle), "{e:?} should name {needle:?}");
        let (code, text) = last_disconnect(&out);
        assert_eq!(code, msg::disconnect::PROTOCOL_ERROR);
        assert!(text.contains(needle), "{text}");
    }
}

#[test]
fn mac_failure_from_a_flipped_bit() {
    let combos = [
        ("aes128-ctr", "hmac-sha2-256-etm@openssh.com"),
        ("aes128-ctr", "hmac-sha2-256"),
        ("aes256-cbc", "hmac-sha1"),
        ("chacha20-poly1305@openssh.com", "hmac-sha2-256"),
        ("aes128-gcm@openssh.com", "hmac-sha2-256"),
    ];
    for (cipher, mac) in combos {
        // Flip a bit in the body, then (fresh session) in the last tag byte.
        for at_end in [false, true] {
            let algs = one_cipher(cipher, mac);
            let (mut h, ch) = Hostile::session(victim_server_config(algs.clone()), algs);
            h.data(ch, b"accepted before the fault");
            h.run();
            let mut pkt = h.seal(|b| {
                b.push(msg::CHANNEL_DATA);
                b.put_u32(ch.0);
                b.put_string(&[0u8; 100]);
            });
            let i = if at_end { pkt.len() - 1 } else { 20 };
            pkt[i] ^= 0x10;
            h.inject(&pkt);
            let e = h.assert_fault(
                ErrorKind::Mac,
                "MAC mismatch on packet",
                msg::disconnect::MAC_ERROR,
            );
            assert!(
                e.to_string().starts_with("message authentication failed"),
                "{e}"
            );
            assert_eq!(
                h.read_all(ch, Stream::Stdout),
                b"accepted before the fault",
                "{cipher} {mac}"
            );
        }
    }
}

#[test]
fn kexinit_with_a_megabyte_name_list() {
    let list = vec!["x"; 512 * 1024].join(",");
    assert!(list.len() > MIB - 2);
    let mut input = RAW_VERSION.to_vec();
    input.extend(frame(&kexinit(&list)));
    let ((s, out), peak) = peak_heap(|| raw_server_fed(victim_server_config(etm()), &input));
    assert!(peak < MIB, "server held {peak} bytes");
    let e = s.error().expect("server must refuse");
    assert_eq!(e.kind(), ErrorKind::Protocol, "{e}");
    let needle = format!(
        "bad packet length {} (block size 8, maximum {MAX_PACKET_LEN})",
        input.len() - RAW_VERSION.len() - 4
    );
    assert!(e.detail().contains(&needle), "{e:?}");
    let (code, text) = last_disconnect(&out);
    assert_eq!(code, msg::disconnect::PROTOCOL_ERROR);
    assert!(text.contains("bad packet length"), "{text}");
}

/// Under the packet limit a long list is parsed; nothing in it matches.
/// The error names the lists, but the peer's is cut short and stripped of
/// control characters (it is echoed to a terminal or log, and back to the
/// peer in the DISCONNECT).
#[test]
fn kexinit_with_a_long_junk_name_list_under_the_limit() {
    let list = (0..10_000)
        .map(|i| format!("junk{i}@example.com"))
        .collect::<Vec<_>>()
        .join(",");
    let list = format!("\x1b]0;owned\x07{list}");
    assert!(list.len() > 200 * KIB && list.len() < MAX_PACKET_LEN - 1024);
    let mut input = RAW_VERSION.to_vec();
    input.extend(frame(&kexinit(&list)));
    let ((s, out), peak) = peak_heap(|| raw_server_fed(victim_server_config(etm()), &input));
    assert!(peak < 2 * MIB, "server held {peak} bytes");
    let e = s.error().expect("server must refuse");
    assert_eq!(e.kind(), ErrorKind::NoCommonAlgorithm, "{e}");
    let d = e.detail();
    assert!(
        d.starts_with("no common key exchange algorithm: client offers ]0;ownedjunk0@example.com,junk1@example.com,"),
        "{}",
        &d[..200]
    );
    assert!(d.contains("..., server offers curve25519-sha256"), "{d}");
    assert!(d.len() < 4 * KIB, "error detail of {} bytes", d.len());
    assert!(!d.chars().any(char::is_control), "{d:?}");
    let (code, text) = last_disconnect(&out);
    assert_eq!(code, msg::disconnect::KEY_EXCHANGE_FAILED);
    assert_eq!(text, d);
}

// ==================================================== unknown and out of order

/// A message type, what the error about it says, and its body.
type MsgCase = (u8, &'static str, fn(&mut Vec<u8>));

fn unknown(t: u8) -> Vec<u8> {
    let mut p = vec![t];
    p.put_string(b"what is this");
    p
}

/// Strict kex (the default): during the initial exchange only kex messages
/// may arrive; anything else ends the connection.
#[test]
fn unknown_message_type_before_kex_strict() {
    let mut input = RAW_VERSION.to_vec();
    input.extend(frame(&client_kexinit(true)));
    input.extend(frame(&unknown(200)));
    let (s, out) = raw_server_fed(victim_server_config(Algorithms::default()), &input);
    let e = s.error().expect("server must refuse");
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(
        e.detail()
            .contains("strict key exchange violation: unexpected unknown (type 200) during initial key exchange"),
        "{e:?}"
    );
    let (code, text) = last_disconnect(&out);
    assert_eq!(code, msg::disconnect::PROTOCOL_ERROR);
    assert!(text.contains("type 200"), "{text}");
}

/// Without strict kex, RFC 4253 §11.4: an unrecognized message is answered
/// with UNIMPLEMENTED (naming its sequence number) and the session goes on.
#[test]
fn unknown_message_type_before_kex_not_strict() {
    let mut h = Hostile::against_server_strict(victim_server_config(etm()), etm(), false);
    // After the version line and KEXINIT (sequence number 0), an unknown
    // message as sequence number 1.
    h.swap_next_plain(&unknown(200));
    let out = h.victim.transmit().unwrap().to_vec();
    let sent = plain_payloads(&out);
    assert!(
        sent.contains(&vec![msg::UNIMPLEMENTED, 0, 0, 0, 1]),
        "no UNIMPLEMENTED for sequence number 1 in {sent:?}"
    );
    h.run();
    h.still_up();
    assert!(!h.victim.strict_kex());
    h.login();
    h.open(RAW_CH);
    h.still_up();
}

/// After the key exchange, unassigned message numbers of every range get
/// UNIMPLEMENTED with their sequence number; the session goes on.
#[test]
fn unknown_message_types_after_kex_get_unimplemented() {
    let (mut h, ch) = Hostile::session(victim_server_config(clear()), clear());
    h.data(ch, b"before");
    h.run();
    let mut seqs = Vec::new();
    for t in [200u8, 255, 128, 8, 15, 54, 57, 83, 89, 101, 127] {
        h.send(|b| b.extend_from_slice(&unknown(t)));
        h.raw_to_victim();
        let out = h.victim.transmit().map(<[u8]>::to_vec).unwrap_or_default();
        let sent = clear_etm_payloads(&out, 32);
        assert_eq!(
            sent.len(),
            1,
            "type {t}: {sent:?}; victim error {:?}",
            h.victim.error()
        );
        assert_eq!(sent[0][0], msg::UNIMPLEMENTED, "type {t}: {sent:?}");
        assert_eq!(sent[0].len(), 5);
        seqs.push(u32::from_be_bytes([
            sent[0][1], sent[0][2], sent[0][3], sent[0][4],
        ]));
        h.run();
        h.still_up();
    }
    // Each names the sequence number of the packet it answers.
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    h.data(ch, b" and after");
    h.run();
    assert_eq!(h.read_all(ch, Stream::Stdout), b"before and after");
}

/// RFC 4253 §7.1: between KEXINIT and NEWKEYS only transport messages may
/// be sent (SERVICE_REQUEST explicitly not). With strict kex that is the
/// strict-kex rule; without it the core must still not run the service
/// (and then user authentication) over the unencrypted, unauthenticated
/// stream.
#[test]
fn service_request_before_newkeys_is_refused() {
    for strict in [true, false] {
        let mut h = Hostile::against_server_strict(victim_server_config(etm()), etm(), strict);
        let mut p = vec![msg::SERVICE_REQUEST];
        p.put_str("ssh-userauth");
        h.swap_next_plain(&p);
        let needle = if strict {
            "strict key exchange violation: unexpected SERVICE_REQUEST (type 5)"
        } else {
            "SERVICE_REQUEST before the first key exchange completed"
        };
        h.assert_fault(ErrorKind::Protocol, needle, msg::disconnect::PROTOCOL_ERROR);
    }
}

/// Without strict kex a man in the middle could also slip in user
/// authentication before NEWKEYS; it is refused the same way.
#[test]
fn userauth_and_channel_messages_before_newkeys_are_refused() {
    for (t, name) in [
        (msg::USERAUTH_REQUEST, "USERAUTH_REQUEST"),
        (msg::CHANNEL_OPEN, "CHANNEL_OPEN"),
        (msg::GLOBAL_REQUEST, "GLOBAL_REQUEST"),
        (msg::EXT_INFO, "EXT_INFO"),
    ] {
        let mut h = Hostile::against_server_strict(victim_server_config(etm()), etm(), false);
        let mut p = vec![t];
        p.put_u32(0);
        h.swap_next_plain(&p);
        h.assert_fault(
            ErrorKind::Protocol,
            &format!("{name} before the first key exchange completed"),
            msg::disconnect::PROTOCOL_ERROR,
        );
    }
}

#[test]
fn connection_messages_before_auth_are_refused() {
    let cases: [MsgCase; 4] = [
        (
            msg::CHANNEL_DATA,
            "CHANNEL_DATA before authentication completed",
            |b| {
                b.put_u32(0);
                b.put_string(b"data");
            },
        ),
        (
            msg::CHANNEL_OPEN,
            "CHANNEL_OPEN before authentication completed",
            |b| {
                b.put_str("session");
                b.put_u32(0);
                b.put_u32(RAW_WINDOW);
                b.put_u32(32768);
            },
        ),
        (
            msg::GLOBAL_REQUEST,
            "GLOBAL_REQUEST before authentication completed",
            |b| {
                b.put_str("tcpip-forward");
                b.put_bool(true);
            },
        ),
        (
            msg::USERAUTH_REQUEST,
            "USERAUTH_REQUEST before the ssh-userauth service was accepted",
            |b| {
                b.put_str("alice");
                b.put_str("ssh-connection");
                b.put_str("none");
            },
        ),
    ];
    for (t, needle, body) in cases {
        let mut h = Hostile::against_server(victim_server_config(etm()), etm());
        h.run();
        assert_eq!(h.raw_kex_done, 1);
        h.send(|b| {
            b.push(t);
            body(b);
        });
        h.assert_fault(ErrorKind::Protocol, needle, msg::disconnect::PROTOCOL_ERROR);
        assert!(!h.victim.is_authenticated());
        assert!(!h.events.iter().any(|e| matches!(
            e,
            Event::ChannelOpenRequest { .. } | Event::GlobalRequest { .. }
        )));
    }
}

// ========================================================== strict kex

/// The Terrapin position on the server side: an IGNORE injected right
/// before the client's NEWKEYS.
#[test]
fn strict_kex_server_rejects_ignore_before_newkeys() {
    let mut h = Hostile::against_server(victim_server_config(etm()), etm());
    h.raw_to_victim(); // version, KEXINIT
    h.victim_to_raw(); // ... the hostile client answers with its kex init
    h.raw_to_victim(); // the victim replies with its signature and NEWKEYS
    h.victim_to_raw(); // the hostile client queues NEWKEYS
    let newkeys = h.raw.pending_output().to_vec();
    assert_eq!(plain_payloads(&newkeys)[0], [msg::NEWKEYS]);
    let mut ign = vec![msg::IGNORE];
    ign.put_string(b"");
    h.inject(&frame(&ign));
    h.assert_fault(
        ErrorKind::Protocol,
        "strict key exchange violation: unexpected IGNORE (type 2) during initial key exchange",
        msg::disconnect::PROTOCOL_ERROR,
    );
    assert!(
        h.victim.session_id().is_some(),
        "the exchange itself had run"
    );
    assert_eq!(h.victim.kex_count(), 0);
}

/// The Terrapin position on the client side: an IGNORE injected between
/// the server's kex reply and its NEWKEYS (pair.rs covers the IGNORE right
/// after KEXINIT).
#[test]
fn strict_kex_client_rejects_ignore_before_newkeys() {
    let mut h = Hostile::against_client(victim_client_config(etm()), etm());
    h.raw_to_victim(); // version, KEXINIT
    h.victim_to_raw(); // the client's kex init; the server replies
    let out = h.raw.pending_output().to_vec();
    h.raw.advance_output(out.len());
    let pkts = plain_packets(&out);
    let (newkeys, payload) = pkts.last().unwrap();
    assert_eq!(payload, &[msg::NEWKEYS]);
    // The packets before NEWKEYS, then an IGNORE, then the rest.
    let before = newkeys.start;
    let mut ign = vec![msg::IGNORE];
    ign.put_string(b"");
    let mut stream = out[..before].to_vec();
    stream.extend(frame(&ign));
    stream.extend_from_slice(&out[before..]);
    h.inject(&stream);
    assert!(h.events.iter().any(|e| matches!(e, Event::HostKey(_))));
    h.assert_fault(
        ErrorKind::Protocol,
        "strict key exchange violation: unexpected IGNORE (type 2) during initial key exchange",
        msg::disconnect::PROTOCOL_ERROR,
    );
    assert!(!h.events.iter().any(|e| matches!(e, Event::KexDone(_))));
}

/// Strict kex also requires KEXINIT to be the very first packet.
#[test]
fn strict_kex_rejects_a_packet_before_kexinit() {
    let mut ign = vec![msg::IGNORE];
    ign.put_string(b"");
    let mut input = RAW_VERSION.to_vec();
    input.extend(frame(&ign));
    input.extend(frame(&client_kexinit(true)));
    let (s, out) = raw_server_fed(victim_server_config(etm()), &input);
    let e = s.error().expect("server must refuse");
    assert_eq!(e.kind(), ErrorKind::Protocol);
    assert!(
        e.detail()
            .contains("strict key exchange violation: KEXINIT was not the first packet"),
        "{e:?}"
    );
    assert_eq!(last_disconnect(&out).0, msg::disconnect::PROTOCOL_ERROR);
}

/// A GEX server offers a group whose `p` is empty (or zero, or a few
/// bits): the client measures it (0 bits, not an underflow) and refuses it
/// as outside the range it asked for, telling the server why.
#[test]
fn gex_group_with_an_empty_or_tiny_p_is_refused() {
    let algs = Algorithms {
        kex: vec!["diffie-hellman-group-exchange-sha256".into()],
        host_key: vec!["ssh-ed25519".into()],
        cipher: vec!["aes128-ctr".into()],
        mac: vec!["hmac-sha2-256".into()],
        ..Algorithms::default()
    };
    for (p, bits) in [
        (&[][..], 0),
        (&[0, 0][..], 0),
        (&[0x01][..], 1),
        (&[0x7f][..], 7),
    ] {
        let mut group = vec![msg::KEX_31]; // KEX_DH_GEX_GROUP
        group.put_string(p);
        group.put_string(&[2]);
        let mut input = RAW_VERSION.to_vec();
        input.extend(frame(&kexinit(
            "diffie-hellman-group-exchange-sha256,kex-strict-s-v00@openssh.com",
        )));
        input.extend(frame(&group));
        let (c, out) = raw_client_fed(victim_client_config(algs.clone()), &input);
        assert!(
            out.iter().any(|p| p[0] == msg::KEX_DH_GEX_REQUEST),
            "p {p:?}: the client never asked for a group: {out:?}"
        );
        let e = c.error().expect("client must refuse the group");
        assert_eq!(e.kind(), ErrorKind::Protocol, "p {p:?}: {e}");
        let needle =
            format!("server offered a {bits}-bit DH group outside the requested 2048..8192");
        assert!(e.detail().contains(&needle), "p {p:?}: {e:?}");
        assert!(c.is_closed());
        let (code, text) = last_disconnect(&out);
        assert_eq!(code, msg::disconnect::PROTOCOL_ERROR, "p {p:?}: {text}");
        assert!(text.contains(&needle), "p {p:?}: {text}");
    }
}

/// Without strict kex the IGNORE itself is legal, but it shifts the
/// sequence numbers: unless the attacker also deletes a packet (Terrapin),
/// the first packet under the new keys fails its MAC.
#[test]
fn non_strict_injected_ignore_breaks_the_first_mac() {
    let mut h = Hostile::against_server_strict(victim_server_config(etm()), etm(), false);
    h.raw_to_victim();
    h.victim_to_raw();
    h.raw_to_victim();
    h.victim_to_raw();
    let mut ign = vec![msg::IGNORE];
    ign.put_string(b"");
    h.inject(&frame(&ign));
    h.still_up();
    h.run();
    h.send(|b| {
        b.push(msg::SERVICE_REQUEST);
        b.put_str("ssh-userauth");
    });
    h.assert_fault(
        ErrorKind::Mac,
        "MAC mismatch on packet",
        msg::disconnect::MAC_ERROR,
    );
}

/// Strict kex admits only kex messages during the initial exchange, but a
/// DISCONNECT must still get through: a peer giving up mid-exchange (here
/// the server's login grace time) says why, and that is what is reported,
/// not a "strict key exchange violation".
#[test]
fn strict_client_hears_why_the_server_gives_up_during_kex() {
    let mut sc = server_config(vec![host_key(41)]);
    sc.login_grace_time = Some(Duration::from_secs(1));
    let mut p = Pair::new(Config::default(), sc, 41);
    // Version lines and KEXINITs both ways, then the server's timer fires
    // while the client still waits for the kex reply.
    let c = p.client.transmit().unwrap().to_vec();
    p.client.advance_transmit(c.len());
    let kexinit_end = plain_packets(&c)[0].0.end;
    p.server.recv(p.now, &c[..kexinit_end]).unwrap();
    let s = p.server.transmit().unwrap().to_vec();
    p.server.advance_transmit(s.len());
    p.client.recv(p.now, &s).unwrap();
    assert!(p.client.strict_kex());
    p.advance(Duration::from_secs(2));
    p.run();
    let e = p.client.error().expect("client told");
    assert_eq!(e.kind(), ErrorKind::PeerDisconnected, "{e}");
    assert_eq!(e.code(), Some(msg::disconnect::BY_APPLICATION));
    assert!(
        e.detail().contains("login grace time of 1s exceeded"),
        "{e:?}"
    );
}

// ============================================================= channels

#[test]
fn window_adjust_overflowing_2_32_is_refused_by_a_server() {
    let (mut h, ch) = Hostile::session(victim_server_config(etm()), etm());
    h.data(ch, b"kept");
    // Up to exactly 2^32-1 is legal.
    h.send(|b| {
        b.push(msg::CHANNEL_WINDOW_ADJUST);
        b.put_u32(ch.0);
        b.put_u32(u32::MAX - RAW_WINDOW);
    });
    h.run();
    h.still_up();
    assert!(h.victim.send_window(ch) > 0);
    h.send(|b| {
        b.push(msg::CHANNEL_WINDOW_ADJUST);
        b.put_u32(ch.0);
        b.put_u32(1);
    });
    h.assert_fault(
        ErrorKind::Protocol,
        &format!(
            "window adjust of 1 overflows channel {}'s window past 2^32-1",
            ch.0
        ),
        msg::disconnect::PROTOCOL_ERROR,
    );
    assert_eq!(h.read_all(ch, Stream::Stdout), b"kept");
}

#[test]
fn window_adjust_overflowing_2_32_is_refused_by_a_client() {
    let (mut h, ch) = Hostile::client_session(victim_client_config(etm()), etm());
    h.data(ch, b"kept");
    h.send(|b| {
        b.push(msg::CHANNEL_WINDOW_ADJUST);
        b.put_u32(ch.0);
        b.put_u32(u32::MAX);
    });
    h.assert_fault(
        ErrorKind::Protocol,
        &format!(
            "window adjust of {} overflows channel {}'s window",
            u32::MAX,
            ch.0
        ),
        msg::disconnect::PROTOCOL_ERROR,
    );
    assert_eq!(h.read_all(ch, Stream::Stdout), b"kept");
}

#[test]
fn data_beyond_the_window_is_refused() {
    for client_side in [false, true] {
        let algs = etm();
        let (mut h, ch) = if client_side {
            let mut cfg = victim_client_config(algs.clone());
            cfg.window_size = 64 * 1024;
            Hostile::client_session(cfg, algs)
        } else {
            let mut cfg = victim_server_config(algs.clone());
            cfg.window_size = 64 * 1024;
            Hostile::session(cfg, algs)
        };
        // The whole window, unread, then one byte more.
        let full = vec![b'w'; 32 * 1024];
        h.data(ch, &full);
        h.data(ch, &full);
        h.run();
        h.still_up();
        assert_eq!(h.victim.channel_buffered(ch, Stream::Stdout), 64 * 1024);
        h.data(ch, b"!");
        h.assert_fault(
            ErrorKind::Protocol,
            &format!(
                "channel {}: peer sent 1 bytes with only 0 left in the window",
                ch.0
            ),
            msg::disconnect::PROTOCOL_ERROR,
        );
        assert_eq!(h.read_all(ch, Stream::Stdout).len(), 64 * 1024);
    }
}

#[test]
fn data_beyond_the_maximum_packet_size_is_refused() {
    let (mut h, ch) = Hostile::session(victim_server_config(etm()), etm());
    h.data(ch, b"kept");
    h.data(ch, &vec![0u8; 40 * 1024]);
    h.assert_fault(
        ErrorKind::Protocol,
        &format!(
            "channel {}: data packet of 40960 bytes exceeds maximum 32768",
            ch.0
        ),
        msg::disconnect::PROTOCOL_ERROR,
    );
    assert_eq!(h.read_all(ch, Stream::Stdout), b"kept");
}

#[test]
fn data_after_eof_is_refused() {
    for stderr in [false, true] {
        let (mut h, ch) = Hostile::session(victim_server_config(etm()), etm());
        h.data(ch, b"kept");
        h.send(|b| {
            b.push(msg::CHANNEL_EOF);
            b.put_u32(ch.0);
        });
        h.run();
        h.still_up();
        h.send(|b| {
            if stderr {
                b.push(msg::CHANNEL_EXTENDED_DATA);
                b.put_u32(ch.0);
                b.put_u32(1);
            } else {
                b.push(msg::CHANNEL_DATA);
                b.put_u32(ch.0);
            }
            b.put_string(b"late");
        });
        h.assert_fault(
            ErrorKind::Protocol,
            &format!("channel {}: data after EOF", ch.0),
            msg::disconnect::PROTOCOL_ERROR,
        );
        assert_eq!(h.read_all(ch, Stream::Stdout), b"kept");
    }
}

#[test]
fn data_after_close_is_refused() {
    let (mut h, ch) = Hostile::session(victim_server_config(etm()), etm());
    h.data(ch, b"kept");
    h.send(|b| {
        b.push(msg::CHANNEL_CLOSE);
        b.put_u32(ch.0);
    });
    h.run();
    h.still_up();
    assert!(h
        .events
        .iter()
        .any(|e| matches!(e, Event::ChannelClosed { channel } if *channel == ch)));
    // The victim answered CLOSE; the unread data keeps the channel around.
    assert!(h.got.iter().any(|p| p[0] == msg::CHANNEL_CLOSE));
    h.data(ch, b"late");
    h.assert_fault(
        ErrorKind::Protocol,
        &format!("channel {}: data after CLOSE", ch.0),
        msg::disconnect::PROTOCOL_ERROR,
    );
    assert_eq!(h.read_all(ch, Stream::Stdout), b"kept");
}

#[test]
fn messages_for_a_channel_never_opened_are_refused() {
    let cases: [MsgCase; 5] = [
        (msg::CHANNEL_DATA, "CHANNEL_DATA", |b| b.put_string(b"x")),
        (msg::CHANNEL_EXTENDED_DATA, "CHANNEL_EXTENDED_DATA", |b| {
            b.put_u32(1);
            b.put_string(b"x");
        }),
        (msg::CHANNEL_EOF, "CHANNEL_EOF", |_| {}),
        (msg::CHANNEL_CLOSE, "CHANNEL_CLOSE", |_| {}),
        (msg::CHANNEL_REQUEST, "CHANNEL_REQUEST", |b| {
            b.put_str("exec");
            b.put_bool(true);
            b.put_str("id");
        }),
    ];
    for (t, name, body) in cases {
        let (mut h, ch) = Hostile::session(victim_server_config(etm()), etm());
        h.data(ch, b"kept");
        h.send(|b| {
            b.push(t);
            b.put_u32(77);
            body(b);
        });
        h.assert_fault(
            ErrorKind::Protocol,
            &format!("{name} for channel 77, which is not open"),
            msg::disconnect::PROTOCOL_ERROR,
        );
        assert_eq!(h.read_all(ch, Stream::Stdout), b"kept");
    }
}

/// A window adjust can cross our CLOSE (paramiko sends one as its read
/// races the close): for a channel that is not open it is dropped, as
/// OpenSSH drops it, and the connection goes on.
#[test]
fn window_adjust_for_a_channel_not_open_is_dropped() {
    let (mut h, ch) = Hostile::session(victim_server_config(etm()), etm());
    h.send(|b| {
        b.push(msg::CHANNEL_WINDOW_ADJUST);
        b.put_u32(77);
        b.put_u32(10);
    });
    h.data(ch, b"still open");
    h.run();
    h.still_up();
    assert_eq!(h.read_all(ch, Stream::Stdout), b"still open");
}

fn opens_answered(got: &[Vec<u8>]) -> (usize, Vec<(u32, String)>) {
    let confirmed = got
        .iter()
        .filter(|p| p[0] == msg::CHANNEL_OPEN_CONFIRMATION)
        .count();
    let failed = got
        .iter()
        .filter(|p| p[0] == msg::CHANNEL_OPEN_FAILURE)
        .map(|p| {
            let mut r = Reader::new(&p[1..]);
            r.u32().unwrap();
            let code = r.u32().unwrap();
            (code, r.utf8().unwrap().to_string())
        })
        .collect();
    (confirmed, failed)
}

fn open_direct_tcpip(h: &mut Hostile, ours: u32) {
    h.send(|b| {
        b.push(msg::CHANNEL_OPEN);
        b.put_str("direct-tcpip");
        b.put_u32(ours);
        b.put_u32(RAW_WINDOW);
        b.put_u32(32768);
        b.put_str("localhost");
        b.put_u32(22);
        b.put_str("127.0.0.1");
        b.put_u32(4000);
    });
}

/// 3000 session opens against MaxSessions (10), then 3000 opens the
/// application never answers against the channel limit (1024).
#[test]
fn thousands_of_channel_opens_stay_within_the_limits() {
    let mut h = Hostile::against_server(victim_server_config(etm()), etm());
    h.login();
    let first = h.open(0);
    h.data(first, b"kept");
    let ((), peak) = peak_heap(|| {
        for i in 1..3000 {
            h.send(|b| {
                b.push(msg::CHANNEL_OPEN);
                b.put_str("session");
                b.put_u32(i);
                b.put_u32(RAW_WINDOW);
                b.put_u32(32768);
            });
        }
        h.run();
        for i in 0..3000 {
            open_direct_tcpip(&mut h, 10_000 + i);
        }
        h.run();
    });
    h.still_up();
    let (confirmed, failed) = opens_answered(&h.got);
    assert_eq!(confirmed, 10, "MaxSessions");
    let prohibited = failed
        .iter()
        .filter(|f| **f == (1, "too many sessions (MaxSessions)".to_string()))
        .count();
    assert_eq!(prohibited, 2990);
    let shortage = failed
        .iter()
        .filter(|f| **f == (4, "too many channels".to_string()))
        .count();
    assert_eq!(shortage, 3000 - (1024 - 10));
    assert_eq!(failed.len(), prohibited + shortage);
    assert_eq!(h.victim.channel_count(), 1024);
    assert!(peak < 4 * MIB, "{peak} bytes for 6000 channel opens");
    let pending: Vec<ChannelId> = h
        .events
        .iter()
        .filter_map(|e| match e {
            Event::ChannelOpenRequest { channel, kind, .. } if kind == "direct-tcpip" => {
                Some(*channel)
            }
            _ => None,
        })
        .collect();
    assert_eq!(pending.len(), 1024 - 10);
    // Still working: the first channel's data is there, and once the
    // application refuses the pending opens, new ones get through again.
    assert_eq!(h.read_all(first, Stream::Stdout), b"kept");
    for ch in pending {
        h.victim
            .reject_channel(ch, ssh_proto::ChannelOpenFailureReason::ConnectFailed, "no")
            .unwrap();
    }
    open_direct_tcpip(&mut h, 99_999);
    h.run();
    h.still_up();
    assert_eq!(h.victim.channel_count(), 11);
    assert!(matches!(
        h.events.last(),
        Some(Event::ChannelOpenRequest { kind, .. }) if kind == "direct-tcpip"
    ));
}

fn pty_req(h: &mut Hostile, ch: ChannelId, term: &str, size: u32, modes: &[u8]) {
    h.send(|b| {
        b.push(msg::CHANNEL_REQUEST);
        b.put_u32(ch.0);
        b.put_str("pty-req");
        b.put_bool(true);
        b.put_str(term);
        for _ in 0..4 {
            b.put_u32(size);
        }
        b.put_string(modes);
    });
}

fn last_pty(h: &Hostile) -> PtyRequest {
    match h.events.last() {
        Some(Event::ChannelRequest {
            request: ChannelRequest::Pty(p),
            want_reply: true,
            ..
        }) => p.clone(),
        other => panic!("expected a pty request, got {other:?}"),
    }
}

/// Absurd sizes and 1000 modes are parsed (modes capped at 256) and handed
/// to the application, which refuses; malformed mode lists stop parsing
/// without failing the request.
#[test]
fn pty_request_with_absurd_sizes() {
    let (mut h, ch) = Hostile::session(victim_server_config(etm()), etm());
    h.data(ch, b"kept");
    let mut modes = Vec::new();
    for i in 0..1000u32 {
        modes.push(1 + (i % 159) as u8);
        modes.put_u32(u32::MAX);
    }
    modes.push(0);
    modes.extend_from_slice(&[0xff; 64]);
    let term = "x".repeat(100 * KIB);
    pty_req(&mut h, ch, &term, u32::MAX, &modes);
    h.run();
    let p = last_pty(&h);
    assert_eq!(
        (p.cols, p.rows, p.width_px, p.height_px),
        (u32::MAX, u32::MAX, u32::MAX, u32::MAX)
    );
    assert_eq!(p.modes.len(), 256);
    assert_eq!(p.modes[0], (1, u32::MAX));
    assert_eq!(p.modes[255], (1 + (255 % 159) as u8, u32::MAX));
    assert_eq!(p.term.len(), 100 * KIB);
    h.victim.channel_request_reply(ch, false).unwrap();
    h.run();
    assert_eq!(h.got.last().unwrap(), &[msg::CHANNEL_FAILURE, 0, 0, 1, 244]);

    // An opcode of 160 and up ends the list (RFC 4254 §8: undefined).
    pty_req(&mut h, ch, "xterm", 80, &[200, 0, 0, 0, 1, 1, 0, 0, 0, 1]);
    h.run();
    assert!(last_pty(&h).modes.is_empty());
    h.victim.channel_request_reply(ch, false).unwrap();
    // An opcode with a truncated argument, and no TTY_OP_END.
    pty_req(&mut h, ch, "xterm", 80, &[53, 0, 0, 0, 1, 1, 0, 0]);
    h.run();
    assert_eq!(last_pty(&h).modes, [(53, 1)]);
    h.victim.channel_request_reply(ch, true).unwrap();
    // window-change with absurd sizes.
    h.send(|b| {
        b.push(msg::CHANNEL_REQUEST);
        b.put_u32(ch.0);
        b.put_str("window-change");
        b.put_bool(false);
        for _ in 0..4 {
            b.put_u32(u32::MAX);
        }
    });
    h.run();
    h.still_up();
    assert!(matches!(
        h.events.last(),
        Some(Event::ChannelRequest {
            request: ChannelRequest::WindowChange {
                cols: u32::MAX,
                rows: u32::MAX,
                ..
            },
            want_reply: false,
            ..
        })
    ));
    let replies: Vec<u8> = h
        .got
        .iter()
        .filter(|p| matches!(p[0], msg::CHANNEL_SUCCESS | msg::CHANNEL_FAILURE))
        .map(|p| p[0])
        .collect();
    assert_eq!(
        replies,
        [
            msg::CHANNEL_FAILURE,
            msg::CHANNEL_FAILURE,
            msg::CHANNEL_SUCCESS
        ]
    );
    assert_eq!(h.read_all(ch, Stream::Stdout), b"kept");
}

/// A pty-req that ends before its fields do is malformed: the connection
/// ends with an error naming what could not be read.
#[test]
fn truncated_pty_request_is_refused() {
    let (mut h, ch) = Hostile::session(victim_server_config(etm()), etm());
    h.data(ch, b"kept");
    h.send(|b| {
        b.push(msg::CHANNEL_REQUEST);
        b.put_u32(ch.0);
        b.put_str("pty-req");
        b.put_bool(true);
        b.put_str("xterm");
        b.put_u32(80);
        b.put_u32(24);
    });
    h.assert_fault(
        ErrorKind::Protocol,
        "truncated message reading uint32: need 4 bytes, have 0",
        msg::disconnect::PROTOCOL_ERROR,
    );
    assert!(!h
        .events
        .iter()
        .any(|e| matches!(e, Event::ChannelRequest { .. })));
    assert_eq!(h.read_all(ch, Stream::Stdout), b"kept");
}

// ================================================================ timers

/// A peer that opens the connection and sends no version line (or not
/// all of it) is closed after the identification timeout (10 s by
/// default), not the 120 s grace time; one whose version line came in time
/// is left to the grace time.
#[test]
fn silent_peer_hits_the_identification_timeout() {
    let start = Instant::now();
    let cfg = Arc::new(victim_server_config(Algorithms::default()));
    assert_eq!(cfg.identification_timeout, Some(Duration::from_secs(10)));
    for sent in [&b""[..], b"SSH-2.0-slo"] {
        let mut s = Connection::server(cfg.clone(), rng(6), start).unwrap();
        assert_eq!(s.recv(start, sent).unwrap(), sent.len());
        assert_eq!(s.poll_timeout(), Some(start + Duration::from_secs(10)));
        s.handle_timeout(start + Duration::from_secs(9));
        assert!(!s.is_closed());
        s.handle_timeout(start + Duration::from_secs(10));
        let e = s
            .error()
            .cloned()
            .expect("closed at the identification timeout");
        assert_eq!(e.kind(), ErrorKind::Timeout);
        assert!(e.detail().contains("no identification string"), "{e}");
        assert_eq!(s.poll_timeout(), None);
    }
    let mut s = Connection::server(cfg, rng(7), start).unwrap();
    s.recv(start + Duration::from_secs(1), RAW_VERSION).unwrap();
    assert_eq!(s.poll_timeout(), Some(start + Duration::from_secs(120)));
    s.handle_timeout(start + Duration::from_secs(60));
    assert!(!s.is_closed());
}

/// A peer that sends one byte per second never finishes its handshake: the
/// login grace time (120 s) ends it, on the virtual clock.
#[test]
fn slow_peer_one_byte_per_second_hits_the_login_grace_time() {
    let start = Instant::now();
    let mut cfg = victim_server_config(Algorithms::default());
    // Only the grace time here (the version line takes ~20 s to trickle).
    cfg.identification_timeout = None;
    let mut s = Connection::server(Arc::new(cfg), rng(5), start).unwrap();
    let deadline = s.poll_timeout().expect("a grace timer");
    assert_eq!(deadline, start + Duration::from_secs(120));
    let mut input = RAW_VERSION.to_vec();
    input.extend(frame(&client_kexinit(true)));
    let mut now = start;
    let mut sent = 0;
    while !s.is_closed() {
        assert!(sent < input.len(), "the peer finished its KEXINIT");
        now += Duration::from_secs(1);
        assert_eq!(s.recv(now, &input[sent..sent + 1]).unwrap(), 1);
        sent += 1;
        // Trickling bytes does not move the deadline.
        assert_eq!(s.poll_timeout(), Some(deadline));
        if s.poll_timeout().is_some_and(|t| t <= now) {
            s.handle_timeout(now);
        }
    }
    assert_eq!(now, deadline);
    assert_eq!(s.peer_version(), Some("SSH-2.0-hostile_0.1"));
    let e = s.error().unwrap().clone();
    assert_eq!(e.kind(), ErrorKind::Timeout);
    assert!(
        e.detail().contains("login grace time of 120s exceeded"),
        "{e:?}"
    );
    assert!(matches!(s.poll_event(), Some(Event::Disconnected(d)) if d == e));
    assert_eq!(s.poll_timeout(), None);
    let mut out = Vec::new();
    s.take_transmit(&mut out);
    let (code, text) = last_disconnect(&plain_payloads(&out));
    assert_eq!(code, msg::disconnect::BY_APPLICATION);
    assert!(text.contains("login grace time"), "{text}");
}

// ============================================================== requests

fn global(h: &mut Hostile, name: &str, want_reply: bool, i: u32) {
    h.send(|b| {
        b.push(msg::GLOBAL_REQUEST);
        b.put_str(name);
        b.put_bool(want_reply);
        b.put_u32(i);
    });
}

/// Thousands of global requests wanting replies the application never
/// gives: the core holds at most MAX_PENDING_GLOBAL_REQUESTS.
#[test]
fn unanswered_global_requests_are_capped() {
    let (mut h, ch) = Hostile::session(victim_server_config(etm()), etm());
    h.data(ch, b"kept");
    let ((), peak) = peak_heap(|| {
        for i in 0..5000 {
            global(&mut h, "flood@example.com", true, i);
        }
        h.run();
    });
    assert!(peak < 2 * MIB, "{peak}");
    h.assert_fault(
        ErrorKind::Limit,
        &format!("more than {MAX_PENDING_GLOBAL_REQUESTS} global requests await a reply"),
        msg::disconnect::PROTOCOL_ERROR,
    );
    let asked = h
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::GlobalRequest {
                    want_reply: true,
                    ..
                }
            )
        })
        .count();
    assert_eq!(asked, MAX_PENDING_GLOBAL_REQUESTS);
    assert_eq!(h.read_all(ch, Stream::Stdout), b"kept");
}

/// Requests the application answers as they come, requests that want no
/// reply, and keepalives (answered by the core) do not count toward it.
#[test]
fn answered_global_requests_and_keepalives_are_not_capped() {
    let (mut h, _) = Hostile::session(victim_server_config(etm()), etm());
    for i in 0..5000 {
        global(&mut h, "keepalive@openssh.com", true, i);
        global(&mut h, "no-reply@example.com", false, i);
        global(&mut h, "answered@example.com", true, i);
        if i % 16 == 15 {
            h.run();
            while h.victim.global_request_reply(true, &[]).is_ok() {}
        }
    }
    h.run();
    while h.victim.global_request_reply(true, &[]).is_ok() {}
    h.run();
    h.still_up();
    let replies: Vec<u8> = h
        .got
        .iter()
        .filter(|p| matches!(p[0], msg::REQUEST_SUCCESS | msg::REQUEST_FAILURE))
        .map(|p| p[0])
        .collect();
    assert_eq!(replies.len(), 10_000);
    // In request order: the keepalive's refusal, then the application's yes.
    assert!(replies
        .chunks(2)
        .all(|c| c == [msg::REQUEST_FAILURE, msg::REQUEST_SUCCESS]));
    let events = h
        .events
        .iter()
        .filter(|e| matches!(e, Event::GlobalRequest { .. }))
        .count();
    assert_eq!(events, 10_000, "keepalives are not reported");
}

/// A peer sends 100k channel and global requests wanting no reply while
/// the application handles none (a slow handler): the core stops taking
/// input once MAX_UNHANDLED_REQUESTS are pending, its memory stays small,
/// and once the application handles them every request is reported, in
/// order, and the data behind them arrives.
#[test]
fn unhandled_no_reply_requests_hold_input_back() {
    let (mut h, ch) = Hostile::session(victim_server_config(etm()), etm());
    h.hold_requests = true;
    let is_request = |e: &Event| {
        matches!(
            e,
            Event::ChannelRequest {
                want_reply: false,
                ..
            } | Event::GlobalRequest {
                want_reply: false,
                ..
            }
        )
    };
    let before = h.events.len();
    const N: u32 = 100_000;
    for i in 0..N {
        if i % 2 == 0 {
            channel_req(&mut h, ch, "no-reply@example.com", false, i);
        } else {
            global(&mut h, "no-reply@example.com", false, i);
        }
    }
    h.data(ch, b"kept");
    let bytes = h.raw.pending_output().to_vec();
    h.raw.advance_output(bytes.len());
    let (taken, peak) = peak_heap(|| {
        let mut off = 0;
        while off < bytes.len() {
            match h.victim.recv(h.now, &bytes[off..]) {
                Ok(0) => break,
                Ok(n) => off += n,
                Err(e) => panic!("{e}"),
            }
            h.victim_events();
        }
        off
    });
    assert!(peak < 2 * MIB, "{peak}");
    assert!(
        taken < bytes.len() / 4,
        "the victim took {taken} of {} bytes with no request handled",
        bytes.len()
    );
    assert_eq!(h.victim.unhandled_requests(), MAX_UNHANDLED_REQUESTS);
    let reported = h.events[before..].iter().filter(|e| is_request(e)).count();
    assert_eq!(reported, MAX_UNHANDLED_REQUESTS);
    h.still_up();

    // The application catches up: the rest goes through.
    let mut off = taken;
    let mut handled = 0;
    for _ in 0..1_000_000 {
        while h.victim.unhandled_requests() > 0 {
            h.victim.request_handled();
            handled += 1;
        }
        if off == bytes.len() {
            break;
        }
        off += h.victim.recv(h.now, &bytes[off..]).unwrap();
        h.victim_events();
    }
    assert_eq!(off, bytes.len());
    h.hold_requests = false;
    h.run();
    h.still_up();
    assert_eq!(handled, N as usize);
    let names: Vec<u32> = h.events[before..]
        .iter()
        .filter_map(|e| match e {
            Event::ChannelRequest {
                request: ChannelRequest::Other { data, .. },
                want_reply: false,
                ..
            }
            | Event::GlobalRequest {
                data,
                want_reply: false,
                ..
            } => Some(u32::from_be_bytes(data[..4].try_into().unwrap())),
            _ => None,
        })
        .collect();
    assert_eq!(names, (0..N).collect::<Vec<_>>(), "every request, in order");
    assert_eq!(h.read_all(ch, Stream::Stdout), b"kept");
}

fn channel_req(h: &mut Hostile, ch: ChannelId, name: &str, want_reply: bool, i: u32) {
    h.send(|b| {
        b.push(msg::CHANNEL_REQUEST);
        b.put_u32(ch.0);
        b.put_str(name);
        b.put_bool(want_reply);
        b.put_u32(i);
    });
}

fn channel_replies(h: &Hostile) -> Vec<u8> {
    h.got
        .iter()
        .filter(|p| matches!(p[0], msg::CHANNEL_SUCCESS | msg::CHANNEL_FAILURE))
        .map(|p| p[0])
        .collect()
}

/// Thousands of channel requests wanting replies the application never
/// gives: at most MAX_PENDING_CHANNEL_REQUESTS wait per channel.
#[test]
fn unanswered_channel_requests_are_capped() {
    let (mut h, ch) = Hostile::session(victim_server_config(etm()), etm());
    h.data(ch, b"kept");
    let ((), peak) = peak_heap(|| {
        for i in 0..5000 {
            channel_req(&mut h, ch, "flood@example.com", true, i);
        }
        h.run();
    });
    assert!(peak < 2 * MIB, "{peak}");
    assert_channel_request_cap(&mut h, ch);
    let asked = h
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::ChannelRequest {
                    want_reply: true,
                    ..
                }
            )
        })
        .count();
    assert_eq!(asked, MAX_PENDING_CHANNEL_REQUESTS);
    assert!(channel_replies(&h).is_empty());
    assert_eq!(h.read_all(ch, Stream::Stdout), b"kept");
}

/// The refusals the core itself gives (keepalive@openssh.com) queue behind
/// an unanswered request, to keep replies in order: they count toward the
/// same cap, or a peer could grow that queue without bound.
#[test]
fn core_answered_channel_requests_behind_an_unanswered_one_are_capped() {
    let (mut h, ch) = Hostile::session(victim_server_config(etm()), etm());
    channel_req(&mut h, ch, "exec", true, 0);
    h.run();
    assert!(matches!(
        h.events.last(),
        Some(Event::ChannelRequest {
            request: ChannelRequest::Exec { .. },
            ..
        })
    ));
    let ((), peak) = peak_heap(|| {
        for i in 0..100_000 {
            channel_req(&mut h, ch, "keepalive@openssh.com", true, i);
            if i % 1000 == 0 {
                h.run();
                if h.victim.is_closed() {
                    break;
                }
            }
        }
        h.run();
    });
    assert!(peak < 2 * MIB, "{peak}");
    assert_channel_request_cap(&mut h, ch);
}

/// Requests the application answers as they come, and requests wanting no
/// reply, are not capped; replies go out in request order.
#[test]
fn answered_channel_requests_are_not_capped() {
    let (mut h, ch) = Hostile::session(victim_server_config(etm()), etm());
    h.data(ch, b"kept");
    const N: u32 = 5000;
    for i in 0..N {
        channel_req(&mut h, ch, "flood@example.com", true, i);
        channel_req(&mut h, ch, "keepalive@openssh.com", true, i);
        channel_req(&mut h, ch, "no-reply@example.com", false, i);
        if i % 16 == 15 || i == N - 1 {
            h.run();
            // While replies are owed, nothing the application sends on the
            // channel overtakes them.
            assert_eq!(h.victim.send_window(ch), 0);
            for _ in 0..16 {
                h.victim.channel_request_reply(ch, true).unwrap();
            }
        }
    }
    h.run();
    h.still_up();
    let replies = channel_replies(&h);
    assert_eq!(replies.len(), 2 * N as usize);
    assert!(replies
        .chunks(2)
        .all(|c| c == [msg::CHANNEL_SUCCESS, msg::CHANNEL_FAILURE]));
    assert!(h.victim.send_window(ch) > 0);
    assert_eq!(h.read_all(ch, Stream::Stdout), b"kept");
}

// ================================================================== SFTP

/// An SFTP server past INIT/VERSION.
fn sftp_server(config: SftpServerConfig) -> SftpServer {
    let mut s = SftpServer::new(config);
    let mut b = Vec::new();
    codec::encode_init(&mut b);
    assert_eq!(s.recv(&b).unwrap(), b.len());
    let v = sftp_replies_raw(&mut s);
    assert_eq!(v[0][0], codec::msg::VERSION);
    s
}

/// The whole packets (payloads) the server has to send.
fn sftp_replies_raw(s: &mut SftpServer) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    s.take_transmit(&mut out);
    let mut v = Vec::new();
    let mut at = 0;
    while let Some((a, b)) = codec::next_packet(&out[at..]).unwrap() {
        v.push(out[at + a..at + b].to_vec());
        at += b;
    }
    assert_eq!(at, out.len(), "a partial packet in the output");
    v
}

fn sftp_replies(s: &mut SftpServer) -> Vec<(u32, Response)> {
    sftp_replies_raw(s)
        .iter()
        .map(|p| Response::decode(p).unwrap())
        .collect()
}

fn sftp_open(path: &str) -> Request {
    Request::Open {
        path: path.into(),
        flags: ssh_proto::sftp::open_flags::READ,
        attrs: Attrs::default(),
    }
}

fn encode_all(reqs: impl IntoIterator<Item = (u32, Request)>) -> Vec<u8> {
    let mut b = Vec::new();
    for (id, r) in reqs {
        r.encode(id, &mut b);
    }
    b
}

/// 100 pipelined OPENs against a limit of 16 handles: the opens still
/// waiting for the application count, so 84 are refused at once.
#[test]
fn sftp_opens_beyond_max_handles_are_refused() {
    let mut s = sftp_server(SftpServerConfig {
        max_handles: 16,
        ..SftpServerConfig::default()
    });
    let input = encode_all((0..100).map(|i| (i, sftp_open(&format!("/f{i}")))));
    assert_eq!(s.recv(&input).unwrap(), input.len());
    let refused = sftp_replies(&mut s);
    assert_eq!(refused.len(), 84);
    for (id, r) in &refused {
        assert!(*id >= 16);
        assert_eq!(
            *r,
            Response::status(status::FAILURE, "too many open handles (limit 16)")
        );
    }
    let mut handed = Vec::new();
    while let Some((id, req)) = s.poll_request() {
        assert!(matches!(req, Request::Open { .. }));
        handed.push(id);
    }
    assert_eq!(handed, (0..16).collect::<Vec<_>>());
    for id in &handed {
        s.reply(*id, &Response::Handle(id.to_be_bytes().to_vec()))
            .unwrap();
    }
    assert_eq!(s.open_handles(), 16);
    // Answering a refused request again is the application's mistake.
    assert_eq!(
        s.reply(20, &Response::Handle(vec![1])).unwrap_err().kind(),
        ErrorKind::Usage
    );
    sftp_replies(&mut s);
    // Still working: one more open is refused, a close frees a slot.
    s.recv(&encode_all([(200, sftp_open("/x"))])).unwrap();
    assert_eq!(
        sftp_replies(&mut s)[0].1,
        Response::status(status::FAILURE, "too many open handles (limit 16)")
    );
    s.recv(&encode_all([(
        201,
        Request::Close {
            handle: 0u32.to_be_bytes().to_vec(),
        },
    )]))
    .unwrap();
    let (id, _) = s.poll_request().unwrap();
    s.reply(id, &Response::ok()).unwrap();
    assert_eq!(s.open_handles(), 15);
    s.recv(&encode_all([(202, sftp_open("/y"))])).unwrap();
    assert!(matches!(
        s.poll_request(),
        Some((202, Request::Open { .. }))
    ));
    assert!(s.error().is_none());
}

/// A READ of 4 GiB - 1 is shortened to the server's maximum read, which
/// fits in one packet.
#[test]
fn sftp_read_of_4_gib_is_clamped() {
    let config = SftpServerConfig::default();
    let max_read = config.max_read;
    let mut s = sftp_server(config);
    s.recv(&encode_all([(
        1,
        Request::Read {
            handle: b"h".to_vec(),
            offset: 0,
            len: u32::MAX,
        },
    )]))
    .unwrap();
    let Some((1, Request::Read { len, .. })) = s.poll_request() else {
        panic!("no READ");
    };
    assert_eq!(len, max_read);
    assert!((len as usize) < MAX_PACKET);
    let ((), peak) = peak_heap(|| {
        let data = vec![0xab; len as usize];
        s.reply_data(1, &data).unwrap();
        let got = sftp_replies(&mut s);
        assert!(matches!(&got[0], (1, Response::Data(d)) if d.len() == len as usize));
    });
    assert!(peak < 4 * MAX_PACKET, "{peak}");
}

/// A path of 1 MB makes a packet over the 256 KiB limit: refused with a
/// clear error, without buffering it; the request before it is kept.
#[test]
fn sftp_megabyte_path_is_refused() {
    let mut s = sftp_server(SftpServerConfig::default());
    let mut input = encode_all([(
        1,
        Request::Stat {
            path: "/before".into(),
        },
    )]);
    let huge = "a".repeat(MIB);
    sftp_open(&huge).encode(2, &mut input);
    let (r, peak) = peak_heap(|| {
        let r = s.recv(&input);
        // The client keeps streaming the rest of its packet.
        for _ in 0..16 {
            assert!(s.recv(&input[..64 * KIB]).is_err());
        }
        r
    });
    assert!(peak < MIB, "{peak} bytes held");
    let e = r.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Protocol);
    let len = 1 + 4 + 4 + MIB + 4 + 4;
    assert!(
        e.detail()
            .contains(&format!("SFTP packet of {len} bytes (limit {MAX_PACKET})")),
        "{e:?}"
    );
    assert_eq!(s.error(), Some(&e));
    assert!(matches!(s.poll_request(), Some((1, Request::Stat { path })) if path == "/before"));
    assert!(s.transmit().is_none(), "nothing half-written");
    // The application can still answer what was accepted before.
    s.reply(1, &Response::status(status::NO_SUCH_FILE, "no"))
        .unwrap();
    assert_eq!(sftp_replies(&mut s).len(), 1);

    // Just under the limit, a long path is handed over intact.
    let mut s = sftp_server(SftpServerConfig::default());
    let long = "b".repeat(MAX_PACKET - 64);
    let input = encode_all([(3, sftp_open(&long))]);
    assert_eq!(s.recv(&input).unwrap(), input.len());
    assert!(matches!(s.poll_request(), Some((3, Request::Open { path, .. })) if path == long));
}

/// READDIR over a directory of 100 000 entries that the application hands
/// out 128 at a time: memory is bounded by one batch, not the directory.
#[test]
fn sftp_readdir_of_100k_entries_in_batches() {
    const ENTRIES: usize = 100_000;
    const BATCH: usize = 128;
    let mut s = sftp_server(SftpServerConfig::default());
    s.recv(&encode_all([(
        1,
        Request::Opendir {
            path: "/big".into(),
        },
    )]))
    .unwrap();
    let (id, _) = s.poll_request().unwrap();
    s.reply(id, &Response::Handle(b"dir".to_vec())).unwrap();
    sftp_replies(&mut s);
    let mut next = 0usize; // the application's cursor
    let mut seen = 0usize; // the client's count
    let mut max_out = 0;
    let mut id = 2u32;
    let (eof, peak) = peak_heap(|| loop {
        s.recv(&encode_all([(
            id,
            Request::Readdir {
                handle: b"dir".to_vec(),
            },
        )]))
        .unwrap();
        let (rid, req) = s.poll_request().unwrap();
        assert!(matches!(req, Request::Readdir { .. }));
        if next == ENTRIES {
            s.reply_status(rid, status::EOF, "").unwrap();
        } else {
            let batch: Vec<NameEntry> = (next..(next + BATCH).min(ENTRIES))
                .map(|i| NameEntry {
                    filename: format!("f{i:06}"),
                    longname: format!("-rw-r--r-- 1 alice alice 0 Jan 1 2024 f{i:06}"),
                    attrs: Attrs::default(),
                })
                .collect();
            next += batch.len();
            s.reply(rid, &Response::Name(batch)).unwrap();
        }
        max_out = max_out.max(s.transmit_len());
        for (got_id, r) in sftp_replies(&mut s) {
            assert_eq!(got_id, id);
            match r {
                Response::Name(v) => {
                    for e in v {
                        assert_eq!(e.filename, format!("f{seen:06}"));
                        seen += 1;
                    }
                }
                Response::Status { code, .. } => return code == status::EOF,
                other => panic!("{other:?}"),
            }
        }
        id += 1;
    });
    assert!(eof);
    assert_eq!(seen, ENTRIES);
    assert!(max_out < 16 * KIB, "server buffered {max_out} bytes");
    assert!(peak < 256 * KIB, "{peak} bytes held for {ENTRIES} entries");
    assert_eq!(s.outstanding(), 0);
}

/// A client pipelining 10 000 READDIRs without waiting: input beyond
/// `max_outstanding` unanswered requests is not taken.
#[test]
fn sftp_pipelined_requests_wait_at_max_outstanding() {
    let config = SftpServerConfig::default();
    let limit = config.max_outstanding;
    let mut s = sftp_server(config);
    let input = encode_all((0..10_000).map(|i| {
        (
            i,
            Request::Readdir {
                handle: b"d".to_vec(),
            },
        )
    }));
    let per = input.len() / 10_000;
    let taken = s.recv(&input).unwrap();
    assert_eq!(taken, limit * per);
    assert_eq!(s.recv(&input[taken..]).unwrap(), 0);
    let mut n = 0;
    while let Some((id, _)) = s.poll_request() {
        s.reply_status(id, status::EOF, "").unwrap();
        n += 1;
    }
    assert_eq!(n, limit);
    assert!(s.transmit_len() < limit * 64);
    // Answered: the next batch is taken.
    assert_eq!(s.recv(&input[taken..]).unwrap(), limit * per);
    assert!(s.error().is_none());
}

/// Found by fuzzing `key_files`: an encrypted OpenSSH key whose bcrypt-pbkdf
/// work factor was mutated upwards kept the parser busy for minutes (the
/// limit was 100,000 rounds, about 12 minutes of work). The rounds field is
/// now bounded by `MAX_BCRYPT_ROUNDS` (1024, about 7 s) and a larger value
/// is refused at once, naming the limit.
#[test]
fn key_file_with_a_huge_bcrypt_work_factor_is_refused_at_once() {
    use base64ct::{Base64, Encoding};
    // The fuzzer's input (aes256-ctr + bcrypt, 769 rounds), re-encoded with
    // other round counts.
    use ssh_proto::keys::MAX_BCRYPT_ROUNDS;
    const FUZZ_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAACmFlczI1Ni1jdHIAAAAGYmNyeXB0AAAAGAAAABBSm9B3Bs\nYnK/V68jOh3RmNAAADAQAAAAEAAAAzAAAAC3NzaC1lZDI1NTE5AAAAIJwrL2xM+OSojs89\nE61e7c3y190d3ZCYrG53/6DQn7OgAAAAoJv7ScjgkvzYKhgtmfJF7lvp9vdAA0IS8Yx0J9\nPzoJiK1ZSg6gqgdcbbXKQHDbWWI/Sf1YvDQEbYMPLlU6j0o0eAQeuBefzZEyDZBl4Le9Nc\nhiH5OIOhCs4/PfYVLhRY7JaV2BMtpVhrl41No703Jbtl2xhU+UyEGWmIgUG3GuLOt/T+7L\nyLEvgxDlv/42NRPaFsvHBOI8eVT9/LwLLQma0=\n-----END OPENSSH PRIVATE KEY-----\n";
    let body: String = FUZZ_KEY
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let mut blob = Base64::decode_vec(&body).unwrap();
    // "openssh-key-v1\0", cipher name, KDF name, then the KDF options:
    // string salt, uint32 rounds. Find the rounds after the 16-byte salt.
    let opts = blob
        .windows(4)
        .position(|w| w == [0, 0, 0, 0x18])
        .expect("KDF options length");
    let rounds_at = opts + 4 + 4 + 16;
    assert_eq!(&blob[rounds_at..rounds_at + 4], &769u32.to_be_bytes());
    for rounds in [1025u32, 100_000, u32::MAX] {
        blob[rounds_at..rounds_at + 4].copy_from_slice(&rounds.to_be_bytes());
        let text = format!(
            "-----BEGIN OPENSSH PRIVATE KEY-----\n{}\n-----END OPENSSH PRIVATE KEY-----\n",
            Base64::encode_string(&blob)
        );
        let t0 = Instant::now();
        let e = PrivateKey::from_bytes(text.as_bytes(), Some(b"pw")).unwrap_err();
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "{rounds} rounds: took {:?}",
            t0.elapsed()
        );
        assert_eq!(e.kind(), ErrorKind::Key, "{e}");
        assert!(
            e.to_string().contains(&format!("{rounds} rounds"))
                && e.to_string().contains(&MAX_BCRYPT_ROUNDS.to_string()),
            "{e}"
        );
    }
}

// ------------------------------------------- userauth failures and MaxAuthTries

/// A victim server with `MaxAuthTries` 3 and a hostile client past the
/// key exchange whose ssh-userauth service was accepted.
fn auth_victim(max_auth_tries: u32) -> Hostile {
    let mut cfg = victim_server_config(Algorithms::default());
    cfg.max_auth_tries = max_auth_tries;
    let mut h = Hostile::against_server(cfg, Algorithms::default());
    h.run();
    assert_eq!(h.raw_kex_done, 1, "key exchange: {:?}", h.events);
    h.send(|b| {
        b.push(msg::SERVICE_REQUEST);
        b.put_str("ssh-userauth");
    });
    h.run();
    h
}

/// A publickey request from the hostile client (`sig`: a signed one).
fn pk_request(h: &mut Hostile, algorithm: &str, blob: &[u8], sig: Option<&[u8]>) {
    h.send(|b| {
        b.push(msg::USERAUTH_REQUEST);
        b.put_str("alice");
        b.put_str("ssh-connection");
        b.put_str("publickey");
        b.put_bool(sig.is_some());
        b.put_str(algorithm);
        b.put_string(blob);
        if let Some(s) = sig {
            b.put_string(s);
        }
    });
    h.run();
}

fn none_request(h: &mut Hostile) {
    h.send(|b| {
        b.push(msg::USERAUTH_REQUEST);
        b.put_str("alice");
        b.put_str("ssh-connection");
        b.put_str("none");
    });
    h.run();
}

/// The victim closed the connection: too many authentication failures.
fn assert_too_many_auth_failures(h: &mut Hostile) {
    h.assert_fault(
        ErrorKind::AuthFailed,
        "Too many authentication failures",
        msg::disconnect::PROTOCOL_ERROR,
    );
}

fn failures_sent(h: &Hostile) -> usize {
    h.got
        .iter()
        .filter(|p| p[0] == msg::USERAUTH_FAILURE)
        .count()
}

fn auth_requests_seen(h: &Hostile) -> usize {
    h.events
        .iter()
        .filter(|e| matches!(e, Event::AuthRequest { .. }))
        .count()
}

/// A signature blob of the right shape whose signature is wrong.
fn bogus_ed25519_signature() -> Vec<u8> {
    let mut s = Vec::new();
    s.put_str("ssh-ed25519");
    s.put_string(&[0x5a; 64]);
    s
}

/// Bad signatures are failed attempts (sshd's userauth_pubkey): the third
/// one with MaxAuthTries 3 ends the connection.
#[test]
fn bad_publickey_signatures_count_toward_max_auth_tries() {
    let mut h = auth_victim(3);
    let key = PrivateKey::generate_ed25519(&mut *rng(77)).public_key();
    let sig = bogus_ed25519_signature();
    for n in 1..=2 {
        pk_request(&mut h, "ssh-ed25519", key.blob(), Some(&sig));
        h.still_up();
        assert_eq!(failures_sent(&h), n);
    }
    pk_request(&mut h, "ssh-ed25519", key.blob(), Some(&sig));
    assert_too_many_auth_failures(&mut h);
    assert_eq!(failures_sent(&h), 2);
    // None of them reached the application.
    assert_eq!(auth_requests_seen(&h), 0, "{:?}", h.events);
}

/// Key blobs that do not parse, or do not match the algorithm named, count
/// too, for queries as for signed requests.
#[test]
fn unusable_publickey_blobs_count_toward_max_auth_tries() {
    let mut h = auth_victim(4);
    let mut garbage = Vec::new();
    garbage.put_str("ssh-ed25519");
    garbage.put_string(b"not 32 bytes");
    let ed = PrivateKey::generate_ed25519(&mut *rng(78)).public_key();
    pk_request(&mut h, "ssh-ed25519", &garbage, None);
    pk_request(&mut h, "ssh-ed25519", b"\xff\xff", Some(b"x"));
    // An ed25519 key named as an ECDSA one.
    pk_request(&mut h, "ecdsa-sha2-nistp256", ed.blob(), None);
    h.still_up();
    assert_eq!(failures_sent(&h), 3);
    pk_request(
        &mut h,
        "ssh-ed25519",
        &garbage,
        Some(&bogus_ed25519_signature()),
    );
    assert_too_many_auth_failures(&mut h);
    assert_eq!(auth_requests_seen(&h), 0, "{:?}", h.events);
}

/// A signature algorithm outside the accepted list (here SHA-1 `ssh-rsa`,
/// off by default) is refused before the application hears of it, and
/// counts.
#[test]
fn publickey_algorithm_outside_the_accepted_list_counts() {
    let mut h = auth_victim(2);
    let ed = PrivateKey::generate_ed25519(&mut *rng(79)).public_key();
    pk_request(&mut h, "ssh-rsa", ed.blob(), None);
    h.still_up();
    assert_eq!(failures_sent(&h), 1);
    pk_request(&mut h, "no-such-algorithm", ed.blob(), None);
    assert_too_many_auth_failures(&mut h);
    assert_eq!(auth_requests_seen(&h), 0, "{:?}", h.events);
}

/// Only a first `none` request is free (sshd: `attempt > 1 || method !=
/// "none"`); every later one counts.
#[test]
fn only_the_first_none_request_is_free() {
    let mut h = auth_victim(2);
    none_request(&mut h);
    none_request(&mut h);
    h.still_up();
    assert_eq!(failures_sent(&h), 2);
    none_request(&mut h);
    assert_too_many_auth_failures(&mut h);
}

/// An RSA user key made by `ssh-keygen` (a real peer's key file).
fn ssh_keygen_rsa_key() -> PrivateKey {
    let dir = std::env::temp_dir().join(format!("ssh-proto-hostile-rsa-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("id_rsa");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "", "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen must be installed (scripts/install-peers.sh)");
    assert!(status.success(), "ssh-keygen failed");
    let key = PrivateKey::from_bytes(&std::fs::read(&path).unwrap(), None).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    key
}

/// A correctly signed SHA-1 `ssh-rsa` request: a default server refuses it
/// before the application hears of it (OpenSSH 8.8+ leaves ssh-rsa out of
/// PubkeyAcceptedAlgorithms); a server whose list has it asks the
/// application, naming the algorithm.
#[test]
fn ssh_rsa_user_signature_only_when_accepted() {
    let key = ssh_keygen_rsa_key();
    let blob = key.public_key().blob().to_vec();
    let signed = |h: &mut Hostile| {
        let sid = h.raw.session_id().expect("session id").to_vec();
        let data = ssh_proto::internal::publickey_signed_data(&sid, "alice", "ssh-rsa", &blob);
        let sig = key.sign("ssh-rsa", &data).unwrap();
        pk_request(h, "ssh-rsa", &blob, Some(&sig));
    };
    let ssh_rsa_requests = |h: &Hostile| {
        h.events
            .iter()
            .filter(|e| {
                matches!(e, Event::AuthRequest {
                    request: AuthRequest::PublicKey { algorithm, verified: true, .. },
                    ..
                } if algorithm == "ssh-rsa")
            })
            .count()
    };

    let mut h = auth_victim(6);
    signed(&mut h);
    h.still_up();
    assert_eq!(failures_sent(&h), 1);
    assert_eq!(auth_requests_seen(&h), 0, "{:?}", h.events);

    let mut cfg = victim_server_config(Algorithms::default());
    cfg.transport
        .pubkey_accepted_algorithms
        .push("ssh-rsa".into());
    let mut h = Hostile::against_server(cfg, Algorithms::default());
    h.run();
    h.send(|b| {
        b.push(msg::SERVICE_REQUEST);
        b.put_str("ssh-userauth");
    });
    h.run();
    signed(&mut h);
    assert_eq!(ssh_rsa_requests(&h), 1, "{:?}", h.events);
}

/// ssh-userauth may be requested again until authentication succeeds, as
/// sshd allows (paramiko asks before every attempt).
#[test]
fn userauth_service_may_be_requested_again_before_success() {
    let mut h = auth_victim(6);
    none_request(&mut h);
    h.send(|b| {
        b.push(msg::SERVICE_REQUEST);
        b.put_str("ssh-userauth");
    });
    h.run();
    h.still_up();
    let accepts = h.got.iter().filter(|p| p[0] == msg::SERVICE_ACCEPT).count();
    assert_eq!(accepts, 2);
    h.password_auth();
}
