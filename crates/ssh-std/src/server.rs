//! The server side of the thread-safe handles: the [`Handler`] trait (one
//! per connection, in the spirit of paramiko's `ServerInterface`) that
//! makes every decision the core surfaces, the [`Dispatcher`] that carries
//! its answers to the connection, the connection's [`ServerHandle`], and
//! the listener's admission [`Gate`] (MaxStartups).
//!
//! A handler method may take as long as it likes (ask a database, prompt
//! an operator): it holds up only its own connection, whose core keeps
//! the decision pending meanwhile. Channels handed to the handler are
//! `Read + Write` and may be moved to other threads.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ssh_proto::disconnect::BY_APPLICATION;
use ssh_proto::forward::{ChannelKind, GlobalRequest};
use ssh_proto::session::{channel_open_kind, connection_result, refuse_kind, tcpip_forward_reply};

use ssh_proto::{
    Admission, AdmissionConfig, Auth, AuthAnswer, AuthQuestion, AuthRequest, ChannelId,
    ChannelOpenFailure, ChannelRequest, Config, CryptoRng, Error, Event, KbdInt, Negotiated,
    PublicKey, Refusal, Startup,
};

use crate::channel::Channel;
use crate::driver::{Handle, HeldChannel, Shared};
use crate::forward::ChannelOpener;

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
    ///
    /// The default says yes: the decision is then made on the signed
    /// attempt in [`auth_publickey`](Self::auth_publickey) (which refuses
    /// by default), so a handler that implements only that method works.
    /// Override it to refuse unknown keys early (saves the client a
    /// signature).
    fn auth_publickey_offered(&mut self, user: &str, key: &PublicKey, algorithm: &str) -> bool {
        true
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
    /// May a channel of this kind open? The default sends each kind a
    /// client opens to its method below and refuses the rest
    /// (`forwarded-tcpip`, `x11`, …: a client does not open them; an
    /// unknown type: `SSH_OPEN_UNKNOWN_CHANNEL_TYPE`). A malformed open is
    /// refused before asking, and session channels beyond `MaxSessions`
    /// (default 10 per connection) after.
    fn channel_open(&mut self, kind: &ChannelKind) -> Result<(), ChannelOpenFailure> {
        match kind {
            ChannelKind::Session => self.channel_open_session(),
            ChannelKind::DirectTcpip {
                host,
                port,
                originator,
                originator_port,
            } => self.channel_open_direct_tcpip(host, *port, originator, *originator_port),
            ChannelKind::DirectStreamlocal { path } => self.channel_open_direct_streamlocal(path),
            k => refuse_kind(k),
        }
    }
    /// A session channel. Default: accept.
    fn channel_open_session(&mut self) -> Result<(), ChannelOpenFailure> {
        Ok(())
    }
    /// `direct-tcpip` (ssh's `-L`, `-D`, `-W`): connect to `host`:`port`
    /// for a connection from `originator`:`originator_port`. A handler
    /// that allows it connects here (refusing with
    /// [`ChannelOpenFailure::connect_failed`] when it cannot) and carries
    /// the socket over the channel [`channel_opened`](Self::channel_opened)
    /// brings, e.g. with [`splice_tcp`](crate::splice_tcp) on a thread.
    /// Default: refuse (administratively prohibited).
    fn channel_open_direct_tcpip(
        &mut self,
        host: &str,
        port: u32,
        originator: &str,
        originator_port: u32,
    ) -> Result<(), ChannelOpenFailure> {
        Err(ChannelOpenFailure::prohibited(
            "port forwarding is disabled",
        ))
    }
    /// `direct-streamlocal@openssh.com`: connect to the Unix socket
    /// `path`, as [`channel_open_direct_tcpip`](Self::channel_open_direct_tcpip).
    /// Default: refuse.
    fn channel_open_direct_streamlocal(&mut self, path: &str) -> Result<(), ChannelOpenFailure> {
        Err(ChannelOpenFailure::prohibited(
            "stream local forwarding is disabled",
        ))
    }
    /// The channel is open: a handle of its own to keep, if the handler
    /// wants one before the first request (for a forwarding channel, the
    /// handle that carries its bytes). Default: nothing (the dispatcher
    /// keeps the channel open until the handler keeps a handle; from then
    /// on the handler's last drop closes it).
    fn channel_opened(&mut self, channel: Channel, kind: &ChannelKind) {}
    /// A channel request (pty-req, env, exec, shell, subsystem,
    /// window-change, signal, …) on `channel`; `channel.clone()` gives a
    /// handle to move to a thread that serves it (and calls
    /// [`Channel::close`] when done). The answer is sent when the client
    /// asked for one. Default: refuse.
    fn channel_request(&mut self, channel: &Channel, request: ChannelRequest) -> bool {
        false
    }
    /// The channel is closed in both directions.
    fn channel_closed(&mut self, channel: ChannelId) {}
    /// `tcpip-forward` (ssh's `-R`): listen on `address`:`port` and open
    /// a `forwarded-tcpip` channel to the client per connection, e.g. with
    /// [`ChannelOpener::forward_remote`] (keep the forward it returns; the
    /// listener closes when it is dropped). `address` as the client sent
    /// it: `""` for every address, `localhost` for loopback. Some(bound
    /// port) to accept (the port picked when `port` is 0), None to refuse.
    /// Default: refuse.
    fn tcpip_forward(&mut self, address: &str, port: u32, opener: &ChannelOpener) -> Option<u32> {
        None
    }
    /// `cancel-tcpip-forward`: stop the forward on `address`:`port`; true
    /// if there was one. Default: false.
    fn cancel_tcpip_forward(&mut self, address: &str, port: u32) -> bool {
        false
    }
    /// `streamlocal-forward@openssh.com`: listen on the Unix socket `path`
    /// and open a `forwarded-streamlocal@openssh.com` channel per
    /// connection ([`ChannelOpener::forward_remote_unix`]); true to
    /// accept. Default: refuse.
    fn streamlocal_forward(&mut self, path: &str, opener: &ChannelOpener) -> bool {
        false
    }
    /// `cancel-streamlocal-forward@openssh.com`; true if there was one.
    /// Default: false.
    fn cancel_streamlocal_forward(&mut self, path: &str) -> bool {
        false
    }
    /// Any other global request: `Some(reply data)` for success, `None`
    /// for failure.
    fn global_request(&mut self, name: &str, data: &[u8]) -> Option<Vec<u8>> {
        None
    }
    /// The connection ended; `reason` says why.
    fn disconnected(&mut self, reason: &Error) {}
}

/// Where a connection comes from.
#[derive(Clone, Debug)]
pub struct ConnectionInfo {
    /// The client's address, when the transport has one.
    pub peer: Option<SocketAddr>,
    /// Our address the client connected to, when the transport has one.
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
    /// Opens channels to the client (`forwarded-tcpip` and the like).
    pub fn opener(&self) -> ChannelOpener {
        ChannelOpener::new(self.conn.clone())
    }

    /// A handle over `conn`, described by `info`. For adapters that drive a
    /// connection themselves (they own its socket).
    pub fn from_parts(conn: Arc<Handle>, info: ConnectionInfo) -> ServerHandle {
        ServerHandle {
            conn,
            info: Arc::new(info),
        }
    }
    /// The connection handle: for adapters that drive a connection
    /// themselves and need its [`Shared`](crate::driver::Shared) state.
    pub fn conn(&self) -> &Arc<Handle> {
        &self.conn
    }
    /// The client's address, when known.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.info.peer
    }
    /// Our local address, when known.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.info.local
    }
    /// The client's version string (after the version exchange).
    pub fn client_version(&self) -> Option<String> {
        self.conn
            .shared()
            .lock()
            .conn()
            .peer_version()
            .map(str::to_string)
    }
    /// Algorithms in use (after the first key exchange).
    pub fn negotiated(&self) -> Option<Negotiated> {
        self.conn.shared().lock().conn().negotiated().cloned()
    }
    /// Whether the client has authenticated.
    pub fn is_authenticated(&self) -> bool {
        self.conn.shared().lock().conn().is_authenticated()
    }
    /// Ends the connection (reason 11, "by application").
    pub fn disconnect(&self, description: &str) {
        let _ = self.conn.shared().with(|s| {
            s.conn_mut().disconnect(BY_APPLICATION, description);
            Ok(())
        });
    }
}

/// Tells the handler the connection ended and says whether it ended well.
fn finish<H: Handler>(handle: &ServerHandle, handler: &mut H, end: Error) -> Result<(), Error> {
    handler.disconnected(&end);
    connection_result(end, handle.is_authenticated())
}

/// Refuses a server configuration with no host key (`InvalidInput`). For
/// adapters' listeners, before they accept anything.
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
    chans: &mut HashMap<ChannelId, HeldChannel>,
    ev: Event,
    on_auth: &dyn Fn(),
) -> Result<(), Error> {
    let sh = &handle.conn.shared();
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
            let kind = channel_open_kind(&kind, &data);
            let decision = match &kind {
                Ok(k) => handler.channel_open(k),
                Err(refused) => Err(refused.clone()),
            };
            if sh.with(|s| s.open_decision(channel, decision))? {
                let Ok(kind) = kind else { return Ok(()) };
                let ch = Channel::new(handle.conn.clone(), channel);
                chans.insert(channel, HeldChannel::Own(ch.release().clone()));
                handler.channel_opened(ch, &kind);
                if let Some(h) = chans.get_mut(&channel) {
                    h.settle();
                }
            }
            Ok(())
        }
        Event::ChannelRequest {
            channel,
            request,
            want_reply,
        } => {
            let ch = chans
                .get(&channel)
                .and_then(HeldChannel::get)
                .map(|last| Channel::with_release(handle.conn.clone(), channel, last));
            let ok = match &ch {
                Some(ch) => handler.channel_request(ch, request),
                None => false,
            };
            drop(ch);
            if let Some(h) = chans.get_mut(&channel) {
                h.settle();
            }
            let _ = sh.with(|s| {
                s.reply_request(channel, want_reply, ok);
                Ok(())
            });
            Ok(())
        }
        Event::ChannelClosed { channel } => {
            chans.remove(&channel);
            handler.channel_closed(channel);
            Ok(())
        }
        Event::GlobalRequest {
            name,
            want_reply,
            data,
        } => {
            let r = match GlobalRequest::parse(&name, &data) {
                Ok(GlobalRequest::TcpipForward { address, port }) => handler
                    .tcpip_forward(&address, port, &handle.opener())
                    .map(|bound| tcpip_forward_reply(port, bound)),
                Ok(GlobalRequest::CancelTcpipForward { address, port }) => {
                    handler.cancel_tcpip_forward(&address, port).then(Vec::new)
                }
                Ok(GlobalRequest::StreamlocalForward { path }) => handler
                    .streamlocal_forward(&path, &handle.opener())
                    .then(Vec::new),
                Ok(GlobalRequest::CancelStreamlocalForward { path }) => {
                    handler.cancel_streamlocal_forward(&path).then(Vec::new)
                }
                Ok(GlobalRequest::Other { name, data }) => handler.global_request(&name, &data),
                Err(e) => {
                    tracing::debug!(error = %e, "malformed global request refused");
                    None
                }
            };
            sh.with(|s| s.reply_global(want_reply, r))
        }
        _ => Ok(()),
    }
}

/// One server connection and its [`Handler`]: carries the handler's
/// answers to the connection. A thread runs it with [`Dispatcher::run`]
/// (the `ssh-blocking` server: one thread per connection); an event loop
/// calls [`Dispatcher::process`] whenever the connection has news (the
/// `ssh-mio` reactor, on a worker thread).
pub struct Dispatcher<H: Handler> {
    handle: ServerHandle,
    handler: H,
    /// Every open channel, for the handler's requests.
    chans: HashMap<ChannelId, HeldChannel>,
    on_auth: Box<dyn Fn() + Send>,
    ended: bool,
}

impl<H: Handler> Dispatcher<H> {
    /// Makes the handler for the connection `shared` (with `make_handler`,
    /// given the connection's handle); `on_auth` is called once when the
    /// client has authenticated (admission counts it as a startup until
    /// then). `sock`, when given, is shut down when the last handle goes.
    pub fn new(
        shared: Arc<Shared>,
        sock: Option<TcpStream>,
        info: ConnectionInfo,
        make_handler: impl FnOnce(&ServerHandle) -> H,
        on_auth: Box<dyn Fn() + Send>,
    ) -> Self {
        let handle = ServerHandle {
            conn: Arc::new(Handle::new(shared, sock)),
            info: Arc::new(info),
        };
        let handler = make_handler(&handle);
        Dispatcher {
            handle,
            handler,
            chans: HashMap::new(),
            on_auth,
            ended: false,
        }
    }

    /// The connection's handle.
    pub fn handle(&self) -> &ServerHandle {
        &self.handle
    }

    /// Runs the handler on the calling thread until the connection ends:
    /// Ok when the client closed it in an orderly way, the reason
    /// otherwise.
    pub fn run(mut self) -> Result<(), Error> {
        let sh = self.handle.conn.shared().clone();
        loop {
            if let Some(r) = self.process() {
                return r;
            }
            let _ = sh.wait(|s| (s.has_request() || s.closed().is_some()).then_some(Ok(())));
        }
    }

    /// Handles every queued decision. Returns the outcome once, when the
    /// connection has ended.
    pub fn process(&mut self) -> Option<Result<(), Error>> {
        if self.ended {
            return None;
        }
        loop {
            let next = {
                let mut g = self.handle.conn.shared().lock();
                match g.pop_request() {
                    Some(ev) => Ok(ev),
                    None => match g.check() {
                        Ok(()) => return None,
                        Err(e) => Err(e),
                    },
                }
            };
            let r = match next {
                Ok(ev) => handle_event(
                    &self.handle,
                    &mut self.handler,
                    &mut self.chans,
                    ev,
                    &*self.on_auth,
                ),
                Err(e) => Err(e),
            };
            if let Err(end) = r {
                self.ended = true;
                // Make sure the core knows (an error from the handler's
                // answer, e.g. a refused reply, ends the connection).
                {
                    let mut g = self.handle.conn.shared().lock();
                    if g.closed().is_none() {
                        g.conn_mut().disconnect(BY_APPLICATION, "server error");
                        g.absorb();
                        g.set_closed(end.clone());
                    }
                }
                self.chans.clear();
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
    let answer = match AuthQuestion::from(request) {
        AuthQuestion::Password { password } => {
            AuthAnswer::Password(handler.auth_password(user, &password))
        }
        AuthQuestion::ChangePassword { old, new } => {
            AuthAnswer::NewPassword(handler.auth_change_password(user, &old, &new))
        }
        AuthQuestion::KeyOffered { key, algorithm } => {
            AuthAnswer::KeyOffered(handler.auth_publickey_offered(user, &key, &algorithm))
        }
        AuthQuestion::Key { key, algorithm } => {
            AuthAnswer::Key(handler.auth_publickey(user, &key, &algorithm))
        }
        AuthQuestion::KeyboardInteractive { submethods } => {
            AuthAnswer::Kbd(handler.auth_keyboard_interactive(user, &submethods))
        }
        AuthQuestion::KeyboardInteractiveResponse { responses } => {
            AuthAnswer::Kbd(handler.auth_keyboard_interactive_response(user, &responses))
        }
        _ => AuthAnswer::Unsupported,
    };
    sh.with(|s| s.answer_auth(user, answer))
}

/// A listener's admission state ([`Admission`]), shared by its
/// connections (every adapter's accept loop asks it). For adapters that
/// drive a connection themselves.
pub struct Gate {
    admission: Mutex<Admission>,
    rng: Mutex<Box<dyn CryptoRng + Send>>,
}

impl Gate {
    /// A gate admitting connections as `config` says (`MaxStartups`,
    /// per-source limits).
    pub fn new(config: AdmissionConfig) -> Arc<Gate> {
        Arc::new(Gate {
            admission: Mutex::new(Admission::new(config)),
            rng: Mutex::new(ssh_proto::os_rng()),
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

/// Counts a connection as unauthenticated (`MaxStartups`) until it
/// authenticates or the guard drops. Made by [`Gate::admit`].
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
