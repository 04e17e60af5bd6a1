//! `ssh-proto`: a sans-IO SSH-2 protocol core.
//!
//! A [`Connection`] is a pure state machine: bytes and commands go in, bytes
//! and events come out. It never touches a socket, a thread, a clock or an
//! async runtime; adapters (`ssh-blocking`, …) move bytes between a socket and
//! the core:
//!
//! ```text
//! conn.recv(now, &bytes_from_socket)?;
//! while let Some(out) = conn.transmit() { let n = socket.write(out)?; conn.advance_transmit(n); }
//! while let Some(event) = conn.poll_event() { /* answer decisions, read channel data */ }
//! if let Some(t) = conn.poll_timeout() { /* wake at t */ conn.handle_timeout(now); }
//! ```
//!
//! Layers, bottom to top: [`wire`] (SSH data types), [`transport`] (packets,
//! kex, ciphers), [`keys`], [`auth`], [`connection`] (channels and the
//! `Connection` object that drives the others), [`sftp`] (SFTP v3 client and
//! server machines over any byte stream).
#![forbid(unsafe_code)]

pub mod auth;
pub mod connection;
pub mod error;
pub mod event;
pub mod keys;
pub mod session;
pub mod sftp;
pub mod transport;
pub mod wire;

/// Test and fuzz support; **not part of the API** (no semver promise).
///
/// The one door through which the crate's tests and the fuzz targets reach
/// the typed message codec ([`Message`](internal::Message) with
/// `decode`/`encode`): an independent second implementation of the wire
/// format that checks the machines' hand-written encoders and parsers byte
/// for byte and builds hostile inputs. It exists only in test builds, under
/// `--cfg fuzzing`, and with the `internal` feature; see the top of
/// `wire/mod.rs` for why the machines do not use it.
#[cfg(any(test, fuzzing, feature = "internal"))]
#[doc(hidden)]
pub mod internal {
    pub use crate::wire::message::{KexFlavor, KexInit, Message, UserauthFlavor, UserauthMethod};
}

pub use connection::{Config, Connection};
pub use error::{Error, ErrorKind, Result};
pub use event::{
    AuthRequest, ChannelId, ChannelOpenFailureReason, ChannelRequest, Event, Prompt, PtyRequest,
    Stream,
};
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
pub use transport::Role;
