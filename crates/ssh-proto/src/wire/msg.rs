//! Message numbers (RFC 4250 §4.1) and typed messages with encode/decode.
//!
//! [`Message`] borrows from the packet payload it was decoded from.
//! `Message::decode(payload)` then `msg.encode(&mut out)` gives back the same
//! bytes for every message this crate understands.

pub const DISCONNECT: u8 = 1;
pub const IGNORE: u8 = 2;
pub const UNIMPLEMENTED: u8 = 3;
pub const DEBUG: u8 = 4;
pub const SERVICE_REQUEST: u8 = 5;
pub const SERVICE_ACCEPT: u8 = 6;
pub const EXT_INFO: u8 = 7;
pub const KEXINIT: u8 = 20;
pub const NEWKEYS: u8 = 21;
/// KEXDH_INIT / KEX_ECDH_INIT / KEX_HYBRID_INIT / KEX_DH_GEX_REQUEST_OLD
pub const KEX_30: u8 = 30;
/// KEXDH_REPLY / KEX_ECDH_REPLY / KEX_DH_GEX_GROUP
pub const KEX_31: u8 = 31;
pub const KEX_DH_GEX_INIT: u8 = 32;
pub const KEX_DH_GEX_REPLY: u8 = 33;
pub const KEX_DH_GEX_REQUEST: u8 = 34;
pub const USERAUTH_REQUEST: u8 = 50;
pub const USERAUTH_FAILURE: u8 = 51;
pub const USERAUTH_SUCCESS: u8 = 52;
pub const USERAUTH_BANNER: u8 = 53;
/// USERAUTH_PK_OK / USERAUTH_PASSWD_CHANGEREQ / USERAUTH_INFO_REQUEST
pub const USERAUTH_60: u8 = 60;
pub const USERAUTH_INFO_RESPONSE: u8 = 61;
pub const GLOBAL_REQUEST: u8 = 80;
pub const REQUEST_SUCCESS: u8 = 81;
pub const REQUEST_FAILURE: u8 = 82;
pub const CHANNEL_OPEN: u8 = 90;
pub const CHANNEL_OPEN_CONFIRMATION: u8 = 91;
pub const CHANNEL_OPEN_FAILURE: u8 = 92;
pub const CHANNEL_WINDOW_ADJUST: u8 = 93;
pub const CHANNEL_DATA: u8 = 94;
pub const CHANNEL_EXTENDED_DATA: u8 = 95;
pub const CHANNEL_EOF: u8 = 96;
pub const CHANNEL_CLOSE: u8 = 97;
pub const CHANNEL_REQUEST: u8 = 98;
pub const CHANNEL_SUCCESS: u8 = 99;
pub const CHANNEL_FAILURE: u8 = 100;

/// Disconnect reason codes (RFC 4250 §4.2.2).
pub mod disconnect {
    pub const HOST_NOT_ALLOWED_TO_CONNECT: u32 = 1;
    pub const PROTOCOL_ERROR: u32 = 2;
    pub const KEY_EXCHANGE_FAILED: u32 = 3;
    pub const MAC_ERROR: u32 = 5;
    pub const COMPRESSION_ERROR: u32 = 6;
    pub const SERVICE_NOT_AVAILABLE: u32 = 7;
    pub const PROTOCOL_VERSION_NOT_SUPPORTED: u32 = 8;
    pub const HOST_KEY_NOT_VERIFIABLE: u32 = 9;
    pub const CONNECTION_LOST: u32 = 10;
    pub const BY_APPLICATION: u32 = 11;
    pub const TOO_MANY_CONNECTIONS: u32 = 12;
    pub const AUTH_CANCELLED_BY_USER: u32 = 13;
    pub const NO_MORE_AUTH_METHODS_AVAILABLE: u32 = 14;
    pub const ILLEGAL_USER_NAME: u32 = 15;
}

/// Channel open failure reason codes (RFC 4254 §5.1).
pub mod open_failure {
    pub const ADMINISTRATIVELY_PROHIBITED: u32 = 1;
    pub const CONNECT_FAILED: u32 = 2;
    pub const UNKNOWN_CHANNEL_TYPE: u32 = 3;
    pub const RESOURCE_SHORTAGE: u32 = 4;
}

/// Human name of a message number, for error texts and logs.
pub fn name(n: u8) -> &'static str {
    match n {
        DISCONNECT => "DISCONNECT",
        IGNORE => "IGNORE",
        UNIMPLEMENTED => "UNIMPLEMENTED",
        DEBUG => "DEBUG",
        SERVICE_REQUEST => "SERVICE_REQUEST",
        SERVICE_ACCEPT => "SERVICE_ACCEPT",
        EXT_INFO => "EXT_INFO",
        KEXINIT => "KEXINIT",
        NEWKEYS => "NEWKEYS",
        30..=49 => "KEX method specific",
        USERAUTH_REQUEST => "USERAUTH_REQUEST",
        USERAUTH_FAILURE => "USERAUTH_FAILURE",
        USERAUTH_SUCCESS => "USERAUTH_SUCCESS",
        USERAUTH_BANNER => "USERAUTH_BANNER",
        60..=79 => "USERAUTH method specific",
        GLOBAL_REQUEST => "GLOBAL_REQUEST",
        REQUEST_SUCCESS => "REQUEST_SUCCESS",
        REQUEST_FAILURE => "REQUEST_FAILURE",
        CHANNEL_OPEN => "CHANNEL_OPEN",
        CHANNEL_OPEN_CONFIRMATION => "CHANNEL_OPEN_CONFIRMATION",
        CHANNEL_OPEN_FAILURE => "CHANNEL_OPEN_FAILURE",
        CHANNEL_WINDOW_ADJUST => "CHANNEL_WINDOW_ADJUST",
        CHANNEL_DATA => "CHANNEL_DATA",
        CHANNEL_EXTENDED_DATA => "CHANNEL_EXTENDED_DATA",
        CHANNEL_EOF => "CHANNEL_EOF",
        CHANNEL_CLOSE => "CHANNEL_CLOSE",
        CHANNEL_REQUEST => "CHANNEL_REQUEST",
        CHANNEL_SUCCESS => "CHANNEL_SUCCESS",
        CHANNEL_FAILURE => "CHANNEL_FAILURE",
        _ => "unknown",
    }
}

// ------------------------------------------------------------ typed messages

use std::fmt;

use super::{Put, Reader};
use crate::error::{Error, Result};

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

impl<'a> Message<'a> {
    /// Decodes a payload whose number has one meaning in this crate; see the
    /// type's documentation for the numbers that come back as `Unknown`.
    /// Never panics; truncated fields, bad UTF-8 / ASCII, negative mpints
    /// and (where the layout has no open-ended tail) trailing bytes are
    /// protocol errors.
    pub fn decode(payload: &'a [u8]) -> Result<Message<'a>> {
        Self::decode_in(payload, None, None)
    }

    /// Like [`decode`](Self::decode), with 30..=49 read as messages of the
    /// given key exchange flavor (numbers the flavor does not define stay
    /// `Unknown`).
    pub fn decode_kex(payload: &'a [u8], flavor: KexFlavor) -> Result<Message<'a>> {
        Self::decode_in(payload, Some(flavor), None)
    }

    /// Like [`decode`](Self::decode), with 60 read as the message the given
    /// pending authentication method defines.
    pub fn decode_userauth_60(payload: &'a [u8], flavor: UserauthFlavor) -> Result<Message<'a>> {
        Self::decode_in(payload, None, Some(flavor))
    }

    fn decode_in(
        payload: &'a [u8],
        kex: Option<KexFlavor>,
        auth: Option<UserauthFlavor>,
    ) -> Result<Message<'a>> {
        let Some((&t, body)) = payload.split_first() else {
            return Err(Error::protocol("empty message payload"));
        };
        let mut r = Reader::new(body);
        let parsed = match Self::parse(t, &mut r, kex, auth) {
            Ok(Some(m)) => r.finish().map(|()| Some(m)),
            other => other,
        };
        match parsed {
            Ok(Some(m)) => Ok(m),
            Ok(None) => Ok(Message::Unknown {
                msg_type: t,
                rest: body,
            }),
            Err(e) => Err(Error::protocol(format!(
                "malformed {} (type {t}): {}",
                name(t),
                e.detail()
            ))),
        }
    }

    /// Reads the fields after the message number; `None` for a number not
    /// interpreted in this context.
    fn parse(
        t: u8,
        r: &mut Reader<'a>,
        kex: Option<KexFlavor>,
        auth: Option<UserauthFlavor>,
    ) -> Result<Option<Message<'a>>> {
        let m = match t {
            DISCONNECT => Message::Disconnect {
                reason: r.u32()?,
                description: r.utf8()?,
                language: r.utf8()?,
            },
            IGNORE => Message::Ignore { data: r.string()? },
            UNIMPLEMENTED => Message::Unimplemented { seq: r.u32()? },
            DEBUG => Message::Debug {
                always_display: r.bool()?,
                message: r.utf8()?,
                language: r.utf8()?,
            },
            SERVICE_REQUEST => Message::ServiceRequest { service: r.utf8()? },
            SERVICE_ACCEPT => Message::ServiceAccept { service: r.utf8()? },
            EXT_INFO => {
                let n = r.u32()?;
                let mut extensions = Vec::with_capacity(list_capacity(n, r.remaining(), 8));
                for _ in 0..n {
                    extensions.push((r.utf8()?, r.string()?));
                }
                Message::ExtInfo { extensions }
            }
            KEXINIT => {
                let cookie: &'a [u8; 16] = r
                    .bytes(16)?
                    .try_into()
                    .map_err(|_| Error::protocol("KEXINIT cookie"))?;
                Message::KexInit(KexInit {
                    cookie,
                    kex_algorithms: r.name_list()?,
                    server_host_key_algorithms: r.name_list()?,
                    encryption_c2s: r.name_list()?,
                    encryption_s2c: r.name_list()?,
                    mac_c2s: r.name_list()?,
                    mac_s2c: r.name_list()?,
                    compression_c2s: r.name_list()?,
                    compression_s2c: r.name_list()?,
                    languages_c2s: r.name_list()?,
                    languages_s2c: r.name_list()?,
                    first_kex_packet_follows: r.bool()?,
                    reserved: r.u32()?,
                })
            }
            NEWKEYS => Message::NewKeys,
            KEX_30 => match kex {
                Some(KexFlavor::Ecdh) => Message::KexEcdhInit { q_c: r.string()? },
                Some(KexFlavor::Dh) => Message::KexDhInit {
                    e: r.mpint_positive()?,
                },
                Some(KexFlavor::DhGex) => Message::KexDhGexRequestOld { n: r.u32()? },
                None => return Ok(None),
            },
            KEX_31 => match kex {
                Some(KexFlavor::Ecdh) => Message::KexEcdhReply {
                    k_s: r.string()?,
                    q_s: r.string()?,
                    signature: r.string()?,
                },
                Some(KexFlavor::Dh) => Message::KexDhReply {
                    k_s: r.string()?,
                    f: r.mpint_positive()?,
                    signature: r.string()?,
                },
                Some(KexFlavor::DhGex) => Message::KexDhGexGroup {
                    p: r.mpint_positive()?,
                    g: r.mpint_positive()?,
                },
                None => return Ok(None),
            },
            KEX_DH_GEX_INIT | KEX_DH_GEX_REPLY | KEX_DH_GEX_REQUEST
                if matches!(kex, None | Some(KexFlavor::DhGex)) =>
            {
                match t {
                    KEX_DH_GEX_INIT => Message::KexDhGexInit {
                        e: r.mpint_positive()?,
                    },
                    KEX_DH_GEX_REPLY => Message::KexDhGexReply {
                        k_s: r.string()?,
                        f: r.mpint_positive()?,
                        signature: r.string()?,
                    },
                    _ => Message::KexDhGexRequest {
                        min: r.u32()?,
                        n: r.u32()?,
                        max: r.u32()?,
                    },
                }
            }
            USERAUTH_REQUEST => {
                let user = r.utf8()?;
                let service = r.utf8()?;
                let method = r.utf8()?;
                let method = match method {
                    "none" => UserauthMethod::None,
                    "password" => {
                        let change = r.bool()?;
                        let password = r.utf8()?;
                        let new_password = if change { Some(r.utf8()?) } else { None };
                        UserauthMethod::Password {
                            password,
                            new_password,
                        }
                    }
                    "publickey" => {
                        let signed = r.bool()?;
                        let algorithm = r.utf8()?;
                        let key_blob = r.string()?;
                        let signature = if signed { Some(r.string()?) } else { None };
                        UserauthMethod::PublicKey {
                            algorithm,
                            key_blob,
                            signature,
                        }
                    }
                    "keyboard-interactive" => UserauthMethod::KeyboardInteractive {
                        language: r.utf8()?,
                        submethods: r.utf8()?,
                    },
                    _ => UserauthMethod::Other {
                        method,
                        rest: r.rest(),
                    },
                };
                Message::UserauthRequest {
                    user,
                    service,
                    method,
                }
            }
            USERAUTH_FAILURE => Message::UserauthFailure {
                methods: r.name_list()?,
                partial_success: r.bool()?,
            },
            USERAUTH_SUCCESS => Message::UserauthSuccess,
            USERAUTH_BANNER => Message::UserauthBanner {
                message: r.utf8()?,
                language: r.utf8()?,
            },
            USERAUTH_60 => match auth {
                Some(UserauthFlavor::PublicKey) => Message::UserauthPkOk {
                    algorithm: r.utf8()?,
                    key_blob: r.string()?,
                },
                Some(UserauthFlavor::Password) => Message::UserauthPasswdChangereq {
                    prompt: r.utf8()?,
                    language: r.utf8()?,
                },
                Some(UserauthFlavor::KeyboardInteractive) => {
                    let name = r.utf8()?;
                    let instruction = r.utf8()?;
                    let language = r.utf8()?;
                    let n = r.u32()?;
                    let mut prompts = Vec::with_capacity(list_capacity(n, r.remaining(), 5));
                    for _ in 0..n {
                        prompts.push((r.utf8()?, r.bool()?));
                    }
                    Message::UserauthInfoRequest {
                        name,
                        instruction,
                        language,
                        prompts,
                    }
                }
                None => return Ok(None),
            },
            USERAUTH_INFO_RESPONSE => {
                let n = r.u32()?;
                let mut responses = Vec::with_capacity(list_capacity(n, r.remaining(), 4));
                for _ in 0..n {
                    responses.push(r.utf8()?);
                }
                Message::UserauthInfoResponse { responses }
            }
            GLOBAL_REQUEST => Message::GlobalRequest {
                name: r.utf8()?,
                want_reply: r.bool()?,
                data: r.rest(),
            },
            REQUEST_SUCCESS => Message::RequestSuccess { data: r.rest() },
            REQUEST_FAILURE => Message::RequestFailure,
            CHANNEL_OPEN => Message::ChannelOpen {
                channel_type: r.utf8()?,
                sender: r.u32()?,
                initial_window: r.u32()?,
                max_packet: r.u32()?,
                data: r.rest(),
            },
            CHANNEL_OPEN_CONFIRMATION => Message::ChannelOpenConfirmation {
                recipient: r.u32()?,
                sender: r.u32()?,
                initial_window: r.u32()?,
                max_packet: r.u32()?,
                data: r.rest(),
            },
            CHANNEL_OPEN_FAILURE => Message::ChannelOpenFailure {
                recipient: r.u32()?,
                reason: r.u32()?,
                description: r.utf8()?,
                language: r.utf8()?,
            },
            CHANNEL_WINDOW_ADJUST => Message::ChannelWindowAdjust {
                recipient: r.u32()?,
                bytes_to_add: r.u32()?,
            },
            CHANNEL_DATA => Message::ChannelData {
                recipient: r.u32()?,
                data: r.string()?,
            },
            CHANNEL_EXTENDED_DATA => Message::ChannelExtendedData {
                recipient: r.u32()?,
                data_type: r.u32()?,
                data: r.string()?,
            },
            CHANNEL_EOF => Message::ChannelEof {
                recipient: r.u32()?,
            },
            CHANNEL_CLOSE => Message::ChannelClose {
                recipient: r.u32()?,
            },
            CHANNEL_REQUEST => Message::ChannelRequest {
                recipient: r.u32()?,
                request_type: r.utf8()?,
                want_reply: r.bool()?,
                data: r.rest(),
            },
            CHANNEL_SUCCESS => Message::ChannelSuccess {
                recipient: r.u32()?,
            },
            CHANNEL_FAILURE => Message::ChannelFailure {
                recipient: r.u32()?,
            },
            _ => return Ok(None),
        };
        Ok(Some(m))
    }

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

    /// Appends the payload (message number first) to `out`, byte for byte
    /// as the core's own encoders write it.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(self.msg_type());
        match self {
            Message::Disconnect {
                reason,
                description,
                language,
            } => {
                out.put_u32(*reason);
                out.put_str(description);
                out.put_str(language);
            }
            Message::Ignore { data } => out.put_string(data),
            Message::Unimplemented { seq } => out.put_u32(*seq),
            Message::Debug {
                always_display,
                message,
                language,
            } => {
                out.put_bool(*always_display);
                out.put_str(message);
                out.put_str(language);
            }
            Message::ServiceRequest { service } | Message::ServiceAccept { service } => {
                out.put_str(service)
            }
            Message::ExtInfo { extensions } => {
                out.put_u32(extensions.len() as u32);
                for (name, value) in extensions {
                    out.put_str(name);
                    out.put_string(value);
                }
            }
            Message::KexInit(k) => {
                out.put_raw(k.cookie);
                for list in [
                    k.kex_algorithms,
                    k.server_host_key_algorithms,
                    k.encryption_c2s,
                    k.encryption_s2c,
                    k.mac_c2s,
                    k.mac_s2c,
                    k.compression_c2s,
                    k.compression_s2c,
                    k.languages_c2s,
                    k.languages_s2c,
                ] {
                    out.put_str(list);
                }
                out.put_bool(k.first_kex_packet_follows);
                out.put_u32(k.reserved);
            }
            Message::NewKeys | Message::UserauthSuccess | Message::RequestFailure => {}
            Message::KexEcdhInit { q_c } => out.put_string(q_c),
            Message::KexEcdhReply {
                k_s,
                q_s,
                signature,
            } => {
                out.put_string(k_s);
                out.put_string(q_s);
                out.put_string(signature);
            }
            Message::KexDhInit { e } | Message::KexDhGexInit { e } => out.put_mpint_positive(e),
            Message::KexDhReply { k_s, f, signature }
            | Message::KexDhGexReply { k_s, f, signature } => {
                out.put_string(k_s);
                out.put_mpint_positive(f);
                out.put_string(signature);
            }
            Message::KexDhGexRequestOld { n } => out.put_u32(*n),
            Message::KexDhGexRequest { min, n, max } => {
                out.put_u32(*min);
                out.put_u32(*n);
                out.put_u32(*max);
            }
            Message::KexDhGexGroup { p, g } => {
                out.put_mpint_positive(p);
                out.put_mpint_positive(g);
            }
            Message::UserauthRequest {
                user,
                service,
                method,
            } => {
                out.put_str(user);
                out.put_str(service);
                out.put_str(method.name());
                match method {
                    UserauthMethod::None => {}
                    UserauthMethod::Password {
                        password,
                        new_password,
                    } => {
                        out.put_bool(new_password.is_some());
                        out.put_str(password);
                        if let Some(new) = new_password {
                            out.put_str(new);
                        }
                    }
                    UserauthMethod::PublicKey {
                        algorithm,
                        key_blob,
                        signature,
                    } => {
                        out.put_bool(signature.is_some());
                        out.put_str(algorithm);
                        out.put_string(key_blob);
                        if let Some(sig) = signature {
                            out.put_string(sig);
                        }
                    }
                    UserauthMethod::KeyboardInteractive {
                        language,
                        submethods,
                    } => {
                        out.put_str(language);
                        out.put_str(submethods);
                    }
                    UserauthMethod::Other { rest, .. } => out.put_raw(rest),
                }
            }
            Message::UserauthFailure {
                methods,
                partial_success,
            } => {
                out.put_str(methods);
                out.put_bool(*partial_success);
            }
            Message::UserauthBanner { message, language } => {
                out.put_str(message);
                out.put_str(language);
            }
            Message::UserauthPkOk {
                algorithm,
                key_blob,
            } => {
                out.put_str(algorithm);
                out.put_string(key_blob);
            }
            Message::UserauthPasswdChangereq { prompt, language } => {
                out.put_str(prompt);
                out.put_str(language);
            }
            Message::UserauthInfoRequest {
                name,
                instruction,
                language,
                prompts,
            } => {
                out.put_str(name);
                out.put_str(instruction);
                out.put_str(language);
                out.put_u32(prompts.len() as u32);
                for (text, echo) in prompts {
                    out.put_str(text);
                    out.put_bool(*echo);
                }
            }
            Message::UserauthInfoResponse { responses } => {
                out.put_u32(responses.len() as u32);
                for r in responses {
                    out.put_str(r);
                }
            }
            Message::GlobalRequest {
                name,
                want_reply,
                data,
            } => {
                out.put_str(name);
                out.put_bool(*want_reply);
                out.put_raw(data);
            }
            Message::RequestSuccess { data } => out.put_raw(data),
            Message::ChannelOpen {
                channel_type,
                sender,
                initial_window,
                max_packet,
                data,
            } => {
                out.put_str(channel_type);
                out.put_u32(*sender);
                out.put_u32(*initial_window);
                out.put_u32(*max_packet);
                out.put_raw(data);
            }
            Message::ChannelOpenConfirmation {
                recipient,
                sender,
                initial_window,
                max_packet,
                data,
            } => {
                out.put_u32(*recipient);
                out.put_u32(*sender);
                out.put_u32(*initial_window);
                out.put_u32(*max_packet);
                out.put_raw(data);
            }
            Message::ChannelOpenFailure {
                recipient,
                reason,
                description,
                language,
            } => {
                out.put_u32(*recipient);
                out.put_u32(*reason);
                out.put_str(description);
                out.put_str(language);
            }
            Message::ChannelWindowAdjust {
                recipient,
                bytes_to_add,
            } => {
                out.put_u32(*recipient);
                out.put_u32(*bytes_to_add);
            }
            Message::ChannelData { recipient, data } => {
                out.put_u32(*recipient);
                out.put_string(data);
            }
            Message::ChannelExtendedData {
                recipient,
                data_type,
                data,
            } => {
                out.put_u32(*recipient);
                out.put_u32(*data_type);
                out.put_string(data);
            }
            Message::ChannelEof { recipient }
            | Message::ChannelClose { recipient }
            | Message::ChannelSuccess { recipient }
            | Message::ChannelFailure { recipient } => out.put_u32(*recipient),
            Message::ChannelRequest {
                recipient,
                request_type,
                want_reply,
                data,
            } => {
                out.put_u32(*recipient);
                out.put_str(request_type);
                out.put_bool(*want_reply);
                out.put_raw(data);
            }
            Message::Unknown { rest, .. } => out.put_raw(rest),
        }
    }

    /// The encoded payload in a new vector.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.encode(&mut v);
        v
    }
}

#[cfg(test)]
mod tests {
    //! Encodings checked against byte sequences written the way the core's
    //! hand-written encoders write them (auth/client.rs `request_header`,
    //! auth/server.rs `fail_with` / `info_request`, transport `disconnect` /
    //! `send_newkeys`, connection `open_failure` / `send_stream`).
    use super::*;

    fn same(m: &Message<'_>, core: impl FnOnce(&mut Vec<u8>)) {
        let mut want = Vec::new();
        core(&mut want);
        assert_eq!(m.to_vec(), want, "{m:?}");
        assert_eq!(&Message::decode(&want).unwrap(), m);
    }

    #[test]
    fn matches_core_encoders() {
        same(
            &Message::Disconnect {
                reason: 2,
                description: "bad",
                language: "",
            },
            |b| {
                b.push(DISCONNECT);
                b.put_u32(2);
                b.put_str("bad");
                b.put_str("");
            },
        );
        same(
            &Message::UserauthRequest {
                user: "alice",
                service: "ssh-connection",
                method: UserauthMethod::Password {
                    password: "old",
                    new_password: Some("new"),
                },
            },
            |b| {
                b.push(USERAUTH_REQUEST);
                b.put_str("alice");
                b.put_str("ssh-connection");
                b.put_str("password");
                b.put_bool(true);
                b.put_str("old");
                b.put_str("new");
            },
        );
        same(
            &Message::UserauthRequest {
                user: "u",
                service: "ssh-connection",
                method: UserauthMethod::PublicKey {
                    algorithm: "ssh-ed25519",
                    key_blob: b"K",
                    signature: Some(b"S"),
                },
            },
            |b| {
                b.push(USERAUTH_REQUEST);
                b.put_str("u");
                b.put_str("ssh-connection");
                b.put_str("publickey");
                b.put_bool(true);
                b.put_str("ssh-ed25519");
                b.put_string(b"K");
                b.put_string(b"S");
            },
        );
        same(
            &Message::UserauthFailure {
                methods: "publickey,password",
                partial_success: false,
            },
            |b| {
                b.push(USERAUTH_FAILURE);
                b.put_name_list(&["publickey", "password"]);
                b.put_bool(false);
            },
        );
        same(
            &Message::ExtInfo {
                extensions: vec![("server-sig-algs", b"ssh-ed25519,rsa-sha2-256")],
            },
            |b| {
                b.push(EXT_INFO);
                b.put_u32(1);
                b.put_str("server-sig-algs");
                b.put_name_list(&["ssh-ed25519", "rsa-sha2-256"]);
            },
        );
        same(
            &Message::ChannelOpenFailure {
                recipient: 9,
                reason: open_failure::CONNECT_FAILED,
                description: "no",
                language: "",
            },
            |b| {
                b.push(CHANNEL_OPEN_FAILURE);
                b.put_u32(9);
                b.put_u32(2);
                b.put_str("no");
                b.put_str("");
            },
        );
        same(
            &Message::ChannelExtendedData {
                recipient: 3,
                data_type: 1,
                data: b"err\n",
            },
            |b| {
                b.push(CHANNEL_EXTENDED_DATA);
                b.put_u32(3);
                b.put_u32(1);
                b.put_string(b"err\n");
            },
        );
        let mut exit = Vec::new();
        exit.put_u32(7);
        same(
            &Message::ChannelRequest {
                recipient: 0,
                request_type: "exit-status",
                want_reply: false,
                data: &exit,
            },
            |b| {
                b.push(CHANNEL_REQUEST);
                b.put_u32(0);
                b.put_str("exit-status");
                b.put_bool(false);
                b.put_raw(&exit);
            },
        );
        same(&Message::NewKeys, |b| b.push(NEWKEYS));
    }

    #[test]
    fn flavored_numbers() {
        let mut p = vec![KEX_31];
        p.put_string(b"key");
        p.put_mpint_positive(&[0x80, 1]);
        p.put_string(b"sig");
        assert_eq!(
            Message::decode(&p).unwrap(),
            Message::Unknown {
                msg_type: KEX_31,
                rest: &p[1..]
            }
        );
        assert_eq!(
            Message::decode_kex(&p, KexFlavor::Dh).unwrap(),
            Message::KexDhReply {
                k_s: b"key",
                f: &[0x80, 1],
                signature: b"sig"
            }
        );
        // As ECDH the mpint's leading zero byte is part of the string.
        assert_eq!(
            Message::decode_kex(&p, KexFlavor::Ecdh).unwrap(),
            Message::KexEcdhReply {
                k_s: b"key",
                q_s: &[0, 0x80, 1],
                signature: b"sig"
            }
        );
        assert!(Message::decode_kex(&p, KexFlavor::DhGex).is_err());
        assert_eq!(
            KexFlavor::for_kex("curve25519-sha256"),
            Some(KexFlavor::Ecdh)
        );
        assert_eq!(
            KexFlavor::for_kex("diffie-hellman-group14-sha256"),
            Some(KexFlavor::Dh)
        );
        assert_eq!(
            KexFlavor::for_kex("diffie-hellman-group-exchange-sha1"),
            Some(KexFlavor::DhGex)
        );
        assert_eq!(KexFlavor::for_kex("gss-gex-sha1-x"), None);
    }

    #[test]
    fn trailing_bytes_rejected_only_for_closed_layouts() {
        let e = Message::decode(&[CHANNEL_EOF, 0, 0, 0, 1, 0]).unwrap_err();
        assert!(e.to_string().contains("CHANNEL_EOF"), "{e}");
        assert_eq!(
            Message::decode(&[REQUEST_SUCCESS, 1, 2]).unwrap(),
            Message::RequestSuccess { data: &[1, 2] }
        );
        assert!(Message::decode(&[]).is_err());
    }

    #[test]
    fn huge_list_count_does_not_allocate() {
        let m = Message::decode(&[USERAUTH_INFO_RESPONSE, 0xff, 0xff, 0xff, 0xff]);
        assert!(m.is_err());
        let m = Message::decode(&[EXT_INFO, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]);
        assert!(m.is_err());
    }

    #[test]
    fn debug_hides_passwords() {
        let m = UserauthMethod::Password {
            password: "hunter2",
            new_password: Some("hunter3"),
        };
        let s = format!("{m:?}");
        assert!(!s.contains("hunter"), "{s}");
    }
}
