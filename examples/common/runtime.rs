//! `--runtime blocking|tokio|mio` for the examples: one set of calls, three
//! adapters underneath.
//!
//! - `blocking`: `ssh_blocking` (a reader thread per connection).
//! - `mio`: `ssh_mio`'s reactor thread moves every connection's bytes; the
//!   handles are `ssh_blocking`'s types.
//! - `tokio`: `ssh_tokio` on a multi-thread runtime; the examples' threads
//!   wait on its futures with `block_on`, so the code above stays the same
//!   and every byte goes through the tokio adapter's tasks.

use std::io::Read;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ssh_blocking::proto::{Negotiated, Prompt, Stream};
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

/// A client connection under any runtime.
#[derive(Clone)]
pub enum AnyClient {
    Std(ssh_blocking::Client),
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
        match self {
            AnyClient::Std(c) => c.banner(),
            AnyClient::Tokio(c) => c.banner(),
        }
    }
    pub fn negotiated(&self) -> Option<Negotiated> {
        match self {
            AnyClient::Std(c) => c.negotiated(),
            AnyClient::Tokio(c) => c.negotiated(),
        }
    }
    pub fn server_version(&self) -> Option<String> {
        match self {
            AnyClient::Std(c) => c.server_version(),
            AnyClient::Tokio(c) => c.server_version(),
        }
    }
    pub fn auth_methods_left(&self) -> Option<Vec<String>> {
        match self {
            AnyClient::Std(c) => c.auth_methods_left(),
            AnyClient::Tokio(c) => c.auth_methods_left(),
        }
    }
    pub fn auth_none(&self, user: &str) -> Result<bool, Error> {
        match self {
            AnyClient::Std(c) => c.auth_none(user),
            AnyClient::Tokio(c) => tokio_rt().block_on(c.auth_none(user)),
        }
    }
    pub fn auth_password(&self, user: &str, pw: &str) -> Result<(), Error> {
        match self {
            AnyClient::Std(c) => c.auth_password(user, pw),
            AnyClient::Tokio(c) => tokio_rt().block_on(c.auth_password(user, pw)),
        }
    }
    pub fn auth_publickey(&self, user: &str, key: Arc<PrivateKey>) -> Result<(), Error> {
        match self {
            AnyClient::Std(c) => c.auth_publickey(user, key),
            AnyClient::Tokio(c) => tokio_rt().block_on(c.auth_publickey(user, key)),
        }
    }
    pub fn auth_keyboard_interactive(
        &self,
        user: &str,
        respond: impl FnMut(&str, &str, &[Prompt]) -> Vec<String> + Send,
    ) -> Result<(), Error> {
        match self {
            AnyClient::Std(c) => c.auth_keyboard_interactive(user, respond),
            AnyClient::Tokio(c) => tokio_rt().block_on(c.auth_keyboard_interactive(user, respond)),
        }
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
        match self {
            AnyClient::Std(c) => c.disconnect(),
            AnyClient::Tokio(c) => c.disconnect(),
        }
    }
}

/// A session channel under any runtime.
pub enum AnyChannel {
    Std(ssh_blocking::Channel),
    Tokio(Arc<ssh_tokio::Channel>),
}

impl AnyChannel {
    pub fn request_pty(&self, term: &str, cols: u32, rows: u32) -> Result<(), Error> {
        match self {
            AnyChannel::Std(c) => c.request_pty(term, cols, rows, &[]),
            AnyChannel::Tokio(c) => tokio_rt().block_on(c.request_pty(term, cols, rows, &[])),
        }
    }
    pub fn shell(&self) -> Result<(), Error> {
        match self {
            AnyChannel::Std(c) => c.shell(),
            AnyChannel::Tokio(c) => tokio_rt().block_on(c.shell()),
        }
    }
    pub fn exec(&self, cmd: &str) -> Result<(), Error> {
        match self {
            AnyChannel::Std(c) => c.exec(cmd),
            AnyChannel::Tokio(c) => tokio_rt().block_on(c.exec(cmd)),
        }
    }
    pub fn subsystem(&self, name: &str) -> Result<(), Error> {
        match self {
            AnyChannel::Std(c) => c.subsystem(name),
            AnyChannel::Tokio(c) => tokio_rt().block_on(c.subsystem(name)),
        }
    }
    pub fn window_change(&self, cols: u32, rows: u32) -> Result<(), Error> {
        match self {
            AnyChannel::Std(c) => c.window_change(cols, rows),
            AnyChannel::Tokio(c) => c.window_change(cols, rows),
        }
    }
    pub fn send_eof(&self) -> Result<(), Error> {
        match self {
            AnyChannel::Std(c) => c.send_eof(),
            AnyChannel::Tokio(c) => c.send_eof(),
        }
    }
    pub fn write_data(&self, stream: Stream, buf: &[u8]) -> Result<usize, Error> {
        match self {
            AnyChannel::Std(c) => c.write_data(stream, buf),
            AnyChannel::Tokio(c) => tokio_rt().block_on(c.write_data(stream, buf)),
        }
    }
    pub fn read_stream(&self, stream: Stream, buf: &mut [u8]) -> Result<usize, Error> {
        match self {
            AnyChannel::Std(c) => c.read_stream(stream, buf),
            AnyChannel::Tokio(c) => tokio_rt().block_on(c.read_stream(stream, buf)),
        }
    }
    pub fn exit_status(&self) -> Result<Option<u32>, Error> {
        match self {
            AnyChannel::Std(c) => c.exit_status(),
            AnyChannel::Tokio(c) => tokio_rt().block_on(c.exit_status()),
        }
    }
    pub fn exit_signal(&self) -> Option<ExitSignal> {
        match self {
            AnyChannel::Std(c) => c.exit_signal(),
            AnyChannel::Tokio(c) => c.exit_signal(),
        }
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
    Std(ssh_blocking::Sftp),
    Tokio(ssh_tokio::Sftp),
}

macro_rules! sftp_call {
    ($self:ident, $m:ident ( $($a:expr),* )) => {
        match $self {
            AnySftp::Std(s) => s.$m($($a),*),
            AnySftp::Tokio(s) => tokio_rt().block_on(s.$m($($a),*)),
        }
    };
}

impl AnySftp {
    pub fn pipeline(&self) -> ssh_blocking::sftp::Pipeline {
        match self {
            AnySftp::Std(s) => s.pipeline(),
            AnySftp::Tokio(s) => s.pipeline(),
        }
    }
    pub fn set_pipeline(&self, chunk: u32, requests: usize) {
        match self {
            AnySftp::Std(s) => s.set_pipeline(chunk, requests),
            AnySftp::Tokio(s) => s.set_pipeline(chunk, requests),
        }
    }
    pub fn chdir(&self, path: Option<&str>) -> Result<(), Error> {
        sftp_call!(self, chdir(path))
    }
    pub fn getcwd(&self) -> Result<String, Error> {
        sftp_call!(self, getcwd())
    }
    pub fn stat(&self, path: &str) -> Result<ssh_blocking::proto::sftp::Attrs, Error> {
        sftp_call!(self, stat(path))
    }
    pub fn chmod(&self, path: &str, mode: u32) -> Result<(), Error> {
        sftp_call!(self, chmod(path, mode))
    }
    pub fn chown(&self, path: &str, uid: u32, gid: u32) -> Result<(), Error> {
        sftp_call!(self, chown(path, uid, gid))
    }
    pub fn hardlink(&self, old: &str, new: &str) -> Result<(), Error> {
        sftp_call!(self, hardlink(old, new))
    }
    pub fn symlink(&self, target: &str, link: &str) -> Result<(), Error> {
        sftp_call!(self, symlink(target, link))
    }
    pub fn mkdir(&self, path: &str, mode: u32) -> Result<(), Error> {
        sftp_call!(self, mkdir(path, mode))
    }
    pub fn rmdir(&self, path: &str) -> Result<(), Error> {
        sftp_call!(self, rmdir(path))
    }
    pub fn remove(&self, path: &str) -> Result<(), Error> {
        sftp_call!(self, remove(path))
    }
    pub fn rename(&self, old: &str, new: &str) -> Result<(), Error> {
        sftp_call!(self, rename(old, new))
    }
    pub fn read_dir(&self, path: &str) -> Result<Vec<ssh_blocking::DirEntry>, Error> {
        sftp_call!(self, read_dir(path))
    }
    pub fn statvfs(&self, path: &str) -> Result<ssh_blocking::proto::sftp::StatVfs, Error> {
        sftp_call!(self, statvfs(path))
    }
    pub fn get(
        &self,
        remote: &str,
        local: &std::path::Path,
        progress: Option<&mut (dyn FnMut(u64, u64) + Send)>,
    ) -> Result<u64, Error> {
        match self {
            AnySftp::Std(s) => match progress {
                Some(p) => s.get(remote, local, Some(p)),
                None => s.get(remote, local, None),
            },
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
            AnySftp::Std(s) => match progress {
                Some(p) => s.put(local, remote, Some(p)),
                None => s.put(local, remote, None),
            },
            AnySftp::Tokio(s) => tokio_rt().block_on(s.put(local, remote, progress)),
        }
    }
}
