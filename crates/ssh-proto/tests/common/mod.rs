//! Pair harness: a client and a server `Connection` pumping bytes to each
//! other in memory, with a virtual clock, random chunking and a fixed RNG.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_chacha::rand_core::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use ssh_proto::*;

pub fn rng(seed: u64) -> Box<ChaCha20Rng> {
    Box::new(ChaCha20Rng::seed_from_u64(seed))
}

pub fn host_key(seed: u64) -> Arc<PrivateKey> {
    Arc::new(PrivateKey::generate_ed25519(&mut *rng(seed)))
}

pub fn server_config(keys: Vec<Arc<PrivateKey>>) -> Config {
    let mut c = Config::default();
    c.transport.host_keys = keys;
    c
}

/// The server side's scripted behaviour.
pub struct ServerPolicy {
    pub user: String,
    pub password: String,
    pub user_key: Option<PublicKey>,
    /// Bytes to write on stdout/stderr and the exit status for any exec.
    pub exec_stdout: Vec<u8>,
    pub exec_stderr: Vec<u8>,
    pub exit_status: u32,
    /// Echo stdin back (like `cat`) instead of the fixed output.
    pub echo: bool,
    pub kbd: bool,
    /// Require publickey then password (partial success).
    pub two_factor: bool,
    pub pk_done: bool,
    /// Leave exec requests (and global requests) for the test to answer.
    pub manual_requests: bool,
}

impl Default for ServerPolicy {
    fn default() -> Self {
        ServerPolicy {
            user: "alice".into(),
            password: "secret".into(),
            user_key: None,
            exec_stdout: b"out\n".to_vec(),
            exec_stderr: b"err\n".to_vec(),
            exit_status: 7,
            echo: false,
            kbd: false,
            two_factor: false,
            pk_done: false,
            manual_requests: false,
        }
    }
}

pub struct Pair {
    pub client: Connection,
    pub server: Connection,
    pub now: Instant,
    chunker: ChaCha20Rng,
    pub max_chunk: usize,
    pub client_events: Vec<Event>,
    pub server_events: Vec<Event>,
    pub policy: ServerPolicy,
    /// Server side: channels running an "exec" and bytes echoed so far.
    pub server_echo_pending: Vec<(ChannelId, Vec<u8>)>,
    pub client_out: Vec<u8>,
    pub client_err: Vec<u8>,
    pub auto_accept_host_key: bool,
    /// Client reads channel data automatically (false = a slow reader).
    pub client_reads: bool,
    pub bytes_moved: u64,
}

impl Pair {
    pub fn new(client_cfg: Config, server_cfg: Config, seed: u64) -> Pair {
        let now = Instant::now();
        let client = Connection::client(Arc::new(client_cfg), rng(seed), now).expect("client");
        let server =
            Connection::server(Arc::new(server_cfg), rng(seed + 1000), now).expect("server");
        Pair {
            client,
            server,
            now,
            chunker: ChaCha20Rng::seed_from_u64(seed + 7),
            max_chunk: 0,
            client_events: Vec::new(),
            server_events: Vec::new(),
            policy: ServerPolicy::default(),
            server_echo_pending: Vec::new(),
            client_out: Vec::new(),
            client_err: Vec::new(),
            auto_accept_host_key: true,
            client_reads: true,
            bytes_moved: 0,
        }
    }

    pub fn default_pair(seed: u64) -> Pair {
        Pair::new(
            Config::default(),
            server_config(vec![host_key(seed + 99)]),
            seed,
        )
    }

    fn move_bytes(
        from: &mut Connection,
        to: &mut Connection,
        now: Instant,
        chunker: &mut ChaCha20Rng,
        max_chunk: usize,
    ) -> usize {
        let mut moved = 0;
        while let Some(out) = from.transmit() {
            let mut n = out.len();
            if max_chunk > 0 {
                n = n.min(1 + (chunker.next_u32() as usize % max_chunk));
            }
            let chunk = out[..n].to_vec();
            let taken = to.recv(now, &chunk).unwrap_or(0);
            from.advance_transmit(taken);
            moved += taken;
            if taken < n {
                break;
            }
        }
        moved
    }

    /// One round: move bytes both ways, then handle events. Returns whether
    /// anything happened.
    pub fn step(&mut self) -> bool {
        let a = Self::move_bytes(
            &mut self.client,
            &mut self.server,
            self.now,
            &mut self.chunker,
            self.max_chunk,
        );
        let b = Self::move_bytes(
            &mut self.server,
            &mut self.client,
            self.now,
            &mut self.chunker,
            self.max_chunk,
        );
        self.bytes_moved += (a + b) as u64;
        let mut any = a + b > 0;
        while let Some(e) = self.client.poll_event() {
            any = true;
            self.on_client_event(&e);
            self.client_events.push(e);
        }
        while let Some(e) = self.server.poll_event() {
            any = true;
            self.on_server_event(&e);
            self.server_events.push(e);
        }
        any |= self.pump_echo();
        any
    }

    pub fn run(&mut self) {
        for _ in 0..1_000_000 {
            if !self.step() {
                return;
            }
        }
        panic!("pair did not settle");
    }

    /// Runs until `f` holds (or panics after many idle rounds).
    pub fn run_until(&mut self, mut f: impl FnMut(&Pair) -> bool) {
        let mut idle = 0;
        for _ in 0..10_000_000 {
            if f(self) {
                return;
            }
            if self.step() {
                idle = 0;
            } else {
                idle += 1;
                if idle > 3 {
                    break;
                }
            }
        }
        assert!(
            f(self),
            "condition never held; client events {:?}; server events {:?}",
            self.client_events,
            self.server_events
        );
    }

    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
    }

    fn on_client_event(&mut self, e: &Event) {
        match e {
            Event::HostKey(_) if self.auto_accept_host_key => {
                self.client.accept_host_key().expect("accept")
            }
            Event::ChannelData { channel, stream } if self.client_reads => {
                let mut buf = vec![0u8; 65536];
                loop {
                    let n = self
                        .client
                        .channel_read(*channel, *stream, &mut buf)
                        .unwrap();
                    if n == 0 {
                        break;
                    }
                    match stream {
                        Stream::Stdout => self.client_out.extend_from_slice(&buf[..n]),
                        Stream::Stderr => self.client_err.extend_from_slice(&buf[..n]),
                    }
                }
            }
            _ => {}
        }
    }

    pub fn client_drain(&mut self, ch: ChannelId) {
        let mut buf = vec![0u8; 65536];
        for stream in [Stream::Stdout, Stream::Stderr] {
            loop {
                let n = self.client.channel_read(ch, stream, &mut buf).unwrap();
                if n == 0 {
                    break;
                }
                match stream {
                    Stream::Stdout => self.client_out.extend_from_slice(&buf[..n]),
                    Stream::Stderr => self.client_err.extend_from_slice(&buf[..n]),
                }
            }
        }
    }

    fn on_server_event(&mut self, e: &Event) {
        let s = &mut self.server;
        let p = &mut self.policy;
        match e {
            Event::AuthRequest { user, request } => {
                let ok_user = *user == p.user;
                match request {
                    AuthRequest::Password { password, .. } => {
                        if ok_user && *password == p.password && (!p.two_factor || p.pk_done) {
                            s.auth_accept().unwrap()
                        } else {
                            s.auth_reject().unwrap()
                        }
                    }
                    AuthRequest::PublicKey { key, verified, .. } => {
                        let known = ok_user && p.user_key.as_ref() == Some(key);
                        if !known {
                            s.auth_reject().unwrap()
                        } else if *verified && p.two_factor {
                            p.pk_done = true;
                            s.auth_partial(&["password"]).unwrap()
                        } else {
                            s.auth_accept().unwrap()
                        }
                    }
                    AuthRequest::KeyboardInteractive { .. } => s
                        .auth_info_request(
                            "",
                            "",
                            &[Prompt {
                                text: "Password: ".into(),
                                echo: false,
                            }],
                        )
                        .unwrap(),
                    AuthRequest::KeyboardInteractiveResponse { responses } => {
                        if ok_user && responses.len() == 1 && responses[0] == p.password {
                            s.auth_accept().unwrap()
                        } else {
                            s.auth_reject().unwrap()
                        }
                    }
                    _ => s.auth_reject().unwrap(),
                }
            }
            Event::ChannelOpenRequest { channel, kind, .. } => {
                if kind == "session" {
                    s.accept_channel(*channel).unwrap()
                } else {
                    s.reject_channel(
                        *channel,
                        ssh_proto::ChannelOpenFailureReason::UnknownChannelType,
                        "unknown channel type",
                    )
                    .unwrap()
                }
            }
            Event::ChannelRequest {
                channel,
                request,
                want_reply,
            } => {
                let ch = *channel;
                match request {
                    ChannelRequest::Exec { .. } if p.manual_requests => {}
                    ChannelRequest::Exec { .. } => {
                        if *want_reply {
                            s.channel_request_reply(ch, true).unwrap();
                        }
                        if p.echo {
                            self.server_echo_pending.push((ch, Vec::new()));
                        } else {
                            let mut out = p.exec_stdout.clone();
                            while !out.is_empty() {
                                let n = s.send_data(ch, &out).unwrap();
                                assert!(n > 0, "window exhausted in simple exec");
                                out.drain(..n);
                            }
                            s.send_stderr(ch, &p.exec_stderr).unwrap();
                            s.send_eof(ch).unwrap();
                            s.send_exit_status(ch, p.exit_status).unwrap();
                            s.close_channel(ch).unwrap();
                        }
                    }
                    _ => {
                        if *want_reply {
                            s.channel_request_reply(ch, true).unwrap()
                        }
                    }
                }
                if !*want_reply {
                    s.request_handled();
                }
            }
            Event::ChannelEof { .. } => {
                // `pump_echo` finishes echo channels once their input ended.
                self.pump_echo();
            }
            Event::GlobalRequest {
                want_reply: false, ..
            } => self.server.request_handled(),
            _ => {}
        }
    }

    /// Server echo loop: read what the client sent, send it back as the
    /// window allows.
    fn pump_echo(&mut self) -> bool {
        let mut any = false;
        let mut finished = Vec::new();
        for (ch, pending) in self.server_echo_pending.iter_mut() {
            let mut buf = vec![0u8; 65536];
            loop {
                if pending.len() > 4 * 1024 * 1024 {
                    break;
                }
                let n = self
                    .server
                    .channel_read(*ch, Stream::Stdout, &mut buf)
                    .unwrap();
                if n == 0 {
                    break;
                }
                any = true;
                pending.extend_from_slice(&buf[..n]);
            }
            if !pending.is_empty() {
                let n = self.server.send_data(*ch, pending).unwrap();
                if n > 0 {
                    any = true;
                    pending.drain(..n);
                }
            }
            if pending.is_empty()
                && self.server.channel_eof_received(*ch)
                && self.server.channel_buffered(*ch, Stream::Stdout) == 0
            {
                finished.push(*ch);
            }
        }
        for ch in finished {
            self.server_echo_pending.retain(|(c, _)| *c != ch);
            self.server.send_eof(ch).unwrap();
            self.server.send_exit_status(ch, 0).unwrap();
            self.server.close_channel(ch).unwrap();
            any = true;
        }
        any
    }

    pub fn client_authenticated(&self) -> bool {
        self.client_events
            .iter()
            .any(|e| matches!(e, Event::AuthSuccess))
    }
}

/// Authenticates with a password and opens an exec channel running `cat`.
pub fn open_cat(p: &mut Pair) -> ChannelId {
    p.run_until(|p| p.client.session_id().is_some());
    p.client.auth_password("alice", "secret").unwrap();
    p.run_until(|p| p.client_authenticated());
    let ch = p.client.open_session().unwrap();
    p.client.exec(ch, "cat").unwrap();
    p.run_until(|p| {
        p.client_events
            .iter()
            .any(|e| matches!(e, Event::ChannelOpened { .. }))
    });
    ch
}
