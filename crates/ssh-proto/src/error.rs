//! The one error type of the core.

use std::fmt;

/// What kind of failure an [`Error`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The peer broke the protocol (malformed or unexpected message).
    Protocol,
    /// A packet failed its MAC / AEAD tag check.
    Mac,
    /// Algorithm negotiation found nothing in common.
    NoCommonAlgorithm,
    /// The host key was rejected by the application or a signature failed.
    HostKey,
    /// All authentication methods were tried and failed, or attempts ran out.
    AuthFailed,
    /// The peer sent SSH_MSG_DISCONNECT.
    PeerDisconnected,
    /// The connection was closed (by us, or the byte stream ended).
    Closed,
    /// A key file or key blob could not be parsed or used.
    Key,
    /// A limit was exceeded (packet size, window, channels, time).
    Limit,
    /// A timer ran out (login grace time, keepalive).
    Timeout,
    /// The application called a method at the wrong time or with bad arguments.
    Usage,
    /// A channel could not be opened; the reason code is in [`Error::code`].
    ChannelOpen,
    /// A channel request (exec, shell, subsystem, …) was refused.
    ChannelRequest,
    /// A global request (a port forward, its cancel, …) was refused.
    GlobalRequest,
    /// An I/O failure reported by an adapter.
    Io,
    /// An SFTP request failed; [`Error::code`] is the SSH_FX_* status.
    Sftp,
}

/// The error type of every fallible call in this crate.
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    detail: String,
    code: Option<u32>,
}

impl Error {
    /// An error of `kind` with a human-readable `detail`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Error {
            kind,
            detail: detail.into(),
            code: None,
        }
    }
    /// An error that carries a protocol reason code (e.g. a disconnect reason).
    pub fn with_code(kind: ErrorKind, code: u32, detail: impl Into<String>) -> Self {
        Error {
            kind,
            detail: detail.into(),
            code: Some(code),
        }
    }
    /// [`ErrorKind::Protocol`]: the peer broke the protocol.
    pub fn protocol(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Protocol, detail)
    }
    /// [`ErrorKind::Key`]: a key could not be parsed or used.
    pub fn key(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Key, detail)
    }
    /// [`ErrorKind::Usage`]: the API was called in a state that does not allow it.
    pub fn usage(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, detail)
    }
    /// [`ErrorKind::Limit`]: a size or count bound was exceeded.
    pub fn limit(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Limit, detail)
    }
    /// What class of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// Human readable detail (without the kind prefix).
    pub fn detail(&self) -> &str {
        &self.detail
    }
    /// For `PeerDisconnected` the disconnect reason code; for `ChannelOpen`
    /// the RFC 4254 open-failure reason code; for `Sftp` the SSH_FX_* status.
    pub fn code(&self) -> Option<u32> {
        self.code
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            ErrorKind::Protocol => "protocol error",
            ErrorKind::Mac => "message authentication failed",
            ErrorKind::NoCommonAlgorithm => "no common algorithm",
            ErrorKind::HostKey => "host key verification failed",
            ErrorKind::AuthFailed => "authentication failed",
            ErrorKind::PeerDisconnected => "disconnected by peer",
            ErrorKind::Closed => "connection closed",
            ErrorKind::Key => "key error",
            ErrorKind::Limit => "limit exceeded",
            ErrorKind::Timeout => "timed out",
            ErrorKind::Usage => "invalid use",
            ErrorKind::ChannelOpen => "channel open failed",
            ErrorKind::ChannelRequest => "channel request failed",
            ErrorKind::GlobalRequest => "global request failed",
            ErrorKind::Io => "i/o error",
            ErrorKind::Sftp => "sftp",
        };
        if self.detail.is_empty() {
            f.write_str(what)
        } else {
            write!(f, "{what}: {}", self.detail)
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?}, {:?})", self.kind, self.detail)
    }
}

impl std::error::Error for Error {}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Whether this is an SFTP "no such file" status (`SSH_FX_NO_SUCH_FILE`).
    pub fn is_not_found(&self) -> bool {
        self.sftp_status() == Some(crate::sftp::status::NO_SUCH_FILE)
    }

    /// The SFTP status code (`SSH_FX_*`) of an [`ErrorKind::Sftp`] error.
    pub fn sftp_status(&self) -> Option<u32> {
        match self.kind {
            ErrorKind::Sftp => self.code,
            _ => None,
        }
    }
}

/// An error as an `io::Error`: SFTP "no such file" becomes `NotFound`,
/// "permission denied" `PermissionDenied`, a timeout `TimedOut`, the end
/// of the connection `ConnectionAborted`; the rest `Other`. The original
/// error is the `io::Error`'s inner error.
impl From<Error> for std::io::Error {
    fn from(e: Error) -> std::io::Error {
        use crate::sftp::status;
        use std::io::ErrorKind as K;
        let kind = match (e.kind(), e.code()) {
            (ErrorKind::Sftp, Some(status::NO_SUCH_FILE)) => K::NotFound,
            (ErrorKind::Sftp, Some(status::PERMISSION_DENIED)) => K::PermissionDenied,
            (ErrorKind::Timeout, _) => K::TimedOut,
            (ErrorKind::Closed | ErrorKind::PeerDisconnected, _) => K::ConnectionAborted,
            _ => K::Other,
        };
        std::io::Error::new(kind, e)
    }
}
