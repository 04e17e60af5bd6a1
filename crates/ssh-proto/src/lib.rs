//! `ssh-proto`: a sans-IO SSH-2 protocol core.
//!
//! A [`Connection`] is a pure state machine: bytes and commands go in, bytes
//! and events come out. It never touches a socket, a thread, a clock or an
//! async runtime; adapters (`ssh-blocking`, …) move bytes between a socket and
//! the core:
//!
//! A client and a server, pumping bytes to each other in memory: the
//! client authenticates with a password and runs a command.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Instant;
//! use ssh_proto::{AuthRequest, Config, Connection, Event, PrivateKey};
//!
//! let now = Instant::now();
//! let mut server_config = Config::default();
//! let host_key = PrivateKey::generate_ed25519(&mut *ssh_proto::os_rng());
//! server_config.transport.host_keys.push(Arc::new(host_key));
//! server_config.auth_methods = vec!["password".into()];
//! let mut server = Connection::server(Arc::new(server_config), ssh_proto::os_rng(), now)?;
//! let mut client = Connection::client(Arc::new(Config::default()), ssh_proto::os_rng(), now)?;
//! // Auth may be queued at once: it is sent after the first key exchange.
//! client.auth_password("me", "secret")?;
//!
//! let mut exit = None;
//! while exit.is_none() {
//!     // Bytes out of one side go into the other. `recv` may take fewer
//!     // bytes than offered (the core holds input until the application
//!     // reads channel data): a real loop keeps the rest, or uses
//!     // `read_from`/`write_to`, which keep it inside.
//!     if let Some(out) = client.transmit().map(<[u8]>::to_vec) {
//!         let n = server.recv(now, &out)?;
//!         client.advance_transmit(n);
//!     }
//!     if let Some(out) = server.transmit().map(<[u8]>::to_vec) {
//!         let n = client.recv(now, &out)?;
//!         server.advance_transmit(n);
//!     }
//!     while let Some(event) = client.poll_event() {
//!         match event {
//!             Event::HostKey(_key) => client.accept_host_key()?, // check it first!
//!             Event::AuthSuccess => {
//!                 let ch = client.open_session()?;
//!                 client.exec(ch, "true")?;
//!             }
//!             Event::ExitStatus { status, .. } => exit = Some(status),
//!             _ => {}
//!         }
//!     }
//!     while let Some(event) = server.poll_event() {
//!         match event {
//!             Event::AuthRequest { user, request: AuthRequest::Password { password, .. } } => {
//!                 if user == "me" && password == "secret" { server.auth_accept()? } else { server.auth_reject()? }
//!             }
//!             Event::ChannelOpenRequest { channel, .. } => server.accept_channel(channel)?,
//!             Event::ChannelRequest { channel, want_reply, .. } => {
//!                 if want_reply { server.channel_request_reply(channel, true)?; }
//!                 server.send_exit_status(channel, 0)?;
//!                 server.close_channel(channel)?;
//!             }
//!             _ => {}
//!         }
//!     }
//! }
//! assert_eq!(exit, Some(0));
//! # Ok::<(), ssh_proto::Error>(())
//! ```
//!
//! Over a socket, [`Connection::read_from`] and [`Connection::write_to`]
//! do the moving; [`Connection::poll_timeout`] says when to call
//! [`Connection::handle_timeout`]. Our own
//! [`disconnect`](Connection::disconnect) ends, like the peer's, with an
//! [`Event::Disconnected`]. [`Event::KexDone`] fires after the first key
//! exchange and again after every rekey. The [`Session`] layer keeps the
//! per-channel facts every adapter needs.
//!
//! Public modules: [`keys`] (key files, `authorized_keys`, `known_hosts`),
//! [`session`] (the per-connection facts adapters share), [`sftp`] (SFTP v3
//! client and server machines over any byte stream), [`algorithms`]
//! (supported algorithm names), [`disconnect`] (reason codes), [`pty`]
//! (terminal modes) and [`config`] (ssh_config(5) files evaluated for a
//! host, as `ssh -G` does). Everything else is re-exported here at the root.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![warn(unreachable_pub)]

mod auth;
pub mod config;
mod connection;
pub mod disconnect;
mod error;
mod event;
pub mod keys;
pub mod pty;
pub mod session;
pub mod sftp;
mod transport;
mod wire;

/// Algorithm names this crate implements, per category, for
/// [`Algorithms`] and [`Algorithms::apply`].
pub mod algorithms {
    pub use crate::transport::algorithms::{
        Algorithms, Negotiated, CIPHER_ALL, CIPHER_LEGACY, COMPRESSION_ALL, HOST_KEY_ALL,
        HOST_KEY_LEGACY, KEX_ALL, KEX_LEGACY, MAC_ALL, PUBKEY_ALGORITHMS_ALL,
        PUBKEY_ALGORITHMS_LEGACY,
    };
}

/// Port forwarding and the other channel kinds: typed `CHANNEL_OPEN`s
/// ([`ChannelKind`]) and global requests ([`GlobalRequest`]), their wire
/// names, and the limit on forwards one connection holds. A client's
/// [`Connection`] accepts a forwarded channel only for a forward it asked
/// for ([`Connection::forward_tcpip`], [`Connection::forward_streamlocal`]),
/// and `x11` / `auth-agent@openssh.com` channels only after requesting
/// them on a session, as OpenSSH's `ssh` does. [`forward::SocksHandshake`]
/// is the SOCKS4/4a/5 server side of dynamic forwarding (ssh's `-D`).
pub mod forward {
    pub use crate::connection::forward::{kind, request, ChannelKind, GlobalRequest, MAX_FORWARDS};
    pub use crate::connection::socks::{SocksHandshake, SocksStep, SocksTarget};
}

/// Test and fuzz support; **not part of the API** (no semver promise).
///
/// The one door through which the crate's tests and the fuzz targets reach
/// the inside (as rustls' `internal`): the transport, limits, and the
/// typed message codec (`Message` with `decode`/`encode`), an independent
/// second implementation of the wire format that checks the machines'
/// hand-written encoders and parsers byte for byte and builds hostile
/// inputs. The codec exists only in test builds, under `--cfg fuzzing`,
/// and with the `internal` feature; see the top of `wire/mod.rs` for why
/// the machines do not use it.
#[doc(hidden)]
pub mod internal {
    pub use crate::auth::publickey_signed_data;
    pub use crate::connection::{
        MAX_PENDING_CHANNEL_REQUESTS, MAX_PENDING_GLOBAL_REQUESTS, MAX_UNHANDLED_REQUESTS,
    };
    pub use crate::transport::cipher::cipher_spec;
    pub use crate::transport::compress::Decompressor;
    pub use crate::transport::kex::gex_choose;
    pub use crate::transport::{Input, SharedConfig, Transport, MAX_PACKET_LEN, MAX_REKEY_PACKETS};
    #[cfg(any(test, fuzzing, feature = "internal"))]
    pub use crate::wire::message::{KexFlavor, KexInit, Message, UserauthFlavor, UserauthMethod};
    pub use crate::wire::{msg, names, Put, Reader};
}

pub use connection::{Config, Connection};
pub use error::{Error, ErrorKind, Result};
pub use event::{
    AuthRequest, ChannelId, ChannelOpenFailureReason, ChannelRequest, Event, Prompt, PtyRequest,
    Stream,
};
pub use forward::{ChannelKind, GlobalRequest};
pub use keys::{AuthorizedKey, AuthorizedKeys, KeyOptions, PrivateKey, PublicKey};
pub use rand_core::CryptoRng;
pub use session::admission::{
    Admission, AdmissionConfig, MaxStartups, NetBlockSize, Refusal, RefusalReason, Startup,
};
pub use session::{
    Auth, AuthAnswer, AuthQuestion, AuthStep, ChannelFacts, ChannelOpenFailure, ExitSignal, KbdInt,
    Session,
};

mod os_rng;
#[cfg(feature = "os-rng")]
pub use os_rng::os_rng;
pub use transport::algorithms::{Algorithms, Negotiated};
pub use transport::{Role, TransportConfig};
