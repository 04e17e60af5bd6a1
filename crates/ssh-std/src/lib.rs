//! What the `ssh-proto` adapters share that needs the operating system.
//!
//! - **Thread-safe handles** over one connection's
//!   [`Session`](ssh_proto::Session): [`Client`], [`Channel`], [`Sftp`] and
//!   [`SftpFile`], the server's [`Handler`], [`Dispatcher`] and
//!   [`ServerHandle`]. They are `Send + Sync`; any thread may use them. Who
//!   moves the bytes is the adapter's business: a reader thread
//!   ([`driver::reader_loop`], the `ssh-blocking` adapter) or an event loop
//!   ([`driver::Output::Loop`], the `ssh-mio` reactor). The `ssh-tokio`
//!   adapter uses the same [`driver::Shared`] state with task wakers.
//! - **OS helpers**: key files ([`load_private_key`]), known_hosts files
//!   ([`read_known_hosts`]), address resolution ([`ToHostPort`],
//!   [`connect_tcp`]), Unix accounts ([`passwd`]).
//! - **The local filesystem an SFTP server serves**, jailed below a root
//!   directory ([`jail`], [`sftp_server`]); all `unsafe` code of this crate
//!   is in its private `sys` module.
//!
//! ```no_run
//! use ssh_std::{Client, HostKeyCheck};
//! let client = Client::connect("127.0.0.1:22", HostKeyCheck::KnownHostsFile("/home/me/.ssh/known_hosts".into()))?;
//! client.auth_password("me", "secret")?;
//! let out = client.exec("uname -a")?;
//! println!("{}", String::from_utf8_lossy(&out.stdout));
//! # Ok::<(), ssh_proto::Error>(())
//! ```

#![deny(unsafe_code)]
#![warn(unreachable_pub, missing_docs)]

mod addr;
mod channel;
mod client;
pub mod driver;
mod files;
mod forward;
mod io_util;
#[cfg(target_os = "linux")]
pub mod jail;
#[cfg(unix)]
pub mod passwd;
mod server;
mod sftp;
#[cfg(target_os = "linux")]
pub mod sftp_server;
#[allow(unsafe_code)]
mod sys;

pub use addr::{connect_tcp, ConnectAttempts, ToHostPort};
pub use channel::{pty_request, Channel, ChannelStderr};
pub use client::{
    auth_event, check_host_key, Client, ExecOutput, HostKeyCheck, PromptFn, SplitStream,
};
pub use files::{load_private_key, read_known_hosts};
pub use forward::{splice_tcp, splice_unix, ChannelOpener, ForwardTarget, LocalForward};
pub use io_util::read_full;
pub use server::{
    require_host_key, ConnectionInfo, Dispatcher, Gate, Handler, ServerHandle, UnauthGuard,
};
pub use sftp::{File as SftpFile, Sftp};
pub use ssh_proto::session::sftp::{DirEntry, OpenOptions, Pipeline};
