//! The connection protocol (RFC 4254) and the [`Connection`] object that
//! drives every layer below it.
//!
//! `Connection` is the top of the stack: it feeds received bytes to the
//! transport, routes authentication messages to the auth state machines and
//! channel messages to the channel table here, and turns all of it into
//! [`Event`]s. Decisions (host key, auth attempts, channel opens and
//! requests) are events the application answers with a method call.
//!
//! Files: this one holds the `Connection` object, byte I/O, timers and the
//! dispatch of incoming messages by range; `auth` the authentication
//! commands (the machines are in [`crate::auth`] and return outcomes that
//! become events here); `channels` the channel commands;
//! `incoming` the connection-protocol messages from the peer; `channel` the
//! per-channel state; `forward` the typed channel kinds and global
//! requests, and the forwards a client asked for; `global` the global
//! request commands and replies; `socks` the SOCKS handshake of dynamic
//! forwarding.

mod auth;
pub(crate) mod channel;
mod channels;
pub(crate) mod forward;
mod global;
mod incoming;
mod io;
pub(crate) mod socks;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_core::CryptoRng;

use crate::auth::{ClientAuth, ClientOutcome, ServerAuth, ServerOutcome};
use crate::error::{Error, ErrorKind, Result};
use crate::event::{AuthRequest, Event, Stream};
use crate::transport::algorithms::Negotiated;
use crate::transport::{Input, Role, Transport, TransportConfig};
use crate::wire::{msg, Put};
use channel::Channel;

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
pub(crate) const MAX_GLOBAL_REQUEST_DATA: usize = 64 * 1024;

/// Settings shared by many connections (wrap it in an `Arc`).
#[derive(Clone)]
pub struct Config {
    /// Transport settings: algorithms, host keys, rekey limits.
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

impl AsRef<TransportConfig> for Config {
    fn as_ref(&self) -> &TransportConfig {
        &self.transport
    }
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
///
/// # One type for both roles
///
/// The core keeps one `Connection` type and checks the role at run time
/// (a client-only call on a server connection is an
/// [`ErrorKind::Usage`](crate::ErrorKind::Usage) error), unlike rustls'
/// `ClientConnection`/`ServerConnection`. Most of the surface is shared by
/// both roles (channels, data, windows, rekeying, timers, input and
/// output), and the session layer, the fuzz targets and the adapters'
/// byte-moving code drive either role through one path; two types would
/// double that surface or push it behind a trait. The roles are typed
/// where users meet them: in every adapter, a client is a `Client` and a
/// server answers through a `Handler` and a `ServerHandle`, so a
/// client-only call does not exist on a server connection there.
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
    /// Our global requests that wait for a reply, in the order sent.
    global_out: VecDeque<forward::Outstanding>,
    /// Client: the forwards asked for and granted, and whether X11 and
    /// agent channels may come.
    forwards: forward::Forwards,
    /// Replies owed to the peer's global requests, in order (None: the
    /// application has not answered yet).
    global_replies: VecDeque<Option<(bool, Vec<u8>)>>,
    /// Server: want-no-reply requests reported and not yet handled.
    unhandled_requests: usize,
    /// This connection's tracing span (see [`Connection::span`]).
    span: tracing::Span,
    /// Input [`Connection::read_from`] read but the core could not take yet.
    held: Vec<u8>,
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
        let span = tracing::debug_span!(
            "ssh",
            role = ?role,
            peer = tracing::field::Empty
        );
        let _entered = span.clone().entered();
        let tr = Transport::new(role, config.clone(), now)?;
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
            global_out: VecDeque::new(),
            forwards: forward::Forwards::default(),
            global_replies: VecDeque::new(),
            unhandled_requests: 0,
            span,
            held: Vec::new(),
        };
        // Send our KEXINIT right away with the version line (both sides may).
        c.tr.start_kex(&mut *c.rng)?;
        Ok(c)
    }

    /// The connection's tracing span (`ssh`, with fields `role` and `peer`).
    /// Every event the core logs for this connection is inside it, and each
    /// channel has a child span (`channel`, fields `id` and `kind`). The span
    /// is made a child of the span current when the connection is created,
    /// so an adapter may instead create the connection inside a span of its
    /// own.
    pub fn span(&self) -> &tracing::Span {
        &self.span
    }

    /// Records the peer's address (or any name for it) in the span's `peer`
    /// field; adapters call this once they know it.
    pub fn set_peer(&self, peer: &dyn std::fmt::Display) {
        self.span.record("peer", tracing::field::display(peer));
    }

    /// Client or server.
    pub fn role(&self) -> Role {
        self.tr.role()
    }
    /// True once user authentication succeeded (either side).
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
    /// The session identifier, the exchange hash H of the first key exchange (RFC 4253 §7.2); `None` before it.
    pub fn session_id(&self) -> Option<&[u8]> {
        self.tr.session_id()
    }
    /// Client: the server's host key (after it was accepted).
    pub fn host_key(&self) -> Option<&crate::keys::PublicKey> {
        self.tr.host_key()
    }
    /// The peer's version line (`SSH-2.0-...`) without CR LF; `None` until received.
    pub fn peer_version(&self) -> Option<&str> {
        self.tr.peer_version()
    }
    /// Algorithms in use (after the first key exchange).
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.tr.negotiated()
    }
    /// Number of completed key exchanges (1 after the first, +1 per rekey).
    pub fn kex_count(&self) -> u32 {
        self.tr.kex_count()
    }
    /// True when both sides agreed on strict key exchange (OpenSSH `kex-strict-*`, the Terrapin fix).
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

    /// Feeds bytes received from the peer.
    ///
    /// `Ok(n)`: `n` bytes were taken; fewer than offered means the core is
    /// holding input until the application answers a pending decision or
    /// reads channel data — offer the rest later.
    ///
    /// `Err(e)`: the connection is over — this input ended it (a protocol
    /// violation, a MAC failure, the peer's DISCONNECT, ...) or it had ended
    /// before. As with rustls' `process_new_packets`, the error is not the
    /// end of the work: still write what [`transmit`](Self::transmit) holds
    /// (the DISCONNECT telling the peer why) and drain
    /// [`poll_event`](Self::poll_event), which ends with
    /// [`Event::Disconnected`]; then drop the connection.
    #[must_use = "the count says how much input was taken, and an error that the connection ended"]
    pub fn recv(&mut self, now: Instant, data: &[u8]) -> Result<usize> {
        let _span = self.span.clone().entered();
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
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(n),
        }
    }

    /// The peer closed its side of the byte stream.
    pub fn recv_eof(&mut self, now: Instant) {
        let _span = self.span.clone().entered();
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

    /// Marks the first `n` bytes returned by `transmit` as sent.
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

    /// Keepalives go out once authenticated, as ssh's ServerAlive: a
    /// server answers a global request before login with UNIMPLEMENTED
    /// (OpenSSH) or a disconnect, not with the reply one waits for.
    fn keepalives_due(&self) -> bool {
        self.tr.is_ready() && self.authenticated
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
            if self.keepalives_due() {
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
        let _span = self.span.clone().entered();
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
            if self.keepalives_due() && now >= self.last_input + k * (self.keepalives_out + 1) {
                if self.keepalives_out >= self.config.keepalive_count_max {
                    let e = Error::new(ErrorKind::Timeout, "peer did not answer keepalives");
                    self.fatal(e);
                    return;
                }
                self.keepalives_out += 1;
                let r = self.send_global(
                    "keepalive@openssh.com",
                    Some(forward::Outstanding::Keepalive),
                    &[],
                );
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

    pub(super) fn fatal(&mut self, e: Error) {
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
        let _span = self.span.clone().entered();
        if self.is_closed() {
            return;
        }
        tracing::debug!(reason, description, "disconnecting");
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
        let _span = self.span.clone().entered();
        self.check_open()?;
        let r = self.tr.rekey(&mut *self.rng);
        self.after(r)
    }

    pub(super) fn check_open(&self) -> Result<()> {
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Turns a send failure into the connection's fatal error.
    pub(super) fn after<T>(&mut self, r: Result<T>) -> Result<T> {
        if let Err(e) = &r {
            if e.kind() != ErrorKind::Usage {
                self.fatal(e.clone());
            }
        }
        r
    }

    /// Runs the machines over the buffered input until it is used up or
    /// held back. Only the public entry points call this, and no callback
    /// runs inside it, so it is never re-entered (`&mut self` and the absence
    /// of callbacks guarantee it; no flag is needed).
    fn process(&mut self) {
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
            && matches!(
                t,
                msg::SERVICE_REQUEST | msg::SERVICE_ACCEPT | msg::USERAUTH_FIRST
                    ..=msg::CONNECTION_LAST
            )
            && !msg::is_unassigned_upper(t)
        {
            return Err(Error::protocol(format!(
                "{} before the first key exchange completed",
                msg::name(t)
            )));
        }
        match t {
            // Unassigned numbers in the auth and connection ranges (RFC 4250
            // §4.1) are unknown messages like any other.
            t if msg::is_unassigned_upper(t) => self.unimplemented(seq),
            msg::SERVICE_REQUEST
            | msg::SERVICE_ACCEPT
            | msg::USERAUTH_FIRST..=msg::USERAUTH_LAST => match &mut self.auth {
                AuthSide::Client(a) => {
                    if t == msg::SERVICE_REQUEST {
                        return Err(Error::protocol("server sent SERVICE_REQUEST"));
                    }
                    let outcome = a.handle(&mut self.tr, rng, payload)?;
                    if a.done && !self.authenticated {
                        self.authenticated = true;
                    }
                    if let Some(o) = outcome {
                        self.events.push_back(client_auth_event(o));
                    }
                    Ok(())
                }
                AuthSide::Server(a) => {
                    if t == msg::SERVICE_ACCEPT {
                        return Err(Error::protocol("client sent SERVICE_ACCEPT"));
                    }
                    if let Some(ServerOutcome::Attempt { user, request }) =
                        a.handle(&mut self.tr, rng, payload)?
                    {
                        tracing::debug!(
                            user = %crate::transport::sanitize(&user),
                            method = auth_request_method(&request),
                            "auth request from the client"
                        );
                        self.events.push_back(Event::AuthRequest { user, request });
                    }
                    Ok(())
                }
            },
            msg::CONNECTION_FIRST..=msg::CONNECTION_LAST => {
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
        let _span = self.span.clone().entered();
        self.check_open()?;
        let r = self.tr.accept_host_key(&mut *self.rng);
        self.after(r)?;
        self.process();
        Ok(())
    }

    /// Client: refuse the host key; the connection ends.
    pub fn reject_host_key(&mut self, why: &str) {
        let _span = self.span.clone().entered();
        let e = Error::new(ErrorKind::HostKey, why.to_string());
        self.fatal(e);
    }
}

/// The event for what the client auth machine made of a server message.
fn client_auth_event(o: ClientOutcome) -> Event {
    match &o {
        ClientOutcome::Banner(_) => tracing::debug!("auth banner received"),
        ClientOutcome::Success => tracing::debug!("auth succeeded"),
        ClientOutcome::Failure {
            methods,
            partial_success,
        } => tracing::debug!(?methods, partial_success, "auth failed"),
        ClientOutcome::PasswordChangeRequired { .. } => {
            tracing::debug!("auth answered with a password change request")
        }
        ClientOutcome::Prompt { prompts, .. } => {
            tracing::debug!(prompts = prompts.len(), "auth answered with prompts")
        }
    }
    match o {
        ClientOutcome::Banner(text) => Event::AuthBanner(text),
        ClientOutcome::Success => Event::AuthSuccess,
        ClientOutcome::Failure {
            methods,
            partial_success,
        } => Event::AuthFailure {
            methods,
            partial_success,
        },
        ClientOutcome::PasswordChangeRequired { prompt } => {
            Event::PasswordChangeRequired { prompt }
        }
        ClientOutcome::Prompt {
            name,
            instruction,
            prompts,
        } => Event::AuthPrompt {
            name,
            instruction,
            prompts,
        },
    }
}

/// The method name of an auth request, for logs.
fn auth_request_method(r: &AuthRequest) -> &'static str {
    match r {
        AuthRequest::Password { .. } => "password",
        AuthRequest::PublicKey {
            verified: false, ..
        } => "publickey (query)",
        AuthRequest::PublicKey { verified: true, .. } => "publickey",
        AuthRequest::KeyboardInteractive { .. } => "keyboard-interactive",
        AuthRequest::KeyboardInteractiveResponse { .. } => "keyboard-interactive (responses)",
    }
}
