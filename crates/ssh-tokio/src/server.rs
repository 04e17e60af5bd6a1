//! The async server: one task per connection, decisions answered by an
//! async [`Handler`].

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use ssh_blocking::{ConnectionInfo, ServerHandle};
use ssh_proto::{
    AuthRequest, ChannelId, ChannelRequest, Connection, Error, ErrorKind, Event, PublicKey,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

use crate::{Auth, Channel, ChannelOpenFailure, Config, Conn, KbdInt};

/// The application's side of a server connection. Every method may await
/// (ask a database, another service): only its own connection waits. The
/// defaults refuse everything.
#[allow(unused_variables)]
pub trait Handler: Send + 'static {
    fn auth_password(&mut self, user: &str, password: &str) -> impl Future<Output = Auth> + Send {
        async { Auth::Reject }
    }
    fn auth_change_password(
        &mut self,
        user: &str,
        old: &str,
        new: &str,
    ) -> impl Future<Output = Auth> + Send {
        async { Auth::Reject }
    }
    /// Would this key be accepted? (No signature yet.)
    fn auth_publickey_offered(
        &mut self,
        user: &str,
        key: &PublicKey,
    ) -> impl Future<Output = bool> + Send {
        async { false }
    }
    /// The client proved it holds this key.
    fn auth_publickey(&mut self, user: &str, key: &PublicKey) -> impl Future<Output = Auth> + Send {
        async { Auth::Reject }
    }
    fn auth_keyboard_interactive(
        &mut self,
        user: &str,
        submethods: &str,
    ) -> impl Future<Output = KbdInt> + Send {
        async { KbdInt::Reject }
    }
    fn auth_keyboard_interactive_response(
        &mut self,
        user: &str,
        responses: &[String],
    ) -> impl Future<Output = KbdInt> + Send {
        async { KbdInt::Reject }
    }
    fn authenticated(&mut self, user: &str) -> impl Future<Output = ()> + Send {
        async {}
    }
    fn channel_open(
        &mut self,
        kind: &str,
        data: &[u8],
    ) -> impl Future<Output = Result<(), ChannelOpenFailure>> + Send {
        let r = if kind == "session" {
            Ok(())
        } else {
            Err(ChannelOpenFailure::unknown_type(kind))
        };
        async move { r }
    }
    /// An accepted channel, to keep or to hand to a task.
    fn channel_opened(&mut self, channel: Channel, kind: &str) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// pty-req, env, exec, shell, subsystem, window-change, signal, ...:
    /// true to accept.
    fn channel_request(
        &mut self,
        channel: ChannelId,
        request: ChannelRequest,
    ) -> impl Future<Output = bool> + Send {
        async { false }
    }
    fn channel_closed(&mut self, channel: ChannelId) -> impl Future<Output = ()> + Send {
        async {}
    }
    /// Some(reply data) to accept a global request.
    fn global_request(
        &mut self,
        name: &str,
        data: &[u8],
    ) -> impl Future<Output = Option<Vec<u8>>> + Send {
        async { None }
    }
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
    let conn = Connection::server(config, ssh_blocking::os_rng(), Instant::now())?;
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
    let end = loop {
        let ev = match conn.wait(|s| s.requests.pop_front().map(Ok)).await {
            Ok(ev) => ev,
            Err(e) => break e,
        };
        if let Err(e) = handle_event(&conn, &mut handler, ev, &*on_auth).await {
            break e;
        }
    };
    handler.disconnected(&end).await;
    let authed = handle.is_authenticated();
    drop(handle);
    match end.kind() {
        ErrorKind::PeerDisconnected if end.code() == Some(11) => Ok(()),
        ErrorKind::Closed if authed => Ok(()),
        _ => Err(end),
    }
}

async fn handle_event<H: Handler>(
    conn: &Arc<Conn>,
    handler: &mut H,
    ev: Event,
    on_auth: &(dyn Fn() + Sync),
) -> Result<(), Error> {
    let sh = conn.shared();
    match ev {
        Event::AuthRequest { user, request } => match request {
            AuthRequest::Password {
                password,
                new_password: None,
            } => {
                let d = handler.auth_password(&user, &password).await;
                ssh_blocking::apply_auth(sh, &user, &d)
            }
            AuthRequest::Password {
                password,
                new_password: Some(new),
            } => {
                let d = match handler.auth_change_password(&user, &password, &new).await {
                    // Asking again for a change would loop.
                    Auth::ChangePassword(_) => Auth::Reject,
                    d => d,
                };
                ssh_blocking::apply_auth(sh, &user, &d)
            }
            AuthRequest::PublicKey {
                key,
                verified: false,
                ..
            } => {
                let d = if handler.auth_publickey_offered(&user, &key).await {
                    Auth::Accept
                } else {
                    Auth::Reject
                };
                ssh_blocking::apply_auth(sh, &user, &d)
            }
            AuthRequest::PublicKey {
                key,
                verified: true,
                ..
            } => {
                let d = match handler.auth_publickey(&user, &key).await {
                    Auth::ChangePassword(_) => Auth::Reject,
                    d => d,
                };
                ssh_blocking::apply_auth(sh, &user, &d)
            }
            AuthRequest::KeyboardInteractive { submethods } => {
                let d = handler.auth_keyboard_interactive(&user, &submethods).await;
                ssh_blocking::kbd(sh, d)
            }
            AuthRequest::KeyboardInteractiveResponse { responses } => {
                let d = handler
                    .auth_keyboard_interactive_response(&user, &responses)
                    .await;
                ssh_blocking::kbd(sh, d)
            }
            _ => ssh_blocking::apply_auth(sh, &user, &Auth::Reject),
        },
        Event::Authenticated { user } => {
            tracing::debug!(user = %user, "authenticated");
            on_auth();
            handler.authenticated(&user).await;
            Ok(())
        }
        Event::ChannelOpenRequest {
            channel,
            kind,
            data,
        } => match handler.channel_open(&kind, &data).await {
            Ok(()) => match ssh_blocking::accept_channel(sh, channel) {
                Ok(()) => {
                    handler
                        .channel_opened(Channel::new(conn.clone(), channel), &kind)
                        .await;
                    Ok(())
                }
                // Over MaxSessions: the core refused it itself.
                Err(e) if e.kind() == ErrorKind::Limit => Ok(()),
                Err(e) => Err(e),
            },
            Err(f) => sh.with(|s| s.conn.reject_channel(channel, f.reason, &f.description)),
        },
        Event::ChannelRequest {
            channel,
            request,
            want_reply,
        } => {
            let ok = handler.channel_request(channel, request).await;
            if want_reply {
                ssh_blocking::reply_request(sh, channel, ok);
            }
            Ok(())
        }
        Event::ChannelClosed { channel } => {
            handler.channel_closed(channel).await;
            Ok(())
        }
        Event::GlobalRequest {
            name,
            want_reply,
            data,
        } => {
            let r = handler.global_request(&name, &data).await;
            if want_reply {
                sh.with(|s| {
                    s.conn
                        .global_request_reply(r.is_some(), r.as_deref().unwrap_or(&[]))
                })
            } else {
                Ok(())
            }
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
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }
}

/// A listening server: one task per connection.
pub struct Server {
    listener: TcpListener,
    config: Arc<Config>,
    max_startups: usize,
    stop: Arc<AtomicBool>,
    notify: Arc<Notify>,
}

impl Server {
    /// OpenSSH's `MaxStartups` start value.
    pub const DEFAULT_MAX_STARTUPS: usize = 10;

    pub async fn bind(
        addr: impl tokio::net::ToSocketAddrs,
        config: Arc<Config>,
    ) -> io::Result<Server> {
        Self::from_listener(TcpListener::bind(addr).await?, config)
    }

    pub fn from_listener(listener: TcpListener, config: Arc<Config>) -> io::Result<Server> {
        if config.transport.host_keys.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a server needs at least one host key",
            ));
        }
        Ok(Server {
            listener,
            config,
            max_startups: Self::DEFAULT_MAX_STARTUPS,
            stop: Arc::new(AtomicBool::new(false)),
            notify: Arc::new(Notify::new()),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Connections that may be unauthenticated at once; one more is
    /// closed right after accept (sshd's `MaxStartups`).
    pub fn set_max_startups(&mut self, n: usize) {
        self.max_startups = n.max(1);
    }

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
        let unauthenticated = Arc::new(AtomicUsize::new(0));
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
            if unauthenticated.load(Ordering::SeqCst) >= self.max_startups {
                tracing::info!(
                    peer = %peer,
                    "refused: {} unauthenticated connections already (MaxStartups)",
                    self.max_startups
                );
                drop(stream);
                continue;
            }
            let (conn, handle) = match setup(stream, self.config.clone()) {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(peer = %peer, "cannot start connection: {e}");
                    continue;
                }
            };
            unauthenticated.fetch_add(1, Ordering::SeqCst);
            let guard = Arc::new(UnauthGuard {
                counter: unauthenticated.clone(),
                authed: AtomicBool::new(false),
            });
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

/// Counts a connection as unauthenticated until it authenticates or ends.
struct UnauthGuard {
    counter: Arc<AtomicUsize>,
    authed: AtomicBool,
}

impl UnauthGuard {
    fn authenticated(&self) {
        if !self.authed.swap(true, Ordering::SeqCst) {
            self.counter.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Drop for UnauthGuard {
    fn drop(&mut self) {
        self.authenticated();
    }
}
