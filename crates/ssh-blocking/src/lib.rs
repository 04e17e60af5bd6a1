//! Blocking adapter for `ssh-proto`: std::net sockets and threads.
//!
//! What a script wants, in the spirit of paramiko's `SSHClient`:
//!
//! ```no_run
//! use ssh_blocking::{Client, HostKeyCheck};
//! let client = Client::connect("127.0.0.1:22", HostKeyCheck::KnownHostsFile("/home/me/.ssh/known_hosts".into()))?;
//! client.auth_password("me", "secret")?;
//! let out = client.exec("uname -a")?;
//! println!("{} (exit {:?})", String::from_utf8_lossy(&out.stdout), out.status);
//! # Ok::<(), ssh_blocking::Error>(())
//! ```
//!
//! One reader thread per connection moves bytes from the socket into the
//! core; any thread that calls a method moves the core's output to the
//! socket. The [`Client`] handle is `Send + Sync` and cheap to clone: several
//! threads may run channels on one connection at once. A [`Channel`] is
//! `std::io::Read + Write` (stdout), with [`Channel::stderr`] for stderr.
//!
//! The handle types are those of `ssh-std` (which `ssh-mio` drives from an
//! event loop instead of threads); this crate adds the [`Server`] that
//! serves each connection on a thread of its own.
#![warn(unreachable_pub, missing_docs)]

mod server;

pub use server::{serve_connection, Server, ShutdownHandle};
pub use ssh_proto::sftp::Attrs;
pub use ssh_proto::{
    self as proto, Auth, ChannelOpenFailure, Config, Error, ErrorKind, ExitSignal, KbdInt,
    PrivateKey, PublicKey,
};
pub use ssh_std::{
    load_private_key, splice_tcp, splice_unix, Channel, ChannelOpener, ChannelStderr, Client,
    ConnectionInfo, DirEntry, ExecOutput, ForwardTarget, Handler, HostKeyCheck, LocalForward,
    OpenOptions, ServerHandle, Sftp, SftpFile, SplitStream, ToHostPort,
};

/// The SFTP client: [`Sftp`], its files and options.
pub mod sftp {
    pub use ssh_std::{DirEntry, OpenOptions, Pipeline, Sftp, SftpFile as File};
}
