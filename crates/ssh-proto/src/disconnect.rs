//! Disconnect reason codes (RFC 4250 §4.2.2), for
//! [`Connection::disconnect`](crate::Connection::disconnect) and the
//! `reason` of [`Event::Disconnected`](crate::Event::Disconnected).

/// The server refuses this client's address.
pub const HOST_NOT_ALLOWED_TO_CONNECT: u32 = 1;
/// The peer broke the protocol.
pub const PROTOCOL_ERROR: u32 = 2;
/// Key exchange failed (no common algorithm, bad signature, ...).
pub const KEY_EXCHANGE_FAILED: u32 = 3;
/// A packet failed its MAC or AEAD tag check.
pub const MAC_ERROR: u32 = 5;
/// Decompression failed.
pub const COMPRESSION_ERROR: u32 = 6;
/// The requested service (`ssh-userauth`, `ssh-connection`) is not offered.
pub const SERVICE_NOT_AVAILABLE: u32 = 7;
/// The peer's protocol version is not 2.0.
pub const PROTOCOL_VERSION_NOT_SUPPORTED: u32 = 8;
/// The client could not verify the server's host key.
pub const HOST_KEY_NOT_VERIFIABLE: u32 = 9;
/// The connection was lost.
pub const CONNECTION_LOST: u32 = 10;
/// An ordinary, application-initiated close.
pub const BY_APPLICATION: u32 = 11;
/// The server has too many connections.
pub const TOO_MANY_CONNECTIONS: u32 = 12;
/// The user cancelled authentication.
pub const AUTH_CANCELLED_BY_USER: u32 = 13;
/// No authentication method is left to try.
pub const NO_MORE_AUTH_METHODS_AVAILABLE: u32 = 14;
/// The user name is not valid.
pub const ILLEGAL_USER_NAME: u32 = 15;
