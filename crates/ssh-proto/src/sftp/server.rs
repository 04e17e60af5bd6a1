//! The SFTP server machine.

use std::collections::{HashMap, VecDeque};

use super::codec::{self, ext, msg, status, Limits, Request, Response, MAX_PACKET};
use crate::error::{Error, Result};
use crate::wire::byte_queue::ByteQueue;
use crate::wire::Reader;

/// Limits and extensions of an [`SftpServer`].
#[derive(Clone, Debug)]
pub struct SftpServerConfig {
    /// Handles (open files and directories) a client may hold at once.
    pub max_handles: u64,
    /// Requests handed to the application and not yet answered; input
    /// beyond that waits.
    pub max_outstanding: usize,
    /// The most bytes one READ returns (longer reads are shortened).
    pub max_read: u32,
    /// Extensions to advertise (name, version data). The default is every
    /// extension the codec knows.
    pub extensions: Vec<(String, String)>,
    /// Read SYMLINK's paths in the draft's order (link first): what an
    /// AsyncSSH client sends to a server that is neither OpenSSH nor
    /// paramiko (see [`draft_symlink_peer`](super::draft_symlink_peer)).
    pub draft_symlink: bool,
    /// Refuse every request that writes, and OPEN with a write, create or
    /// truncate flag, with PERMISSION_DENIED (OpenSSH's `sftp-server -R`).
    pub read_only: bool,
    /// Names of requests to refuse (OpenSSH's `sftp-server -P`); see
    /// [`REQUEST_NAMES`].
    pub denied_requests: Vec<String>,
    /// When set, only requests with these names are served (OpenSSH's
    /// `sftp-server -p`); the deny list still applies.
    pub allowed_requests: Option<Vec<String>>,
}

/// The request names of OpenSSH's `sftp-server -Q requests`, in its order,
/// with whether each one writes (refused under
/// [`read_only`](SftpServerConfig::read_only)); OPEN is checked by its
/// flags. `check-file` (check-file-handle and check-file-name, which
/// OpenSSH lacks) comes last.
pub const REQUEST_NAMES: &[(&str, bool)] = &[
    ("open", false),
    ("close", false),
    ("read", false),
    ("write", true),
    ("lstat", false),
    ("fstat", false),
    ("setstat", true),
    ("fsetstat", true),
    ("opendir", false),
    ("readdir", false),
    ("remove", true),
    ("mkdir", true),
    ("rmdir", true),
    ("realpath", false),
    ("stat", false),
    ("rename", true),
    ("readlink", false),
    ("symlink", true),
    ("posix-rename", true),
    ("statvfs", false),
    ("fstatvfs", false),
    ("hardlink", true),
    ("fsync", true),
    ("lsetstat", true),
    ("limits", false),
    ("expand-path", false),
    ("copy-data", true),
    ("home-directory", false),
    ("users-groups-by-id", false),
    ("check-file", false),
];

/// The name of a request as [`REQUEST_NAMES`] lists it (None for an
/// extended request this server does not know).
pub fn request_name(req: &Request) -> Option<&'static str> {
    Some(match req {
        Request::Open { .. } => "open",
        Request::Close { .. } => "close",
        Request::Read { .. } => "read",
        Request::Write { .. } => "write",
        Request::Lstat { .. } => "lstat",
        Request::Fstat { .. } => "fstat",
        Request::Setstat { .. } => "setstat",
        Request::Fsetstat { .. } => "fsetstat",
        Request::Opendir { .. } => "opendir",
        Request::Readdir { .. } => "readdir",
        Request::Remove { .. } => "remove",
        Request::Mkdir { .. } => "mkdir",
        Request::Rmdir { .. } => "rmdir",
        Request::Realpath { .. } => "realpath",
        Request::Stat { .. } => "stat",
        Request::Rename { .. } => "rename",
        Request::Readlink { .. } => "readlink",
        Request::Symlink { .. } => "symlink",
        Request::PosixRename { .. } => "posix-rename",
        Request::Statvfs { .. } => "statvfs",
        Request::Fstatvfs { .. } => "fstatvfs",
        Request::Hardlink { .. } => "hardlink",
        Request::Fsync { .. } => "fsync",
        Request::Lsetstat { .. } => "lsetstat",
        Request::Limits => "limits",
        Request::ExpandPath { .. } => "expand-path",
        Request::CopyData { .. } => "copy-data",
        Request::HomeDirectory { .. } => "home-directory",
        Request::CheckFile { .. } => "check-file",
        Request::Extended { name, .. } if name == "users-groups-by-id@openssh.com" => {
            "users-groups-by-id"
        }
        Request::Extended { .. } => return None,
    })
}

/// Checks a comma-separated list of request names (for `-P`/`-p`):
/// Err names the first unknown one.
pub fn parse_request_names(list: &str) -> std::result::Result<Vec<String>, String> {
    list.split(',')
        .filter(|n| !n.is_empty())
        .map(|n| {
            if REQUEST_NAMES.iter().any(|(k, _)| *k == n) {
                Ok(n.to_string())
            } else {
                Err(n.to_string())
            }
        })
        .collect()
}

impl SftpServerConfig {
    /// Whether this configuration serves `req` (read-only mode, deny and
    /// allow lists), as OpenSSH's `request_permitted` decides.
    pub fn permits(&self, req: &Request) -> bool {
        let Some(name) = request_name(req) else {
            // Unknown extensions are answered OP_UNSUPPORTED.
            return true;
        };
        if self.read_only {
            let writes = match req {
                Request::Open { flags, .. } => {
                    use super::codec::open_flags as f;
                    flags & (f::WRITE | f::APPEND | f::CREAT | f::TRUNC | f::EXCL) != 0
                }
                _ => REQUEST_NAMES.iter().any(|(n, w)| *n == name && *w),
            };
            if writes {
                return false;
            }
        }
        if self.denied_requests.iter().any(|n| n == name) {
            return false;
        }
        match &self.allowed_requests {
            Some(allowed) => allowed.iter().any(|n| n == name),
            None => true,
        }
    }
}

impl Default for SftpServerConfig {
    fn default() -> Self {
        SftpServerConfig {
            max_handles: 256,
            max_outstanding: 256,
            max_read: (MAX_PACKET - 1024) as u32,
            extensions: [
                (ext::POSIX_RENAME, "1"),
                (ext::STATVFS, "2"),
                (ext::FSTATVFS, "2"),
                (ext::HARDLINK, "1"),
                (ext::FSYNC, "1"),
                (ext::LSETSTAT, "1"),
                (ext::LIMITS, "1"),
                (ext::EXPAND_PATH, "1"),
                (ext::COPY_DATA, "1"),
                (ext::HOME_DIRECTORY, "1"),
                (ext::CHECK_FILE_HANDLE, "1"),
                (ext::CHECK_FILE_NAME, "1"),
            ]
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
            draft_symlink: false,
            read_only: false,
            denied_requests: Vec::new(),
            allowed_requests: None,
        }
    }
}

/// What kind of request an outstanding id was (for handle accounting).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Opens,
    Closes,
    Other,
}

/// A sans-IO SFTP server. Feed it the client's bytes with
/// [`recv`](Self::recv), take requests with
/// [`poll_request`](Self::poll_request), answer each with
/// [`reply`](Self::reply) (in any order), and send
/// [`transmit`](Self::transmit)'s bytes back.
pub struct SftpServer {
    config: SftpServerConfig,
    out: ByteQueue,
    inbuf: ByteQueue,
    initialized: bool,
    requests: VecDeque<(u32, Request)>,
    outstanding: HashMap<u32, Kind>,
    handles: u64,
    error: Option<Error>,
}

impl SftpServer {
    /// A server machine waiting for `SSH_FXP_INIT`.
    pub fn new(config: SftpServerConfig) -> SftpServer {
        SftpServer {
            config,
            out: ByteQueue::default(),
            inbuf: ByteQueue::default(),
            initialized: false,
            requests: VecDeque::new(),
            outstanding: HashMap::new(),
            handles: 0,
            error: None,
        }
    }

    /// The limits this server states in `limits@openssh.com`.
    pub fn limits(&self) -> Limits {
        Limits {
            max_packet: MAX_PACKET as u64,
            max_read: self.config.max_read as u64,
            max_write: (MAX_PACKET - 1024) as u64,
            max_open_handles: self.config.max_handles,
        }
    }

    /// Handles open now (as counted from HANDLE and CLOSE replies).
    pub fn open_handles(&self) -> u64 {
        self.handles
    }

    /// The error that stopped the machine, if any (a malformed or oversized packet).
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Reply bytes waiting to be written to the channel; `None` when empty.
    pub fn transmit(&self) -> Option<&[u8]> {
        (!self.out.is_empty()).then(|| self.out.pending())
    }
    /// Marks the first `n` bytes of `transmit` as written.
    pub fn advance_transmit(&mut self, n: usize) {
        self.out.consume(n);
    }
    /// Moves all pending reply bytes into `buf` (swapping when `buf` is empty).
    pub fn take_transmit(&mut self, buf: &mut Vec<u8>) {
        self.out.take_into(buf);
    }
    /// Reply bytes waiting to be written.
    pub fn transmit_len(&self) -> usize {
        self.out.len()
    }

    /// Requests answered or waiting to be.
    pub fn outstanding(&self) -> usize {
        self.outstanding.len()
    }

    /// Feeds bytes from the client; returns how many were taken. Fewer than
    /// offered means the outstanding-request limit is reached: offer the
    /// rest after answering some.
    pub fn recv(&mut self, data: &[u8]) -> Result<usize> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        // Hold input while the application is behind, but always keep
        // enough to finish the packet being assembled.
        let room = if self.outstanding.len() >= self.config.max_outstanding {
            0
        } else {
            (2 * MAX_PACKET).saturating_sub(self.inbuf.len())
        };
        let mut n = data.len().min(room);
        self.inbuf.push(&data[..n]);
        if let Err(e) = self.parse() {
            self.error = Some(e.clone());
            return Err(e);
        }
        // At the limit, hand back the unparsed bytes of this call: kept
        // here, they would wait for a `recv` the adapter has no reason to
        // make (it saw everything taken), and the session would stall.
        if self.outstanding.len() >= self.config.max_outstanding {
            let back = self.inbuf.len().min(n);
            self.inbuf.unpush(back);
            n -= back;
        }
        Ok(n)
    }

    fn parse(&mut self) -> Result<()> {
        while self.outstanding.len() < self.config.max_outstanding {
            let Some((s, e)) = codec::next_packet(self.inbuf.pending())? else {
                break;
            };
            let payload = &self.inbuf.pending()[s..e];
            if !self.initialized {
                if payload.first() != Some(&msg::INIT) {
                    return Err(Error::protocol(format!(
                        "SFTP client sent type {} before INIT",
                        payload.first().copied().unwrap_or(0)
                    )));
                }
                let mut r = Reader::new(&payload[1..]);
                let v = r.u32()?;
                if v < 3 {
                    return Err(Error::protocol(format!(
                        "SFTP client speaks version {v}; version 3 is needed"
                    )));
                }
                self.inbuf.consume(e);
                self.initialized = true;
                let exts: Vec<(&str, &str)> = self
                    .config
                    .extensions
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.as_str()))
                    .collect();
                codec::encode_version(&exts, self.out.tail());
                continue;
            }
            let t = payload[0];
            if !(msg::OPEN..=msg::SYMLINK).contains(&t) && t != msg::EXTENDED && payload.len() >= 5
            {
                // An unknown request type: refuse it, as OpenSSH does.
                let id = u32::from_be_bytes([payload[1], payload[2], payload[3], payload[4]]);
                self.inbuf.consume(e);
                if self.outstanding.contains_key(&id) {
                    return Err(Error::protocol(format!(
                        "SFTP request id {id} reused while outstanding"
                    )));
                }
                self.outstanding.insert(id, Kind::Other);
                let msg = format!("unsupported request type {t}");
                let _ = self.reply(id, &Response::status(status::OP_UNSUPPORTED, msg));
                continue;
            }
            let decoded = Request::decode(payload);
            self.inbuf.consume(e);
            let (id, req) = decoded?;
            if self.outstanding.contains_key(&id) {
                return Err(Error::protocol(format!(
                    "SFTP request id {id} reused while outstanding"
                )));
            }
            self.admit(id, req);
        }
        Ok(())
    }

    /// Answers what the machine answers itself; queues the rest.
    fn admit(&mut self, id: u32, req: Request) {
        let kind = match &req {
            Request::Open { .. } | Request::Opendir { .. } => Kind::Opens,
            Request::Close { .. } => Kind::Closes,
            _ => Kind::Other,
        };
        // Opens still unanswered may each become a handle: count them, or
        // pipelined opens get past the limit.
        let opening = match kind {
            Kind::Opens => self
                .outstanding
                .values()
                .filter(|k| **k == Kind::Opens)
                .count() as u64,
            _ => 0,
        };
        self.outstanding.insert(id, kind);
        if !self.config.permits(&req) {
            tracing::debug!(
                "refusing {} request {id}",
                request_name(&req).unwrap_or("extended")
            );
            let _ = self.reply(
                id,
                &Response::status(
                    status::PERMISSION_DENIED,
                    status::message(status::PERMISSION_DENIED),
                ),
            );
            return;
        }
        match req {
            Request::Open { .. } | Request::Opendir { .. }
                if self.handles + opening >= self.config.max_handles =>
            {
                let msg = format!("too many open handles (limit {})", self.config.max_handles);
                let _ = self.reply(id, &Response::status(status::FAILURE, msg));
            }
            Request::Limits => {
                let data = self.limits().encode();
                let _ = self.reply(id, &Response::ExtendedReply(data));
            }
            Request::Read {
                handle,
                offset,
                len,
            } => self.requests.push_back((
                id,
                Request::Read {
                    handle,
                    offset,
                    len: len.min(self.config.max_read),
                },
            )),
            Request::Extended { name, .. } => {
                let msg = format!("unsupported extended request {name}");
                let _ = self.reply(id, &Response::status(status::OP_UNSUPPORTED, msg));
            }
            Request::Symlink { target, link } if self.config.draft_symlink => {
                self.requests.push_back((
                    id,
                    Request::Symlink {
                        target: link,
                        link: target,
                    },
                ))
            }
            req => self.requests.push_back((id, req)),
        }
    }

    /// The next request for the application.
    pub fn poll_request(&mut self) -> Option<(u32, Request)> {
        self.requests.pop_front()
    }

    fn settle(&mut self, id: u32, ok_status: bool, handle: bool) -> Result<()> {
        let Some(kind) = self.outstanding.remove(&id) else {
            return Err(Error::usage(format!(
                "no SFTP request {id} is waiting for a reply"
            )));
        };
        match kind {
            Kind::Opens if handle => self.handles += 1,
            Kind::Closes if ok_status => self.handles = self.handles.saturating_sub(1),
            _ => {}
        }
        Ok(())
    }

    /// Answers request `id`.
    pub fn reply(&mut self, id: u32, resp: &Response) -> Result<()> {
        let ok = matches!(resp, Response::Status { code, .. } if *code == status::OK);
        self.settle(id, ok, matches!(resp, Response::Handle(_)))?;
        resp.encode(id, self.out.tail());
        Ok(())
    }

    /// Answers a READ with data from a borrowed slice.
    pub fn reply_data(&mut self, id: u32, data: &[u8]) -> Result<()> {
        self.settle(id, false, false)?;
        codec::encode_data(id, data, self.out.tail());
        Ok(())
    }

    /// Answers with a status code and message.
    pub fn reply_status(&mut self, id: u32, code: u32, message: &str) -> Result<()> {
        self.reply(id, &Response::status(code, message))
    }
}
