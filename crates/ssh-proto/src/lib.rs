//! `ssh-proto`: a sans-IO SSH-2 protocol core.
//!
//! A [`Connection`] is a pure state machine: bytes and commands go in, bytes
//! and events come out. It never touches a socket, a thread, a clock or an
//! async runtime; adapters (`ssh-blocking`, …) move bytes between a socket and
//! the core. See the crate README for the driving loop.
#![forbid(unsafe_code)]

pub mod error;
pub mod wire;
pub mod transport;
pub mod keys;

pub use error::{Error, ErrorKind, Result};
