//! SFTP version 3: the message codec and two sans-IO machines, a client
//! and a server, that run over any byte stream (a channel, a pipe,
//! stdin/stdout). Like [`Connection`](crate::Connection), they take bytes
//! in, give bytes out, and report what happened; they do no I/O.
//!
//! - [`SftpClient`]: numbers requests, keeps many in flight, matches each
//!   reply to its request.
//! - [`SftpServer`]: answers INIT, hands each request to the application
//!   (which answers with [`SftpServer::reply`], in any order), and bounds
//!   the open handles and outstanding requests.

/// The client machine: requests out, replies matched to them.
pub mod client;
/// SFTP v3 packet types, codes and their encodings.
pub mod codec;
/// The server machine: requests in, replies from the application out.
pub mod server;

/// The SSH data types (RFC 4251 §5) SFTP packets are made of: [`Put`]
/// appends them to a `Vec<u8>`, [`Reader`] reads them with bounds checks;
/// for encoding extension replies and calling [`Attrs::decode`].
pub use crate::wire::{Put, Reader};
pub use client::SftpClient;
pub use codec::{
    open_flags, status, Attrs, CheckTarget, Limits, NameEntry, Request, Response, StatVfs,
};
pub use server::{parse_request_names, request_name, SftpServer, SftpServerConfig, REQUEST_NAMES};

use crate::error::{Error, ErrorKind};

/// Whether a peer with this SSH version string orders SYMLINK's paths as
/// the draft does (link first) rather than as OpenSSH does. AsyncSSH uses
/// the draft order unless its peer is OpenSSH or paramiko.
pub fn draft_symlink_peer(ssh_version: &str) -> bool {
    ssh_version.contains("AsyncSSH")
}

/// The error for a failed SFTP status reply, naming the path it was about.
pub fn status_error(code: u32, message: &str, path: Option<&str>) -> Error {
    let what = codec::status::name(code);
    let detail = match (path, message.trim()) {
        (Some(p), "") => format!("{what}: {p}"),
        (Some(p), m) => format!("{what}: {p} ({m})"),
        (None, "") => what.to_string(),
        (None, m) => format!("{what} ({m})"),
    };
    Error::with_code(ErrorKind::Sftp, code, detail)
}
