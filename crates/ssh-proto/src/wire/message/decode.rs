//! Decoding of typed messages.

use super::{list_capacity, KexFlavor, KexInit, Message, UserauthFlavor, UserauthMethod};
use crate::error::{Error, Result};
use crate::wire::msg::*;
use crate::wire::Reader;

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
}
