//! SFTP replies (server to client) and their encoding.

use crate::error::{Error, Result};
use crate::wire::{Put, Reader};

use super::request::{finish, text};
use super::{msg, status, Attrs, NameEntry, VERSION};

/// A reply from server to client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// `SSH_FXP_STATUS`: the outcome of a request that returns nothing else.
    Status {
        /// An `SSH_FX_*` code (see [`status`](super::status)).
        code: u32,
        /// Human-readable text.
        message: String,
    },
    /// `SSH_FXP_HANDLE`: an opaque handle, at most 256 bytes.
    Handle(Vec<u8>),
    /// `SSH_FXP_DATA`: bytes read.
    Data(Vec<u8>),
    /// `SSH_FXP_NAME`: names with attributes.
    Name(Vec<NameEntry>),
    /// `SSH_FXP_ATTRS`: attributes.
    Attrs(Attrs),
    /// The reply data of an extended request (statvfs, limits, check-file, …).
    ExtendedReply(Vec<u8>),
}

impl Response {
    /// `SSH_FX_OK` with the text "Success".
    pub fn ok() -> Response {
        Response::Status {
            code: status::OK,
            message: "Success".into(),
        }
    }

    /// A status reply with `code` and `message`.
    pub fn status(code: u32, message: impl Into<String>) -> Response {
        Response::Status {
            code,
            message: message.into(),
        }
    }

    /// Appends the whole packet to `b`.
    pub fn encode(&self, id: u32, b: &mut Vec<u8>) {
        if let Response::Data(d) = self {
            // Writes its own length.
            return encode_data(id, d, b);
        }
        let start = b.len();
        b.put_u32(0);
        match self {
            Response::Status { code, message } => {
                b.push(msg::STATUS);
                b.put_u32(id);
                b.put_u32(*code);
                b.put_str(message);
                b.put_str("");
            }
            Response::Handle(h) => {
                b.push(msg::HANDLE);
                b.put_u32(id);
                b.put_string(h);
            }
            Response::Data(_) => unreachable!("encoded above"),
            Response::Name(entries) => {
                b.push(msg::NAME);
                b.put_u32(id);
                b.put_u32(entries.len() as u32);
                for e in entries {
                    b.put_str(&e.filename);
                    b.put_str(&e.longname);
                    e.attrs.encode(b);
                }
            }
            Response::Attrs(a) => {
                b.push(msg::ATTRS);
                b.put_u32(id);
                a.encode(b);
            }
            Response::ExtendedReply(d) => {
                b.push(msg::EXTENDED_REPLY);
                b.put_u32(id);
                b.extend_from_slice(d);
            }
        }
        finish(b, start);
    }

    /// Decodes one packet payload (type byte onwards): `(id, response)`.
    pub fn decode(payload: &[u8]) -> Result<(u32, Response)> {
        let (&t, rest) = payload
            .split_first()
            .ok_or_else(|| Error::protocol("empty SFTP packet"))?;
        let mut r = Reader::new(rest);
        let id = r.u32()?;
        let resp = match t {
            msg::STATUS => {
                let code = r.u32()?;
                // Version 3 servers may omit the message and language.
                let message = if r.remaining() > 0 {
                    text(&mut r)?
                } else {
                    String::new()
                };
                Response::Status { code, message }
            }
            msg::HANDLE => Response::Handle(r.string()?.to_vec()),
            msg::DATA => Response::Data(r.string()?.to_vec()),
            msg::NAME => {
                let n = r.u32()?;
                // Each entry takes at least 12 bytes.
                if n as usize > r.remaining() / 12 {
                    return Err(Error::protocol(format!(
                        "SFTP NAME reply claims {n} entries in {} bytes",
                        r.remaining()
                    )));
                }
                let mut v = Vec::with_capacity(n as usize);
                for _ in 0..n {
                    v.push(NameEntry {
                        filename: text(&mut r)?,
                        longname: text(&mut r)?,
                        attrs: Attrs::decode(&mut r)?,
                    });
                }
                Response::Name(v)
            }
            msg::ATTRS => Response::Attrs(Attrs::decode(&mut r)?),
            msg::EXTENDED_REPLY => Response::ExtendedReply(r.rest().to_vec()),
            t => {
                return Err(Error::protocol(format!(
                    "unknown SFTP reply type {t} (id {id})"
                )))
            }
        };
        Ok((id, resp))
    }
}

/// Appends a DATA packet built straight from a borrowed slice.
pub fn encode_data(id: u32, data: &[u8], b: &mut Vec<u8>) {
    b.put_u32(9 + data.len() as u32);
    b.push(msg::DATA);
    b.put_u32(id);
    b.put_string(data);
}

/// Appends a WRITE request built straight from a borrowed slice.
pub fn encode_write(id: u32, handle: &[u8], offset: u64, data: &[u8], b: &mut Vec<u8>) {
    b.put_u32((1 + 4 + 4 + handle.len() + 8 + 4 + data.len()) as u32);
    b.push(msg::WRITE);
    b.put_u32(id);
    b.put_string(handle);
    b.put_u64(offset);
    b.put_string(data);
}

/// The INIT packet (client) with extension pairs (none from clients usually).
pub fn encode_init(b: &mut Vec<u8>) {
    b.put_u32(5);
    b.push(msg::INIT);
    b.put_u32(VERSION);
}

/// The VERSION packet (server) with its extension pairs.
pub fn encode_version(extensions: &[(&str, &str)], b: &mut Vec<u8>) {
    let start = b.len();
    b.put_u32(0);
    b.push(msg::VERSION);
    b.put_u32(VERSION);
    for (n, v) in extensions {
        b.put_str(n);
        b.put_str(v);
    }
    finish(b, start);
}
