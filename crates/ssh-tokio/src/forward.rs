//! Local forwarding (ssh's `-L`): a listener task whose every connection
//! becomes a `direct-tcpip` (or `direct-streamlocal`) channel, copied both
//! ways by a task of its own. Each connection waits only on its own
//! channel and socket (per-channel wakers), so a slow one never stalls the
//! others or the session.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ssh_proto::forward::{SocksHandshake, SocksStep, SocksTarget};
use ssh_proto::{ChannelKind, Error, ErrorKind};
use ssh_std::ForwardTarget;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, ToSocketAddrs, UnixListener};
use tokio::task::JoinHandle;

use crate::{Channel, Client, Conn};

/// A running local forward: connections to [`LocalForward::local_addr`]
/// (or its socket path) are carried to the target through the SSH
/// connection until [`LocalForward::stop`] or drop. Connections already
/// carried go on until either end closes them.
#[derive(Debug)]
pub struct LocalForward {
    addr: Option<SocketAddr>,
    path: Option<PathBuf>,
    task: JoinHandle<()>,
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

    /// Stops accepting; the socket file of a Unix listener is removed.
    pub fn stop(self) {}
}

impl Drop for LocalForward {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(p) = &self.path {
            let _ = std::fs::remove_file(p);
        }
    }
}

impl Client {
    /// Listens on `bind` (ssh's `-L [bind:]port:host:hostport`, or `-D`
    /// with [`ForwardTarget::Socks`]) and carries each connection to `target`
    /// through the server. Fails when
    /// the address cannot be bound; a connection the server refuses to
    /// open is closed (the forward goes on).
    pub async fn forward_local(
        &self,
        bind: impl ToSocketAddrs,
        target: ForwardTarget,
    ) -> Result<LocalForward, Error> {
        let l = TcpListener::bind(bind)
            .await
            .map_err(|e| Error::new(ErrorKind::Io, format!("cannot listen: {e}")))?;
        let addr = l.local_addr().ok();
        let client = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((s, peer)) = l.accept().await else {
                    // Out of descriptors, say: try again shortly.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let _ = s.set_nodelay(true);
                let origin = (peer.ip().to_string(), peer.port());
                tokio::spawn(carry(client.clone(), s, target.clone(), origin));
            }
        });
        Ok(LocalForward {
            addr,
            path: None,
            task,
        })
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
        let client = self.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l.accept().await else {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                tokio::spawn(carry(
                    client.clone(),
                    s,
                    target.clone(),
                    ("127.0.0.1".into(), 0),
                ));
            }
        });
        Ok(LocalForward {
            addr: None,
            path: Some(path),
            task,
        })
    }
}

/// Opens channels from a server to its client: `forwarded-tcpip` for a
/// remote forward the handler accepted (and, for the agent and X11, their
/// channels). Cheap to clone; `Send + Sync`. A handler gets one with each
/// forward request ([`Handler::tcpip_forward`](crate::Handler::tcpip_forward)).
#[derive(Clone)]
pub struct ChannelOpener {
    conn: Arc<Conn>,
}

impl std::fmt::Debug for ChannelOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelOpener").finish_non_exhaustive()
    }
}

impl ChannelOpener {
    pub(crate) fn new(conn: Arc<Conn>) -> ChannelOpener {
        ChannelOpener { conn }
    }

    /// The same opener for blocking code (threads of the application):
    /// its channels are `ssh_std` channels with `Read + Write`.
    pub fn blocking(&self) -> ssh_std::ChannelOpener {
        ssh_std::ChannelOpener::new(self.conn.handle.clone())
    }

    /// Opens a channel of `kind` to the client; resolves when the client
    /// accepts or refuses it (an [`ErrorKind::ChannelOpen`] error with its
    /// reason).
    pub async fn open_channel(&self, kind: &ChannelKind) -> Result<Channel, Error> {
        crate::open_on(&self.conn, kind).await
    }

    /// A `forwarded-tcpip` channel: someone connected to `address`:`port`
    /// (the forward's address as the client asked for it, and the bound
    /// port) from `originator`.
    pub async fn forwarded_tcpip(
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
        .await
    }

    /// A `forwarded-streamlocal@openssh.com` channel: someone connected to
    /// the forwarded socket `path`.
    pub async fn forwarded_streamlocal(&self, path: &str) -> Result<Channel, Error> {
        self.open_channel(&ChannelKind::ForwardedStreamlocal { path: path.into() })
            .await
    }

    /// Serves a remote forward the handler accepted: each connection to
    /// `listener` becomes a `forwarded-tcpip` channel to the client naming
    /// `address`:`port`, the bytes carried both ways by a task of its own.
    /// Runs until the returned forward is stopped or dropped.
    pub fn forward_remote(&self, listener: TcpListener, address: &str, port: u16) -> LocalForward {
        let addr = listener.local_addr().ok();
        let opener = self.clone();
        let address = address.to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((s, peer)) = listener.accept().await else {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let _ = s.set_nodelay(true);
                let kind = ChannelKind::ForwardedTcpip {
                    address: address.clone(),
                    port: port.into(),
                    originator: peer.ip().to_string(),
                    originator_port: peer.port().into(),
                };
                tokio::spawn(carry_to(opener.clone(), s, kind));
            }
        });
        LocalForward {
            addr,
            path: None,
            task,
        }
    }

    /// [`forward_remote`](Self::forward_remote) for a Unix socket listener
    /// at `path`; the socket file is removed when the forward stops.
    pub fn forward_remote_unix(&self, listener: UnixListener, path: &str) -> LocalForward {
        let opener = self.clone();
        let name = path.to_string();
        let task = tokio::spawn(async move {
            loop {
                let Ok((s, _)) = listener.accept().await else {
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let kind = ChannelKind::ForwardedStreamlocal { path: name.clone() };
                tokio::spawn(carry_to(opener.clone(), s, kind));
            }
        });
        LocalForward {
            addr: None,
            path: Some(PathBuf::from(path)),
            task,
        }
    }
}

/// Opens `kind` for an accepted socket and copies both ways until both
/// directions ended (a refused open closes the socket).
async fn carry_to<S: AsyncRead + AsyncWrite + Unpin>(
    opener: ChannelOpener,
    mut sock: S,
    kind: ChannelKind,
) {
    match opener.open_channel(&kind).await {
        Ok(mut ch) => {
            let _ = tokio::io::copy_bidirectional(&mut sock, &mut ch).await;
            let _ = ch.close();
        }
        Err(e) => tracing::debug!(kind = kind.name(), error = %e, "forwarded connection refused"),
    }
}

/// How long a SOCKS client may take to send its request.
const SOCKS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Reads a SOCKS request from `sock` (answering SOCKS5's method choice):
/// the target and any bytes sent after the request, or None when the
/// client gave up or asked for what is not served (answered, logged).
async fn socks_handshake<S: AsyncRead + AsyncWrite + Unpin>(
    sock: &mut S,
) -> Option<(SocksTarget, Vec<u8>)> {
    let mut h = SocksHandshake::new();
    let mut buf = [0u8; 1024];
    let mut step = SocksStep::NeedMore;
    loop {
        step = match step {
            SocksStep::NeedMore => {
                let n = sock.read(&mut buf).await.ok().filter(|&n| n > 0)?;
                h.feed(&buf[..n])
            }
            SocksStep::Reply(r) => {
                sock.write_all(&r).await.ok()?;
                // The request may have come with the greeting.
                h.feed(&[])
            }
            SocksStep::Connect(t) => return Some((t, h.take_rest())),
            SocksStep::Refuse(r, e) => {
                let _ = sock.write_all(&r).await;
                tracing::debug!("dynamic forward: {e}");
                return None;
            }
        };
    }
}

/// Opens the channel for one accepted connection (after its SOCKS
/// request, for a dynamic forward) and copies both ways until both
/// directions ended.
async fn carry<S: AsyncRead + AsyncWrite + Unpin>(
    client: Client,
    mut sock: S,
    target: ForwardTarget,
    origin: (String, u16),
) {
    let (kind, early, socks) = match target {
        ForwardTarget::Tcp { host, port } => (
            ChannelKind::direct_tcpip(host, port, origin.0, origin.1),
            Vec::new(),
            None,
        ),
        ForwardTarget::Unix { path } => (ChannelKind::DirectStreamlocal { path }, Vec::new(), None),
        ForwardTarget::Socks => {
            // A client that never finishes its request does not hold a task.
            let hs = tokio::time::timeout(SOCKS_TIMEOUT, socks_handshake(&mut sock)).await;
            let Ok(Some((t, early))) = hs else {
                return;
            };
            let k = ChannelKind::direct_tcpip(t.host.clone(), t.port, origin.0, origin.1);
            (k, early, Some(t))
        }
    };
    let ch = client.open_channel(&kind).await;
    if let Some(t) = &socks {
        let _ = sock.write_all(&t.reply(ch.is_ok())).await;
    }
    let Ok(mut ch) = ch else {
        tracing::debug!(
            kind = kind.name(),
            "forwarded connection refused by the server"
        );
        return;
    };
    if !early.is_empty() && ch.write_all(&early).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut sock, &mut ch).await;
    let _ = ch.close();
}
