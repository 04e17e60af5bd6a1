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

pub mod client;
pub mod codec;
pub mod server;

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

/// An input buffer that keeps unparsed bytes without moving them for
/// every packet.
#[derive(Default)]
struct InBuf {
    data: Vec<u8>,
    start: usize,
}

impl InBuf {
    fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && (self.start == self.data.len() || self.start > 64 * 1024) {
            self.data.drain(..self.start);
            self.start = 0;
        }
        self.data.extend_from_slice(bytes);
    }
    fn pending(&self) -> &[u8] {
        &self.data[self.start..]
    }
    fn len(&self) -> usize {
        self.data.len() - self.start
    }
    fn consume(&mut self, n: usize) {
        self.start += n;
        if self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        }
    }
    /// Drops the last `n` pending bytes (returned to the caller untaken).
    fn unpush(&mut self, n: usize) {
        let n = n.min(self.len());
        self.data.truncate(self.data.len() - n);
        if self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        }
    }
}

/// An output buffer: packets are appended; the adapter takes the bytes.
#[derive(Default)]
struct OutBuf {
    data: Vec<u8>,
    start: usize,
}

impl OutBuf {
    fn buf(&mut self) -> &mut Vec<u8> {
        if self.start > 0 && self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        }
        &mut self.data
    }
    fn pending(&self) -> Option<&[u8]> {
        (self.start < self.data.len()).then(|| &self.data[self.start..])
    }
    fn advance(&mut self, n: usize) {
        self.start = (self.start + n).min(self.data.len());
        if self.start == self.data.len() {
            self.data.clear();
            self.start = 0;
        }
    }
    fn take(&mut self, out: &mut Vec<u8>) {
        if self.start == 0 && out.is_empty() {
            std::mem::swap(&mut self.data, out);
        } else {
            out.extend_from_slice(&self.data[self.start..]);
            self.data.clear();
            self.start = 0;
        }
    }
    fn len(&self) -> usize {
        self.data.len() - self.start
    }
}
