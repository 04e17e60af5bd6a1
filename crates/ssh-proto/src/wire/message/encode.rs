//! Encoding of typed messages.

use super::{Message, UserauthMethod};
use crate::wire::Put;

impl Message<'_> {
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
