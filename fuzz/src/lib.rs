//! Fuzz targets for `ssh-proto`, as plain functions.
//!
//! Each `pub fn NAME(data: &[u8])` drives the sans-IO core with no sockets,
//! fixed RNG seeds and a fixed clock, and must never panic. The cargo-fuzz
//! binaries in `fuzz_targets/` call them; the stable test
//! `crates/ssh-proto/tests/fuzz_replay.rs` includes this file with `#[path]`
//! and replays the corpus through them. So this file only uses `ssh-proto`,
//! `rand_chacha` and `rand_core` (no libfuzzer-sys).
//!
//! Determinism: the configurations used for recorded sessions pin kex
//! `curve25519-sha256`, host key `ssh-ed25519`, cipher `aes128-ctr` and MAC
//! `hmac-sha2-256`; every `Connection` gets a `ChaCha20Rng` from a fixed
//! seed, and the clock is one `Instant` taken once. A fresh `Connection`
//! built with the same seed and fed a recorded prefix of its peer's bytes
//! therefore reaches the same state as in the recording (encrypted packets
//! included).
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use ssh_proto::keys::authorized_keys::AuthorizedKeys;
use ssh_proto::keys::known_hosts::KnownHosts;
use ssh_proto::sftp::{self, Attrs, NameEntry, Request, Response, SftpClient, SftpServer};
use ssh_proto::{
    AuthRequest, ChannelId, Config, Connection, Event, PrivateKey, Prompt, PtyRequest, PublicKey,
    Stream,
};

// ------------------------------------------------------------------ setup

/// Seeds of the recorded client and server `Connection`s.
pub const CLIENT_SEED: u64 = 1;
pub const SERVER_SEED: u64 = 2;
const HOST_KEY_SEED: u64 = 99;
const USER_KEY_SEED: u64 = 5;
/// The peer version line fed before `data` in `kex_messages`.
pub const PEER_VERSION: &[u8] = b"SSH-2.0-OpenSSH_9.6\r\n";

/// Bounds that keep one input cheap.
const MAX_OPS: usize = 200;
const MAX_ROUNDS: usize = 64;

fn rng(seed: u64) -> Box<ChaCha20Rng> {
    Box::new(ChaCha20Rng::seed_from_u64(seed))
}

/// One fixed instant for every connection (timeouts are moved explicitly).
fn now() -> Instant {
    static T: OnceLock<Instant> = OnceLock::new();
    *T.get_or_init(Instant::now)
}

pub fn host_key() -> Arc<PrivateKey> {
    static K: OnceLock<Arc<PrivateKey>> = OnceLock::new();
    K.get_or_init(|| {
        Arc::new(PrivateKey::generate_ed25519(
            &mut ChaCha20Rng::seed_from_u64(HOST_KEY_SEED),
        ))
    })
    .clone()
}

fn user_key() -> Arc<PrivateKey> {
    static K: OnceLock<Arc<PrivateKey>> = OnceLock::new();
    K.get_or_init(|| {
        Arc::new(PrivateKey::generate_ed25519(
            &mut ChaCha20Rng::seed_from_u64(USER_KEY_SEED),
        ))
    })
    .clone()
}

fn pinned(mut c: Config) -> Config {
    let a = &mut c.transport.algorithms;
    a.kex = vec!["curve25519-sha256".into()];
    a.host_key = vec!["ssh-ed25519".into()];
    a.cipher = vec!["aes128-ctr".into()];
    a.mac = vec!["hmac-sha2-256".into()];
    a.compression = vec!["none".into()];
    c
}

/// Client configuration of the recorded sessions.
pub fn client_config() -> Arc<Config> {
    static C: OnceLock<Arc<Config>> = OnceLock::new();
    C.get_or_init(|| Arc::new(pinned(Config::default())))
        .clone()
}

/// Server configuration of the recorded sessions.
pub fn server_config() -> Arc<Config> {
    static C: OnceLock<Arc<Config>> = OnceLock::new();
    C.get_or_init(|| {
        let mut c = pinned(Config::default());
        c.transport.host_keys = vec![host_key()];
        Arc::new(c)
    })
    .clone()
}

/// Configurations offering every algorithm (for the plaintext kex target,
/// where the fuzzer's KEXINIT picks one).
fn all_configs() -> (Arc<Config>, Arc<Config>) {
    static C: OnceLock<(Arc<Config>, Arc<Config>)> = OnceLock::new();
    C.get_or_init(|| {
        let mut cc = Config::default();
        cc.transport.algorithms = ssh_proto::Algorithms::all();
        let mut sc = cc.clone();
        sc.transport.host_keys = vec![host_key()];
        (Arc::new(cc), Arc::new(sc))
    })
    .clone()
}

fn new_client() -> Option<Connection> {
    Connection::client(client_config(), rng(CLIENT_SEED), now()).ok()
}

fn new_server() -> Option<Connection> {
    Connection::server(server_config(), rng(SERVER_SEED), now()).ok()
}

// ------------------------------------------------------------ fuzz input

/// Reads choices out of the fuzz input; yields zeros once it runs out.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }
    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((&b, rest)) => {
                self.data = rest;
                b
            }
            None => 0,
        }
    }
    fn bool(&mut self) -> bool {
        self.u8() & 1 == 1
    }
    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// Up to `max` bytes, length chosen by the input.
    fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = (self.u16() as usize % (max + 1)).min(self.data.len());
        let (a, b) = self.data.split_at(n);
        self.data = b;
        a
    }
    fn string(&mut self, max: usize) -> String {
        String::from_utf8_lossy(self.bytes(max)).into_owned()
    }
    /// A short string: one of a few known words or fuzz bytes.
    fn word(&mut self, known: &[&str]) -> String {
        let i = self.u8() as usize;
        if i < known.len() * 8 {
            known[i % known.len()].to_string()
        } else {
            self.string(48)
        }
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

// ------------------------------------------------------------- plumbing

/// What an application does with the events it polls.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Policy {
    /// Accept host keys, accept every auth attempt, accept channels and
    /// requests, read all data, answer prompts.
    Agreeable,
    /// Only read data and accept host keys; decisions are left pending
    /// (answered by fuzz-chosen operations).
    Passive,
}

/// Default answers for one event. Errors are ignored: a usage error from a
/// core call is an expected outcome here, never a panic.
fn answer(c: &mut Connection, e: &Event, policy: Policy) {
    let mut buf = [0u8; 4096];
    match e {
        Event::HostKey(_) => {
            let _ = c.accept_host_key();
        }
        Event::ChannelData { channel, stream } => {
            for _ in 0..64 {
                match c.channel_read(*channel, *stream, &mut buf) {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
        }
        _ if policy == Policy::Passive => {}
        Event::AuthRequest { .. } => {
            let _ = c.auth_accept();
        }
        Event::AuthPrompt { prompts, .. } => {
            let answers: Vec<String> = prompts.iter().map(|_| "secret".to_string()).collect();
            let _ = c.auth_respond(&answers);
        }
        Event::PasswordChangeRequired { .. } => {
            let _ = c.auth_change_password("alice", "secret", "secret2");
        }
        Event::ChannelOpenRequest { channel, .. } => {
            let _ = c.accept_channel(*channel);
        }
        Event::ChannelRequest {
            channel,
            want_reply: true,
            ..
        } => {
            let _ = c.channel_request_reply(*channel, true);
        }
        Event::GlobalRequest {
            want_reply: true, ..
        } => {
            let _ = c.global_request_reply(false, &[]);
        }
        Event::ChannelRequest {
            want_reply: false, ..
        }
        | Event::GlobalRequest {
            want_reply: false, ..
        } => c.request_handled(),
        _ => {}
    }
}

fn drain_events(c: &mut Connection, policy: Policy, seen: &mut Vec<Event>) -> bool {
    let mut any = false;
    for _ in 0..1024 {
        let Some(e) = c.poll_event() else { break };
        any = true;
        answer(c, &e, policy);
        if seen.len() < 256 {
            seen.push(e);
        }
    }
    any
}

/// Feeds `bytes` to `c` (discarding its output), answering events after
/// each `recv`, until all is taken or `c` stops taking input.
fn feed(c: &mut Connection, mut bytes: &[u8], policy: Policy) {
    let mut sink = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..100_000 {
        let n = match c.recv(now(), bytes) {
            Ok(n) => n,
            Err(_) => break,
        };
        bytes = &bytes[n.min(bytes.len())..];
        c.take_transmit(&mut sink);
        sink.clear();
        let any = drain_events(c, policy, &mut seen);
        seen.clear();
        if bytes.is_empty() || (n == 0 && !any) {
            break;
        }
    }
    let _ = c.poll_timeout();
}

/// Moves `from`'s output into `to`; returns how many bytes moved.
fn move_bytes(from: &mut Connection, to: &mut Connection, log: Option<&mut Vec<u8>>) -> usize {
    let Some(out) = from.transmit() else { return 0 };
    let out = out.to_vec();
    let taken = to.recv(now(), &out).unwrap_or(0).min(out.len());
    from.advance_transmit(taken);
    if let Some(log) = log {
        log.extend_from_slice(&out[..taken]);
    }
    taken
}

/// Two connections in memory.
struct Duo {
    client: Connection,
    server: Connection,
    client_events: Vec<Event>,
    server_events: Vec<Event>,
    client_log: Vec<u8>,
    server_log: Vec<u8>,
    record: bool,
}

impl Duo {
    fn new() -> Option<Duo> {
        Some(Duo {
            client: new_client()?,
            server: new_server()?,
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_log: Vec::new(),
            server_log: Vec::new(),
            record: false,
        })
    }

    /// One round each way; events answered by the given policies and kept
    /// in `*_events` for the caller. Returns whether anything happened.
    fn step(&mut self, cp: Policy, sp: Policy) -> bool {
        let a = move_bytes(
            &mut self.client,
            &mut self.server,
            self.record.then_some(&mut self.client_log),
        );
        let b = move_bytes(
            &mut self.server,
            &mut self.client,
            self.record.then_some(&mut self.server_log),
        );
        let c = drain_events(&mut self.client, cp, &mut self.client_events);
        let s = drain_events(&mut self.server, sp, &mut self.server_events);
        a + b > 0 || c || s
    }

    fn settle(&mut self, cp: Policy, sp: Policy, rounds: usize) {
        for _ in 0..rounds {
            if !self.step(cp, sp) {
                break;
            }
        }
    }

    fn alive(&self) -> bool {
        !self.client.is_closed() && !self.server.is_closed()
    }

    /// Both sides through key exchange (no authentication yet).
    fn after_kex() -> Option<Duo> {
        let mut d = Duo::new()?;
        d.settle(Policy::Passive, Policy::Passive, 1000);
        (d.client.session_id().is_some() && d.server.session_id().is_some() && d.alive())
            .then_some(d)
    }

    /// Both sides authenticated (password "alice"/"secret").
    fn authenticated() -> Option<Duo> {
        let mut d = Duo::new()?;
        d.client.auth_password("alice", "secret").ok()?;
        d.settle(Policy::Agreeable, Policy::Agreeable, 1000);
        d.client_events.clear();
        d.server_events.clear();
        (d.client.is_authenticated() && d.server.is_authenticated()).then_some(d)
    }
}

// ------------------------------------------------------ recorded sessions

/// The byte streams of one real in-memory session (client authenticates
/// with a password right away, the server accepts), with the offsets where
/// the fuzz input may be spliced in.
pub struct Recording {
    /// Everything the client sent, in order.
    pub client_stream: Vec<u8>,
    /// Everything the server sent, in order.
    pub server_stream: Vec<u8>,
    /// Cut points into `client_stream`: 0, after the version line, after
    /// each plaintext packet (through NEWKEYS), and the whole stream.
    pub client_cuts: Vec<usize>,
    pub server_cuts: Vec<usize>,
}

/// Offsets of the version line end and of each plaintext packet end up to
/// and including NEWKEYS, then the end of the stream.
fn cuts(stream: &[u8]) -> Vec<usize> {
    let mut v = vec![0];
    // Lines before the version line (a server may send some), then it.
    let mut pos = 0;
    while pos < stream.len() {
        let Some(nl) = stream[pos..].iter().position(|&b| b == b'\n') else {
            break;
        };
        let line = &stream[pos..pos + nl];
        pos += nl + 1;
        if line.starts_with(b"SSH-") {
            v.push(pos);
            break;
        }
    }
    while pos + 6 <= stream.len() {
        let len = u32::from_be_bytes([
            stream[pos],
            stream[pos + 1],
            stream[pos + 2],
            stream[pos + 3],
        ]) as usize;
        let ty = stream[pos + 5];
        pos += 4 + len;
        if pos > stream.len() {
            break;
        }
        v.push(pos);
        if ty == 21 {
            break;
        }
    }
    if *v.last().unwrap_or(&0) != stream.len() {
        v.push(stream.len());
    }
    v
}

pub fn recording() -> &'static Recording {
    static R: OnceLock<Recording> = OnceLock::new();
    R.get_or_init(|| {
        let mut client_stream = Vec::new();
        let mut server_stream = Vec::new();
        if let Some(mut d) = Duo::new() {
            d.record = true;
            let _ = d.client.auth_password("alice", "secret");
            d.settle(Policy::Agreeable, Policy::Agreeable, 1000);
            client_stream = std::mem::take(&mut d.client_log);
            server_stream = std::mem::take(&mut d.server_log);
        }
        Recording {
            client_cuts: cuts(&client_stream),
            server_cuts: cuts(&server_stream),
            client_stream,
            server_stream,
        }
    })
}

/// Self-check for the replay test: replaying each full recorded stream into
/// a fresh connection with the same seed reaches authentication.
pub fn recording_replays() -> (bool, bool) {
    let r = recording();
    let client_ok = new_client().is_some_and(|mut c| {
        let _ = c.auth_password("alice", "secret");
        feed(&mut c, &r.server_stream, Policy::Agreeable);
        c.is_authenticated() && c.error().is_none()
    });
    let server_ok = new_server().is_some_and(|mut s| {
        feed(&mut s, &r.client_stream, Policy::Agreeable);
        s.is_authenticated() && s.error().is_none()
    });
    (client_ok, server_ok)
}

/// `data[0]` picks a cut point; the recorded stream up to it, then the rest
/// of `data`, is what the fresh connection receives.
fn spliced(stream: &[u8], cuts: &[usize], data: &[u8]) -> Vec<u8> {
    let (sel, rest) = match data.split_first() {
        Some((&b, rest)) => (b as usize, rest),
        None => (0, data),
    };
    let cut = cuts.get(sel % cuts.len().max(1)).copied().unwrap_or(0);
    let mut v = stream[..cut].to_vec();
    v.extend_from_slice(rest);
    v
}

// ------------------------------------------------------------- targets

/// A fresh client fed the recorded server stream (cut where `data[0]` says)
/// and then `data`.
pub fn client_packets(data: &[u8]) {
    let r = recording();
    let Some(mut c) = new_client() else { return };
    let _ = c.auth_password("alice", "secret");
    let bytes = spliced(&r.server_stream, &r.server_cuts, data);
    feed(&mut c, &bytes, Policy::Agreeable);
    c.recv_eof(now());
    while c.poll_event().is_some() {}
}

/// A fresh server fed the recorded client stream (cut where `data[0]` says)
/// and then `data`.
pub fn server_packets(data: &[u8]) {
    let r = recording();
    let Some(mut s) = new_server() else { return };
    let bytes = spliced(&r.client_stream, &r.client_cuts, data);
    feed(&mut s, &bytes, Policy::Agreeable);
    s.handle_timeout(now() + Duration::from_secs(1000));
    while s.poll_event().is_some() {}
}

/// Both roles, offering every algorithm, fed a valid version line and then
/// `data` (the plaintext KEXINIT / kex phase).
pub fn kex_messages(data: &[u8]) {
    let (cc, sc) = all_configs();
    let mut bytes = PEER_VERSION.to_vec();
    bytes.extend_from_slice(data);
    if let Ok(mut c) = Connection::client(cc, rng(CLIENT_SEED), now()) {
        feed(&mut c, &bytes, Policy::Agreeable);
    }
    if let Ok(mut s) = Connection::server(sc, rng(SERVER_SEED), now()) {
        feed(&mut s, &bytes, Policy::Agreeable);
    }
}

const METHODS: &[&str] = &["password", "publickey", "keyboard-interactive", "none"];

fn fuzz_prompts(inp: &mut Input<'_>) -> Vec<Prompt> {
    let n = inp.u8() % 4;
    (0..n)
        .map(|_| Prompt {
            text: inp.string(32),
            echo: inp.bool(),
        })
        .collect()
}

fn fuzz_answers(inp: &mut Input<'_>) -> Vec<String> {
    let n = inp.u8() % 4;
    (0..n).map(|_| inp.word(&["secret", ""])).collect()
}

/// Server side: a fuzz-chosen answer to an authentication request.
fn server_decides(s: &mut Connection, inp: &mut Input<'_>) {
    let _ = match inp.u8() % 6 {
        0 => s.auth_accept(),
        1 => s.auth_reject(),
        2 => {
            let n = inp.u8() as usize % 3;
            let rem: Vec<String> = (0..n).map(|_| inp.word(METHODS)).collect();
            let rem: Vec<&str> = rem.iter().map(String::as_str).collect();
            s.auth_partial(&rem)
        }
        3 => {
            let name = inp.string(16);
            let instr = inp.string(16);
            let prompts = fuzz_prompts(inp);
            s.auth_info_request(&name, &instr, &prompts)
        }
        4 => s.auth_password_change_request(&inp.string(24)),
        _ => {
            let n = inp.u8() as usize % 3;
            let m: Vec<String> = (0..n).map(|_| inp.word(METHODS)).collect();
            let m: Vec<&str> = m.iter().map(String::as_str).collect();
            s.set_auth_methods(&m);
            s.auth_reject()
        }
    };
}

/// One fuzz-chosen client authentication call.
fn client_attempt(c: &mut Connection, inp: &mut Input<'_>) {
    let user = inp.word(&["alice", "root", ""]);
    let _ = match inp.u8() % 6 {
        0 => c.auth_password(&user, &inp.word(&["secret", ""])),
        1 => c.auth_keyboard_interactive(&user, &inp.word(&["", "pam"])),
        2 => c.auth_none(&user),
        3 => c.auth_respond(&fuzz_answers(inp)),
        4 => {
            let old = inp.string(16);
            c.auth_change_password(&user, &old, &inp.string(16))
        }
        _ => c.auth_publickey(&user, user_key()),
    };
}

/// Server auth: a real client after kex makes fuzz-chosen attempts; the
/// server application answers each request with a fuzz-chosen decision.
pub fn server_auth(data: &[u8]) {
    let Some(mut d) = Duo::after_kex() else {
        return;
    };
    let mut inp = Input::new(data);
    let mut ops = 0;
    while !inp.is_empty() && ops < MAX_OPS && d.alive() {
        ops += 1;
        client_attempt(&mut d.client, &mut inp);
        for _ in 0..MAX_ROUNDS {
            let progressed = d.step(Policy::Passive, Policy::Passive);
            let reqs = d
                .server_events
                .drain(..)
                .filter(|e| matches!(e, Event::AuthRequest { .. }))
                .count();
            for _ in 0..reqs {
                server_decides(&mut d.server, &mut inp);
            }
            d.client_events.clear();
            if !progressed && reqs == 0 {
                break;
            }
        }
    }
}

/// Client auth: the client after kex starts with a fuzz-chosen method and
/// reacts to what comes back (prompts answered, password changes made,
/// failures retried with a listed method); the server application's answers
/// are fuzz-chosen.
pub fn client_auth(data: &[u8]) {
    let Some(mut d) = Duo::after_kex() else {
        return;
    };
    let mut inp = Input::new(data);
    client_attempt(&mut d.client, &mut inp);
    let mut ops = 0;
    while ops < MAX_OPS && d.alive() {
        ops += 1;
        let progressed = d.step(Policy::Passive, Policy::Passive);
        let mut any = false;
        for e in std::mem::take(&mut d.server_events) {
            if let Event::AuthRequest { request, .. } = &e {
                any = true;
                if let AuthRequest::KeyboardInteractiveResponse { responses } = request {
                    let _ = responses.len();
                }
                server_decides(&mut d.server, &mut inp);
            }
        }
        for e in std::mem::take(&mut d.client_events) {
            any = true;
            let c = &mut d.client;
            let _ = match e {
                Event::AuthPrompt { prompts, .. } => {
                    let mut a: Vec<String> = prompts.iter().map(|_| inp.string(16)).collect();
                    if inp.u8() == 0xff {
                        a.push(String::new());
                    }
                    c.auth_respond(&a)
                }
                Event::PasswordChangeRequired { .. } => {
                    let new = inp.string(16);
                    c.auth_change_password("alice", "secret", &new)
                }
                Event::AuthFailure { methods, .. } => {
                    let pick = inp.u8() as usize;
                    match methods.get(pick % methods.len().max(1)).map(String::as_str) {
                        Some("password") => c.auth_password("alice", &inp.string(16)),
                        Some("publickey") => c.auth_publickey("alice", user_key()),
                        Some("keyboard-interactive") => {
                            c.auth_keyboard_interactive("alice", &inp.string(8))
                        }
                        _ => c.auth_none("alice"),
                    }
                }
                Event::AuthBanner(_) | Event::AuthSuccess => Ok(()),
                _ => Ok(()),
            };
        }
        if !progressed && !any {
            if inp.is_empty() {
                break;
            }
            client_attempt(&mut d.client, &mut inp);
        }
    }
}

const REQUESTS: &[&str] = &[
    "exec",
    "shell",
    "subsystem",
    "pty-req",
    "env",
    "window-change",
    "signal",
    "exit-status",
    "exit-signal",
    "xon-xoff",
    "auth-agent-req@openssh.com",
    "x11-req",
];

/// Connection layer after authentication: fuzz-chosen operations from
/// either side, pumped between the two, pending decisions answered by
/// fuzz-chosen operations too.
pub fn connection_layer(data: &[u8]) {
    let Some(mut d) = Duo::authenticated() else {
        return;
    };
    let mut inp = Input::new(data);
    // Channel ids each side knows (its own numbering).
    let mut chans: [Vec<ChannelId>; 2] = [Vec::new(), Vec::new()];
    let mut opens: [Vec<ChannelId>; 2] = [Vec::new(), Vec::new()];
    let mut reqs: [Vec<ChannelId>; 2] = [Vec::new(), Vec::new()];
    let mut globals = [0usize; 2];
    let mut clock = now();
    let mut buf = vec![0u8; 70_000];
    let mut ops = 0;
    while !inp.is_empty() && ops < MAX_OPS && d.alive() {
        ops += 1;
        let op = inp.u8();
        let side = (op & 1) as usize;
        let c = if side == 0 {
            &mut d.client
        } else {
            &mut d.server
        };
        let pick = |inp: &mut Input<'_>, v: &[ChannelId]| -> ChannelId {
            let i = inp.u8() as usize;
            if v.is_empty() || i >= 250 {
                ChannelId(i as u32 % 8)
            } else {
                v[i % v.len()]
            }
        };
        let ch = pick(&mut inp, &chans[side]);
        let _ = match (op >> 1) % 26 {
            0 => c.open_session().map(|id| chans[side].push(id)),
            1 => {
                let kind = inp.word(&["session", "direct-tcpip", "x11", "forwarded-tcpip"]);
                let extra = inp.bytes(64);
                c.open_channel(&kind, extra).map(|id| chans[side].push(id))
            }
            2 => {
                let name = inp.word(REQUESTS);
                let want = inp.bool();
                c.channel_request(ch, &name, want, inp.bytes(128))
            }
            3 => c.exec(ch, &inp.string(32)),
            4 => c.shell(ch),
            5 => c.subsystem(ch, &inp.word(&["sftp"])),
            6 => {
                let pty = PtyRequest {
                    term: inp.string(16),
                    cols: inp.u32(),
                    rows: inp.u32(),
                    width_px: inp.u16() as u32,
                    height_px: inp.u16() as u32,
                    modes: (0..inp.u8() % 4).map(|_| (inp.u8(), inp.u32())).collect(),
                };
                c.request_pty(ch, &pty)
            }
            7 => {
                let n = inp.string(16);
                c.set_env(ch, &n, &inp.string(16))
            }
            8 => c.window_change(ch, inp.u32(), inp.u32(), inp.u32(), inp.u32()),
            9 => c.signal(ch, &inp.word(&["TERM", "INT"])),
            10 => c.send_exit_status(ch, inp.u32()),
            11 => {
                let sig = inp.string(8);
                let core = inp.bool();
                c.send_exit_signal(ch, &sig, core, &inp.string(16))
            }
            12 | 13 => {
                let n = inp.u16() as usize * 2;
                let chunk: Vec<u8> = (0..n).map(|i| i as u8).collect();
                if op >> 1 & 1 == 0 {
                    c.send_data(ch, &chunk).map(drop)
                } else {
                    c.send_stderr(ch, &chunk).map(drop)
                }
            }
            14 => c.send_eof(ch),
            15 => c.close_channel(ch),
            16 => {
                let stream = if inp.bool() {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                };
                let n = inp.u16() as usize % buf.len();
                c.channel_read(ch, stream, &mut buf[..n]).map(drop)
            }
            17 => {
                let stream = if inp.bool() {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                };
                let _ = c.channel_peek(ch, stream).len();
                let _ = c.channel_buffered(ch, stream);
                let _ = c.send_window(ch);
                c.channel_consume(ch, stream, inp.u16() as usize)
            }
            18 => {
                let name = inp.word(&[
                    "tcpip-forward",
                    "cancel-tcpip-forward",
                    "keepalive@openssh.com",
                ]);
                let want = inp.bool();
                c.global_request(&name, want, inp.bytes(64))
            }
            19 => {
                globals[side] = globals[side].saturating_sub(1);
                let ok = inp.bool();
                c.global_request_reply(ok, inp.bytes(16))
            }
            20 => {
                // Answer a pending channel open.
                match opens[side].pop() {
                    Some(id) if inp.bool() => c.accept_channel(id).map(|_| chans[side].push(id)),
                    Some(id) => c.reject_channel(
                        id,
                        ssh_proto::ChannelOpenFailureReason::from_code(inp.u32()),
                        &inp.string(16),
                    ),
                    None => c.accept_channel(ch),
                }
            }
            21 => {
                let id = reqs[side].pop().unwrap_or(ch);
                c.channel_request_reply(id, inp.bool())
            }
            22 => c.rekey(),
            23 => {
                clock += Duration::from_secs(inp.u8() as u64 * 10);
                c.handle_timeout(clock);
                Ok(())
            }
            24 => {
                c.disconnect(inp.u32(), &inp.string(16));
                Ok(())
            }
            _ => Ok(()),
        };
        // Pump a fuzz-chosen number of rounds, collecting decisions.
        let rounds = 1 + inp.u8() as usize % 8;
        for _ in 0..rounds {
            let progressed = d.step(Policy::Passive, Policy::Passive);
            for (side, evs) in [(0, &mut d.client_events), (1, &mut d.server_events)] {
                for e in evs.drain(..) {
                    match e {
                        Event::ChannelOpenRequest { channel, .. } if opens[side].len() < 64 => {
                            opens[side].push(channel)
                        }
                        Event::ChannelRequest {
                            channel,
                            want_reply: true,
                            ..
                        } if reqs[side].len() < 64 => reqs[side].push(channel),
                        Event::GlobalRequest {
                            want_reply: true, ..
                        } => globals[side] += 1,
                        Event::ChannelOpened { channel }
                            if !chans[side].contains(&channel) && chans[side].len() < 64 =>
                        {
                            chans[side].push(channel)
                        }
                        _ => {}
                    }
                }
            }
            if !progressed {
                break;
            }
        }
    }
    d.settle(Policy::Agreeable, Policy::Agreeable, MAX_ROUNDS);
    d.client.recv_eof(clock);
    d.server.recv_eof(clock);
    while d.client.poll_event().is_some() {}
    while d.server.poll_event().is_some() {}
}

fn fuzz_attrs(inp: &mut Input<'_>) -> Attrs {
    let f = inp.u8();
    Attrs {
        size: (f & 1 != 0).then(|| inp.u32() as u64),
        uid_gid: (f & 2 != 0).then(|| (inp.u16() as u32, inp.u16() as u32)),
        permissions: (f & 4 != 0).then(|| inp.u32()),
        times: (f & 8 != 0).then(|| (inp.u32(), inp.u32())),
        extended: if f & 16 != 0 {
            vec![(inp.string(16), inp.bytes(16).to_vec())]
        } else {
            Vec::new()
        },
    }
}

fn fuzz_response(inp: &mut Input<'_>) -> Response {
    match inp.u8() % 7 {
        0 => Response::ok(),
        1 => Response::status(inp.u32() % 10, inp.string(16)),
        2 => Response::Handle(inp.bytes(16).to_vec()),
        3 => Response::Data(inp.bytes(512).to_vec()),
        4 => Response::Name(
            (0..inp.u8() % 3)
                .map(|_| NameEntry {
                    filename: inp.string(16),
                    longname: inp.string(16),
                    attrs: fuzz_attrs(inp),
                })
                .collect(),
        ),
        5 => Response::Attrs(fuzz_attrs(inp)),
        _ => Response::ExtendedReply(inp.bytes(128).to_vec()),
    }
}

/// SFTP server: a valid INIT, then `data` in fuzz-sized chunks; every
/// request is answered with a response chosen from the data.
pub fn sftp_server(data: &[u8]) {
    let mut s = SftpServer::new(sftp::SftpServerConfig::default());
    let mut init = Vec::new();
    sftp::codec::encode_init(&mut init);
    if s.recv(&init).is_err() {
        return;
    }
    let mut inp = Input::new(data);
    let mut out = Vec::new();
    let mut pending: Vec<u32> = Vec::new();
    let mut ops = 0;
    while !inp.is_empty() && ops < 10_000 {
        ops += 1;
        let chunk_len = 1 + inp.u8() as usize;
        let chunk = {
            let n = chunk_len.min(inp.data.len());
            let (a, b) = inp.data.split_at(n);
            inp.data = b;
            a
        };
        let mut rest = chunk;
        for _ in 0..1000 {
            let n = match s.recv(rest) {
                Ok(n) => n.min(rest.len()),
                Err(_) => return,
            };
            rest = &rest[n..];
            while let Some((id, req)) = s.poll_request() {
                if let Request::Read { len, .. } = req {
                    let _ = len;
                }
                pending.push(id);
            }
            // Answer some (or all, when input is held back).
            let answer_all = n == 0;
            while let Some(id) = pending.pop() {
                let r = fuzz_response(&mut inp);
                let _ = match inp.u8() % 3 {
                    0 => s.reply_status(id, inp.u32() % 12, "x"),
                    1 => s.reply_data(id, inp.bytes(64)),
                    _ => s.reply(id, &r),
                };
                if !answer_all && inp.bool() {
                    break;
                }
            }
            // A reply to an id nobody asked for must be refused, not panic.
            if inp.u8() == 0xfe {
                let _ = s.reply(inp.u32(), &Response::ok());
            }
            s.take_transmit(&mut out);
            out.clear();
            if rest.is_empty() {
                break;
            }
        }
        let _ = (s.outstanding(), s.open_handles(), s.limits());
    }
}

/// SFTP client: a few requests sent, then a valid VERSION, then `data`.
pub fn sftp_client(data: &[u8]) {
    let mut c = SftpClient::new();
    let reqs = [
        Request::Realpath { path: ".".into() },
        Request::Open {
            path: "/tmp/f".into(),
            flags: sftp::open_flags::READ,
            attrs: Attrs::default(),
        },
        Request::Read {
            handle: b"h0".to_vec(),
            offset: 0,
            len: 4096,
        },
        Request::Opendir { path: "/".into() },
        Request::Readdir {
            handle: b"d0".to_vec(),
        },
        Request::Stat { path: "/".into() },
        Request::Limits,
        Request::Statvfs { path: "/".into() },
    ];
    for r in &reqs {
        let _ = c.send(r);
    }
    let _ = c.send_write(b"h0", 0, b"hello");
    let mut version = Vec::new();
    sftp::codec::encode_version(
        &[
            ("limits@openssh.com", "1"),
            ("statvfs@openssh.com", "2"),
            ("posix-rename@openssh.com", "1"),
        ],
        &mut version,
    );
    if c.recv(&version).is_err() {
        return;
    }
    let mut inp = Input::new(data);
    let mut ops = 0;
    while !inp.is_empty() && ops < 10_000 {
        ops += 1;
        let n = 1 + inp.u8() as usize;
        let n = n.min(inp.data.len());
        let (chunk, rest) = inp.data.split_at(n);
        inp.data = rest;
        if c.recv(chunk).is_err() {
            break;
        }
        while let Some((id, _resp)) = c.poll_reply() {
            // Keep requests flowing so later replies can match.
            let _ = c.is_pending(id);
            let _ = c.send(&reqs[id as usize % reqs.len()]);
        }
        let _ = c.take_reply(inp.u32() % 16);
        let mut out = Vec::new();
        c.take_transmit(&mut out);
    }
    let _ = (
        c.version(),
        c.extensions().len(),
        c.in_flight(),
        c.buffered_input(),
    );
}

/// Key and key-list parsers.
pub fn key_files(data: &[u8]) {
    let hk = host_key().public_key();
    let _ = PrivateKey::from_bytes(data, None);
    if let Ok(k) = PrivateKey::from_bytes(data, Some(b"pw")) {
        let p = k.public_key();
        let _ = (p.fingerprint(), p.to_openssh(), p.bits());
        for alg in p.sig_algorithms() {
            if let Ok(sig) = k.sign(alg, b"data") {
                let _ = p.verify(alg, b"data", &sig);
            }
        }
    }
    let _ = PrivateKey::is_encrypted(data);
    let text = String::from_utf8_lossy(data);
    let parsed_pub = PublicKey::from_openssh(&text);
    if let Ok(p) = &parsed_pub {
        let _ = PublicKey::from_blob(&p.to_blob());
    }
    if let Ok(p) = PublicKey::from_blob(data) {
        let _ = (p.to_openssh(), p.fingerprint(), p.key_type());
        for alg in p.sig_algorithms() {
            let _ = p.verify(alg, b"data", data);
        }
    }
    let kh = KnownHosts::parse(&text);
    let _ = kh.check("example.com", 22, &hk);
    let _ = kh.check("[10.0.0.1]:2222", 2222, &hk);
    let _ = kh.known_key_types("example.com", 22);
    if let Ok(p) = &parsed_pub {
        let _ = kh.check("example.com", 22, p);
    }
    let ak = AuthorizedKeys::parse(&text);
    let _ = ak.find(&hk);
    for k in ak.keys.iter().take(8) {
        let _ = ak.find(&k.key);
        let _ = k
            .options
            .from_allows("192.0.2.1", Some("client.example.com"));
    }
}
