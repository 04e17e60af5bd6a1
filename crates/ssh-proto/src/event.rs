//! What a [`Connection`](crate::Connection) reports to the application.

use crate::error::Error;
use crate::keys::PublicKey;
use crate::transport::algorithms::Negotiated;
use crate::wire::msg::open_failure;

/// A channel, as numbered by this side of the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u32);

impl std::fmt::Display for ChannelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "channel {}", self.0)
    }
}

/// Which of a channel's two inbound streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Stream {
    /// Normal data (stdout of a remote command).
    Stdout,
    /// Extended data type 1 (stderr).
    Stderr,
}

/// Why a channel open failed (RFC 4254 §5.1 reason codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ChannelOpenFailureReason {
    /// `SSH_OPEN_ADMINISTRATIVELY_PROHIBITED` (1).
    AdministrativelyProhibited,
    /// `SSH_OPEN_CONNECT_FAILED` (2).
    ConnectFailed,
    /// `SSH_OPEN_UNKNOWN_CHANNEL_TYPE` (3).
    UnknownChannelType,
    /// `SSH_OPEN_RESOURCE_SHORTAGE` (4).
    ResourceShortage,
    /// Any other code (the RFC leaves 0x00000005-0xFDFFFFFF to IANA and the
    /// rest to private use).
    Other(u32),
}

impl ChannelOpenFailureReason {
    /// The reason code on the wire.
    pub fn code(self) -> u32 {
        match self {
            Self::AdministrativelyProhibited => open_failure::ADMINISTRATIVELY_PROHIBITED,
            Self::ConnectFailed => open_failure::CONNECT_FAILED,
            Self::UnknownChannelType => open_failure::UNKNOWN_CHANNEL_TYPE,
            Self::ResourceShortage => open_failure::RESOURCE_SHORTAGE,
            Self::Other(code) => code,
        }
    }

    /// The reason for a code from the wire (`from_code(c).code() == c`).
    pub fn from_code(code: u32) -> Self {
        match code {
            open_failure::ADMINISTRATIVELY_PROHIBITED => Self::AdministrativelyProhibited,
            open_failure::CONNECT_FAILED => Self::ConnectFailed,
            open_failure::UNKNOWN_CHANNEL_TYPE => Self::UnknownChannelType,
            open_failure::RESOURCE_SHORTAGE => Self::ResourceShortage,
            other => Self::Other(other),
        }
    }
}

impl std::fmt::Display for ChannelOpenFailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::AdministrativelyProhibited => f.write_str("administratively prohibited"),
            Self::ConnectFailed => f.write_str("connect failed"),
            Self::UnknownChannelType => f.write_str("unknown channel type"),
            Self::ResourceShortage => f.write_str("resource shortage"),
            Self::Other(code) => write!(f, "reason {code}"),
        }
    }
}

/// One keyboard-interactive prompt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prompt {
    /// The prompt to show the user.
    pub text: String,
    /// Whether the answer may be echoed as it is typed.
    pub echo: bool,
}

/// A user-authentication attempt, as the server sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
#[allow(clippy::large_enum_variant)]
pub enum AuthRequest {
    /// `password`: a password (RFC 4252 §8).
    Password {
        /// The password offered.
        password: String,
        /// A new password, when the client answers a change request.
        new_password: Option<String>,
    },
    /// `verified` is true when the client signed with this key and the
    /// signature checked out; false for a query ("would you accept this key?").
    PublicKey {
        /// The user's public key.
        key: PublicKey,
        /// The signature algorithm named (`rsa-sha2-256`, `ssh-ed25519`, ...).
        algorithm: String,
        /// True when the request carried a signature that verified.
        verified: bool,
    },
    /// `keyboard-interactive` begins (RFC 4256 §3.1).
    KeyboardInteractive {
        /// Comma-separated hints from the client; usually empty.
        submethods: String,
    },
    /// Answers to the prompts sent with `auth_info_request`.
    KeyboardInteractiveResponse {
        /// One answer per prompt, in prompt order.
        responses: Vec<String>,
    },
}

/// A pseudo-terminal request (RFC 4254 §6.2).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PtyRequest {
    /// `TERM` value, e.g. `xterm-256color`.
    pub term: String,
    /// Width in characters.
    pub cols: u32,
    /// Height in rows.
    pub rows: u32,
    /// Width in pixels; 0 if unknown.
    pub width_px: u32,
    /// Height in pixels; 0 if unknown.
    pub height_px: u32,
    /// Encoded terminal modes as (opcode, value).
    pub modes: Vec<(u8, u32)>,
}

/// A channel request the application decides on (server side, mostly).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ChannelRequest {
    /// `pty-req`: allocate a pseudo-terminal (RFC 4254 §6.2).
    Pty(PtyRequest),
    /// `env`: set an environment variable (RFC 4254 §6.4).
    Env {
        /// Variable name.
        name: String,
        /// Variable value.
        value: String,
    },
    /// `exec`: run a command (RFC 4254 §6.5).
    Exec {
        /// The command line, raw bytes as sent.
        command: Vec<u8>,
    },
    /// `shell`: start the user's login shell (RFC 4254 §6.5).
    Shell,
    /// `subsystem`: start a named subsystem such as `sftp` (RFC 4254 §6.5).
    Subsystem {
        /// Subsystem name.
        name: String,
    },
    /// `window-change`: the terminal was resized (RFC 4254 §6.7).
    WindowChange {
        /// Width in characters.
        cols: u32,
        /// Height in rows.
        rows: u32,
        /// Width in pixels; 0 if unknown.
        width_px: u32,
        /// Height in pixels; 0 if unknown.
        height_px: u32,
    },
    /// `signal`: deliver a signal (RFC 4254 §6.9).
    Signal {
        /// Signal name without `SIG`, e.g. `INT`.
        name: String,
    },
    /// Any other request type, with its raw type-specific data.
    Other {
        /// Request type.
        name: String,
        /// Type-specific data after `want reply`.
        data: Vec<u8>,
    },
}

/// Something that happened on a connection. Poll them with
/// [`Connection::poll_event`](crate::Connection::poll_event).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// Client: the server proved it holds this host key. Answer with
    /// `accept_host_key()` or `reject_host_key()`; nothing proceeds until then.
    HostKey(PublicKey),
    /// A key exchange finished; these algorithms are in use now.
    KexDone(Negotiated),
    /// Client: the server's authentication banner (sanitized).
    AuthBanner(String),
    /// Client: authentication succeeded.
    AuthSuccess,
    /// Client: the last attempt failed; these methods may continue.
    AuthFailure {
        /// Methods that can continue (RFC 4252 §5.1).
        methods: Vec<String>,
        /// True when the attempt succeeded but more methods are required.
        partial_success: bool,
    },
    /// Client: keyboard-interactive prompts; answer with `auth_respond`.
    AuthPrompt {
        /// Title for the prompts; may be empty.
        name: String,
        /// Instruction text; may be empty.
        instruction: String,
        /// The prompts, answered in order.
        prompts: Vec<Prompt>,
    },
    /// Client: the server demands a new password; answer with `auth_change_password`.
    PasswordChangeRequired {
        /// The server's prompt text.
        prompt: String,
    },
    /// Server: an authentication attempt to accept, reject or continue.
    AuthRequest {
        /// The user name the client asked for.
        user: String,
        /// The method and its data.
        request: AuthRequest,
    },
    /// Server: authentication completed for this user.
    Authenticated {
        /// The authenticated user name.
        user: String,
    },
    /// The peer asks to open a channel; answer with `accept_channel` / `reject_channel`.
    ChannelOpenRequest {
        /// Our id for the proposed channel.
        channel: ChannelId,
        /// Channel type: `session`, `direct-tcpip`, ...
        kind: String,
        /// Type-specific data of the open request.
        data: Vec<u8>,
    },
    /// Our channel open was confirmed.
    ChannelOpened {
        /// The channel.
        channel: ChannelId,
    },
    /// Our channel open failed: RFC 4254 reason and text.
    ChannelOpenFailed {
        /// The channel.
        channel: ChannelId,
        /// The peer's reason code.
        reason: ChannelOpenFailureReason,
        /// The peer's text, sanitized.
        description: String,
    },
    /// A channel request from the peer; answer with `channel_request_reply` when `want_reply`.
    ChannelRequest {
        /// The channel.
        channel: ChannelId,
        /// The request.
        request: ChannelRequest,
        /// Whether the peer waits for a reply.
        want_reply: bool,
    },
    /// The reply to one of our channel requests (in the order they were sent).
    ChannelRequestReply {
        /// The channel.
        channel: ChannelId,
        /// True for `CHANNEL_SUCCESS`.
        success: bool,
    },
    /// Data is waiting in the channel's buffer; read it with `channel_read`.
    ChannelData {
        /// The channel.
        channel: ChannelId,
        /// Which stream has data.
        stream: Stream,
    },
    /// The peer granted more send window.
    ChannelWindow {
        /// The channel.
        channel: ChannelId,
    },
    /// The peer will send no more data on the channel (RFC 4254 §5.3).
    ChannelEof {
        /// The channel.
        channel: ChannelId,
    },
    /// The remote command exited (RFC 4254 §6.10).
    ExitStatus {
        /// The channel.
        channel: ChannelId,
        /// Exit status.
        status: u32,
    },
    /// The remote command was killed by a signal (RFC 4254 §6.10).
    ExitSignal {
        /// The channel.
        channel: ChannelId,
        /// Signal name without `SIG`, e.g. `TERM`.
        signal: String,
        /// Whether a core was dumped.
        core_dumped: bool,
        /// Error message, sanitized; may be empty.
        message: String,
    },
    /// The channel is closed in both directions. Buffered data stays
    /// readable until read.
    ChannelClosed {
        /// The channel.
        channel: ChannelId,
    },
    /// A global request from the peer. When `want_reply` is set, answer it
    /// with [`global_request_reply`](crate::Connection::global_request_reply)
    /// (replies go out in request order). `keepalive@openssh.com` and
    /// `hostkeys-*` are answered by the core and not reported.
    GlobalRequest {
        /// Request name, e.g. `tcpip-forward`.
        name: String,
        /// Whether the peer waits for a reply.
        want_reply: bool,
        /// Request-specific data.
        data: Vec<u8>,
    },
    /// Reply to our global request.
    GlobalRequestReply {
        /// True for `REQUEST_SUCCESS`.
        success: bool,
        /// Response-specific data (e.g. the bound port).
        data: Vec<u8>,
        /// For a granted `tcpip-forward`: the port the server listens on
        /// (the one asked for, or the one it picked for port 0).
        bound_port: Option<u32>,
    },
    /// A debug message the peer asked to be displayed.
    Debug(String),
    /// The connection ended; the error says why. This is the last event.
    Disconnected(Error),
}

#[cfg(test)]
mod tests {
    use super::ChannelOpenFailureReason as R;

    #[test]
    fn open_failure_reason_codes_round_trip() {
        for code in [0, 1, 2, 3, 4, 5, 0xFE00_0000, u32::MAX] {
            assert_eq!(R::from_code(code).code(), code);
        }
        assert_eq!(R::from_code(1), R::AdministrativelyProhibited);
        assert_eq!(R::from_code(2), R::ConnectFailed);
        assert_eq!(R::from_code(3), R::UnknownChannelType);
        assert_eq!(R::from_code(4), R::ResourceShortage);
        assert_eq!(R::from_code(9), R::Other(9));
    }
}
