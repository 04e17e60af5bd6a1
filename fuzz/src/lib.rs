//! Fuzz targets for `ssh-proto`, as plain functions.
//!
//! Each `pub fn NAME(data: &[u8])` drives the sans-IO core with no sockets,
//! fixed RNG seeds and a fixed clock, and must never panic. The cargo-fuzz
//! binaries in `fuzz_targets/` call them; the stable test
//! `crates/ssh-proto/tests/fuzz_replay.rs` includes this file (and so its
//! modules) with `#[path]` and replays the corpus through them. So these
//! files only use `ssh-proto`, `rand_chacha` and `rand_core` (no
//! libfuzzer-sys), and reach each other through `super::`, never `crate::`.
//!
//! Determinism: the configurations used for recorded sessions pin kex
//! `curve25519-sha256`, host key `ssh-ed25519`, cipher `aes128-ctr` and MAC
//! `hmac-sha2-256`; every `Connection` gets a `ChaCha20Rng` from a fixed
//! seed, and the clock is one `Instant` taken once. A fresh `Connection`
//! built with the same seed and fed a recorded prefix of its peer's bytes
//! therefore reaches the same state as in the recording (encrypted packets
//! included).
#![allow(dead_code)]

mod auth;
mod connection;
mod forwarding;
mod input;
mod keys;
mod packets;
mod plumbing;
mod recording;
mod setup;
mod sftp;
mod ssh_config;

// The stable replay test includes this file as a private module that uses
// the targets only: the other re-exports are unused there.
pub use auth::{client_auth, server_auth};
pub use connection::connection_layer;
pub use forwarding::forwarding;
#[allow(unused_imports)]
pub use input::Input;
pub use keys::key_files;
pub use packets::{client_packets, kex_messages, server_packets};
#[allow(unused_imports)]
pub use recording::{recording, recording_replays, Recording};
#[allow(unused_imports)]
pub use setup::{client_config, host_key, server_config, CLIENT_SEED, PEER_VERSION, SERVER_SEED};
pub use sftp::{sftp_client, sftp_server};
pub use ssh_config::ssh_config;
