//! Typed messages with encode/decode.
//!
//! [`Message`] borrows from the packet payload it was decoded from.
//! `Message::decode(payload)` then `msg.encode(&mut out)` gives back the same
//! bytes for every message this crate understands.

// Undocumented items: a test and fuzz codec reachable only through the `internal` door;
// each type mirrors the RFC message of the same name.
#![allow(missing_docs)]

mod decode;
mod encode;
#[cfg(test)]
mod tests;

use std::fmt;

use super::msg::*;

/// The key exchange family that gives message numbers 30..=49 their meaning
/// (RFC 4250 §4.1.2: they are key exchange method specific).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KexFlavor {
    /// Public values sent as `string`: curve25519 (RFC 8731), ecdh-sha2-*
    /// (RFC 5656) and the hybrid post-quantum methods (mlkem768x25519,
    /// sntrup761x25519), which reuse the ECDH message layout.
    /// 30 = KEX_ECDH_INIT, 31 = KEX_ECDH_REPLY.
    Ecdh,
    /// Fixed-group Diffie-Hellman (RFC 4253 §8, RFC 8268): `e` and `f` as
    /// `mpint`. 30 = KEXDH_INIT, 31 = KEXDH_REPLY.
    Dh,
    /// Diffie-Hellman group exchange (RFC 4419). 30 = KEX_DH_GEX_REQUEST_OLD,
    /// 31 = KEX_DH_GEX_GROUP, 32 = KEX_DH_GEX_INIT, 33 = KEX_DH_GEX_REPLY,
    /// 34 = KEX_DH_GEX_REQUEST.
    DhGex,
}

impl KexFlavor {
    /// The flavor of a key exchange method name, `None` for a name of no
    /// family this crate knows.
    pub fn for_kex(name: &str) -> Option<KexFlavor> {
        if name.starts_with("diffie-hellman-group-exchange-") {
            Some(KexFlavor::DhGex)
        } else if name.starts_with("diffie-hellman-group") {
            Some(KexFlavor::Dh)
        } else if ["curve25519-", "ecdh-sha2-", "mlkem", "sntrup"]
            .iter()
            .any(|p| name.starts_with(p))
        {
            Some(KexFlavor::Ecdh)
        } else {
            None
        }
    }
}

/// The pending authentication method that gives message 60 its meaning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UserauthFlavor {
    /// USERAUTH_PK_OK (RFC 4252 §7).
    PublicKey,
    /// USERAUTH_PASSWD_CHANGEREQ (RFC 4252 §8).
    Password,
    /// USERAUTH_INFO_REQUEST (RFC 4256 §3.2).
    KeyboardInteractive,
}

/// SSH_MSG_KEXINIT (RFC 4253 §7.1). Name-lists are the raw comma-separated
/// text as sent (split them with [`super::names`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KexInit<'a> {
    pub cookie: &'a [u8; 16],
    pub kex_algorithms: &'a str,
    pub server_host_key_algorithms: &'a str,
    pub encryption_c2s: &'a str,
    pub encryption_s2c: &'a str,
    pub mac_c2s: &'a str,
    pub mac_s2c: &'a str,
    pub compression_c2s: &'a str,
    pub compression_s2c: &'a str,
    pub languages_c2s: &'a str,
    pub languages_s2c: &'a str,
    pub first_kex_packet_follows: bool,
    pub reserved: u32,
}

/// The method-specific part of SSH_MSG_USERAUTH_REQUEST (RFC 4252).
///
/// `Debug` does not print passwords.
#[derive(Clone, PartialEq, Eq)]
pub enum UserauthMethod<'a> {
    /// `none` (RFC 4252 §5.2).
    None,
    /// `password` (RFC 4252 §8). The wire's "change" boolean is
    /// `new_password.is_some()`.
    Password {
        password: &'a str,
        new_password: Option<&'a str>,
    },
    /// `publickey` (RFC 4252 §7): a query without a signature, or the signed
    /// request. The wire's "has signature" boolean is `signature.is_some()`.
    PublicKey {
        algorithm: &'a str,
        key_blob: &'a [u8],
        signature: Option<&'a [u8]>,
    },
    /// `keyboard-interactive` (RFC 4256 §3.1).
    KeyboardInteractive {
        language: &'a str,
        submethods: &'a str,
    },
    /// Any other method (e.g. `hostbased`), its fields left raw. A method
    /// named like one of the variants above does not round-trip as `Other`.
    Other { method: &'a str, rest: &'a [u8] },
}

impl<'a> UserauthMethod<'a> {
    /// The method name as sent on the wire.
    pub fn name(&self) -> &'a str {
        match self {
            UserauthMethod::None => "none",
            UserauthMethod::Password { .. } => "password",
            UserauthMethod::PublicKey { .. } => "publickey",
            UserauthMethod::KeyboardInteractive { .. } => "keyboard-interactive",
            UserauthMethod::Other { method, .. } => method,
        }
    }
}

impl fmt::Debug for UserauthMethod<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UserauthMethod::None => f.write_str("None"),
            UserauthMethod::Password { new_password, .. } => f
                .debug_struct("Password")
                .field("password", &"<redacted>")
                .field("new_password", &new_password.map(|_| "<redacted>"))
                .finish(),
            UserauthMethod::PublicKey {
                algorithm,
                key_blob,
                signature,
            } => f
                .debug_struct("PublicKey")
                .field("algorithm", algorithm)
                .field("key_blob", key_blob)
                .field("signature", signature)
                .finish(),
            UserauthMethod::KeyboardInteractive {
                language,
                submethods,
            } => f
                .debug_struct("KeyboardInteractive")
                .field("language", language)
                .field("submethods", submethods)
                .finish(),
            UserauthMethod::Other { method, rest } => f
                .debug_struct("Other")
                .field("method", method)
                .field("rest", rest)
                .finish(),
        }
    }
}

/// A typed SSH message borrowing from the payload it was decoded from
/// (payload = message number byte + fields, as carried in one packet).
///
/// Field types: `&str` for text the RFCs define as UTF-8 or US-ASCII
/// (name-lists stay unsplit), `&[u8]` for binary strings and for trailing
/// type-specific data (`data` / `rest` fields: everything after the fixed
/// fields, unparsed). `mpint` fields hold the positive magnitude, big-endian,
/// without leading zero bytes (what [`Reader::mpint_positive`] returns and
/// [`Put::put_mpint_positive`] takes).
///
/// Message numbers whose meaning depends on the negotiated key exchange
/// (30, 31, 35..=49) or on the pending authentication method (60, 62..=79),
/// and numbers this crate does not know, decode as [`Message::Unknown`] with
/// [`Message::decode`]; use [`Message::decode_kex`] and
/// [`Message::decode_userauth_60`] to interpret them. 32..=34 are decoded as
/// group exchange messages, their only meaning in this crate.
///
/// Encoding is canonical (booleans as 0/1, minimal mpints), so
/// `decode(encode(m)) == m` for every message whose fields are canonical, and
/// `encode(decode(b)) == b` for every `b` that `encode` produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// 1, RFC 4253 §11.1.
    Disconnect {
        reason: u32,
        description: &'a str,
        language: &'a str,
    },
    /// 2, RFC 4253 §11.2.
    Ignore { data: &'a [u8] },
    /// 3, RFC 4253 §11.4.
    Unimplemented { seq: u32 },
    /// 4, RFC 4253 §11.3.
    Debug {
        always_display: bool,
        message: &'a str,
        language: &'a str,
    },
    /// 5, RFC 4253 §10.
    ServiceRequest { service: &'a str },
    /// 6, RFC 4253 §10.
    ServiceAccept { service: &'a str },
    /// 7, RFC 8308 §2.3: (extension name, value) pairs in order.
    ExtInfo {
        extensions: Vec<(&'a str, &'a [u8])>,
    },
    /// 20, RFC 4253 §7.1.
    KexInit(KexInit<'a>),
    /// 21, RFC 4253 §7.3.
    NewKeys,
    /// 30 under [`KexFlavor::Ecdh`] (RFC 5656 §4, RFC 8731).
    KexEcdhInit { q_c: &'a [u8] },
    /// 31 under [`KexFlavor::Ecdh`].
    KexEcdhReply {
        k_s: &'a [u8],
        q_s: &'a [u8],
        signature: &'a [u8],
    },
    /// 30 under [`KexFlavor::Dh`] (RFC 4253 §8); `e` is an mpint magnitude.
    KexDhInit { e: &'a [u8] },
    /// 31 under [`KexFlavor::Dh`]; `f` is an mpint magnitude.
    KexDhReply {
        k_s: &'a [u8],
        f: &'a [u8],
        signature: &'a [u8],
    },
    /// 30 under [`KexFlavor::DhGex`] (RFC 4419 §5, old request).
    KexDhGexRequestOld { n: u32 },
    /// 34 (RFC 4419 §3).
    KexDhGexRequest { min: u32, n: u32, max: u32 },
    /// 31 under [`KexFlavor::DhGex`]; mpint magnitudes.
    KexDhGexGroup { p: &'a [u8], g: &'a [u8] },
    /// 32; `e` is an mpint magnitude.
    KexDhGexInit { e: &'a [u8] },
    /// 33; `f` is an mpint magnitude.
    KexDhGexReply {
        k_s: &'a [u8],
        f: &'a [u8],
        signature: &'a [u8],
    },
    /// 50, RFC 4252 §5.
    UserauthRequest {
        user: &'a str,
        service: &'a str,
        method: UserauthMethod<'a>,
    },
    /// 51, RFC 4252 §5.1.
    UserauthFailure {
        methods: &'a str,
        partial_success: bool,
    },
    /// 52, RFC 4252 §5.1.
    UserauthSuccess,
    /// 53, RFC 4252 §5.4.
    UserauthBanner { message: &'a str, language: &'a str },
    /// 60 under [`UserauthFlavor::PublicKey`] (RFC 4252 §7).
    UserauthPkOk {
        algorithm: &'a str,
        key_blob: &'a [u8],
    },
    /// 60 under [`UserauthFlavor::Password`] (RFC 4252 §8).
    UserauthPasswdChangereq { prompt: &'a str, language: &'a str },
    /// 60 under [`UserauthFlavor::KeyboardInteractive`] (RFC 4256 §3.2):
    /// prompts as (text, echo).
    UserauthInfoRequest {
        name: &'a str,
        instruction: &'a str,
        language: &'a str,
        prompts: Vec<(&'a str, bool)>,
    },
    /// 61, RFC 4256 §3.4.
    UserauthInfoResponse { responses: Vec<&'a str> },
    /// 80, RFC 4254 §4.
    GlobalRequest {
        name: &'a str,
        want_reply: bool,
        data: &'a [u8],
    },
    /// 81, RFC 4254 §4.
    RequestSuccess { data: &'a [u8] },
    /// 82, RFC 4254 §4.
    RequestFailure,
    /// 90, RFC 4254 §5.1.
    ChannelOpen {
        channel_type: &'a str,
        sender: u32,
        initial_window: u32,
        max_packet: u32,
        data: &'a [u8],
    },
    /// 91, RFC 4254 §5.1.
    ChannelOpenConfirmation {
        recipient: u32,
        sender: u32,
        initial_window: u32,
        max_packet: u32,
        data: &'a [u8],
    },
    /// 92, RFC 4254 §5.1.
    ChannelOpenFailure {
        recipient: u32,
        reason: u32,
        description: &'a str,
        language: &'a str,
    },
    /// 93, RFC 4254 §5.2.
    ChannelWindowAdjust { recipient: u32, bytes_to_add: u32 },
    /// 94, RFC 4254 §5.2.
    ChannelData { recipient: u32, data: &'a [u8] },
    /// 95, RFC 4254 §5.2.
    ChannelExtendedData {
        recipient: u32,
        data_type: u32,
        data: &'a [u8],
    },
    /// 96, RFC 4254 §5.3.
    ChannelEof { recipient: u32 },
    /// 97, RFC 4254 §5.3.
    ChannelClose { recipient: u32 },
    /// 98, RFC 4254 §5.4.
    ChannelRequest {
        recipient: u32,
        request_type: &'a str,
        want_reply: bool,
        data: &'a [u8],
    },
    /// 99, RFC 4254 §5.4.
    ChannelSuccess { recipient: u32 },
    /// 100, RFC 4254 §5.4.
    ChannelFailure { recipient: u32 },
    /// A message number this crate does not interpret (or one that needs a
    /// flavor to be interpreted), with the bytes after it. Encoding an
    /// `Unknown` whose number `decode` does interpret gives bytes that decode
    /// to that other variant.
    Unknown { msg_type: u8, rest: &'a [u8] },
}

/// Upper bound on list entries worth allocating for: each entry takes at
/// least `min_entry` bytes of the `remaining` input.
fn list_capacity(count: u32, remaining: usize, min_entry: usize) -> usize {
    (count as usize).min(remaining / min_entry)
}

impl Message<'_> {
    /// The message number.
    pub fn msg_type(&self) -> u8 {
        match self {
            Message::Disconnect { .. } => DISCONNECT,
            Message::Ignore { .. } => IGNORE,
            Message::Unimplemented { .. } => UNIMPLEMENTED,
            Message::Debug { .. } => DEBUG,
            Message::ServiceRequest { .. } => SERVICE_REQUEST,
            Message::ServiceAccept { .. } => SERVICE_ACCEPT,
            Message::ExtInfo { .. } => EXT_INFO,
            Message::KexInit(_) => KEXINIT,
            Message::NewKeys => NEWKEYS,
            Message::KexEcdhInit { .. }
            | Message::KexDhInit { .. }
            | Message::KexDhGexRequestOld { .. } => KEX_30,
            Message::KexEcdhReply { .. }
            | Message::KexDhReply { .. }
            | Message::KexDhGexGroup { .. } => KEX_31,
            Message::KexDhGexInit { .. } => KEX_DH_GEX_INIT,
            Message::KexDhGexReply { .. } => KEX_DH_GEX_REPLY,
            Message::KexDhGexRequest { .. } => KEX_DH_GEX_REQUEST,
            Message::UserauthRequest { .. } => USERAUTH_REQUEST,
            Message::UserauthFailure { .. } => USERAUTH_FAILURE,
            Message::UserauthSuccess => USERAUTH_SUCCESS,
            Message::UserauthBanner { .. } => USERAUTH_BANNER,
            Message::UserauthPkOk { .. }
            | Message::UserauthPasswdChangereq { .. }
            | Message::UserauthInfoRequest { .. } => USERAUTH_60,
            Message::UserauthInfoResponse { .. } => USERAUTH_INFO_RESPONSE,
            Message::GlobalRequest { .. } => GLOBAL_REQUEST,
            Message::RequestSuccess { .. } => REQUEST_SUCCESS,
            Message::RequestFailure => REQUEST_FAILURE,
            Message::ChannelOpen { .. } => CHANNEL_OPEN,
            Message::ChannelOpenConfirmation { .. } => CHANNEL_OPEN_CONFIRMATION,
            Message::ChannelOpenFailure { .. } => CHANNEL_OPEN_FAILURE,
            Message::ChannelWindowAdjust { .. } => CHANNEL_WINDOW_ADJUST,
            Message::ChannelData { .. } => CHANNEL_DATA,
            Message::ChannelExtendedData { .. } => CHANNEL_EXTENDED_DATA,
            Message::ChannelEof { .. } => CHANNEL_EOF,
            Message::ChannelClose { .. } => CHANNEL_CLOSE,
            Message::ChannelRequest { .. } => CHANNEL_REQUEST,
            Message::ChannelSuccess { .. } => CHANNEL_SUCCESS,
            Message::ChannelFailure { .. } => CHANNEL_FAILURE,
            Message::Unknown { msg_type, .. } => *msg_type,
        }
    }
}
