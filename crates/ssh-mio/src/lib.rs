//! mio adapter for `ssh-proto`: one thread drives many connections.
//!
//! A [`Reactor`] owns the sockets of any number of client and server
//! connections and moves their bytes from a single thread, with no thread
//! or task per connection. It either runs its own `mio::Poll`
//! ([`Reactor::run`], [`Server`], [`Runtime`]) or lives inside a caller's
//! mio loop ([`Reactor::embedded`]): it registers its sockets with the
//! caller's `Registry` under tokens from a base the caller picks, and the
//! caller hands it readiness events ([`Reactor::handle_event`]), asks for
//! its next deadline ([`Reactor::next_timeout`]) and lets it run
//! ([`Reactor::process`]).
//!
//! The objects an application holds are `ssh-std`'s, as in `ssh-blocking`: [`Client`],
//! [`Channel`], [`Sftp`],
//! [`ServerHandle`] and the same server [`Handler`] trait. Only the owner of
//! the socket differs: here the reactor's thread reads, writes and runs
//! timers for every connection, and a handle used from another thread wakes
//! it. Server handler methods do not run on the reactor's thread: a
//! decision may block (a slow password hash, an `authorized_keys` read, a
//! database) without stalling other connections. They run on a small pool
//! of worker threads (made on demand, at most [`MAX_HANDLER_THREADS`]), one
//! method at a time per connection, in the order the client asked; the
//! answers go back to the reactor through its waker.
//!
//! Memory per idle connection is the core's state plus what its buffers
//! hold; reading goes through one scratch buffer shared by all connections.
//!
//! A client on a [`Runtime`] (one reactor thread; more connections on the
//! same runtime share it):
//!
//! ```no_run
//! use ssh_mio::{HostKeyCheck, Runtime};
//! let rt = Runtime::new()?;
//! let client = rt.connect(
//!     "127.0.0.1:22",
//!     HostKeyCheck::KnownHostsFile("/home/me/.ssh/known_hosts".into()),
//! )?;
//! client.auth_password("me", "secret")?;
//! let out = client.exec("uname -a")?;
//! println!("{} (exit {:?})", String::from_utf8_lossy(&out.stdout), out.status);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(unreachable_pub, missing_docs)]

mod conn;
mod handle;
mod listen;
mod reactor;
mod runtime;
mod server;
mod server_conn;
mod wake;
mod workers;

pub use ssh_proto::sftp::Attrs;
pub use ssh_proto::{Auth, ChannelOpenFailure, Config, Error, ErrorKind, ExitSignal, KbdInt};
pub use ssh_std::{
    splice_tcp, splice_unix, Channel, ChannelOpener, ChannelStderr, Client, ExecOutput,
    ForwardTarget, Handler, HostKeyCheck, LocalForward, ServerHandle, Sftp, SftpFile, ToHostPort,
};

pub use handle::ReactorHandle;
pub use reactor::Reactor;
pub use runtime::Runtime;
pub use server::Server;
pub use workers::MAX_HANDLER_THREADS;
