//! Forwarding listeners: local forwarding (ssh's `-L`, `-D`), a listener
//! whose every connection becomes a `direct-tcpip` (or
//! `direct-streamlocal`) channel, and a server's side of remote forwarding
//! (ssh's `-R`), whose every connection becomes a `forwarded-tcpip` (or
//! `forwarded-streamlocal`) channel to the client. The bytes are copied
//! both ways by two threads per connection. Each connection waits only on
//! its own channel and socket, so a slow one never stalls the others or
//! the session.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use ssh_proto::forward::{SocksHandshake, SocksStep, SocksTarget};
use ssh_proto::{ChannelKind, Error, ErrorKind};

use crate::channel::Channel;
use crate::client::Client;
use crate::driver::Handle;

/// Where a local forward sends its connections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForwardTarget {
    /// `host`:`port`, connected to by the server (`direct-tcpip`).
    Tcp {
        /// Host name or address, resolved by the server.
        host: String,
        /// Port.
        port: u16,
    },
    /// A Unix socket on the server (`direct-streamlocal@openssh.com`).
    Unix {
        /// The socket path on the server.
        path: String,
    },
    /// Wherever each connection asks, in a SOCKS4, SOCKS4a or SOCKS5
    /// handshake (ssh's `-D`; no authentication, CONNECT only).
    Socks,
}

/// What each accepted connection becomes.
#[derive(Clone)]
enum Route {
    /// A channel the client opens (`-L`, `-D`).
    Local(ForwardTarget),
    /// `forwarded-tcpip` to the client, naming the forward's address and port.
    RemoteTcp { address: String, port: u16 },
    /// `forwarded-streamlocal@openssh.com` to the client.
    RemoteUnix { path: String },
}

/// Opens channels from a server to its client: `forwarded-tcpip` for a
/// remote forward the handler accepted (and, for the agent and X11,
/// their channels). Cheap to clone; `Send + Sync`. A handler gets one with
/// each forward request ([`Handler::tcpip_forward`](crate::Handler::tcpip_forward))
/// and from [`ServerHandle::opener`](crate::ServerHandle::opener).
///
/// A handler that allows `-L` and `-R` to anywhere:
///
/// ```no_run
/// use ssh_proto::{ChannelKind, ChannelOpenFailure};
/// use ssh_std::{Channel, ChannelOpener, Handler, LocalForward};
///
/// struct Tunnels {
///     forwards: Vec<LocalForward>,
///     dest: Option<std::net::TcpStream>,
/// }
///
/// impl Handler for Tunnels {
///     fn channel_open_direct_tcpip(
///         &mut self,
///         host: &str,
///         port: u32,
///         _originator: &str,
///         _originator_port: u32,
///     ) -> Result<(), ChannelOpenFailure> {
///         let s = std::net::TcpStream::connect((host, port as u16))
///             .map_err(|e| ChannelOpenFailure::connect_failed(e.to_string()))?;
///         self.dest = Some(s);
///         Ok(())
///     }
///     fn channel_opened(&mut self, ch: Channel, _kind: &ChannelKind) {
///         if let Some(s) = self.dest.take() {
///             std::thread::spawn(move || ssh_std::splice_tcp(s, ch));
///         }
///     }
///     fn tcpip_forward(&mut self, address: &str, port: u32, opener: &ChannelOpener) -> Option<u32> {
///         let l = std::net::TcpListener::bind(("127.0.0.1", port as u16)).ok()?;
///         let bound = l.local_addr().ok()?.port();
///         self.forwards.push(opener.forward_remote(l, address, bound).ok()?);
///         Some(bound.into())
///     }
/// }
/// ```
#[derive(Clone)]
pub struct ChannelOpener {
    conn: Arc<Handle>,
}

impl std::fmt::Debug for ChannelOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelOpener").finish_non_exhaustive()
    }
}

impl ChannelOpener {
    /// An opener on the connection `conn` (for adapters).
    pub fn new(conn: Arc<Handle>) -> ChannelOpener {
        ChannelOpener { conn }
    }

    /// Opens a channel of `kind` to the client; blocks until the client
    /// accepts or refuses it (an [`ErrorKind::ChannelOpen`] error with its
    /// reason). A server opens `forwarded-tcpip`,
    /// `forwarded-streamlocal@openssh.com`, `x11` and
    /// `auth-agent@openssh.com` channels.
    pub fn open_channel(&self, kind: &ChannelKind) -> Result<Channel, Error> {
        Client::open_on(&self.conn, kind)
    }

    /// A `forwarded-tcpip` channel: someone connected to `address`:`port`
    /// (the forward's address as the client asked for it, and the bound
    /// port) from `originator`.
    pub fn forwarded_tcpip(
        &self,
        address: &str,
        port: u16,
        originator: (&str, u16),
    ) -> Result<Channel, Error> {
        self.open_channel(&ChannelKind::ForwardedTcpip {
            address: address.into(),
            port: port.into(),
            originator: originator.0.into(),
            originator_port: originator.1.into(),
        })
    }

    /// A `forwarded-streamlocal@openssh.com` channel: someone connected
    /// to the forwarded socket `path`.
    pub fn forwarded_streamlocal(&self, path: &str) -> Result<Channel, Error> {
        self.open_channel(&ChannelKind::ForwardedStreamlocal { path: path.into() })
    }

    /// Serves a remote forward the handler accepted: each connection to
    /// `listener` becomes a `forwarded-tcpip` channel to the client naming
    /// `address`:`port` (as the client asked, with the bound port), the
    /// bytes carried both ways. Runs until the returned forward is stopped
    /// or dropped; a connection the client refuses is closed.
    pub fn forward_remote(
        &self,
        listener: TcpListener,
        address: &str,
        port: u16,
    ) -> Result<LocalForward, Error> {
        let addr = listener.local_addr().ok();
        let route = Route::RemoteTcp {
            address: address.into(),
            port,
        };
        start(
            self.conn.clone(),
            Listener::Tcp(listener),
            addr,
            None,
            route,
        )
    }

    /// [`forward_remote`](Self::forward_remote) for a Unix socket
    /// listener at `path` (`streamlocal-forward@openssh.com`); the socket
    /// file is removed when the forward stops.
    pub fn forward_remote_unix(
        &self,
        listener: UnixListener,
        path: &str,
    ) -> Result<LocalForward, Error> {
        let route = Route::RemoteUnix { path: path.into() };
        start(
            self.conn.clone(),
            Listener::Unix(listener),
            None,
            Some(PathBuf::from(path)),
            route,
        )
    }
}

/// What a local forward listens on.
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// A running local forward: connections to [`LocalForward::local_addr`]
/// (or its socket path) are carried to the target through the SSH
/// connection until [`LocalForward::stop`] or drop. Connections already
/// carried go on until either end closes them.
pub struct LocalForward {
    stop: Arc<AtomicBool>,
    addr: Option<SocketAddr>,
    path: Option<PathBuf>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for LocalForward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalForward")
            .field("addr", &self.addr)
            .field("path", &self.path)
            .finish()
    }
}

impl LocalForward {
    /// The TCP address it listens on (None for a Unix socket).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.addr
    }

    /// The Unix socket it listens on (None for TCP).
    pub fn socket_path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Stops accepting and waits for the listener to close; the socket
    /// file of a Unix listener is removed.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the blocked accept with a connection of our own. When that
        // cannot reach it (the address or socket file went away), the
        // thread is left to end at its next accept instead of waited for.
        let mut woke = false;
        if let Some(mut a) = self.addr {
            if a.ip().is_unspecified() {
                a.set_ip(if a.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            woke = TcpStream::connect_timeout(&a, std::time::Duration::from_secs(1)).is_ok();
        }
        if let Some(p) = &self.path {
            woke = UnixStream::connect(p).is_ok();
        }
        if let Some(t) = self.thread.take() {
            if woke {
                let _ = t.join();
            }
        }
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Drop for LocalForward {
    fn drop(&mut self) {
        self.halt();
    }
}

impl Client {
    /// Listens on `bind` (ssh's `-L [bind:]port:host:hostport`, or `-D
    /// [bind:]port` with [`ForwardTarget::Socks`]) and carries each
    /// connection to `target` through the server. Fails when
    /// the address cannot be bound; a connection the server refuses to
    /// open is closed (the forward goes on).
    pub fn forward_local(
        &self,
        bind: impl ToSocketAddrs,
        target: ForwardTarget,
    ) -> Result<LocalForward, Error> {
        let l = TcpListener::bind(bind)
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot listen: {e}")))?;
        let addr = l.local_addr().ok();
        self.start_local(Listener::Tcp(l), addr, None, target)
    }

    /// Listens on the Unix socket `path` (ssh's `-L /path:host:hostport`)
    /// and carries each connection to `target` through the server.
    pub fn forward_local_unix(
        &self,
        path: impl AsRef<Path>,
        target: ForwardTarget,
    ) -> Result<LocalForward, Error> {
        let path = path.as_ref().to_path_buf();
        let l = UnixListener::bind(&path).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot listen on {}: {e}", path.display()),
            )
        })?;
        self.start_local(Listener::Unix(l), None, Some(path), target)
    }

    fn start_local(
        &self,
        l: Listener,
        addr: Option<SocketAddr>,
        path: Option<PathBuf>,
        target: ForwardTarget,
    ) -> Result<LocalForward, Error> {
        start(self.handle().clone(), l, addr, path, Route::Local(target))
    }
}

fn start(
    conn: Arc<Handle>,
    l: Listener,
    addr: Option<SocketAddr>,
    path: Option<PathBuf>,
    route: Route,
) -> Result<LocalForward, Error> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("ssh-forward".into())
        .spawn(move || accept_loop(l, conn, route, flag))
        .map_err(|e| Error::new(ErrorKind::Io, format!("spawn a forward thread: {e}")))?;
    Ok(LocalForward {
        stop,
        addr,
        path,
        thread: Some(thread),
    })
}

fn accept_loop(l: Listener, conn: Arc<Handle>, route: Route, stop: Arc<AtomicBool>) {
    loop {
        let (sock, origin): (Box<dyn Stream>, (String, u16)) = match &l {
            Listener::Tcp(l) => match l.accept() {
                Ok((s, peer)) => {
                    let _ = s.set_nodelay(true);
                    (Box::new(s), (peer.ip().to_string(), peer.port()))
                }
                Err(_) if !stop.load(Ordering::SeqCst) => {
                    // Out of descriptors, say: try again shortly.
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
                Err(_) => return,
            },
            Listener::Unix(l) => match l.accept() {
                Ok((s, _)) => (Box::new(s), ("127.0.0.1".into(), 0)),
                Err(_) if !stop.load(Ordering::SeqCst) => {
                    // Out of descriptors, say: try again shortly.
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                }
                Err(_) => return,
            },
        };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let conn = conn.clone();
        let route = route.clone();
        // Opening waits for the server (and SOCKS for the client): on a
        // thread of its own, so the next connection is accepted meanwhile.
        let _ = std::thread::Builder::new()
            .name("ssh-forward-conn".into())
            .spawn(move || {
                let mut sock = sock;
                let target = match route {
                    Route::Local(t) => t,
                    Route::RemoteTcp { address, port } => {
                        let kind = ChannelKind::ForwardedTcpip {
                            address,
                            port: port.into(),
                            originator: origin.0,
                            originator_port: origin.1.into(),
                        };
                        return carry(sock, &conn, &kind);
                    }
                    Route::RemoteUnix { path } => {
                        let kind = ChannelKind::ForwardedStreamlocal { path };
                        return carry(sock, &conn, &kind);
                    }
                };
                let (kind, early, socks) = match target {
                    ForwardTarget::Tcp { host, port } => (
                        ChannelKind::direct_tcpip(host, port, origin.0, origin.1),
                        Vec::new(),
                        None,
                    ),
                    ForwardTarget::Unix { path } => {
                        (ChannelKind::DirectStreamlocal { path }, Vec::new(), None)
                    }
                    ForwardTarget::Socks => match socks_handshake(&mut *sock) {
                        Some((t, early)) => (
                            ChannelKind::direct_tcpip(t.host.clone(), t.port, origin.0, origin.1),
                            early,
                            Some(t),
                        ),
                        None => return,
                    },
                };
                let ch = Client::open_on(&conn, &kind);
                if let Some(t) = &socks {
                    let _ = sock.write_all(&t.reply(ch.is_ok()));
                }
                let Ok(ch) = ch else {
                    tracing::debug!(
                        kind = kind.name(),
                        "forwarded connection refused by the server"
                    );
                    return;
                };
                if !early.is_empty() && (&ch).write_all(&early).is_err() {
                    return;
                }
                splice(sock, ch);
            });
    }
}

/// Opens `kind` for the accepted `sock` and carries it (a refused open
/// closes the socket).
fn carry(sock: Box<dyn Stream>, conn: &Arc<Handle>, kind: &ChannelKind) {
    match Client::open_on(conn, kind) {
        Ok(ch) => splice(sock, ch),
        Err(e) => tracing::debug!(kind = kind.name(), error = %e, "forwarded connection refused"),
    }
}

/// Reads a SOCKS request from `sock` (answering SOCKS5's method choice):
/// the target and any bytes sent after the request, or None when the
/// client gave up or asked for what is not served (answered, logged).
fn socks_handshake(sock: &mut dyn Stream) -> Option<(SocksTarget, Vec<u8>)> {
    let r = socks_steps(sock);
    sock.read_timeout(None);
    r
}

/// How long a SOCKS client may take to send its whole request.
const SOCKS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn socks_steps(sock: &mut dyn Stream) -> Option<(SocksTarget, Vec<u8>)> {
    // A client that never finishes its request does not hold a thread.
    let deadline = std::time::Instant::now() + SOCKS_TIMEOUT;
    let mut h = SocksHandshake::new();
    let mut buf = [0u8; 1024];
    let mut step = SocksStep::NeedMore;
    loop {
        step = match step {
            SocksStep::NeedMore => {
                let left = deadline.checked_duration_since(std::time::Instant::now())?;
                sock.read_timeout(Some(left.max(std::time::Duration::from_millis(1))));
                let n = sock.read(&mut buf).ok().filter(|&n| n > 0)?;
                h.feed(&buf[..n])
            }
            SocksStep::Reply(r) => {
                sock.write_all(&r).ok()?;
                // The request may have come with the greeting.
                h.feed(&[])
            }
            SocksStep::Connect(t) => return Some((t, h.take_rest())),
            SocksStep::Refuse(r, e) => {
                let _ = sock.write_all(&r);
                tracing::debug!("dynamic forward: {e}");
                return None;
            }
        };
    }
}

/// A socket a forward carries: both directions and a half-close.
pub(crate) trait Stream: Read + Write + Send {
    /// Another handle on the same socket.
    fn try_clone_box(&self) -> io::Result<Box<dyn Stream>>;
    /// Shuts down writing (the peer reads EOF).
    fn shutdown_write(&self);
    /// Bounds each read (None: no bound).
    fn read_timeout(&self, d: Option<std::time::Duration>);
    /// Shuts down both directions (a blocked read returns).
    fn shutdown_both(&self);
}

impl Stream for TcpStream {
    fn try_clone_box(&self) -> io::Result<Box<dyn Stream>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shutdown_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
    fn read_timeout(&self, d: Option<std::time::Duration>) {
        let _ = self.set_read_timeout(d);
    }
    fn shutdown_both(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

impl Stream for UnixStream {
    fn try_clone_box(&self) -> io::Result<Box<dyn Stream>> {
        Ok(Box::new(self.try_clone()?))
    }
    fn shutdown_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
    fn read_timeout(&self, d: Option<std::time::Duration>) {
        let _ = self.set_read_timeout(d);
    }
    fn shutdown_both(&self) {
        let _ = self.shutdown(Shutdown::Both);
    }
}

/// Carries a TCP connection over a channel (a forwarded connection the
/// client accepted, a `direct-tcpip` channel a server opened): copies
/// socket to channel on the calling thread and channel to socket on
/// another, each direction ending with a half-close, and closes the
/// channel when both are done. Blocks until then.
pub fn splice_tcp(sock: TcpStream, ch: Channel) {
    let _ = sock.set_nodelay(true);
    splice(Box::new(sock), ch)
}

/// [`splice_tcp`] for a Unix socket connection.
pub fn splice_unix(sock: UnixStream, ch: Channel) {
    splice(Box::new(sock), ch)
}

/// Copies socket to channel on this thread and channel to socket on
/// another, each direction ending with a half-close; the channel closes
/// when both are done.
fn splice(sock: Box<dyn Stream>, ch: Channel) {
    let Ok(mut back) = sock.try_clone_box() else {
        return;
    };
    let reader = ch.clone();
    let down = std::thread::spawn(move || {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match (&reader).read(&mut buf) {
                // The server's EOF: the local peer reads EOF too.
                Ok(0) => return back.shutdown_write(),
                // The connection is gone: end both directions, so the
                // other thread's read returns and the handles go.
                Err(_) => return back.shutdown_both(),
                Ok(n) => {
                    if back.write_all(&buf[..n]).is_err() {
                        return back.shutdown_both();
                    }
                }
            }
        }
    });
    let mut sock = sock;
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match sock.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if (&ch).write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        }
    }
    let _ = ch.send_eof();
    let _ = down.join();
    let _ = ch.close();
}
