//! The blocking server: each connection is served on its own thread, and a
//! [`Handler`] (one per connection, in the spirit of paramiko's
//! `ServerInterface`) makes every decision the core surfaces as an event.
//!
//! ```no_run
//! use std::sync::Arc;
//! use ssh_blocking::{Auth, Channel, Handler, Server, ServerHandle};
//! use ssh_blocking::proto::{ChannelId, ChannelRequest, Config};
//!
//! struct Echo { chans: Vec<Channel> }
//! impl Handler for Echo {
//!     fn auth_password(&mut self, user: &str, password: &str) -> Auth {
//!         if user == "demo" && password == "demo" { Auth::Accept } else { Auth::Reject }
//!     }
//!     fn channel_opened(&mut self, channel: Channel, _kind: &str) { self.chans.push(channel) }
//!     fn channel_request(&mut self, id: ChannelId, req: ChannelRequest) -> bool {
//!         let Some(i) = self.chans.iter().position(|c| c.id() == id) else { return false };
//!         if !matches!(req, ChannelRequest::Shell) { return false }
//!         let ch = self.chans.remove(i);
//!         std::thread::spawn(move || { let _ = std::io::copy(&mut &ch, &mut &ch); });
//!         true
//!     }
//! }
//!
//! let key = ssh_blocking::load_private_key("/etc/ssh/ssh_host_ed25519_key".as_ref(), None)?;
//! let mut config = Config::default();
//! config.transport.host_keys.push(Arc::new(key));
//! config.auth_methods = vec!["password".into()];
//! let server = Server::bind("127.0.0.1:2222", Arc::new(config))?;
//! server.run(|_conn: &ServerHandle| Echo { chans: Vec::new() })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A handler method may take as long as it likes (ask a database, prompt
//! an operator): it holds up only its own connection, whose core keeps
//! the decision pending meanwhile. Channels handed to the handler are
//! `Read + Write` and may be moved to other threads.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use ssh_proto::{
    Admission, AdmissionConfig, AuthRequest, ChannelId, ChannelRequest, Config, Connection,
    CryptoRng, Error, ErrorKind, Event, MaxStartups, Negotiated, Prompt, PublicKey, Refusal,
    Startup,
};

use crate::channel::Channel;
use crate::driver::{reader_loop, Handle, Shared};

/// The answer to a password or public-key attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    Accept,
    Reject,
    /// This method passed, but these methods must follow (RFC 4252 §5.1
    /// partial success), e.g. `Partial(vec!["password".into()])`.
    Partial(Vec<String>),
    /// Password attempts only: the password is right but expired; the
    /// client is asked for a new one with this prompt (then
    /// [`Handler::auth_change_password`] decides).
    ChangePassword(String),
}

/// The answer to a keyboard-interactive start or to its responses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KbdInt {
    Accept,
    Reject,
    Partial(Vec<String>),
    /// Ask (more) questions; the answers come back in
    /// [`Handler::auth_keyboard_interactive_response`].
    Prompt {
        name: String,
        instruction: String,
        prompts: Vec<Prompt>,
    },
}

/// Why a channel open is refused (RFC 4254 §5.1 reason codes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelOpenFailure {
    pub reason: u32,
    pub description: String,
}

impl ChannelOpenFailure {
    pub fn prohibited(description: impl Into<String>) -> Self {
        Self {
            reason: 1,
            description: description.into(),
        }
    }
    pub fn unknown_type(kind: &str) -> Self {
        Self {
            reason: 3,
            description: format!("unknown channel type {kind}"),
        }
    }
    pub fn resource_shortage(description: impl Into<String>) -> Self {
        Self {
            reason: 4,
            description: description.into(),
        }
    }
}

/// Decides everything about one connection. Every method has a default
/// that refuses (or, for notifications, does nothing), so a handler
/// implements only what it allows. Methods run on the connection's own
/// thread, one at a time, in the order the client asked.
#[allow(unused_variables)]
pub trait Handler: Send {
    /// A password attempt.
    fn auth_password(&mut self, user: &str, password: &str) -> Auth {
        Auth::Reject
    }
    /// The client changes its password after [`Auth::ChangePassword`].
    fn auth_change_password(&mut self, user: &str, old: &str, new: &str) -> Auth {
        Auth::Reject
    }
    /// "Would you accept this key?" (no signature yet). True lets the
    /// client go on to sign; the signed attempt still comes to
    /// [`auth_publickey`](Self::auth_publickey). `algorithm` is the
    /// signature algorithm the client will sign with (e.g. `rsa-sha2-512`
    /// for an `ssh-rsa` key), already checked against the configured
    /// `pubkey_accepted_algorithms`.
    fn auth_publickey_offered(&mut self, user: &str, key: &PublicKey, algorithm: &str) -> bool {
        false
    }
    /// A public-key attempt whose signature (of `algorithm`, already
    /// checked against `pubkey_accepted_algorithms`) the core has verified.
    fn auth_publickey(&mut self, user: &str, key: &PublicKey, algorithm: &str) -> Auth {
        Auth::Reject
    }
    /// A keyboard-interactive start; answer with prompts (or a decision).
    fn auth_keyboard_interactive(&mut self, user: &str, submethods: &str) -> KbdInt {
        KbdInt::Reject
    }
    /// The answers to the last prompts.
    fn auth_keyboard_interactive_response(&mut self, user: &str, responses: &[String]) -> KbdInt {
        KbdInt::Reject
    }
    /// Authentication is complete for `user`.
    fn authenticated(&mut self, user: &str) {}
    /// May a channel of this type open? Default: sessions only.
    fn channel_open(&mut self, kind: &str, data: &[u8]) -> Result<(), ChannelOpenFailure> {
        sessions_only(kind)
    }
    /// The channel is open. Keep the handle (or move it to a thread) to
    /// use it; dropping it closes the channel.
    fn channel_opened(&mut self, channel: Channel, kind: &str) {}
    /// A channel request (pty-req, env, exec, shell, subsystem,
    /// window-change, signal, …). The answer is sent when the client asked
    /// for one.
    fn channel_request(&mut self, channel: ChannelId, request: ChannelRequest) -> bool {
        false
    }
    /// The channel is closed in both directions.
    fn channel_closed(&mut self, channel: ChannelId) {}
    /// A global request: `Some(reply data)` for success, `None` for failure.
    fn global_request(&mut self, name: &str, data: &[u8]) -> Option<Vec<u8>> {
        None
    }
    /// The connection ended; `reason` says why.
    fn disconnected(&mut self, reason: &Error) {}
}

/// Where a connection comes from.
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    pub peer: Option<SocketAddr>,
    pub local: Option<SocketAddr>,
}

/// A handle to one server connection: information about it, and the
/// means to end it. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct ServerHandle {
    conn: Arc<Handle>,
    info: Arc<ConnectionInfo>,
}

impl ServerHandle {
    /// For sibling adapters that own the connection's socket themselves.
    #[doc(hidden)]
    pub fn from_parts(conn: Arc<Handle>, info: ConnectionInfo) -> ServerHandle {
        ServerHandle {
            conn,
            info: Arc::new(info),
        }
    }
    #[doc(hidden)]
    pub fn conn(&self) -> &Arc<Handle> {
        &self.conn
    }
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.info.peer
    }
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.info.local
    }
    /// The client's version string (after the version exchange).
    pub fn client_version(&self) -> Option<String> {
        self.conn
            .shared
            .lock()
            .conn
            .peer_version()
            .map(str::to_string)
    }
    /// Algorithms in use (after the first key exchange).
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.conn.shared.lock().conn.negotiated().cloned()
    }
    pub fn is_authenticated(&self) -> bool {
        self.conn.shared.lock().conn.is_authenticated()
    }
    /// Ends the connection (reason 11, "by application").
    pub fn disconnect(&self, description: &str) {
        let _ = self.conn.shared.with(|s| {
            s.conn.disconnect(11, description);
            Ok(())
        });
    }
}

/// Serves one connection on the calling thread until it ends. The reader
/// half runs on a thread of its own. `make_handler` is called once, with
/// the connection's handle, before the handshake starts.
///
/// Returns Ok when the client closed the connection in an orderly way
/// (a disconnect message, or end of stream after authenticating), the
/// reason otherwise.
pub fn serve_connection<H: Handler>(
    stream: TcpStream,
    config: Arc<Config>,
    make_handler: impl FnOnce(&ServerHandle) -> H,
) -> Result<(), Error> {
    let (handle, mut handler) = start(stream, config, make_handler)?;
    dispatch(&handle, &mut handler, &|| {})
}

#[allow(clippy::type_complexity)]
fn start<H: Handler>(
    stream: TcpStream,
    config: Arc<Config>,
    make_handler: impl FnOnce(&ServerHandle) -> H,
) -> Result<(ServerHandle, H), Error> {
    let io = |e: io::Error| Error::new(ErrorKind::Io, format!("socket: {e}"));
    let _ = stream.set_nodelay(true);
    let info = ConnectionInfo {
        peer: stream.peer_addr().ok(),
        local: stream.local_addr().ok(),
    };
    let reader = stream.try_clone().map_err(io)?;
    let writer = stream.try_clone().map_err(io)?;
    let timer = stream.try_clone().ok();
    let conn = Connection::server(config, crate::os_rng(), Instant::now())?;
    let shared = Shared::new(conn, Box::new(writer));
    let handle = ServerHandle {
        conn: Arc::new(Handle {
            shared: shared.clone(),
            sock: Some(stream),
        }),
        info: Arc::new(info),
    };
    let handler = make_handler(&handle);
    std::thread::Builder::new()
        .name("ssh-reader".into())
        .spawn(move || reader_loop(shared, Box::new(reader), timer))
        .map_err(|e| Error::new(ErrorKind::Io, format!("spawn reader thread: {e}")))?;
    handle.conn.shared.flush(handle.conn.shared.lock());
    Ok((handle, handler))
}

/// Runs the handler against the connection's decisions until it ends.
/// `on_auth` is called once when authentication completes.
fn dispatch<H: Handler>(
    handle: &ServerHandle,
    handler: &mut H,
    on_auth: &dyn Fn(),
) -> Result<(), Error> {
    let sh = &handle.conn.shared;
    let end = loop {
        let ev = match sh.wait(|s| s.requests.pop_front().map(Ok)) {
            Ok(ev) => ev,
            Err(e) => break e,
        };
        if let Err(e) = handle_event(handle, handler, ev, on_auth) {
            break e;
        }
    };
    finish(handle, handler, end)
}

/// Tells the handler the connection ended and says whether it ended well.
fn finish<H: Handler>(handle: &ServerHandle, handler: &mut H, end: Error) -> Result<(), Error> {
    handler.disconnected(&end);
    connection_result(end, handle.is_authenticated())
}

/// Ok if the client ended the connection in order (disconnect, EOF once authenticated), else `end`.
#[doc(hidden)]
pub fn connection_result(end: Error, authenticated: bool) -> Result<(), Error> {
    match end.kind() {
        ErrorKind::PeerDisconnected if end.code() == Some(11) => Ok(()),
        ErrorKind::Closed if authenticated => Ok(()),
        _ => Err(end),
    }
}

/// The default channel-open decision: sessions only.
#[doc(hidden)]
pub fn sessions_only(kind: &str) -> Result<(), ChannelOpenFailure> {
    if kind == "session" {
        Ok(())
    } else {
        Err(ChannelOpenFailure::unknown_type(kind))
    }
}

/// Refuses a server configuration with no host key.
#[doc(hidden)]
pub fn require_host_key(config: &Config) -> io::Result<()> {
    if config.transport.host_keys.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a server needs at least one host key",
        ));
    }
    Ok(())
}

/// Passes one queued decision to the handler and its answer to the core.
fn handle_event<H: Handler>(
    handle: &ServerHandle,
    handler: &mut H,
    ev: Event,
    on_auth: &dyn Fn(),
) -> Result<(), Error> {
    let sh = &handle.conn.shared;
    match ev {
        Event::AuthRequest { user, request } => auth(sh, handler, &user, request),
        Event::Authenticated { user } => {
            tracing::debug!(user = ?user, "authenticated");
            on_auth();
            handler.authenticated(&user);
            Ok(())
        }
        Event::ChannelOpenRequest {
            channel,
            kind,
            data,
        } => {
            let decision = handler.channel_open(&kind, &data);
            if open_channel(sh, channel, decision)? {
                handler.channel_opened(Channel::new(handle.conn.clone(), channel), &kind);
            }
            Ok(())
        }
        Event::ChannelRequest {
            channel,
            request,
            want_reply,
        } => {
            let ok = handler.channel_request(channel, request);
            if want_reply {
                reply_request(sh, channel, ok);
            } else {
                request_handled(sh);
            }
            Ok(())
        }
        Event::ChannelClosed { channel } => {
            handler.channel_closed(channel);
            Ok(())
        }
        Event::GlobalRequest {
            name,
            want_reply,
            data,
        } => {
            let r = handler.global_request(&name, &data);
            reply_global(sh, want_reply, r)
        }
        _ => Ok(()),
    }
}

/// Carries out a channel-open decision: Ok(true) if open, Ok(false) if refused or over MaxSessions.
#[doc(hidden)]
pub fn open_channel(
    sh: &Shared,
    channel: ChannelId,
    decision: Result<(), ChannelOpenFailure>,
) -> Result<bool, Error> {
    match decision {
        Ok(()) => match accept_channel(sh, channel) {
            Ok(()) => Ok(true),
            // Over MaxSessions: the core refused it itself.
            Err(e) if e.kind() == ErrorKind::Limit => Ok(false),
            Err(e) => Err(e),
        },
        Err(f) => sh
            .with(|s| {
                s.conn.reject_channel(
                    channel,
                    ssh_proto::ChannelOpenFailureReason::from_code(f.reason),
                    &f.description,
                )
            })
            .map(|()| false),
    }
}

/// Answers a global request if a reply is wanted: success with the handler's data, or failure.
#[doc(hidden)]
pub fn reply_global(sh: &Shared, want_reply: bool, r: Option<Vec<u8>>) -> Result<(), Error> {
    if !want_reply {
        request_handled(sh);
        return Ok(());
    }
    sh.with(|s| {
        s.conn
            .global_request_reply(r.is_some(), r.as_deref().unwrap_or(&[]))
    })
}

/// Tells the core a request that wanted no reply has been handled (input
/// it held back for it may go on).
#[doc(hidden)]
pub fn request_handled(sh: &Shared) {
    let _ = sh.with(|s| {
        s.conn.request_handled();
        Ok(())
    });
}

/// Accepts a channel the handler agreed to open.
#[doc(hidden)]
pub fn accept_channel(sh: &Shared, channel: ChannelId) -> Result<(), Error> {
    sh.with(|s| {
        s.conn.accept_channel(channel)?;
        s.chans.entry(channel).or_default().opened = Some(Ok(()));
        Ok(())
    })
}

/// Answers a channel request (the channel may have closed meanwhile: not
/// an error).
#[doc(hidden)]
pub fn reply_request(sh: &Shared, channel: ChannelId, ok: bool) {
    let _ = sh.with(|s| {
        if s.conn.channel_exists(channel) {
            s.conn.channel_request_reply(channel, ok)
        } else {
            Ok(())
        }
    });
}

/// A server connection driven by an event loop (the `ssh-mio` adapter)
/// instead of a dispatcher thread: the loop calls [`LoopConnection::process`]
/// after feeding input, and the handler runs on the loop's thread.
#[doc(hidden)]
pub struct LoopConnection<H: Handler> {
    handle: ServerHandle,
    handler: H,
    on_auth: Box<dyn Fn() + Send>,
    ended: bool,
}

impl<H: Handler> LoopConnection<H> {
    pub fn new(
        shared: Arc<Shared>,
        info: ConnectionInfo,
        make_handler: impl FnOnce(&ServerHandle) -> H,
        on_auth: Box<dyn Fn() + Send>,
    ) -> Self {
        let handle = ServerHandle {
            conn: Arc::new(Handle { shared, sock: None }),
            info: Arc::new(info),
        };
        let handler = make_handler(&handle);
        LoopConnection {
            handle,
            handler,
            on_auth,
            ended: false,
        }
    }

    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// Handles every queued decision. Returns the outcome once, when the
    /// connection has ended.
    pub fn process(&mut self) -> Option<Result<(), Error>> {
        if self.ended {
            return None;
        }
        loop {
            let next = {
                let mut g = self.handle.conn.shared.lock();
                match g.requests.pop_front() {
                    Some(ev) => Ok(ev),
                    None => match g.check() {
                        Ok(()) => return None,
                        Err(e) => Err(e),
                    },
                }
            };
            let r = match next {
                Ok(ev) => handle_event(&self.handle, &mut self.handler, ev, &*self.on_auth),
                Err(e) => Err(e),
            };
            if let Err(end) = r {
                self.ended = true;
                // Make sure the core knows (an error from the handler's
                // answer, e.g. a refused reply, ends the connection).
                {
                    let mut g = self.handle.conn.shared.lock();
                    if g.closed.is_none() {
                        g.conn.disconnect(11, "server error");
                        g.absorb();
                        g.closed = Some(end.clone());
                    }
                }
                return Some(finish(&self.handle, &mut self.handler, end));
            }
        }
    }
}

fn auth<H: Handler>(
    sh: &Shared,
    handler: &mut H,
    user: &str,
    request: AuthRequest,
) -> Result<(), Error> {
    let answer = match request {
        AuthRequest::Password {
            password,
            new_password: None,
        } => AuthAnswer::Password(handler.auth_password(user, &password)),
        AuthRequest::Password {
            password,
            new_password: Some(new),
        } => AuthAnswer::NewPassword(handler.auth_change_password(user, &password, &new)),
        AuthRequest::PublicKey {
            key,
            algorithm,
            verified: false,
        } => AuthAnswer::KeyOffered(handler.auth_publickey_offered(user, &key, &algorithm)),
        AuthRequest::PublicKey {
            key,
            algorithm,
            verified: true,
        } => AuthAnswer::Key(handler.auth_publickey(user, &key, &algorithm)),
        AuthRequest::KeyboardInteractive { submethods } => {
            AuthAnswer::Kbd(handler.auth_keyboard_interactive(user, &submethods))
        }
        AuthRequest::KeyboardInteractiveResponse { responses } => {
            AuthAnswer::Kbd(handler.auth_keyboard_interactive_response(user, &responses))
        }
        _ => AuthAnswer::Unsupported,
    };
    answer_auth(sh, user, answer)
}

/// A handler's answer to one auth request, by the kind of request.
#[doc(hidden)]
pub enum AuthAnswer {
    Password(Auth),
    /// To a password change.
    NewPassword(Auth),
    /// To "would you accept this key?".
    KeyOffered(bool),
    /// To a signed public-key attempt.
    Key(Auth),
    Kbd(KbdInt),
    /// A method no handler method answers: refused.
    Unsupported,
}

/// Gives the core a handler's answer to an auth request, under the rules every adapter applies.
#[doc(hidden)]
pub fn answer_auth(sh: &Shared, user: &str, answer: AuthAnswer) -> Result<(), Error> {
    let decision = match answer {
        AuthAnswer::Password(d) => d,
        // Asking again for a change would loop (and a key cannot change).
        AuthAnswer::NewPassword(d) | AuthAnswer::Key(d) => match d {
            Auth::ChangePassword(_) => Auth::Reject,
            d => d,
        },
        AuthAnswer::KeyOffered(true) => Auth::Accept,
        AuthAnswer::KeyOffered(false) | AuthAnswer::Unsupported => Auth::Reject,
        AuthAnswer::Kbd(d) => return kbd(sh, d),
    };
    apply_auth(sh, user, &decision)
}

/// Gives the core the application's answer to an auth attempt.
#[doc(hidden)]
pub fn apply_auth(sh: &Shared, user: &str, decision: &Auth) -> Result<(), Error> {
    let result = sh.with(|s| match decision {
        Auth::Accept => s.conn.auth_accept(),
        Auth::Reject => s.conn.auth_reject(),
        Auth::Partial(m) => s
            .conn
            .auth_partial(&m.iter().map(String::as_str).collect::<Vec<_>>()),
        Auth::ChangePassword(p) => s.conn.auth_password_change_request(p),
    });
    tracing::debug!(user = ?user, decision = ?decision, "auth attempt");
    result
}

/// Gives the core the application's keyboard-interactive answer.
#[doc(hidden)]
pub fn kbd(sh: &Shared, d: KbdInt) -> Result<(), Error> {
    sh.with(|s| match &d {
        KbdInt::Accept => s.conn.auth_accept(),
        KbdInt::Reject => s.conn.auth_reject(),
        KbdInt::Partial(m) => s
            .conn
            .auth_partial(&m.iter().map(String::as_str).collect::<Vec<_>>()),
        KbdInt::Prompt {
            name,
            instruction,
            prompts,
        } => s.conn.auth_info_request(name, instruction, prompts),
    })
}

/// Stops a running [`Server::run`] from another thread (or a signal
/// handler thread): the listener closes, live sessions finish.
#[derive(Clone)]
pub struct ShutdownHandle {
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
}

impl ShutdownHandle {
    pub fn shutdown(&self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the blocked accept with a connection of our own.
        let mut a = self.addr;
        if a.ip().is_unspecified() {
            a.set_ip(if a.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let _ = TcpStream::connect_timeout(&a, std::time::Duration::from_secs(1));
    }
}

/// A listening server: accepts connections and serves each on its own
/// thread.
pub struct Server {
    listener: TcpListener,
    config: Arc<Config>,
    addr: SocketAddr,
    admission: AdmissionConfig,
    stop: Arc<AtomicBool>,
}

/// A listener's admission state ([`Admission`]), shared by its
/// connections (every adapter's accept loop asks it).
#[doc(hidden)]
pub struct Gate {
    admission: Mutex<Admission>,
    rng: Mutex<Box<dyn CryptoRng + Send>>,
}

impl Gate {
    pub fn new(config: AdmissionConfig) -> Arc<Gate> {
        Arc::new(Gate {
            admission: Mutex::new(Admission::new(config)),
            rng: Mutex::new(crate::os_rng()),
        })
    }

    /// Decides on a connection just accepted: a guard that counts it as
    /// unauthenticated, or the refusal (write [`Refusal::NOTICE`] to the
    /// socket, best effort, and close it).
    pub fn admit(
        self: &Arc<Self>,
        peer: SocketAddr,
        local: Option<SocketAddr>,
    ) -> Result<UnauthGuard, Refusal> {
        let mut rng = self.rng.lock().unwrap_or_else(|p| p.into_inner());
        let startup = self
            .admission
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .admit(peer, local, Instant::now(), &mut **rng)?;
        Ok(UnauthGuard {
            gate: self.clone(),
            startup: Mutex::new(Some(startup)),
        })
    }

    /// Unauthenticated connections now.
    pub fn startups(&self) -> u32 {
        self.admission
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .startups()
    }
}

/// Counts a connection as unauthenticated (MaxStartups) until it authenticates or the guard drops.
#[doc(hidden)]
pub struct UnauthGuard {
    gate: Arc<Gate>,
    startup: Mutex<Option<Startup>>,
}

impl UnauthGuard {
    /// The connection authenticated: it no longer counts.
    pub fn authenticated(&self) {
        let s = self
            .startup
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(s) = s {
            self.gate
                .admission
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .release(s);
        }
    }
}

impl Drop for UnauthGuard {
    fn drop(&mut self) {
        self.authenticated();
    }
}

/// Counts live connections.
#[derive(Default)]
struct Counts {
    live: Mutex<usize>,
    idle: Condvar,
}

/// One connection's share of [`Counts`], given back when it ends.
struct CountGuard {
    counts: Arc<Counts>,
    unauth: UnauthGuard,
}

impl Drop for CountGuard {
    fn drop(&mut self) {
        self.unauth.authenticated();
        let mut live = self.counts.live.lock().unwrap_or_else(|p| p.into_inner());
        *live -= 1;
        self.counts.idle.notify_all();
    }
}

impl Server {
    /// OpenSSH's `MaxStartups` start value: connections that may be
    /// unauthenticated at once before new ones may be refused (the
    /// default admission is sshd's `MaxStartups 10:30:100`, see
    /// [`Server::set_admission`]).
    pub const DEFAULT_MAX_STARTUPS: usize = 10;

    pub fn bind(addr: impl ToSocketAddrs, config: Arc<Config>) -> io::Result<Server> {
        Self::from_listener(TcpListener::bind(addr)?, config)
    }

    pub fn from_listener(listener: TcpListener, config: Arc<Config>) -> io::Result<Server> {
        require_host_key(&config)?;
        Ok(Server {
            addr: listener.local_addr()?,
            listener,
            config,
            admission: AdmissionConfig::default(),
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many connections may be unauthenticated at once; a connection
    /// beyond that is closed right after accept (as sshd's `MaxStartups n`,
    /// a hard limit; [`Server::set_admission`] sets random early drop).
    pub fn set_max_startups(&mut self, n: usize) {
        let n = u32::try_from(n.max(1)).unwrap_or(u32::MAX);
        self.admission.max_startups = MaxStartups::new(n, 100, n).unwrap_or_default();
    }

    /// sshd's `MaxStartups start:rate:full`, `PerSourceMaxStartups` and
    /// `PerSourceNetBlockSize` (default `10:30:100`, none, `32:128`). The
    /// timeout for a client's version line is
    /// [`Config::identification_timeout`].
    pub fn set_admission(&mut self, admission: AdmissionConfig) {
        self.admission = admission;
    }

    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            stop: self.stop.clone(),
            addr: self.addr,
        }
    }

    /// Accepts and serves connections until [`ShutdownHandle::shutdown`],
    /// then waits for live connections to end. `make_handler` makes one
    /// handler per connection.
    pub fn run<H, F>(self, mut make_handler: F) -> io::Result<()>
    where
        H: Handler + 'static,
        F: FnMut(&ServerHandle) -> H,
    {
        let counts = Arc::new(Counts::default());
        let gate = Gate::new(self.admission);
        for stream in self.listener.incoming() {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    // Out of descriptors and the like: back off, go on.
                    tracing::warn!("accept failed: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    continue;
                }
            };
            let peer = stream.peer_addr().ok();
            let unauth = match peer.map(|p| gate.admit(p, stream.local_addr().ok())) {
                Some(Ok(g)) => g,
                Some(Err(_)) => {
                    let _ = (&stream).write(Refusal::NOTICE);
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                // The peer is gone already.
                None => continue,
            };
            let (handle, mut handler) = match start(stream, self.config.clone(), &mut make_handler)
            {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(peer = ?peer, "cannot start connection: {e}");
                    continue;
                }
            };
            *counts.live.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            let guard = CountGuard {
                counts: counts.clone(),
                unauth,
            };
            let spawned = std::thread::Builder::new()
                .name("ssh-conn".into())
                .spawn(move || {
                    // The guard settles the counts even if a handler panics.
                    let guard = guard;
                    let r = dispatch(&handle, &mut handler, &|| guard.unauth.authenticated());
                    tracing::debug!(peer = ?handle.peer_addr(), result = ?r, "connection ended");
                    drop(handler);
                    drop(handle);
                    drop(guard);
                });
            if let Err(e) = spawned {
                // The closure (and its guard) was dropped: counts are settled.
                tracing::warn!("cannot spawn a connection thread: {e}");
            }
        }
        drop(self.listener);
        let mut live = counts.live.lock().unwrap_or_else(|p| p.into_inner());
        while *live > 0 {
            live = counts.idle.wait(live).unwrap_or_else(|p| p.into_inner());
        }
        Ok(())
    }
}
