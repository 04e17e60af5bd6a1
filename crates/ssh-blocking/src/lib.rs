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

mod addr;
mod channel;
mod client;
/// The machinery shared by this adapter's handles, public for sibling
/// adapters (`ssh-mio` drives the same handles from an event loop).
#[doc(hidden)]
pub mod driver;
#[cfg(target_os = "linux")]
pub mod jail;
#[cfg(unix)]
pub mod passwd;
mod server;
pub mod sftp;
#[cfg(target_os = "linux")]
pub mod sftp_server;

pub use addr::ToHostPort;
#[doc(hidden)]
pub use channel::pty_request;
pub use channel::{Channel, ChannelStderr};
#[doc(hidden)]
pub use client::{
    auth_event, auth_none_result, auth_step, check_host_key, connect_tcp, AuthStep,
    ConnectAttempts, PromptFn,
};
pub use client::{Client, ExecOutput, ExitSignal, HostKeyCheck, SplitStream};
#[doc(hidden)]
pub use server::{
    accept_channel, answer_auth, apply_auth, connection_result, kbd, open_channel, reply_global,
    reply_request, request_handled, require_host_key, sessions_only, AuthAnswer, Gate,
    LoopConnection, UnauthGuard,
};
pub use server::{
    serve_connection, Auth, ChannelOpenFailure, ConnectionInfo, Handler, KbdInt, Server,
    ServerHandle, ShutdownHandle,
};
pub use sftp::{DirEntry, File as SftpFile, OpenOptions, Sftp};
pub use ssh_proto::{self as proto, Config, Error, ErrorKind, PrivateKey, PublicKey};

/// Reads a private key file (OpenSSH, PEM or PKCS#8), decrypting it with
/// `passphrase` when it is encrypted.
pub fn load_private_key(
    path: &std::path::Path,
    passphrase: Option<&str>,
) -> Result<PrivateKey, Error> {
    let data = std::fs::read(path).map_err(|e| {
        Error::new(
            ErrorKind::Key,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    PrivateKey::from_bytes(&data, passphrase.map(str::as_bytes))
        .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.detail())))
}

/// An RNG from the operating system, for `Connection`s.
pub fn os_rng() -> Box<dyn proto::CryptoRng + Send> {
    use rand_core::SeedableRng;
    Box::new(rand_chacha::ChaCha20Rng::from_rng(&mut OsRng))
}

struct OsRng;
impl rand_core::TryRng for OsRng {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut b = [0u8; 4];
        self.try_fill_bytes(&mut b)?;
        Ok(u32::from_le_bytes(b))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut b = [0u8; 8];
        self.try_fill_bytes(&mut b)?;
        Ok(u64::from_le_bytes(b))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        getrandom::fill(dst).expect("the operating system's random number generator failed");
        Ok(())
    }
}
impl rand_core::TryCryptoRng for OsRng {}
