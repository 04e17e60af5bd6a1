//! The session layer: what every adapter needs decided without I/O.
//!
//! - [`Session`]: a connection plus per-channel facts, the "is this
//!   operation finished, with what result" conditions, and the refusal of
//!   what nobody asked for;
//! - client decisions: auth steps ([`AuthStep`]) and host-key verdicts
//!   against a parsed known_hosts ([`known_hosts_verdict`]);
//! - server decisions: the application's answers ([`Auth`], [`KbdInt`],
//!   [`ChannelOpenFailure`], [`AuthAnswer`]) and how they are carried out;
//! - which new connections a server admits ([`Admission`](admission::Admission));
//! - the SFTP client's operations and pipelining ([`sftp`]).
//!
//! The adapters (`ssh-blocking`, `ssh-tokio`, `ssh-mio`) differ only in
//! how they wait: a thread on a condition variable, a task on a waker, an
//! event loop on readiness.

pub mod admission;
mod client;
mod forwarding;
mod server;
pub mod sftp;
mod state;

pub use client::{auth_none_result, host_label, known_hosts_verdict, AuthStep, PromptRequest};
pub use forwarding::{forward_result, GlobalReply, MAX_QUEUED_FORWARDED};
pub use server::{
    channel_open_kind, connection_result, refuse_kind, tcpip_forward_reply, Auth, AuthAnswer,
    AuthQuestion, ChannelOpenFailure, KbdInt,
};
pub use state::{ChannelFacts, ExitSignal, Session};
