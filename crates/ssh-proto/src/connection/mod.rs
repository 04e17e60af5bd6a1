//! The connection protocol (RFC 4254) and the [`Connection`] object that
//! drives every layer below it.
//!
//! `Connection` is the top of the stack: it feeds received bytes to the
//! transport, routes authentication messages to the auth state machines and
//! channel messages to the channel table here, and turns all of it into
//! [`Event`]s. Decisions (host key, auth attempts, channel opens and
//! requests) are events the application answers with a method call.

pub mod channel;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_core::CryptoRng;
use zeroize::Zeroizing;

use crate::auth::client::Attempt;
use crate::auth::{ClientAuth, ServerAuth};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{ChannelId, ChannelRequest, Event, Prompt, PtyRequest, Stream};
use crate::keys::PrivateKey;
use crate::transport::algorithms::Negotiated;
use crate::transport::{Input, Role, Transport, TransportConfig};
use crate::wire::{msg, Put, Reader};
use channel::{Channel, QueuedOp, ReplySlot, State};

/// Global requests from the peer that may wait for the application's
/// reply at once; one more closes the connection.
pub const MAX_PENDING_GLOBAL_REQUESTS: usize = 64;
/// Channel requests from the peer on one channel that may wait for a
/// reply at once; one more closes the connection.
pub const MAX_PENDING_CHANNEL_REQUESTS: usize = 64;
/// Server: channel and global requests that want no reply which the
/// application may hold unhandled at once (see
/// [`Connection::request_handled`]); while this many are, the core takes
/// no more input (back-pressure on the peer, as while an auth decision is
/// pending), so a peer flooding such requests cannot grow memory.
pub const MAX_UNHANDLED_REQUESTS: usize = 64;
/// The most request-specific data a global request may carry.
pub const MAX_GLOBAL_REQUEST_DATA: usize = 64 * 1024;

/// Settings shared by many connections (wrap it in an `Arc`).
#[derive(Clone)]
pub struct Config {
    pub transport: TransportConfig,
    /// Receive window granted per channel (default 2 MiB).
    pub window_size: u32,
    /// Largest data packet we accept per channel (default 32 KiB).
    pub max_packet: u32,
    /// Largest data chunk we send, further bounded by the peer's maximum.
    pub send_packet: u32,
    /// Channels per connection (default 1024).
    pub max_channels: usize,
    /// Server: session channels per connection (OpenSSH `MaxSessions`, 10).
    pub max_sessions: usize,
    /// Server: authentication methods offered.
    pub auth_methods: Vec<String>,
    /// Server: failed attempts before disconnecting (OpenSSH `MaxAuthTries`, 6).
    pub max_auth_tries: u32,
    /// Server: time allowed to authenticate (OpenSSH `LoginGraceTime`, 120 s).
    pub login_grace_time: Option<Duration>,
    /// Server: time allowed for the client's version line after the
    /// connection starts (default 10 s; None: only the login grace time
    /// applies). A peer that opens a socket and sends nothing holds an
    /// unauthenticated slot (`MaxStartups`) for this long, not for the
    /// whole login grace time.
    pub identification_timeout: Option<Duration>,
    /// Server: which new connections a listener admits (sshd's
    /// `MaxStartups`, `PerSourceMaxStartups`, `PerSourceNetBlockSize`;
    /// default `10:30:100`, none, `32:128`). Every adapter's `Server`
    /// applies it at accept.
    pub admission: crate::AdmissionConfig,
    /// Server: banner shown before authentication.
    pub auth_banner: Option<String>,
    /// Send a keepalive after this long without input (OpenSSH
    /// `ServerAliveInterval` / `ClientAliveInterval`; off by default).
    pub keepalive_interval: Option<Duration>,
    /// Unanswered keepalives before giving up (default 3).
    pub keepalive_count_max: u32,
    /// Client: allow SHA-1 `ssh-rsa` signatures with RSA user keys.
    pub allow_ssh_rsa_user_keys: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            transport: TransportConfig::default(),
            window_size: 2 * 1024 * 1024,
            max_packet: 32 * 1024,
            send_packet: 32 * 1024,
            max_channels: 1024,
            max_sessions: 10,
            auth_methods: vec![
                "publickey".into(),
                "password".into(),
                "keyboard-interactive".into(),
            ],
            max_auth_tries: 6,
            login_grace_time: Some(Duration::from_secs(120)),
            identification_timeout: Some(Duration::from_secs(10)),
            admission: crate::AdmissionConfig::default(),
            auth_banner: None,
            keepalive_interval: None,
            keepalive_count_max: 3,
            allow_ssh_rsa_user_keys: false,
        }
    }
}

enum AuthSide {
    Client(ClientAuth),
    Server(ServerAuth),
}

/// One SSH connection, client or server, as a pure state machine.
pub struct Connection {
    config: Arc<Config>,
    rng: Box<dyn CryptoRng + Send>,
    tr: Transport,
    auth: AuthSide,
    authenticated: bool,
    channels: HashMap<u32, Channel>,
    next_channel: u32,
    events: VecDeque<Event>,
    error: Option<Error>,
    started: Instant,
    now: Instant,
    last_input: Instant,
    keepalives_out: u32,
    global_requests_out: u32,
    /// Replies owed to the peer's global requests, in order (None: the
    /// application has not answered yet).
    global_replies: VecDeque<Option<(bool, Vec<u8>)>>,
    /// Server: want-no-reply requests reported and not yet handled.
    unhandled_requests: usize,
    /// Guards against re-entering `process` from inside it.
    processing: bool,
}

impl Connection {
    /// A client connection. Call [`transmit`](Self::transmit) to get the
    /// version line and first KEXINIT to send.
    pub fn client(
        config: Arc<Config>,
        rng: Box<dyn CryptoRng + Send>,
        now: Instant,
    ) -> Result<Self> {
        Self::new(Role::Client, config, rng, now)
    }

    /// A server connection (the config must hold at least one host key).
    pub fn server(
        config: Arc<Config>,
        rng: Box<dyn CryptoRng + Send>,
        now: Instant,
    ) -> Result<Self> {
        Self::new(Role::Server, config, rng, now)
    }

    fn new(
        role: Role,
        config: Arc<Config>,
        rng: Box<dyn CryptoRng + Send>,
        now: Instant,
    ) -> Result<Self> {
        let tr = Transport::new(role, config.transport.clone(), now)?;
        let auth = match role {
            Role::Client => {
                let mut a = ClientAuth::new();
                a.allow_ssh_rsa = config.allow_ssh_rsa_user_keys;
                AuthSide::Client(a)
            }
            Role::Server => AuthSide::Server(ServerAuth::new(
                config.auth_methods.clone(),
                config.max_auth_tries,
                config.auth_banner.clone(),
                config.transport.pubkey_accepted_algorithms.clone(),
            )),
        };
        let mut c = Connection {
            config,
            rng,
            tr,
            auth,
            authenticated: false,
            channels: HashMap::new(),
            next_channel: 0,
            events: VecDeque::new(),
            error: None,
            started: now,
            now,
            last_input: now,
            keepalives_out: 0,
            global_requests_out: 0,
            global_replies: VecDeque::new(),
            unhandled_requests: 0,
            processing: false,
        };
        // Send our KEXINIT right away with the version line (both sides may).
        c.tr.start_kex(&mut *c.rng)?;
        Ok(c)
    }

    pub fn role(&self) -> Role {
        self.tr.role()
    }
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }
    /// The fatal error that ended the connection, if it ended.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }
    /// True when the connection is over (after a disconnect, either way).
    pub fn is_closed(&self) -> bool {
        self.error.is_some() || self.tr.is_closed()
    }
    pub fn session_id(&self) -> Option<&[u8]> {
        self.tr.session_id()
    }
    /// Client: the server's host key (after it was accepted).
    pub fn host_key(&self) -> Option<&crate::keys::PublicKey> {
        self.tr.host_key()
    }
    pub fn peer_version(&self) -> Option<&str> {
        self.tr.peer_version()
    }
    /// Algorithms in use (after the first key exchange).
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.tr.negotiated()
    }
    pub fn kex_count(&self) -> u32 {
        self.tr.kex_count()
    }
    pub fn strict_kex(&self) -> bool {
        self.tr.strict_kex()
    }
    /// Lines the server sent before its version line.
    pub fn pre_banner_lines(&self) -> &[String] {
        &self.tr.banner_lines
    }
    /// Client: the `server-sig-algs` the server announced.
    pub fn server_sig_algs(&self) -> Option<&str> {
        self.tr.server_sig_algs()
    }

    // ------------------------------------------------------------- byte I/O

    /// Feeds bytes received from the peer. Returns how many were taken; fewer
    /// than offered means the core is holding input until the application
    /// answers a pending decision or reads channel data — offer the rest later.
    pub fn recv(&mut self, now: Instant, data: &[u8]) -> Result<usize> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.now = now;
        if !data.is_empty() {
            self.last_input = now;
            self.keepalives_out = 0;
        }
        let n = self.tr.feed(data);
        self.process();
        Ok(n)
    }

    /// The peer closed its side of the byte stream.
    pub fn recv_eof(&mut self, now: Instant) {
        self.now = now;
        self.process();
        if self.error.is_none() {
            let e = Error::new(ErrorKind::Closed, "connection closed by peer");
            self.error = Some(e.clone());
            self.tr.close();
            self.events.push_back(Event::Disconnected(e));
        }
    }

    /// Bytes to write to the peer, if any. Write some, then call
    /// [`advance_transmit`](Self::advance_transmit) with how many were written.
    pub fn transmit(&self) -> Option<&[u8]> {
        let b = self.tr.pending_output();
        (!b.is_empty()).then_some(b)
    }

    /// Moves all pending output into `buf` (swapping buffers when `buf` is
    /// empty, so nothing is copied). An alternative to `transmit` +
    /// `advance_transmit` for adapters that write from their own buffer.
    pub fn take_transmit(&mut self, buf: &mut Vec<u8>) {
        self.tr.take_output(buf);
    }

    pub fn advance_transmit(&mut self, n: usize) {
        self.tr.advance_output(n);
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        let e = self.events.pop_front()?;
        match &e {
            Event::ChannelData { channel, stream } => {
                if let Some(c) = self.channels.get_mut(&channel.0) {
                    match stream {
                        Stream::Stdout => c.stdout_event = false,
                        Stream::Stderr => c.stderr_event = false,
                    }
                }
            }
            Event::ChannelClosed { channel } | Event::ChannelOpenFailed { channel, .. } => {
                let id = channel.0;
                if let Some(c) = self.channels.get_mut(&id) {
                    c.closed_reported = true;
                    if c.finished() {
                        self.channels.remove(&id);
                    }
                }
            }
            _ => {}
        }
        Some(e)
    }

    /// When [`handle_timeout`](Self::handle_timeout) must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        let mut t = self.tr.next_timeout();
        let mut min = |x: Instant| t = Some(t.map_or(x, |y: Instant| y.min(x)));
        if self.role() == Role::Server && !self.authenticated {
            if let Some(g) = self.config.login_grace_time {
                min(self.started + g);
            }
            if let Some(t) = self.identification_deadline() {
                min(t);
            }
        }
        if let Some(k) = self.config.keepalive_interval {
            if self.tr.is_ready() {
                min(self.last_input + k * (self.keepalives_out + 1));
            }
        }
        t
    }

    /// Server: when the client's version line is due, while it has not
    /// come.
    fn identification_deadline(&self) -> Option<Instant> {
        let t = self.config.identification_timeout?;
        (self.role() == Role::Server && self.tr.peer_version().is_none()).then(|| self.started + t)
    }

    /// Runs timers: rekey by time, login grace time, keepalives.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.is_closed() {
            return;
        }
        if let Some(t) = self.identification_deadline() {
            if now >= t {
                let secs = self
                    .config
                    .identification_timeout
                    .unwrap_or_default()
                    .as_secs_f64();
                let e = Error::new(
                    ErrorKind::Timeout,
                    format!("no identification string received within {secs}s"),
                );
                self.fatal(e);
                return;
            }
        }
        if self.role() == Role::Server && !self.authenticated {
            if let Some(g) = self.config.login_grace_time {
                if now >= self.started + g {
                    let e = Error::new(
                        ErrorKind::Timeout,
                        format!("login grace time of {}s exceeded", g.as_secs()),
                    );
                    self.fatal(e);
                    return;
                }
            }
        }
        if let Some(k) = self.config.keepalive_interval {
            if self.tr.is_ready() && now >= self.last_input + k * (self.keepalives_out + 1) {
                if self.keepalives_out >= self.config.keepalive_count_max {
                    let e = Error::new(ErrorKind::Timeout, "peer did not answer keepalives");
                    self.fatal(e);
                    return;
                }
                self.keepalives_out += 1;
                let r = self.global_request("keepalive@openssh.com", true, &[]);
                if let Err(e) = r {
                    self.fatal(e);
                    return;
                }
            }
        }
        if let Err(e) = self.tr.check_rekey(&mut *self.rng, now) {
            self.fatal(e);
        }
        self.process();
    }

    fn fatal(&mut self, e: Error) {
        if self.error.is_some() {
            return;
        }
        if !matches!(e.kind(), ErrorKind::PeerDisconnected | ErrorKind::Closed) {
            let code = match (e.code(), e.kind()) {
                (Some(c), _) => c,
                (None, ErrorKind::Mac) => msg::disconnect::MAC_ERROR,
                (None, ErrorKind::NoCommonAlgorithm) => msg::disconnect::KEY_EXCHANGE_FAILED,
                (None, ErrorKind::HostKey) => msg::disconnect::HOST_KEY_NOT_VERIFIABLE,
                (None, ErrorKind::AuthFailed) => msg::disconnect::NO_MORE_AUTH_METHODS_AVAILABLE,
                (None, ErrorKind::Timeout) => msg::disconnect::BY_APPLICATION,
                _ => msg::disconnect::PROTOCOL_ERROR,
            };
            let text = e.detail().to_string();
            self.tr.disconnect(&mut *self.rng, code, &text);
        } else {
            self.tr.close();
        }
        tracing::debug!(error = %e, "connection ended");
        self.error = Some(e.clone());
        self.events.push_back(Event::Disconnected(e));
    }

    /// Sends a disconnect and ends the connection.
    pub fn disconnect(&mut self, reason: u32, description: &str) {
        if self.is_closed() {
            return;
        }
        self.tr.disconnect(&mut *self.rng, reason, description);
        let e = Error::new(
            ErrorKind::Closed,
            format!("disconnected by us: {description}"),
        );
        self.error = Some(e.clone());
        self.events.push_back(Event::Disconnected(e));
    }

    /// Starts a key exchange now.
    pub fn rekey(&mut self) -> Result<()> {
        self.check_open()?;
        let r = self.tr.rekey(&mut *self.rng);
        self.after(r)
    }

    fn check_open(&self) -> Result<()> {
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Turns a send failure into the connection's fatal error.
    fn after<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            if e.kind() != ErrorKind::Usage {
                self.fatal(e.clone());
            }
        }
        r
    }

    fn process(&mut self) {
        if self.processing {
            return;
        }
        self.processing = true;
        self.process_inner();
        self.processing = false;
    }

    fn process_inner(&mut self) {
        loop {
            if self.error.is_some() {
                return;
            }
            if let AuthSide::Server(a) = &self.auth {
                if a.is_waiting() {
                    return;
                }
            }
            if self.unhandled_requests >= MAX_UNHANDLED_REQUESTS {
                return;
            }
            let r = self.tr.poll(&mut *self.rng, self.now);
            match r {
                Ok(None) => break,
                Ok(Some(Input::HostKey(k))) => self.events.push_back(Event::HostKey(k)),
                Ok(Some(Input::Debug(s))) => self
                    .events
                    .push_back(Event::Debug(crate::transport::sanitize(&s))),
                Ok(Some(Input::KexDone(n))) => {
                    let first = self.tr.kex_count() == 1;
                    self.events.push_back(Event::KexDone(n));
                    if first {
                        if let AuthSide::Client(a) = &mut self.auth {
                            let r = a.on_transport_ready(&mut self.tr, &mut *self.rng);
                            if let Err(e) = r {
                                self.fatal(e);
                            }
                        }
                    }
                }
                Ok(Some(Input::Packet(p))) => {
                    let r = self.dispatch(p.payload(), p.seq);
                    self.tr.restore(p);
                    if let Err(e) = r {
                        self.fatal(e);
                    }
                }
                Err(e) => self.fatal(e),
            }
        }
        if let Err(e) = self.tr.check_rekey(&mut *self.rng, self.now) {
            self.fatal(e);
        }
    }

    fn dispatch(&mut self, payload: &[u8], seq: u32) -> Result<()> {
        let t = payload[0];
        let rng = &mut *self.rng;
        // RFC 4253 §7.1: nothing above the transport layer may be sent
        // before the first NEWKEYS (strict kex already refuses it).
        if self.tr.kex_count() == 0
            && matches!(t, msg::SERVICE_REQUEST | msg::SERVICE_ACCEPT | 50..=53 | 60..=82 | 90..=100)
        {
            return Err(Error::protocol(format!(
                "{} before the first key exchange completed",
                msg::name(t)
            )));
        }
        match t {
            // Unassigned numbers in the auth and connection ranges (RFC 4250
            // §4.1) are unknown messages like any other.
            54..=59 | 83..=89 | 101..=127 => self.unimplemented(seq),
            msg::SERVICE_REQUEST | msg::SERVICE_ACCEPT | 50..=79 => match &mut self.auth {
                AuthSide::Client(a) => {
                    if t == msg::SERVICE_REQUEST {
                        return Err(Error::protocol("server sent SERVICE_REQUEST"));
                    }
                    a.handle(&mut self.tr, rng, payload, &mut self.events)?;
                    if a.done && !self.authenticated {
                        self.authenticated = true;
                    }
                    Ok(())
                }
                AuthSide::Server(a) => {
                    if t == msg::SERVICE_ACCEPT {
                        return Err(Error::protocol("client sent SERVICE_ACCEPT"));
                    }
                    a.handle(&mut self.tr, rng, payload, &mut self.events)
                }
            },
            80..=127 => {
                if !self.authenticated {
                    return Err(Error::protocol(format!(
                        "{} before authentication completed",
                        msg::name(t)
                    )));
                }
                self.on_connection_msg(payload)
            }
            _ => self.unimplemented(seq),
        }
    }

    /// RFC 4253 §11.4: an unrecognized message is answered with
    /// UNIMPLEMENTED, naming its sequence number.
    fn unimplemented(&mut self, seq: u32) -> Result<()> {
        self.tr.send(&mut *self.rng, |b| {
            b.push(msg::UNIMPLEMENTED);
            b.put_u32(seq);
        })
    }

    // ----------------------------------------------------------- host keys

    /// Client: trust the host key from [`Event::HostKey`].
    pub fn accept_host_key(&mut self) -> Result<()> {
        self.check_open()?;
        let r = self.tr.accept_host_key(&mut *self.rng);
        self.after(r)?;
        self.process();
        Ok(())
    }

    /// Client: refuse the host key; the connection ends.
    pub fn reject_host_key(&mut self, why: &str) {
        let e = Error::new(ErrorKind::HostKey, why.to_string());
        self.fatal(e);
    }

    // ----------------------------------------------------------- client auth

    fn client_auth(&mut self, attempt: Attempt) -> Result<()> {
        self.check_open()?;
        let AuthSide::Client(a) = &mut self.auth else {
            return Err(Error::usage("only a client authenticates"));
        };
        let r = a.start(&mut self.tr, &mut *self.rng, attempt);
        self.after(r)
    }

    /// Client: the `none` method (learns which methods the server offers).
    pub fn auth_none(&mut self, user: &str) -> Result<()> {
        self.client_auth(Attempt::None { user: user.into() })
    }
    /// Client: password authentication (falls back to keyboard-interactive
    /// when that is all the server offers).
    pub fn auth_password(&mut self, user: &str, password: &str) -> Result<()> {
        self.client_auth(Attempt::Password {
            user: user.into(),
            password: Zeroizing::new(password.into()),
        })
    }
    /// Client: answer a [`Event::PasswordChangeRequired`].
    pub fn auth_change_password(&mut self, user: &str, old: &str, new: &str) -> Result<()> {
        self.client_auth(Attempt::ChangePassword {
            user: user.into(),
            old: Zeroizing::new(old.into()),
            new: Zeroizing::new(new.into()),
        })
    }
    /// Client: public key authentication (query, then signature).
    pub fn auth_publickey(&mut self, user: &str, key: Arc<PrivateKey>) -> Result<()> {
        self.client_auth(Attempt::PublicKey {
            user: user.into(),
            key,
        })
    }
    /// Client: keyboard-interactive; prompts arrive as [`Event::AuthPrompt`].
    pub fn auth_keyboard_interactive(&mut self, user: &str, submethods: &str) -> Result<()> {
        self.client_auth(Attempt::KeyboardInteractive {
            user: user.into(),
            submethods: submethods.into(),
        })
    }
    /// Client: answers to the last [`Event::AuthPrompt`].
    pub fn auth_respond(&mut self, answers: &[String]) -> Result<()> {
        self.check_open()?;
        let AuthSide::Client(a) = &mut self.auth else {
            return Err(Error::usage("only a client answers prompts"));
        };
        let r = a.respond(&mut self.tr, &mut *self.rng, answers);
        self.after(r)
    }
    /// Client: methods the server said can continue (after a failure).
    pub fn auth_methods_left(&self) -> Option<&[String]> {
        match &self.auth {
            AuthSide::Client(a) => a.methods.as_deref(),
            AuthSide::Server(_) => None,
        }
    }

    // ----------------------------------------------------------- server auth

    fn server_auth<T>(
        &mut self,
        f: impl FnOnce(&mut ServerAuth, &mut Transport, &mut dyn CryptoRng) -> Result<T>,
    ) -> Result<T> {
        self.check_open()?;
        let AuthSide::Server(a) = &mut self.auth else {
            return Err(Error::usage(
                "only a server answers authentication requests",
            ));
        };
        let r = f(a, &mut self.tr, &mut *self.rng);
        let r = self.after(r);
        self.process();
        r
    }

    /// Server: accept the pending [`Event::AuthRequest`].
    pub fn auth_accept(&mut self) -> Result<()> {
        let user = self.server_auth(|a, tr, rng| a.accept(tr, rng))?;
        if let Some(user) = user {
            self.authenticated = true;
            self.events.push_back(Event::Authenticated { user });
        }
        Ok(())
    }
    /// Server: reject the pending attempt.
    /// When this was the last allowed attempt the connection ends with
    /// [`Event::Disconnected`]; that is not an error of this call.
    pub fn auth_reject(&mut self) -> Result<()> {
        match self.server_auth(|a, tr, rng| a.reject(tr, rng)) {
            Err(e) if e.kind() == ErrorKind::AuthFailed => Ok(()),
            r => r,
        }
    }
    /// Server: this method succeeded, but `remaining` methods must follow.
    pub fn auth_partial(&mut self, remaining: &[&str]) -> Result<()> {
        let rem = remaining.iter().map(|s| s.to_string()).collect();
        self.server_auth(|a, tr, rng| a.partial(tr, rng, rem))
    }
    /// Server: answer a keyboard-interactive start (or responses) with prompts.
    pub fn auth_info_request(
        &mut self,
        name: &str,
        instruction: &str,
        prompts: &[Prompt],
    ) -> Result<()> {
        self.server_auth(|a, tr, rng| a.info_request(tr, rng, name, instruction, prompts))
    }
    /// Server: tell the client its password must be changed.
    pub fn auth_password_change_request(&mut self, prompt: &str) -> Result<()> {
        self.server_auth(|a, tr, rng| a.password_change_request(tr, rng, prompt))
    }
    /// Server: replace the list of methods offered from now on.
    pub fn set_auth_methods(&mut self, methods: &[&str]) {
        if let AuthSide::Server(a) = &mut self.auth {
            a.methods = methods.iter().map(|s| s.to_string()).collect();
        }
    }

    // -------------------------------------------------------------- channels

    fn alloc_channel(&mut self, ch: Channel) -> Result<ChannelId> {
        if self.channels.len() >= self.config.max_channels {
            return Err(Error::limit(format!(
                "channel limit of {} reached",
                self.config.max_channels
            )));
        }
        let mut id = self.next_channel;
        while self.channels.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.next_channel = id.wrapping_add(1);
        self.channels.insert(id, ch);
        Ok(ChannelId(id))
    }

    fn chan(&mut self, id: ChannelId) -> Result<&mut Channel> {
        self.channels
            .get_mut(&id.0)
            .ok_or_else(|| Error::usage(format!("{id} does not exist")))
    }

    /// Opens a session channel; [`Event::ChannelOpened`] follows. Requests
    /// (exec, pty, …) may be made right away: they go out once it is open.
    pub fn open_session(&mut self) -> Result<ChannelId> {
        self.open_channel("session", &[])
    }

    /// Opens a channel of any type with type-specific data.
    pub fn open_channel(&mut self, kind: &str, data: &[u8]) -> Result<ChannelId> {
        self.check_open()?;
        if !self.authenticated {
            return Err(Error::usage("open a channel after authentication"));
        }
        let ch = Channel::new(
            kind,
            State::Opening,
            self.config.window_size,
            self.config.max_packet,
        );
        let id = self.alloc_channel(ch)?;
        let (w, p) = (self.config.window_size, self.config.max_packet);
        let r = self.tr.send(&mut *self.rng, |b| {
            b.push(msg::CHANNEL_OPEN);
            b.put_str(kind);
            b.put_u32(id.0);
            b.put_u32(w);
            b.put_u32(p);
            b.put_raw(data);
        });
        self.after(r)?;
        Ok(id)
    }

    /// Answers a [`Event::ChannelOpenRequest`] with success.
    pub fn accept_channel(&mut self, id: ChannelId) -> Result<()> {
        self.check_open()?;
        let (w, p) = (self.config.window_size, self.config.max_packet);
        let c = self.chan(id)?;
        if c.state != State::PeerOpening {
            return Err(Error::usage(format!("{id} is not waiting to be accepted")));
        }
        c.state = State::Open;
        let remote = c.remote_id;
        let r = self.tr.send(&mut *self.rng, |b| {
            b.push(msg::CHANNEL_OPEN_CONFIRMATION);
            b.put_u32(remote);
            b.put_u32(id.0);
            b.put_u32(w);
            b.put_u32(p);
        });
        self.after(r)
    }

    /// Answers a [`Event::ChannelOpenRequest`] with failure.
    pub fn reject_channel(&mut self, id: ChannelId, reason: u32, description: &str) -> Result<()> {
        self.check_open()?;
        let c = self.chan(id)?;
        if c.state != State::PeerOpening {
            return Err(Error::usage(format!("{id} is not waiting to be accepted")));
        }
        let remote = c.remote_id;
        self.channels.remove(&id.0);
        let r = self.tr.send(&mut *self.rng, |b| {
            open_failure(b, remote, reason, description)
        });
        self.after(r)
    }

    /// Sends a channel request. With `want_reply`, a
    /// [`Event::ChannelRequestReply`] follows.
    pub fn channel_request(
        &mut self,
        id: ChannelId,
        name: &str,
        want_reply: bool,
        data: &[u8],
    ) -> Result<()> {
        self.check_open()?;
        let c = self.chan(id)?;
        if c.close_sent || c.state == State::Failed {
            return Err(Error::usage(format!("{id} is closed")));
        }
        if want_reply {
            c.our_requests += 1;
        }
        if c.state == State::Opening || c.reply_owed() {
            c.queued.push(QueuedOp::Request {
                name: name.into(),
                want_reply,
                data: data.to_vec(),
            });
            return Ok(());
        }
        let remote = c.remote_id;
        let r = self.tr.send(&mut *self.rng, |b| {
            b.push(msg::CHANNEL_REQUEST);
            b.put_u32(remote);
            b.put_str(name);
            b.put_bool(want_reply);
            b.put_raw(data);
        });
        self.after(r)
    }

    /// `exec` request (want_reply).
    pub fn exec(&mut self, id: ChannelId, command: &str) -> Result<()> {
        let mut d = Vec::new();
        d.put_str(command);
        self.channel_request(id, "exec", true, &d)
    }
    /// `shell` request (want_reply).
    pub fn shell(&mut self, id: ChannelId) -> Result<()> {
        self.channel_request(id, "shell", true, &[])
    }
    /// `subsystem` request (want_reply).
    pub fn subsystem(&mut self, id: ChannelId, name: &str) -> Result<()> {
        let mut d = Vec::new();
        d.put_str(name);
        self.channel_request(id, "subsystem", true, &d)
    }
    /// `pty-req` (want_reply).
    pub fn request_pty(&mut self, id: ChannelId, pty: &PtyRequest) -> Result<()> {
        let mut d = Vec::new();
        d.put_str(&pty.term);
        d.put_u32(pty.cols);
        d.put_u32(pty.rows);
        d.put_u32(pty.width_px);
        d.put_u32(pty.height_px);
        let mut modes = Vec::new();
        for (op, v) in &pty.modes {
            modes.push(*op);
            modes.put_u32(*v);
        }
        modes.push(0);
        d.put_string(&modes);
        self.channel_request(id, "pty-req", true, &d)
    }
    /// `env` request (no reply asked, as OpenSSH does).
    pub fn set_env(&mut self, id: ChannelId, name: &str, value: &str) -> Result<()> {
        let mut d = Vec::new();
        d.put_str(name);
        d.put_str(value);
        self.channel_request(id, "env", false, &d)
    }
    pub fn window_change(
        &mut self,
        id: ChannelId,
        cols: u32,
        rows: u32,
        width_px: u32,
        height_px: u32,
    ) -> Result<()> {
        let mut d = Vec::new();
        d.put_u32(cols);
        d.put_u32(rows);
        d.put_u32(width_px);
        d.put_u32(height_px);
        self.channel_request(id, "window-change", false, &d)
    }
    /// `signal` request, e.g. "TERM", "INT".
    pub fn signal(&mut self, id: ChannelId, name: &str) -> Result<()> {
        let mut d = Vec::new();
        d.put_str(name);
        self.channel_request(id, "signal", false, &d)
    }
    /// Server: `exit-status`.
    pub fn send_exit_status(&mut self, id: ChannelId, status: u32) -> Result<()> {
        let mut d = Vec::new();
        d.put_u32(status);
        self.channel_request(id, "exit-status", false, &d)
    }
    /// Server: `exit-signal` (signal name without "SIG").
    pub fn send_exit_signal(
        &mut self,
        id: ChannelId,
        signal: &str,
        core_dumped: bool,
        message: &str,
    ) -> Result<()> {
        let mut d = Vec::new();
        d.put_str(signal);
        d.put_bool(core_dumped);
        d.put_str(message);
        d.put_str("");
        self.channel_request(id, "exit-signal", false, &d)
    }

    /// Sends what was queued on a channel while it was opening or while a
    /// reply to the peer was owed, then wakes writers.
    fn run_queued(&mut self, cid: ChannelId) -> Result<()> {
        let id = cid.0;
        let Some(c) = self.channels.get_mut(&id) else {
            return Ok(());
        };
        let queued = std::mem::take(&mut c.queued);
        for op in queued {
            match op {
                QueuedOp::Request {
                    name,
                    want_reply,
                    data,
                } => {
                    if let Some(c) = self.channels.get_mut(&id) {
                        c.our_requests -= want_reply as u32;
                    }
                    self.channel_request(cid, &name, want_reply, &data)?;
                }
                QueuedOp::Eof => {
                    if let Some(c) = self.channels.get_mut(&id) {
                        c.eof_sent = false;
                    }
                    self.send_eof(cid)?;
                }
                QueuedOp::Close => self.close_channel(cid)?,
            }
        }
        if self.channels.get(&id).is_some_and(|c| c.remote_window > 0) {
            self.events.push_back(Event::ChannelWindow { channel: cid });
        }
        Ok(())
    }

    /// Server: the application has handled one [`Event::ChannelRequest`] or
    /// [`Event::GlobalRequest`] that wanted no reply. Call it once per such
    /// event, when done with it: while [`MAX_UNHANDLED_REQUESTS`] are not,
    /// the core holds input back.
    pub fn request_handled(&mut self) {
        if self.unhandled_requests == 0 {
            return;
        }
        self.unhandled_requests -= 1;
        if self.unhandled_requests + 1 == MAX_UNHANDLED_REQUESTS && !self.processing {
            // Input held back may go on now.
            self.process();
        }
    }

    /// Server: want-no-reply requests reported and not yet
    /// [handled](Self::request_handled).
    pub fn unhandled_requests(&self) -> usize {
        self.unhandled_requests
    }

    /// Answers the oldest unanswered want-reply request on the channel.
    pub fn channel_request_reply(&mut self, id: ChannelId, success: bool) -> Result<()> {
        self.check_open()?;
        let c = self.chan(id)?;
        let Some(slot) = c.replies.iter_mut().find(|s| **s == ReplySlot::Waiting) else {
            return Ok(()); // nothing wanted a reply
        };
        *slot = ReplySlot::Answered(success);
        let remote = c.remote_id;
        let mut out = Vec::new();
        while let Some(ReplySlot::Answered(ok)) = c.replies.front().copied() {
            c.replies.pop_front();
            out.push(ok);
        }
        let closed = c.close_sent;
        if closed {
            return Ok(());
        }
        for ok in out {
            let r = self.tr.send(&mut *self.rng, |b| {
                b.push(if ok {
                    msg::CHANNEL_SUCCESS
                } else {
                    msg::CHANNEL_FAILURE
                });
                b.put_u32(remote);
            });
            self.after(r)?;
        }
        if !self.chan(id)?.reply_owed() {
            self.run_queued(id)?;
        }
        Ok(())
    }

    /// How many bytes [`send_data`](Self::send_data) would take now.
    pub fn send_window(&self, id: ChannelId) -> usize {
        match self.channels.get(&id.0) {
            Some(c)
                if c.state == State::Open && !c.eof_sent && !c.close_sent && !c.reply_owed() =>
            {
                (c.remote_window as usize).min(self.tr.send_buffer_room())
            }
            _ => 0,
        }
    }

    /// The largest send window the peer has granted on this channel: with
    /// [`send_window`](Self::send_window), lets an adapter wait until a
    /// useful amount of window is back instead of waking for every adjust.
    pub fn send_window_peak(&self, id: ChannelId) -> usize {
        self.channels
            .get(&id.0)
            .map_or(0, |c| c.remote_window_peak as usize)
    }

    /// Sends channel data; returns how much the peer's window (and our send
    /// buffer) took. 0 means wait for [`Event::ChannelWindow`] or for the
    /// output to drain.
    pub fn send_data(&mut self, id: ChannelId, data: &[u8]) -> Result<usize> {
        self.send_stream(id, None, data)
    }

    /// Sends extended data type 1 (stderr).
    pub fn send_stderr(&mut self, id: ChannelId, data: &[u8]) -> Result<usize> {
        self.send_stream(id, Some(1), data)
    }

    fn send_stream(&mut self, id: ChannelId, ext: Option<u32>, data: &[u8]) -> Result<usize> {
        self.check_open()?;
        let room = self.tr.send_buffer_room();
        let send_packet = self.config.send_packet;
        let c = self.chan(id)?;
        if c.eof_sent || c.close_sent {
            return Err(Error::usage(format!("{id}: data after EOF or close")));
        }
        // A request's reply goes out before anything its command writes.
        if c.state != State::Open || c.reply_owed() {
            return Ok(0);
        }
        let n = data.len().min(c.remote_window as usize).min(room);
        let chunk = (c.remote_max_packet.min(send_packet) as usize).max(1);
        c.remote_window -= n as u32;
        let remote = c.remote_id;
        let mut off = 0;
        while off < n {
            let m = chunk.min(n - off);
            let piece = &data[off..off + m];
            let r = self.tr.send(&mut *self.rng, |b| {
                match ext {
                    None => {
                        b.push(msg::CHANNEL_DATA);
                        b.put_u32(remote);
                    }
                    Some(code) => {
                        b.push(msg::CHANNEL_EXTENDED_DATA);
                        b.put_u32(remote);
                        b.put_u32(code);
                    }
                }
                b.put_string(piece);
            });
            self.after(r)?;
            off += m;
        }
        if n > 0 {
            let r = self.tr.check_rekey(&mut *self.rng, self.now);
            self.after(r)?;
        }
        Ok(n)
    }

    /// Sends EOF on the channel (no more data from us).
    pub fn send_eof(&mut self, id: ChannelId) -> Result<()> {
        self.check_open()?;
        let c = self.chan(id)?;
        if c.eof_sent || c.close_sent {
            return Ok(());
        }
        c.eof_sent = true;
        if c.state == State::Opening || c.reply_owed() {
            c.queued.push(QueuedOp::Eof);
            return Ok(());
        }
        if c.state != State::Open {
            return Ok(());
        }
        let remote = c.remote_id;
        let r = self.tr.send(&mut *self.rng, |b| {
            b.push(msg::CHANNEL_EOF);
            b.put_u32(remote);
        });
        self.after(r)
    }

    /// Closes the channel; [`Event::ChannelClosed`] follows when the peer
    /// closes too.
    pub fn close_channel(&mut self, id: ChannelId) -> Result<()> {
        self.check_open()?;
        let c = self.chan(id)?;
        if c.close_sent {
            return Ok(());
        }
        if c.state == State::Opening || (c.reply_owed() && !c.close_received) {
            c.queued.push(QueuedOp::Close);
            return Ok(());
        }
        if c.state != State::Open {
            return Ok(());
        }
        c.close_sent = true;
        let remote = c.remote_id;
        let done = c.close_received;
        let r = self.tr.send(&mut *self.rng, |b| {
            b.push(msg::CHANNEL_CLOSE);
            b.put_u32(remote);
        });
        self.after(r)?;
        if done {
            self.maybe_remove(id.0);
        }
        Ok(())
    }

    fn maybe_remove(&mut self, id: u32) {
        if self.channels.get(&id).is_some_and(|c| c.finished()) {
            self.channels.remove(&id);
        }
    }

    /// Bytes buffered on a channel stream.
    pub fn channel_buffered(&self, id: ChannelId, stream: Stream) -> usize {
        self.channels.get(&id.0).map_or(0, |c| match stream {
            Stream::Stdout => c.stdout.len(),
            Stream::Stderr => c.stderr.len(),
        })
    }

    /// Borrows buffered data of a channel stream (call
    /// [`channel_consume`](Self::channel_consume) after using it).
    pub fn channel_peek(&self, id: ChannelId, stream: Stream) -> &[u8] {
        self.channels.get(&id.0).map_or(&[], |c| match stream {
            Stream::Stdout => c.stdout.peek(),
            Stream::Stderr => c.stderr.peek(),
        })
    }

    /// Marks `n` buffered bytes as read; the window is re-granted to the
    /// peer as data is consumed.
    pub fn channel_consume(&mut self, id: ChannelId, stream: Stream, n: usize) -> Result<()> {
        let Some(c) = self.channels.get_mut(&id.0) else {
            return Ok(());
        };
        let n = match stream {
            Stream::Stdout => c.stdout.consume(n),
            Stream::Stderr => c.stderr.consume(n),
        };
        self.consumed(id, n)
    }

    /// Copies buffered data into `out`; returns the count (0: nothing buffered).
    pub fn channel_read(&mut self, id: ChannelId, stream: Stream, out: &mut [u8]) -> Result<usize> {
        let Some(c) = self.channels.get_mut(&id.0) else {
            return Ok(0);
        };
        let n = match stream {
            Stream::Stdout => c.stdout.read(out),
            Stream::Stderr => c.stderr.read(out),
        };
        self.consumed(id, n)?;
        Ok(n)
    }

    fn consumed(&mut self, id: ChannelId, n: usize) -> Result<()> {
        self.grant(id, n)?;
        // Input held back for lack of room may fit now.
        if self.tr.buffered_input() > 0 && !self.processing {
            self.process();
        }
        Ok(())
    }

    /// Counts `n` bytes as consumed and re-grants window once half of it is.
    fn grant(&mut self, id: ChannelId, n: usize) -> Result<()> {
        let Some(c) = self.channels.get_mut(&id.0) else {
            return Ok(());
        };
        c.unacked = c.unacked.saturating_add(n as u32);
        let mut adjust = None;
        if c.state == State::Open
            && !c.close_sent
            && !c.eof_received
            && c.unacked >= c.local_window_max / 2
        {
            adjust = Some((c.remote_id, c.unacked));
            c.local_window = c.local_window.saturating_add(c.unacked);
            c.unacked = 0;
        }
        if c.finished() {
            self.channels.remove(&id.0);
        }
        if let Some((remote, amount)) = adjust {
            if self.error.is_none() {
                let r = self.tr.send(&mut *self.rng, |b| {
                    b.push(msg::CHANNEL_WINDOW_ADJUST);
                    b.put_u32(remote);
                    b.put_u32(amount);
                });
                self.after(r)?;
            }
        }
        Ok(())
    }

    /// Whether the channel still exists (not fully closed and drained).
    pub fn channel_exists(&self, id: ChannelId) -> bool {
        self.channels.contains_key(&id.0)
    }
    /// Whether the peer sent EOF (or closed) on the channel.
    pub fn channel_eof_received(&self, id: ChannelId) -> bool {
        self.channels
            .get(&id.0)
            .is_none_or(|c| c.eof_received || c.close_received)
    }
    /// Number of channels in the table.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Sends a global request.
    pub fn global_request(&mut self, name: &str, want_reply: bool, data: &[u8]) -> Result<()> {
        self.check_open()?;
        if want_reply {
            self.global_requests_out += 1;
        }
        let r = self.tr.send(&mut *self.rng, |b| {
            b.push(msg::GLOBAL_REQUEST);
            b.put_str(name);
            b.put_bool(want_reply);
            b.put_raw(data);
        });
        self.after(r)
    }

    /// Answers the oldest global request from the peer that asked for a
    /// reply and has none yet (replies go out in request order, RFC 4254
    /// §4). `data` is the request-specific reply payload (empty for most).
    pub fn global_request_reply(&mut self, success: bool, data: &[u8]) -> Result<()> {
        self.check_open()?;
        let Some(slot) = self.global_replies.iter_mut().find(|s| s.is_none()) else {
            return Err(Error::new(
                ErrorKind::Usage,
                "no global request is waiting for a reply",
            ));
        };
        *slot = Some((success, data.to_vec()));
        let r = self.flush_global_replies();
        self.after(r)
    }

    /// Sends the answered global-request replies at the front of the queue.
    fn flush_global_replies(&mut self) -> Result<()> {
        while let Some(Some(_)) = self.global_replies.front() {
            let Some(Some((ok, data))) = self.global_replies.pop_front() else {
                break;
            };
            self.tr.send(&mut *self.rng, |b| {
                b.push(if ok {
                    msg::REQUEST_SUCCESS
                } else {
                    msg::REQUEST_FAILURE
                });
                b.extend_from_slice(&data);
            })?;
        }
        Ok(())
    }

    // ------------------------------------------------------ incoming (4254)

    fn on_connection_msg(&mut self, payload: &[u8]) -> Result<()> {
        let t = payload[0];
        let mut r = Reader::new(&payload[1..]);
        match t {
            msg::GLOBAL_REQUEST => {
                let name = r.utf8()?.to_string();
                let want_reply = r.bool()?;
                let data = r.rest();
                // OpenSSH's keepalives and host-key announcements are ours
                // to answer; everything else is the application's decision.
                let ours = name.starts_with("hostkeys-") || name == "keepalive@openssh.com";
                if want_reply {
                    if self.global_replies.len() >= MAX_PENDING_GLOBAL_REQUESTS {
                        return Err(Error::new(
                            ErrorKind::Limit,
                            format!(
                                "more than {MAX_PENDING_GLOBAL_REQUESTS} global requests await a reply"
                            ),
                        ));
                    }
                    self.global_replies.push_back(if ours {
                        Some((false, Vec::new()))
                    } else {
                        None
                    });
                    self.flush_global_replies()?;
                }
                if !ours {
                    if data.len() > MAX_GLOBAL_REQUEST_DATA {
                        return Err(Error::new(
                            ErrorKind::Limit,
                            format!(
                                "global request {} carries {} bytes (limit {MAX_GLOBAL_REQUEST_DATA})",
                                crate::transport::sanitize(&name),
                                data.len()
                            ),
                        ));
                    }
                    if !want_reply && self.role() == Role::Server {
                        self.unhandled_requests += 1;
                    }
                    self.events.push_back(Event::GlobalRequest {
                        name: crate::transport::sanitize(&name),
                        want_reply,
                        data: data.to_vec(),
                    });
                }
                Ok(())
            }
            msg::REQUEST_SUCCESS | msg::REQUEST_FAILURE => {
                if self.global_requests_out == 0 {
                    return Err(Error::protocol("global request reply without a request"));
                }
                self.global_requests_out -= 1;
                if self.keepalives_out > 0 {
                    self.keepalives_out = 0;
                    return Ok(());
                }
                self.events.push_back(Event::GlobalRequestReply {
                    success: t == msg::REQUEST_SUCCESS,
                    data: r.rest().to_vec(),
                });
                Ok(())
            }
            msg::CHANNEL_OPEN => self.on_channel_open(&mut r),
            _ => {
                let id = r.u32()?;
                let Some(c) = self.channels.get_mut(&id) else {
                    return Err(Error::protocol(format!(
                        "{} for channel {id}, which is not open",
                        msg::name(t)
                    )));
                };
                let cid = ChannelId(id);
                match t {
                    msg::CHANNEL_OPEN_CONFIRMATION => {
                        if c.state != State::Opening {
                            return Err(Error::protocol(format!(
                                "unexpected open confirmation for channel {id}"
                            )));
                        }
                        c.remote_id = r.u32()?;
                        c.remote_window = r.u32()?;
                        c.remote_window_peak = c.remote_window;
                        c.remote_max_packet = r.u32()?;
                        c.state = State::Open;
                        self.events.push_back(Event::ChannelOpened { channel: cid });
                        self.run_queued(cid)?;
                        Ok(())
                    }
                    msg::CHANNEL_OPEN_FAILURE => {
                        if c.state != State::Opening {
                            return Err(Error::protocol(format!(
                                "unexpected open failure for channel {id}"
                            )));
                        }
                        let reason = r.u32()?;
                        let description = crate::transport::sanitize(r.utf8().unwrap_or(""));
                        c.state = State::Failed;
                        self.events.push_back(Event::ChannelOpenFailed {
                            channel: cid,
                            reason,
                            description,
                        });
                        Ok(())
                    }
                    _ if c.state != State::Open => Err(Error::protocol(format!(
                        "{} for channel {id} before it was open",
                        msg::name(t)
                    ))),
                    msg::CHANNEL_WINDOW_ADJUST => {
                        let add = r.u32()?;
                        c.remote_window = c.remote_window.checked_add(add).ok_or_else(|| {
                            Error::protocol(format!("window adjust of {add} overflows channel {id}'s window past 2^32-1"))
                        })?;
                        c.remote_window_peak = c.remote_window_peak.max(c.remote_window);
                        self.events.push_back(Event::ChannelWindow { channel: cid });
                        Ok(())
                    }
                    msg::CHANNEL_DATA | msg::CHANNEL_EXTENDED_DATA => {
                        let stream = if t == msg::CHANNEL_DATA {
                            Stream::Stdout
                        } else {
                            let code = r.u32()?;
                            if code != 1 {
                                // Unknown extended data types are dropped, but
                                // they use window like any data, and the window
                                // they used is granted back as if read.
                                let d = r.string()?;
                                if c.eof_received || c.close_received {
                                    let after = if c.close_received { "CLOSE" } else { "EOF" };
                                    return Err(Error::protocol(format!(
                                        "channel {id}: data after {after}"
                                    )));
                                }
                                if d.len() > c.local_window as usize {
                                    return Err(Error::protocol(format!(
                                        "channel {id}: peer sent {} bytes with only {} left in the window",
                                        d.len(),
                                        c.local_window
                                    )));
                                }
                                c.local_window -= d.len() as u32;
                                let n = d.len();
                                return self.grant(cid, n);
                            }
                            Stream::Stderr
                        };
                        let data = r.string()?;
                        if c.eof_received || c.close_received {
                            let after = if c.close_received { "CLOSE" } else { "EOF" };
                            return Err(Error::protocol(format!(
                                "channel {id}: data after {after}"
                            )));
                        }
                        if data.len() > c.local_window as usize {
                            return Err(Error::protocol(format!(
                                "channel {id}: peer sent {} bytes with only {} left in the window",
                                data.len(),
                                c.local_window
                            )));
                        }
                        if data.len() > c.local_max_packet as usize + 1024 {
                            return Err(Error::protocol(format!(
                                "channel {id}: data packet of {} bytes exceeds maximum {}",
                                data.len(),
                                c.local_max_packet
                            )));
                        }
                        c.local_window -= data.len() as u32;
                        if data.is_empty() {
                            return Ok(());
                        }
                        let (buf, flag) = match stream {
                            Stream::Stdout => (&mut c.stdout, &mut c.stdout_event),
                            Stream::Stderr => (&mut c.stderr, &mut c.stderr_event),
                        };
                        buf.push(data);
                        if !*flag {
                            *flag = true;
                            self.events.push_back(Event::ChannelData {
                                channel: cid,
                                stream,
                            });
                        }
                        Ok(())
                    }
                    msg::CHANNEL_EOF => {
                        c.eof_received = true;
                        self.events.push_back(Event::ChannelEof { channel: cid });
                        Ok(())
                    }
                    msg::CHANNEL_CLOSE => {
                        if c.close_received {
                            return Err(Error::protocol(format!("channel {id} closed twice")));
                        }
                        c.close_received = true;
                        c.replies.clear();
                        c.queued.clear();
                        if !c.close_sent {
                            c.close_sent = true;
                            let remote = c.remote_id;
                            self.tr.send(&mut *self.rng, |b| {
                                b.push(msg::CHANNEL_CLOSE);
                                b.put_u32(remote);
                            })?;
                        }
                        self.events.push_back(Event::ChannelClosed { channel: cid });
                        Ok(())
                    }
                    msg::CHANNEL_REQUEST => self.on_channel_request(cid, &mut r),
                    msg::CHANNEL_SUCCESS | msg::CHANNEL_FAILURE => {
                        if c.our_requests == 0 {
                            return Err(Error::protocol(format!(
                                "channel {id}: reply without a request"
                            )));
                        }
                        c.our_requests -= 1;
                        self.events.push_back(Event::ChannelRequestReply {
                            channel: cid,
                            success: t == msg::CHANNEL_SUCCESS,
                        });
                        Ok(())
                    }
                    _ => Err(Error::protocol(format!("unknown connection message {t}"))),
                }
            }
        }
    }

    fn on_channel_open(&mut self, r: &mut Reader<'_>) -> Result<()> {
        let kind = r.utf8()?.to_string();
        let sender = r.u32()?;
        let window = r.u32()?;
        let max_packet = r.u32()?;
        let data = r.rest().to_vec();
        let refuse = |this: &mut Self, reason: u32, text: &str| {
            this.tr
                .send(&mut *this.rng, |b| open_failure(b, sender, reason, text))
        };
        if max_packet == 0 {
            return Err(Error::protocol("channel open with maximum packet size 0"));
        }
        if self.role() == Role::Client && kind == "session" {
            return refuse(
                self,
                msg::open_failure::ADMINISTRATIVELY_PROHIBITED,
                "clients do not accept sessions",
            );
        }
        if self.channels.len() >= self.config.max_channels {
            return refuse(
                self,
                msg::open_failure::RESOURCE_SHORTAGE,
                "too many channels",
            );
        }
        if kind == "session" {
            let sessions = self
                .channels
                .values()
                .filter(|c| c.is_session && !c.close_sent)
                .count();
            if sessions >= self.config.max_sessions {
                return refuse(
                    self,
                    msg::open_failure::ADMINISTRATIVELY_PROHIBITED,
                    "too many sessions (MaxSessions)",
                );
            }
        }
        let mut ch = Channel::new(
            &kind,
            State::PeerOpening,
            self.config.window_size,
            self.config.max_packet,
        );
        ch.remote_id = sender;
        ch.remote_window = window;
        ch.remote_window_peak = window;
        ch.remote_max_packet = max_packet;
        let id = self.alloc_channel(ch)?;
        self.events.push_back(Event::ChannelOpenRequest {
            channel: id,
            kind: crate::transport::sanitize(&kind),
            data,
        });
        Ok(())
    }

    fn on_channel_request(&mut self, id: ChannelId, r: &mut Reader<'_>) -> Result<()> {
        let name = r.utf8()?.to_string();
        let want_reply = r.bool()?;
        let is_server = self.role() == Role::Server;
        let request = match name.as_str() {
            "exit-status" => {
                let status = r.u32()?;
                self.events.push_back(Event::ExitStatus {
                    channel: id,
                    status,
                });
                return Ok(());
            }
            "exit-signal" => {
                let signal = crate::transport::sanitize(r.utf8()?);
                let core_dumped = r.bool()?;
                let message = crate::transport::sanitize(r.utf8().unwrap_or(""));
                self.events.push_back(Event::ExitSignal {
                    channel: id,
                    signal,
                    core_dumped,
                    message,
                });
                return Ok(());
            }
            "eow@openssh.com" => return Ok(()),
            "pty-req" if is_server => {
                let term = r.utf8()?.to_string();
                let cols = r.u32()?;
                let rows = r.u32()?;
                let width_px = r.u32()?;
                let height_px = r.u32()?;
                let modes_raw = r.string()?;
                let mut modes = Vec::new();
                let mut m = Reader::new(modes_raw);
                while let Ok(op) = m.u8() {
                    if op == 0 || op >= 160 {
                        break;
                    }
                    let Ok(v) = m.u32() else { break };
                    if modes.len() < 256 {
                        modes.push((op, v));
                    }
                }
                ChannelRequest::Pty(PtyRequest {
                    term,
                    cols,
                    rows,
                    width_px,
                    height_px,
                    modes,
                })
            }
            "env" if is_server => ChannelRequest::Env {
                name: r.utf8()?.to_string(),
                value: r.utf8()?.to_string(),
            },
            "exec" if is_server => ChannelRequest::Exec {
                command: r.string()?.to_vec(),
            },
            "shell" if is_server => ChannelRequest::Shell,
            "subsystem" if is_server => ChannelRequest::Subsystem {
                name: r.utf8()?.to_string(),
            },
            "window-change" if is_server => ChannelRequest::WindowChange {
                cols: r.u32()?,
                rows: r.u32()?,
                width_px: r.u32()?,
                height_px: r.u32()?,
            },
            "signal" if is_server => ChannelRequest::Signal {
                name: r.utf8()?.to_string(),
            },
            _ if is_server && name != "keepalive@openssh.com" => ChannelRequest::Other {
                name: name.clone(),
                data: r.rest().to_vec(),
            },
            _ => {
                // Client side: keepalive@openssh.com and anything unknown.
                if want_reply {
                    let c = self.chan(id)?;
                    let remote = c.remote_id;
                    if c.replies.is_empty() {
                        self.tr.send(&mut *self.rng, |b| {
                            b.push(msg::CHANNEL_FAILURE);
                            b.put_u32(remote);
                        })?;
                    } else {
                        // Queued behind an unanswered request: counts
                        // toward the same cap.
                        if c.replies.len() >= MAX_PENDING_CHANNEL_REQUESTS {
                            return Err(Error::new(
                                ErrorKind::Limit,
                                format!(
                                    "more than {MAX_PENDING_CHANNEL_REQUESTS} requests on {id} await a reply"
                                ),
                            ));
                        }
                        c.replies.push_back(ReplySlot::Answered(false));
                    }
                }
                return Ok(());
            }
        };
        if want_reply {
            let c = self.chan(id)?;
            if c.replies.len() >= MAX_PENDING_CHANNEL_REQUESTS {
                return Err(Error::new(
                    ErrorKind::Limit,
                    format!(
                        "more than {MAX_PENDING_CHANNEL_REQUESTS} requests on {id} await a reply"
                    ),
                ));
            }
            c.replies.push_back(ReplySlot::Waiting);
        } else if is_server {
            self.unhandled_requests += 1;
        }
        self.events.push_back(Event::ChannelRequest {
            channel: id,
            request,
            want_reply,
        });
        Ok(())
    }
}

fn open_failure(b: &mut Vec<u8>, remote: u32, reason: u32, description: &str) {
    b.push(msg::CHANNEL_OPEN_FAILURE);
    b.put_u32(remote);
    b.put_u32(reason);
    b.put_str(description);
    b.put_str("");
}
