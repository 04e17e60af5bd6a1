//! The SFTP client machine.

use std::collections::{HashSet, VecDeque};

use super::codec::{self, msg, Request, Response, MAX_PACKET};
use crate::error::{Error, ErrorKind, Result};
use crate::wire::byte_queue::ByteQueue;
use crate::wire::Reader;

/// Most extension pairs a VERSION packet may carry.
const MAX_EXTENSIONS: usize = 64;

/// A sans-IO SFTP client: requests in, packets out; packets in, replies
/// out. Send INIT's bytes (already queued by [`new`](Self::new)) first.
pub struct SftpClient {
    out: ByteQueue,
    inbuf: ByteQueue,
    version: Option<u32>,
    extensions: Vec<(String, String)>,
    next_id: u32,
    pending: HashSet<u32>,
    replies: VecDeque<(u32, Response)>,
    error: Option<Error>,
    draft_symlink: bool,
}

impl Default for SftpClient {
    fn default() -> Self {
        Self::new()
    }
}

impl SftpClient {
    /// A new client with its INIT packet queued for sending.
    pub fn new() -> SftpClient {
        let mut out = ByteQueue::default();
        codec::encode_init(out.tail());
        SftpClient {
            out,
            inbuf: ByteQueue::default(),
            version: None,
            extensions: Vec::new(),
            next_id: 0,
            pending: HashSet::new(),
            replies: VecDeque::new(),
            error: None,
            draft_symlink: false,
        }
    }

    /// Sends SYMLINK's paths in the draft's order (link first) instead of
    /// OpenSSH's (target first). Only AsyncSSH servers talking to a peer
    /// that is neither OpenSSH nor paramiko expect that; adapters set it
    /// from the server's SSH version string (see [`draft_symlink_peer`](super::draft_symlink_peer)).
    pub fn set_draft_symlink(&mut self, on: bool) {
        self.draft_symlink = on;
    }

    /// The server's protocol version, once its VERSION arrived.
    pub fn version(&self) -> Option<u32> {
        self.version
    }

    /// Extensions the server advertised, as (name, data).
    pub fn extensions(&self) -> &[(String, String)] {
        &self.extensions
    }

    /// The data of an advertised extension.
    pub fn extension(&self, name: &str) -> Option<&str> {
        self.extensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first fatal error, if any (a malformed packet from the server).
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Requests sent whose replies have not been polled yet.
    pub fn in_flight(&self) -> usize {
        self.pending.len() + self.replies.len()
    }

    /// Bytes to send to the server.
    pub fn transmit(&self) -> Option<&[u8]> {
        (!self.out.is_empty()).then(|| self.out.pending())
    }

    /// Marks the first `n` bytes of `transmit` as written.
    pub fn advance_transmit(&mut self, n: usize) {
        self.out.consume(n);
    }

    /// Moves all pending output into `buf` (swapping when `buf` is empty).
    pub fn take_transmit(&mut self, buf: &mut Vec<u8>) {
        self.out.take_into(buf);
    }

    /// Bytes queued and not yet taken.
    pub fn transmit_len(&self) -> usize {
        self.out.len()
    }

    fn check(&self) -> Result<()> {
        match &self.error {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn new_id(&mut self) -> u32 {
        loop {
            let id = self.next_id;
            self.next_id = self.next_id.wrapping_add(1);
            if !self.pending.contains(&id) && !self.replies.iter().any(|(i, _)| *i == id) {
                self.pending.insert(id);
                return id;
            }
        }
    }

    /// Queues a request; returns its id. A request that needs an extension
    /// the server did not advertise fails here, naming it.
    pub fn send(&mut self, req: &Request) -> Result<u32> {
        self.check()?;
        if let Some(ext) = req.extension() {
            if self.version.is_some() && self.extension(ext).is_none() {
                return Err(Error::with_code(
                    ErrorKind::Sftp,
                    codec::status::OP_UNSUPPORTED,
                    format!("the server does not offer {ext}"),
                ));
            }
        }
        let id = self.new_id();
        match req {
            Request::Symlink { target, link } if self.draft_symlink => Request::Symlink {
                target: link.clone(),
                link: target.clone(),
            }
            .encode(id, self.out.tail()),
            req => req.encode(id, self.out.tail()),
        }
        Ok(id)
    }

    /// Queues a WRITE from a borrowed slice (no copy into a `Request`).
    pub fn send_write(&mut self, handle: &[u8], offset: u64, data: &[u8]) -> Result<u32> {
        self.check()?;
        if data.len() + handle.len() + 64 > MAX_PACKET {
            return Err(Error::usage(format!(
                "SFTP write of {} bytes exceeds the packet limit",
                data.len()
            )));
        }
        let id = self.new_id();
        codec::encode_write(id, handle, offset, data, self.out.tail());
        Ok(id)
    }

    /// Feeds bytes from the server. Replies become available through
    /// [`poll_reply`](Self::poll_reply).
    pub fn recv(&mut self, data: &[u8]) -> Result<()> {
        self.check()?;
        self.inbuf.push(data);
        let r = self.parse();
        if let Err(e) = &r {
            self.error = Some(e.clone());
        }
        r
    }

    fn parse(&mut self) -> Result<()> {
        while let Some((s, e)) = codec::next_packet(self.inbuf.pending())? {
            if self.version.is_none() {
                let payload = self.inbuf.pending()[s..e].to_vec();
                self.inbuf.consume(e);
                self.on_version(&payload)?;
                continue;
            }
            let decoded = Response::decode(&self.inbuf.pending()[s..e]);
            self.inbuf.consume(e);
            let (id, resp) = decoded?;
            if !self.pending.remove(&id) {
                return Err(Error::protocol(format!(
                    "SFTP reply for id {id}, which no request has"
                )));
            }
            self.replies.push_back((id, resp));
        }
        Ok(())
    }

    fn on_version(&mut self, payload: &[u8]) -> Result<()> {
        if payload.first() != Some(&msg::VERSION) {
            return Err(Error::protocol(format!(
                "SFTP server sent type {} before VERSION",
                payload.first().copied().unwrap_or(0)
            )));
        }
        let mut r = Reader::new(&payload[1..]);
        let v = r.u32()?;
        if v < 3 {
            return Err(Error::protocol(format!(
                "SFTP server speaks version {v}; version 3 is needed"
            )));
        }
        while r.remaining() > 0 && self.extensions.len() < MAX_EXTENSIONS {
            let n = String::from_utf8_lossy(r.string()?).into_owned();
            let d = String::from_utf8_lossy(r.string()?).into_owned();
            self.extensions.push((n, d));
        }
        self.version = Some(v.min(codec::VERSION));
        Ok(())
    }

    /// The next reply, in arrival order.
    pub fn poll_reply(&mut self) -> Option<(u32, Response)> {
        self.replies.pop_front()
    }

    /// Takes the reply to `id` if it has arrived.
    pub fn take_reply(&mut self, id: u32) -> Option<Response> {
        let i = self.replies.iter().position(|(r, _)| *r == id)?;
        self.replies.remove(i).map(|(_, r)| r)
    }

    /// True while the reply to `id` has not arrived.
    pub fn is_pending(&self, id: u32) -> bool {
        self.pending.contains(&id)
    }

    /// Bytes received and not yet parsed (a partial packet).
    pub fn buffered_input(&self) -> usize {
        self.inbuf.len()
    }
}
