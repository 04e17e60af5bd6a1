//! The async server: one task per connection, decisions answered by an
//! async [`Handler`].

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ssh_proto::forward::{ChannelKind, GlobalRequest};
use ssh_proto::session::{channel_open_kind, refuse_kind, tcpip_forward_reply};
use ssh_proto::{AuthAnswer, AuthQuestion};
use ssh_proto::{ChannelId, ChannelRequest, Connection, Error, Event, PublicKey, Refusal};
use ssh_std::{ConnectionInfo, Gate, ServerHandle};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::forward::ChannelOpener;
use crate::{Auth, Channel, ChannelOpenFailure, Config, Conn, KbdInt};
use ssh_std::driver::HeldChannel;

/// The application's side of a server connection. Every method may await
/// (ask a database, another service): only its own connection waits. The
/// defaults refuse everything.
#[allow(unused_variables)]
pub trait Handler: Send + 'static {
    /// A password for `user`. Default: reject.
    fn auth_password(&mut self, user: &str, password: &str) -> impl Future<Output = Auth> + Send {
        async { Auth::Reject }
    }
    /// The client asks to change its expired password from `old` to `new`.
    /// Default: reject.
    fn auth_change_password(
        &mut self,
        user: &str,
        old: &str,
        new: &str,
    ) -> impl Future<Output = Auth> + Send {
        async { Auth::Reject }
    }
    /// Would this key be accepted? (No signature yet.) `algorithm` is the
    /// signature algorithm the client will sign with (e.g. `rsa-sha2-512`
    /// for an `ssh-rsa` key), already checked against the configured
    /// `pubkey_accepted_algorithms`. The default says yes: the decision is
    /// then made on the signed attempt in
    /// [`auth_publickey`](Self::auth_publickey) (which refuses by default).
    fn auth_publickey_offered(
        &mut self,
        user: &str,
        key: &PublicKey,
        algorithm: &str,
    ) -> impl Future<Output = bool> + Send {
        async { true }
    }
    /// The client proved it holds this key, with a signature of
    /// `algorithm` (already checked against `pubkey_accepted_algorithms`).
    fn auth_publickey(
        &mut self,
        user: &str,
        key: &PublicKey,
        algorithm: &str,
    ) -> impl Future<Output = Auth> + Send {
        async { Auth::Reject }
    }
    /// The client starts keyboard-interactive authentication: accept,
    /// reject, or return prompts. Default: reject.
    fn auth_keyboard_interactive(
        &mut self,
        user: &str,
        submethods: &str,
    ) -> impl Future<Output = KbdInt> + Send {
        async { KbdInt::Reject }
    }
    /// The answers to the last prompts. Default: reject.
    fn auth_keyboard_interactive_response(
        &mut self,
        user: &str,
        responses: &[String],
    ) -> impl Future<Output = KbdInt> + Send {
        async { KbdInt::Reject }
    }
    /// `user` has authenticated. Default: nothing.
    fn authenticated(&mut self, user: &str) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// May a channel of this kind open? The default sends each kind a
    /// client opens to its method below and refuses the rest
    /// (`forwarded-tcpip`, `x11`, …: a client does not open them; an
    /// unknown type: `SSH_OPEN_UNKNOWN_CHANNEL_TYPE`). A malformed open is
    /// refused before asking, and session channels beyond `MaxSessions`
    /// (default 10 per connection) after.
    fn channel_open(
        &mut self,
        kind: &ChannelKind,
    ) -> impl Future<Output = Result<(), ChannelOpenFailure>> + Send {
        async move {
            match kind {
                ChannelKind::Session => self.channel_open_session().await,
                ChannelKind::DirectTcpip {
                    host,
                    port,
                    originator,
                    originator_port,
                } => {
                    self.channel_open_direct_tcpip(host, *port, originator, *originator_port)
                        .await
                }
                ChannelKind::DirectStreamlocal { path } => {
                    self.channel_open_direct_streamlocal(path).await
                }
                k => refuse_kind(k),
            }
        }
    }
    /// A session channel. Default: accept.
    fn channel_open_session(
        &mut self,
    ) -> impl Future<Output = Result<(), ChannelOpenFailure>> + Send {
        async { Ok(()) }
    }
    /// `direct-tcpip` (ssh's `-L`, `-D`, `-W`): connect to `host`:`port`
    /// for a connection from `originator`:`originator_port`. A handler
    /// that allows it connects here (refusing with
    /// [`ChannelOpenFailure::connect_failed`] when it cannot) and carries
    /// the socket over the channel [`channel_opened`](Self::channel_opened)
    /// brings (`tokio::io::copy_bidirectional` in a task). Default: refuse
    /// (administratively prohibited).
    fn channel_open_direct_tcpip(
        &mut self,
        host: &str,
        port: u32,
        originator: &str,
        originator_port: u32,
    ) -> impl Future<Output = Result<(), ChannelOpenFailure>> + Send {
        async {
            Err(ChannelOpenFailure::prohibited(
                "port forwarding is disabled",
            ))
        }
    }
    /// `direct-streamlocal@openssh.com`: connect to the Unix socket
    /// `path`, as [`channel_open_direct_tcpip`](Self::channel_open_direct_tcpip).
    /// Default: refuse.
    fn channel_open_direct_streamlocal(
        &mut self,
        path: &str,
    ) -> impl Future<Output = Result<(), ChannelOpenFailure>> + Send {
        async {
            Err(ChannelOpenFailure::prohibited(
                "stream local forwarding is disabled",
            ))
        }
    }
    /// An accepted channel: a handle of its own to keep, if the handler
    /// wants one before the first request (for a forwarding channel, the
    /// handle that carries its bytes). Default: nothing (the dispatcher
    /// keeps the channel open until the handler keeps a handle; from then
    /// on the handler's last drop closes it).
    fn channel_opened(
        &mut self,
        channel: Channel,
        kind: &ChannelKind,
    ) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// pty-req, env, exec, shell, subsystem, window-change, signal, ... on
    /// `channel`: true to accept. `channel.clone()` gives a handle to move
    /// to a task that serves it (and calls [`Channel::close`] when done).
    /// Default: refuse.
    fn channel_request(
        &mut self,
        channel: &Channel,
        request: ChannelRequest,
    ) -> impl Future<Output = bool> + Send {
        async { false }
    }
    /// A channel closed. Default: nothing.
    fn channel_closed(&mut self, channel: ChannelId) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// `tcpip-forward` (ssh's `-R`): listen on `address`:`port` and open
    /// a `forwarded-tcpip` channel to the client per connection, e.g. with
    /// [`ChannelOpener::forward_remote`] (keep the forward it returns; the
    /// listener closes when it is dropped). `address` as the client sent
    /// it: `""` for every address, `localhost` for loopback. Some(bound
    /// port) to accept (the port picked when `port` is 0), None to refuse.
    /// Default: refuse.
    fn tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
        opener: &ChannelOpener,
    ) -> impl Future<Output = Option<u32>> + Send {
        async { None }
    }
    /// `cancel-tcpip-forward`: stop the forward on `address`:`port`; true
    /// if there was one. Default: false.
    fn cancel_tcpip_forward(
        &mut self,
        address: &str,
        port: u32,
    ) -> impl Future<Output = bool> + Send {
        async { false }
    }
    /// `streamlocal-forward@openssh.com`: listen on the Unix socket `path`
    /// and open a `forwarded-streamlocal@openssh.com` channel per
    /// connection ([`ChannelOpener::forward_remote_unix`]); true to
    /// accept. Default: refuse.
    fn streamlocal_forward(
        &mut self,
        path: &str,
        opener: &ChannelOpener,
    ) -> impl Future<Output = bool> + Send {
        async { false }
    }
    /// `cancel-streamlocal-forward@openssh.com`; true if there was one.
    /// Default: false.
    fn cancel_streamlocal_forward(&mut self, path: &str) -> impl Future<Output = bool> + Send {
        async { false }
    }
    /// Any other global request: Some(reply data) to accept.
    fn global_request(
        &mut self,
        name: &str,
        data: &[u8],
    ) -> impl Future<Output = Option<Vec<u8>>> + Send {
        async { None }
    }
    /// The connection ended, for `reason`. Default: nothing.
    fn disconnected(&mut self, reason: &Error) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// Serves one connection on the current task until it ends. Ok when the
/// client closed in an orderly way, the reason otherwise.
pub async fn serve_connection<H: Handler>(
    stream: TcpStream,
    config: Arc<Config>,
    make_handler: impl FnOnce(&ServerHandle) -> H,
) -> Result<(), Error> {
    let (conn, handle) = setup(stream, config)?;
    let handler = make_handler(&handle);
    dispatch(conn, handle, handler, Box::new(|| {})).await
}

/// Starts the connection's tasks; the handler is made from the handle.
fn setup(stream: TcpStream, config: Arc<Config>) -> Result<(Arc<Conn>, ServerHandle), Error> {
    let _ = stream.set_nodelay(true);
    let info = ConnectionInfo {
        peer: stream.peer_addr().ok(),
        local: stream.local_addr().ok(),
    };
    let conn = Connection::server(config, ssh_proto::os_rng(), Instant::now())?;
    if let Some(peer) = info.peer {
        conn.set_peer(&peer);
    }
    let conn = crate::start(conn, stream);
    let handle = ServerHandle::from_parts(conn.handle.clone(), info);
    {
        let sh = conn.shared();
        sh.flush(sh.lock());
    }
    Ok((conn, handle))
}

async fn dispatch<H: Handler>(
    conn: Arc<Conn>,
    handle: ServerHandle,
    mut handler: H,
    on_auth: Box<dyn Fn() + Send + Sync>,
) -> Result<(), Error> {
    // A handle on every open channel, for the handler's requests.
    let mut chans = HashMap::new();
    let end = loop {
        let ev = match conn
            .wait(crate::Key::Conn, |s| s.pop_request().map(Ok))
            .await
        {
            Ok(ev) => ev,
            Err(e) => break e,
        };
        if let Err(e) = handle_event(&conn, &mut handler, &mut chans, ev, &*on_auth).await {
            break e;
        }
    };
    chans.clear();
    handler.disconnected(&end).await;
    let authed = handle.is_authenticated();
    drop(handle);
    ssh_proto::session::connection_result(end, authed)
}

async fn handle_event<H: Handler>(
    conn: &Arc<Conn>,
    handler: &mut H,
    chans: &mut HashMap<ChannelId, HeldChannel>,
    ev: Event,
    on_auth: &(dyn Fn() + Sync),
) -> Result<(), Error> {
    let sh = conn.shared();
    match ev {
        Event::AuthRequest { user, request } => {
            let answer = match AuthQuestion::from(request) {
                AuthQuestion::Password { password } => {
                    AuthAnswer::Password(handler.auth_password(&user, &password).await)
                }
                AuthQuestion::ChangePassword { old, new } => {
                    AuthAnswer::NewPassword(handler.auth_change_password(&user, &old, &new).await)
                }
                AuthQuestion::KeyOffered { key, algorithm } => AuthAnswer::KeyOffered(
                    handler
                        .auth_publickey_offered(&user, &key, &algorithm)
                        .await,
                ),
                AuthQuestion::Key { key, algorithm } => {
                    AuthAnswer::Key(handler.auth_publickey(&user, &key, &algorithm).await)
                }
                AuthQuestion::KeyboardInteractive { submethods } => {
                    AuthAnswer::Kbd(handler.auth_keyboard_interactive(&user, &submethods).await)
                }
                AuthQuestion::KeyboardInteractiveResponse { responses } => AuthAnswer::Kbd(
                    handler
                        .auth_keyboard_interactive_response(&user, &responses)
                        .await,
                ),
                _ => AuthAnswer::Unsupported,
            };
            sh.with(|s| s.answer_auth(&user, answer))
        }
        Event::Authenticated { user } => {
            tracing::debug!(user = ?user, "authenticated");
            on_auth();
            handler.authenticated(&user).await;
            Ok(())
        }
        Event::ChannelOpenRequest {
            channel,
            kind,
            data,
        } => {
            let kind = channel_open_kind(&kind, &data);
            let decision = match &kind {
                Ok(k) => handler.channel_open(k).await,
                Err(refused) => Err(refused.clone()),
            };
            if sh.with(|s| s.open_decision(channel, decision))? {
                let Ok(kind) = kind else { return Ok(()) };
                let ch = Channel::new(conn.clone(), channel);
                chans.insert(channel, HeldChannel::Own(ch.release().clone()));
                handler.channel_opened(ch, &kind).await;
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
                .map(|last| Channel::with_release(conn.clone(), channel, last));
            let ok = match &ch {
                Some(ch) => handler.channel_request(ch, request).await,
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
            handler.channel_closed(channel).await;
            Ok(())
        }
        Event::GlobalRequest {
            name,
            want_reply,
            data,
        } => {
            let opener = ChannelOpener::new(conn.clone());
            let r = match GlobalRequest::parse(&name, &data) {
                Ok(GlobalRequest::TcpipForward { address, port }) => handler
                    .tcpip_forward(&address, port, &opener)
                    .await
                    .map(|bound| tcpip_forward_reply(port, bound)),
                Ok(GlobalRequest::CancelTcpipForward { address, port }) => handler
                    .cancel_tcpip_forward(&address, port)
                    .await
                    .then(Vec::new),
                Ok(GlobalRequest::StreamlocalForward { path }) => handler
                    .streamlocal_forward(&path, &opener)
                    .await
                    .then(Vec::new),
                Ok(GlobalRequest::CancelStreamlocalForward { path }) => handler
                    .cancel_streamlocal_forward(&path)
                    .await
                    .then(Vec::new),
                Ok(GlobalRequest::Other { name, data }) => {
                    handler.global_request(&name, &data).await
                }
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

/// Stops a running [`Server::run`]: the listener closes, live sessions
/// finish.
#[derive(Clone)]
pub struct ShutdownHandle {
    stop: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl ShutdownHandle {
    /// Asks the server to stop accepting; returns at once.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

/// A listening server: one task per connection.
pub struct Server {
    listener: TcpListener,
    config: Arc<Config>,
    stop: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Server {
    /// Binds a listener at `addr`. Fails when `config` has no host key or
    /// the address cannot be bound.
    pub async fn bind(
        addr: impl tokio::net::ToSocketAddrs,
        config: Arc<Config>,
    ) -> io::Result<Server> {
        Self::from_listener(TcpListener::bind(addr).await?, config)
    }

    /// A server on an already bound listener. Fails when `config` has no
    /// host key.
    pub fn from_listener(listener: TcpListener, config: Arc<Config>) -> io::Result<Server> {
        ssh_std::require_host_key(&config)?;
        Ok(Server {
            listener,
            config,
            stop: Arc::new(AtomicBool::new(false)),
            notify: Arc::new(Notify::new()),
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle that stops [`Server::run`] from another task.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            stop: self.stop.clone(),
            notify: self.notify.clone(),
        }
    }

    /// Accepts and serves connections until shutdown, then waits for live
    /// connections to end.
    pub async fn run<H, F>(self, mut make_handler: F) -> io::Result<()>
    where
        H: Handler,
        F: FnMut(&ServerHandle) -> H,
    {
        let gate = Gate::new(self.config.admission);
        let mut tasks = tokio::task::JoinSet::new();
        loop {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            let accepted = tokio::select! {
                r = self.listener.accept() => r,
                _ = self.notify.notified() => continue,
                Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            };
            let (stream, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            };
            let guard = match gate.admit(peer, stream.local_addr().ok()) {
                Ok(g) => Arc::new(g),
                Err(_) => {
                    let _ = stream.try_write(Refusal::NOTICE);
                    drop(stream);
                    continue;
                }
            };
            let (conn, handle) = match setup(stream, self.config.clone()) {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(peer = %peer, "cannot start connection: {e}");
                    continue;
                }
            };
            let handler = make_handler(&handle);
            let g = guard.clone();
            tasks.spawn(async move {
                let r = dispatch(conn, handle, handler, Box::new(move || g.authenticated())).await;
                tracing::debug!(peer = %peer, result = ?r, "connection ended");
                drop(guard);
            });
        }
        drop(self.listener);
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}
