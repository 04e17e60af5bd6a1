//! `--runtime blocking|tokio|mio` for the examples: one set of calls, three
//! adapters underneath.
//!
//! - `blocking`: `ssh_blocking` (a reader thread per connection).
//! - `mio`: `ssh_mio`'s reactor thread moves every connection's bytes.
//!
//! Both hand out the same handles (`ssh_std::Client`, `Channel`, `Sftp`),
//! so one `Std` arm serves both.
//! - `tokio`: `ssh_tokio` on a multi-thread runtime; the examples' threads
//!   wait on its futures with `block_on`, so the code above stays the same
//!   and every byte goes through the tokio adapter's tasks.

use std::io::Read;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ssh_blocking::proto::{ChannelKind, Negotiated, Prompt, Stream};
use ssh_blocking::{Config, Error, ErrorKind, ExitSignal, HostKeyCheck, PrivateKey};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuntimeKind {
    Blocking,
    Tokio,
    Mio,
}

impl RuntimeKind {
    pub fn parse(s: &str) -> Result<RuntimeKind, String> {
        match s {
            "blocking" => Ok(RuntimeKind::Blocking),
            "tokio" => Ok(RuntimeKind::Tokio),
            "mio" => Ok(RuntimeKind::Mio),
            _ => Err(format!(
                "unknown runtime {s:?} (expected blocking, tokio or mio)"
            )),
        }
    }
}

/// The process's tokio runtime (made on first use).
pub fn tokio_rt() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("cannot start the tokio runtime")
    })
}

/// The process's mio reactor thread for client connections.
fn mio_rt() -> Result<&'static ssh_mio::Runtime, Error> {
    static RT: OnceLock<ssh_mio::Runtime> = OnceLock::new();
    if let Some(r) = RT.get() {
        return Ok(r);
    }
    let r = ssh_mio::Runtime::new()
        .map_err(|e| Error::new(ErrorKind::Io, format!("cannot start the mio reactor: {e}")))?;
    Ok(RT.get_or_init(|| r))
}

/// `$call` on the handle `$h` inside `$any` (an enum with `Std` and `Tokio`
/// arms): `wait` runs a tokio call through `block_on`; `now` is for calls
/// that are plain functions under every adapter.
macro_rules! on_handle {
    (wait $any:expr, $Enum:ident, $h:ident => $call:expr) => {
        match $any {
            $Enum::Std($h) => $call,
            $Enum::Tokio($h) => $crate::common::runtime::tokio_rt().block_on($call),
        }
    };
    (now $any:expr, $Enum:ident, $h:ident => $call:expr) => {
        match $any {
            $Enum::Std($h) => $call,
            $Enum::Tokio($h) => $call,
        }
    };
}
// The server example uses it for its channels; other examples do not.
#[allow(unused_imports)]
pub(crate) use on_handle;

/// A client connection under any runtime.
#[derive(Clone)]
pub enum AnyClient {
    Std(ssh_std::Client),
    Tokio(ssh_tokio::Client),
}

impl AnyClient {
    pub fn connect(
        kind: RuntimeKind,
        host: &str,
        port: u16,
        config: Arc<Config>,
        check: HostKeyCheck,
        timeout: Option<Duration>,
    ) -> Result<AnyClient, Error> {
        match kind {
            RuntimeKind::Blocking => {
                ssh_blocking::Client::connect_with((host, port), config, check, timeout)
                    .map(AnyClient::Std)
            }
            RuntimeKind::Mio => mio_rt()?
                .connect_with((host, port), config, check, timeout)
                .map(AnyClient::Std),
            RuntimeKind::Tokio => tokio_rt()
                .block_on(ssh_tokio::Client::connect_with(
                    (host.to_string(), port),
                    config,
                    check,
                    timeout,
                ))
                .map(AnyClient::Tokio),
        }
    }

    pub fn banner(&self) -> Option<String> {
        on_handle!(now self, AnyClient, c => c.banner())
    }
    pub fn negotiated(&self) -> Option<Negotiated> {
        on_handle!(now self, AnyClient, c => c.negotiated())
    }
    pub fn server_version(&self) -> Option<String> {
        on_handle!(now self, AnyClient, c => c.server_version())
    }
    pub fn auth_methods_left(&self) -> Option<Vec<String>> {
        on_handle!(now self, AnyClient, c => c.auth_methods_left())
    }
    pub fn auth_none(&self, user: &str) -> Result<bool, Error> {
        on_handle!(wait self, AnyClient, c => c.auth_none(user))
    }
    pub fn auth_password(&self, user: &str, pw: &str) -> Result<(), Error> {
        on_handle!(wait self, AnyClient, c => c.auth_password(user, pw))
    }
    pub fn auth_publickey(&self, user: &str, key: Arc<PrivateKey>) -> Result<(), Error> {
        on_handle!(wait self, AnyClient, c => c.auth_publickey(user, key))
    }
    pub fn auth_keyboard_interactive(
        &self,
        user: &str,
        respond: impl FnMut(&str, &str, &[Prompt]) -> Vec<String> + Send,
    ) -> Result<(), Error> {
        on_handle!(wait self, AnyClient, c => c.auth_keyboard_interactive(user, respond))
    }
    pub fn channel_session(&self) -> Result<AnyChannel, Error> {
        match self {
            AnyClient::Std(c) => c.channel_session().map(AnyChannel::Std),
            AnyClient::Tokio(c) => tokio_rt()
                .block_on(c.channel_session())
                .map(|ch| AnyChannel::Tokio(Arc::new(ch))),
        }
    }
    pub fn sftp(&self) -> Result<AnySftp, Error> {
        match self {
            AnyClient::Std(c) => c.sftp().map(AnySftp::Std),
            AnyClient::Tokio(c) => tokio_rt().block_on(c.sftp()).map(AnySftp::Tokio),
        }
    }
    pub fn disconnect(&self) {
        on_handle!(now self, AnyClient, c => c.disconnect())
    }

    /// Runs the handshake over a `direct-tcpip` channel of `via` to
    /// `host`:`port` (a ProxyJump hop), on `via`'s adapter: a tokio
    /// connection runs its next hop over a tokio channel; the blocking and
    /// mio ones over a blocking channel (threads).
    pub fn connect_via(
        via: &AnyClient,
        host: &str,
        port: u16,
        config: Arc<Config>,
        check: HostKeyCheck,
        timeout: Option<Duration>,
    ) -> Result<AnyClient, Error> {
        match via {
            AnyClient::Std(c) => {
                let ch = c.direct_tcpip(host, port, ("127.0.0.1", 65535))?;
                ssh_std::Client::handshake((ch.clone(), ch), host, port, config, check)
                    .map(AnyClient::Std)
            }
            AnyClient::Tokio(c) => tokio_rt().block_on(async {
                let ch = c.direct_tcpip(host, port, ("127.0.0.1", 65535)).await?;
                ssh_tokio::Client::handshake(ch, host, port, config, check, timeout)
                    .await
                    .map(AnyClient::Tokio)
            }),
        }
    }

    /// A `direct-tcpip` channel to `host`:`port` for a connection from
    /// `originator`.
    pub fn direct_tcpip(
        &self,
        host: &str,
        port: u16,
        originator: (&str, u16),
    ) -> Result<AnyChannel, Error> {
        match self {
            AnyClient::Std(c) => c.direct_tcpip(host, port, originator).map(AnyChannel::Std),
            AnyClient::Tokio(c) => tokio_rt()
                .block_on(c.direct_tcpip(host, port, originator))
                .map(|ch| AnyChannel::Tokio(Arc::new(ch))),
        }
    }
    /// A `direct-streamlocal@openssh.com` channel to the server's socket `path`.
    pub fn direct_streamlocal(&self, path: &str) -> Result<AnyChannel, Error> {
        match self {
            AnyClient::Std(c) => c.direct_streamlocal(path).map(AnyChannel::Std),
            AnyClient::Tokio(c) => tokio_rt()
                .block_on(c.direct_streamlocal(path))
                .map(|ch| AnyChannel::Tokio(Arc::new(ch))),
        }
    }
    pub fn forward_tcpip(&self, address: &str, port: u16) -> Result<u16, Error> {
        on_handle!(wait self, AnyClient, c => c.forward_tcpip(address, port))
    }
    pub fn forward_streamlocal(&self, path: &str) -> Result<(), Error> {
        on_handle!(wait self, AnyClient, c => c.forward_streamlocal(path))
    }
    /// The next connection the server forwards to us; an error once the
    /// connection is gone.
    pub fn accept_forwarded(&self) -> Result<(AnyChannel, ChannelKind), Error> {
        match self {
            AnyClient::Std(c) => c.accept_forwarded().map(|(ch, k)| (AnyChannel::Std(ch), k)),
            AnyClient::Tokio(c) => tokio_rt()
                .block_on(c.accept_forwarded())
                .map(|(ch, k)| (AnyChannel::Tokio(Arc::new(ch)), k)),
        }
    }
    /// A local listener on `bind` whose connections go to `target`.
    pub fn forward_local(
        &self,
        bind: std::net::SocketAddr,
        target: ssh_std::ForwardTarget,
    ) -> Result<AnyLocalForward, Error> {
        match self {
            AnyClient::Std(c) => c.forward_local(bind, target).map(AnyLocalForward::Std),
            AnyClient::Tokio(c) => tokio_rt()
                .block_on(c.forward_local(bind, target))
                .map(AnyLocalForward::Tokio),
        }
    }
}

/// A running local forward under any runtime (stops on drop).
pub enum AnyLocalForward {
    Std(ssh_std::LocalForward),
    Tokio(ssh_tokio::LocalForward),
}

impl AnyChannel {
    /// Carries `sock` over this channel both ways until both directions
    /// end (each with a half-close), then closes the channel. Blocks.
    pub fn splice_tcp(self, sock: std::net::TcpStream) {
        match self {
            AnyChannel::Std(ch) => ssh_std::splice_tcp(sock, ch),
            AnyChannel::Tokio(ch) => {
                let _ = sock.set_nodelay(true);
                if sock.set_nonblocking(true).is_err() {
                    return;
                }
                tokio_rt().block_on(async move {
                    let Ok(mut s) = tokio::net::TcpStream::from_std(sock) else {
                        return;
                    };
                    let mut ch = (*ch).clone();
                    let _ = tokio::io::copy_bidirectional(&mut s, &mut ch).await;
                    let _ = ch.close();
                })
            }
        }
    }
    /// [`AnyChannel::splice_tcp`] for a Unix socket connection.
    pub fn splice_unix(self, sock: std::os::unix::net::UnixStream) {
        match self {
            AnyChannel::Std(ch) => ssh_std::splice_unix(sock, ch),
            AnyChannel::Tokio(ch) => {
                if sock.set_nonblocking(true).is_err() {
                    return;
                }
                tokio_rt().block_on(async move {
                    let Ok(mut s) = tokio::net::UnixStream::from_std(sock) else {
                        return;
                    };
                    let mut ch = (*ch).clone();
                    let _ = tokio::io::copy_bidirectional(&mut s, &mut ch).await;
                    let _ = ch.close();
                })
            }
        }
    }
    pub fn close(&self) {
        let _ = on_handle!(now self, AnyChannel, c => c.close());
    }
}

/// A session channel under any runtime.
pub enum AnyChannel {
    Std(ssh_std::Channel),
    Tokio(Arc<ssh_tokio::Channel>),
}

impl AnyChannel {
    pub fn request_pty(&self, term: &str, cols: u32, rows: u32) -> Result<(), Error> {
        on_handle!(wait self, AnyChannel, c => c.request_pty(term, cols, rows, &[]))
    }
    pub fn shell(&self) -> Result<(), Error> {
        on_handle!(wait self, AnyChannel, c => c.shell())
    }
    pub fn exec(&self, cmd: &str) -> Result<(), Error> {
        on_handle!(wait self, AnyChannel, c => c.exec(cmd))
    }
    pub fn subsystem(&self, name: &str) -> Result<(), Error> {
        on_handle!(wait self, AnyChannel, c => c.subsystem(name))
    }
    pub fn set_env(&self, name: &str, value: &str) -> Result<(), Error> {
        on_handle!(now self, AnyChannel, c => c.set_env(name, value))
    }
    pub fn window_change(&self, cols: u32, rows: u32) -> Result<(), Error> {
        on_handle!(now self, AnyChannel, c => c.window_change(cols, rows))
    }
    pub fn send_eof(&self) -> Result<(), Error> {
        on_handle!(now self, AnyChannel, c => c.send_eof())
    }
    pub fn write_data(&self, stream: Stream, buf: &[u8]) -> Result<usize, Error> {
        on_handle!(wait self, AnyChannel, c => c.write_data(stream, buf))
    }
    pub fn read_stream(&self, stream: Stream, buf: &mut [u8]) -> Result<usize, Error> {
        on_handle!(wait self, AnyChannel, c => c.read_stream(stream, buf))
    }
    pub fn exit_status(&self) -> Result<Option<u32>, Error> {
        on_handle!(wait self, AnyChannel, c => c.exit_status())
    }
    pub fn exit_signal(&self) -> Option<ExitSignal> {
        on_handle!(now self, AnyChannel, c => c.exit_signal())
    }
}

/// Reads one stream of a shared channel (e.g. stderr from its own thread).
pub struct StreamReader {
    pub ch: Arc<AnyChannel>,
    pub stream: Stream,
}

impl Read for StreamReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.ch
            .read_stream(self.stream, buf)
            .map_err(std::io::Error::other)
    }
}

/// An SFTP session under any runtime.
pub enum AnySftp {
    Std(ssh_std::Sftp),
    Tokio(ssh_tokio::Sftp),
}

impl AnySftp {
    pub fn pipeline(&self) -> ssh_blocking::sftp::Pipeline {
        on_handle!(now self, AnySftp, s => s.pipeline())
    }
    pub fn set_pipeline(&self, chunk: u32, requests: usize) {
        on_handle!(now self, AnySftp, s => s.set_pipeline(chunk, requests))
    }
    pub fn chdir(&self, path: Option<&str>) -> Result<(), Error> {
        on_handle!(wait self, AnySftp, s => s.chdir(path))
    }
    pub fn getcwd(&self) -> Result<String, Error> {
        on_handle!(wait self, AnySftp, s => s.getcwd())
    }
    pub fn stat(&self, path: &str) -> Result<ssh_blocking::proto::sftp::Attrs, Error> {
        on_handle!(wait self, AnySftp, s => s.stat(path))
    }
    pub fn chmod(&self, path: &str, mode: u32) -> Result<(), Error> {
        on_handle!(wait self, AnySftp, s => s.chmod(path, mode))
    }
    pub fn chown(&self, path: &str, uid: u32, gid: u32) -> Result<(), Error> {
        on_handle!(wait self, AnySftp, s => s.chown(path, uid, gid))
    }
    pub fn hardlink(&self, old: &str, new: &str) -> Result<(), Error> {
        on_handle!(wait self, AnySftp, s => s.hardlink(old, new))
    }
    pub fn symlink(&self, target: &str, link: &str) -> Result<(), Error> {
        on_handle!(wait self, AnySftp, s => s.symlink(target, link))
    }
    pub fn mkdir(&self, path: &str, mode: u32) -> Result<(), Error> {
        on_handle!(wait self, AnySftp, s => s.mkdir(path, mode))
    }
    pub fn rmdir(&self, path: &str) -> Result<(), Error> {
        on_handle!(wait self, AnySftp, s => s.rmdir(path))
    }
    pub fn remove(&self, path: &str) -> Result<(), Error> {
        on_handle!(wait self, AnySftp, s => s.remove(path))
    }
    pub fn rename(&self, old: &str, new: &str) -> Result<(), Error> {
        on_handle!(wait self, AnySftp, s => s.rename(old, new))
    }
    pub fn read_dir(&self, path: &str) -> Result<Vec<ssh_blocking::DirEntry>, Error> {
        on_handle!(wait self, AnySftp, s => s.read_dir(path))
    }
    pub fn statvfs(&self, path: &str) -> Result<ssh_blocking::proto::sftp::StatVfs, Error> {
        on_handle!(wait self, AnySftp, s => s.statvfs(path))
    }
    pub fn get(
        &self,
        remote: &str,
        local: &std::path::Path,
        progress: Option<&mut (dyn FnMut(u64, u64) + Send)>,
    ) -> Result<u64, Error> {
        match self {
            AnySftp::Std(s) => s.get(remote, local, progress.map(|p| p as _)),
            AnySftp::Tokio(s) => tokio_rt().block_on(s.get(remote, local, progress)),
        }
    }
    pub fn put(
        &self,
        local: &std::path::Path,
        remote: &str,
        progress: Option<&mut (dyn FnMut(u64, u64) + Send)>,
    ) -> Result<u64, Error> {
        match self {
            AnySftp::Std(s) => s.put(local, remote, progress.map(|p| p as _)),
            AnySftp::Tokio(s) => tokio_rt().block_on(s.put(local, remote, progress)),
        }
    }
}
