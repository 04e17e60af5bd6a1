//! Local forwarding (ssh's `-L`): a listener task whose every connection
//! becomes a `direct-tcpip` (or `direct-streamlocal`) channel, copied both
//! ways by a task of its own. Each connection waits only on its own
//! channel and socket (per-channel wakers), so a slow one never stalls the
//! others or the session.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ssh_proto::{ChannelKind, Error, ErrorKind};
use ssh_std::ForwardTarget;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, ToSocketAddrs, UnixListener};
use tokio::task::JoinHandle;

use crate::Client;

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
    /// Listens on `bind` (ssh's `-L [bind:]port:host:hostport`) and
    /// carries each connection to `target` through the server. Fails when
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

/// Opens the channel for one accepted connection and copies both ways
/// until both directions ended.
async fn carry<S: AsyncRead + AsyncWrite + Unpin>(
    client: Client,
    mut sock: S,
    target: ForwardTarget,
    origin: (String, u16),
) {
    let kind = match target {
        ForwardTarget::Tcp { host, port } => {
            ChannelKind::direct_tcpip(host, port, origin.0, origin.1)
        }
        ForwardTarget::Unix { path } => ChannelKind::DirectStreamlocal { path },
    };
    let Ok(mut ch) = client.open_channel(&kind).await else {
        tracing::debug!(
            kind = kind.name(),
            "forwarded connection refused by the server"
        );
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut sock, &mut ch).await;
    let _ = ch.close();
}
