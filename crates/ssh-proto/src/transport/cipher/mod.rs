//! Binary packet protection: encryption and MAC of the SSH binary packet
//! (RFC 4253 §6, RFC 4344 CTR modes, RFC 6668 SHA-2 MACs, RFC 5647 and
//! OpenSSH `PROTOCOL` §1.6 AES-GCM, OpenSSH `PROTOCOL` §1.7 encrypt-then-MAC,
//! OpenSSH `PROTOCOL.chacha20poly1305`).
//!
//! Everything works in place on the caller's buffer, with no allocation per
//! packet: cipher states and pre-keyed HMAC states are built once per key
//! (in [`Sealer::new`] / [`Opener::new`]) and reused.
//!
//! A packet as seen here is `uint32 packet_length || byte padding_length ||
//! payload || padding`; the tag or MAC (if any) travels right after it and is
//! handled as a separate slice.

mod aead;
mod block;
mod mac;
#[cfg(test)]
mod tests;

use cipher::{InOutBuf, StreamCipherCore};
use subtle::ConstantTimeEq;

use crate::error::{Error, ErrorKind, Result};
use aead::{ChaChaKeys, Gcm};
use block::Enc;
use mac::MacKey;

// ------------------------------------------------------------------ specs

/// Static description of a packet cipher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CipherSpec {
    pub name: &'static str,
    /// Bytes of key material to derive (RFC 4253 §7.2 letters C/D).
    pub key_len: usize,
    /// Bytes of IV to derive (letters A/B); 0 for chacha20-poly1305 and none.
    pub iv_len: usize,
    /// Padding multiple.
    pub block_size: usize,
    /// Authenticated encryption: no separate MAC is negotiated/used.
    pub aead: bool,
    /// Tag bytes appended by the AEAD (0 for non-AEAD ciphers).
    pub tag_len: usize,
}

/// Static description of a MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MacSpec {
    pub name: &'static str,
    /// Bytes of key material to derive (letters E/F).
    pub key_len: usize,
    /// Bytes of MAC appended to each packet.
    pub out_len: usize,
    /// Encrypt-then-MAC (`-etm@openssh.com`): length field in clear.
    pub etm: bool,
}

const fn cs(
    name: &'static str,
    key_len: usize,
    iv_len: usize,
    block_size: usize,
    aead: bool,
    tag_len: usize,
) -> CipherSpec {
    CipherSpec {
        name,
        key_len,
        iv_len,
        block_size,
        aead,
        tag_len,
    }
}

static CIPHERS: [CipherSpec; 10] = [
    cs("chacha20-poly1305@openssh.com", 64, 0, 8, true, 16),
    cs("aes128-gcm@openssh.com", 16, 12, 16, true, 16),
    cs("aes256-gcm@openssh.com", 32, 12, 16, true, 16),
    cs("aes128-ctr", 16, 16, 16, false, 0),
    cs("aes192-ctr", 24, 16, 16, false, 0),
    cs("aes256-ctr", 32, 16, 16, false, 0),
    cs("aes128-cbc", 16, 16, 16, false, 0),
    cs("aes256-cbc", 32, 16, 16, false, 0),
    cs("3des-cbc", 24, 8, 8, false, 0),
    cs("none", 0, 0, 8, false, 0),
];

static MACS: [MacSpec; 6] = [
    MacSpec {
        name: "hmac-sha2-256-etm@openssh.com",
        key_len: 32,
        out_len: 32,
        etm: true,
    },
    MacSpec {
        name: "hmac-sha2-512-etm@openssh.com",
        key_len: 64,
        out_len: 64,
        etm: true,
    },
    MacSpec {
        name: "hmac-sha1-etm@openssh.com",
        key_len: 20,
        out_len: 20,
        etm: true,
    },
    MacSpec {
        name: "hmac-sha2-256",
        key_len: 32,
        out_len: 32,
        etm: false,
    },
    MacSpec {
        name: "hmac-sha2-512",
        key_len: 64,
        out_len: 64,
        etm: false,
    },
    MacSpec {
        name: "hmac-sha1",
        key_len: 20,
        out_len: 20,
        etm: false,
    },
];

/// The spec of a cipher by its SSH name, if supported.
pub fn cipher_spec(name: &str) -> Option<&'static CipherSpec> {
    CIPHERS.iter().find(|c| c.name == name)
}

/// The spec of a MAC by its SSH name, if supported.
pub(crate) fn mac_spec(name: &str) -> Option<&'static MacSpec> {
    MACS.iter().find(|m| m.name == name)
}

fn mac_failure(seq: u32) -> Error {
    Error::new(ErrorKind::Mac, format!("MAC mismatch on packet {seq}"))
}

// ------------------------------------------------------------ directions

enum Protect {
    ChaCha(Box<ChaChaKeys>),
    Gcm(Box<Gcm>),
    /// CTR, CBC or none, with an optional HMAC (required unless none).
    Plain {
        enc: Box<Enc>,
        mac: Option<Box<MacKey>>,
    },
}

struct Setup {
    protect: Protect,
    block_size: usize,
    tag_len: usize,
    length_in_clear: bool,
}

fn setup(
    cipher: &str,
    key: &[u8],
    iv: &[u8],
    mac: Option<(&str, &[u8])>,
    decrypt: bool,
) -> Result<Setup> {
    let spec =
        cipher_spec(cipher).ok_or_else(|| Error::usage(format!("unknown cipher {cipher:?}")))?;
    if key.len() != spec.key_len {
        return Err(Error::usage(format!(
            "{cipher}: key is {} bytes, expected {}",
            key.len(),
            spec.key_len
        )));
    }
    if iv.len() != spec.iv_len {
        return Err(Error::usage(format!(
            "{cipher}: IV is {} bytes, expected {}",
            iv.len(),
            spec.iv_len
        )));
    }
    if spec.aead {
        let protect = if cipher == "chacha20-poly1305@openssh.com" {
            Protect::ChaCha(Box::new(ChaChaKeys::new(key)?))
        } else {
            Protect::Gcm(Box::new(Gcm::new(cipher, key, iv)?))
        };
        return Ok(Setup {
            protect,
            block_size: spec.block_size,
            tag_len: spec.tag_len,
            length_in_clear: true,
        });
    }
    let mac = match mac {
        Some((name, k)) => Some(Box::new(MacKey::new(name, k)?)),
        None if cipher == "none" => None,
        None => return Err(Error::usage(format!("{cipher} needs a MAC"))),
    };
    let tag_len = mac.as_ref().map_or(0, |m| m.out_len);
    let length_in_clear = mac.as_ref().is_some_and(|m| m.etm);
    let enc = Box::new(Enc::new(cipher, key, iv, decrypt)?);
    Ok(Setup {
        protect: Protect::Plain { enc, mac },
        block_size: spec.block_size,
        tag_len,
        length_in_clear,
    })
}

/// Outgoing direction: encrypts and authenticates packets in place.
///
/// Key material is zeroized on drop (raw keys held here directly; the
/// RustCrypto cipher/HMAC states zeroize themselves when their `zeroize`
/// features are enabled).
pub(crate) struct Sealer {
    protect: Protect,
    block_size: usize,
    tag_len: usize,
    length_in_clear: bool,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("block_size", &self.block_size)
            .field("tag_len", &self.tag_len)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// The initial state before NEWKEYS: no encryption, no MAC.
    pub(crate) fn none() -> Sealer {
        Sealer {
            protect: Protect::Plain {
                enc: Box::new(Enc::None),
                mac: None,
            },
            block_size: 8,
            tag_len: 0,
            length_in_clear: false,
        }
    }

    /// `mac` is ignored for AEAD ciphers and required for the others
    /// (optional for `none`). Key, IV and MAC key lengths must be exactly
    /// the spec's lengths.
    pub(crate) fn new(
        cipher: &str,
        key: &[u8],
        iv: &[u8],
        mac: Option<(&str, &[u8])>,
    ) -> Result<Sealer> {
        let s = setup(cipher, key, iv, mac, false)?;
        Ok(Sealer {
            protect: s.protect,
            block_size: s.block_size,
            tag_len: s.tag_len,
            length_in_clear: s.length_in_clear,
        })
    }

    /// Padding multiple (8 for none/chacha/3des, 16 for AES).
    pub(crate) fn block_size(&self) -> usize {
        self.block_size
    }

    /// Bytes of tag/MAC appended after the packet.
    pub(crate) fn tag_len(&self) -> usize {
        self.tag_len
    }

    /// True when the 4-byte length field is not part of the padded/encrypted
    /// unit (AEAD ciphers and EtM MACs).
    pub(crate) fn length_in_clear(&self) -> bool {
        self.length_in_clear
    }

    /// Encrypt `packet` (a complete plaintext packet including its length
    /// field, padded as [`length_in_clear`](Self::length_in_clear) says) in
    /// place and write the tag/MAC into `tag` (`tag.len() == tag_len()`).
    ///
    /// A caller bug (packet shorter than 5 bytes, wrong tag length, CBC
    /// packet not a multiple of the block size) does not panic in release
    /// builds: the packet and tag are zeroed, so nothing leaks and the peer
    /// rejects the packet.
    pub(crate) fn seal(&mut self, seq: u32, packet: &mut [u8], tag: &mut [u8]) {
        let aligned = {
            let unit = if self.length_in_clear {
                packet.len().wrapping_sub(4)
            } else {
                packet.len()
            };
            !misaligned(unit, self.block_size)
        };
        debug_assert!(packet.len() >= 5, "packet too short");
        debug_assert_eq!(tag.len(), self.tag_len, "tag buffer has the wrong length");
        debug_assert!(aligned, "packet is not a multiple of the block size");
        if packet.len() < 5 || tag.len() != self.tag_len {
            fail_closed(packet, tag);
            return;
        }
        match &mut self.protect {
            Protect::ChaCha(k) => k.seal(seq, packet, tag),
            Protect::Gcm(g) => {
                if !g.seal(packet, tag) {
                    fail_closed(packet, tag);
                }
            }
            Protect::Plain { enc, mac } => {
                if enc.is_cbc() && !aligned {
                    fail_closed(packet, tag);
                    return;
                }
                match mac {
                    Some(m) if m.etm => {
                        enc.apply(&mut packet[4..]);
                        m.sign(seq, packet, tag);
                    }
                    Some(m) => {
                        m.sign(seq, packet, tag);
                        enc.apply(packet);
                    }
                    None => enc.apply(packet),
                }
            }
        }
    }
}

/// `len` is not a multiple of `bs` (block sizes are powers of two).
fn misaligned(len: usize, bs: usize) -> bool {
    len & (bs - 1) != 0
}

fn fail_closed(packet: &mut [u8], tag: &mut [u8]) {
    packet.fill(0);
    tag.fill(0);
}

/// Incoming direction: learns packet lengths, verifies and decrypts in place.
pub(crate) struct Opener {
    protect: Protect,
    block_size: usize,
    tag_len: usize,
    first_len: usize,
    /// Non-EtM CTR/CBC: the first `first_len` bytes of the current packet
    /// were already decrypted by `packet_length`.
    head_done: bool,
    /// chacha: (seq, encrypted length, decrypted length) from `packet_length`.
    chacha_len: Option<(u32, [u8; 4], [u8; 4])>,
}

impl std::fmt::Debug for Opener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Opener")
            .field("block_size", &self.block_size)
            .field("tag_len", &self.tag_len)
            .field("first_len", &self.first_len)
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// The initial state before NEWKEYS: no encryption, no MAC.
    pub(crate) fn none() -> Opener {
        Opener {
            protect: Protect::Plain {
                enc: Box::new(Enc::None),
                mac: None,
            },
            block_size: 8,
            tag_len: 0,
            first_len: 4,
            head_done: false,
            chacha_len: None,
        }
    }

    /// Same arguments as [`Sealer::new`].
    pub(crate) fn new(
        cipher: &str,
        key: &[u8],
        iv: &[u8],
        mac: Option<(&str, &[u8])>,
    ) -> Result<Opener> {
        let s = setup(cipher, key, iv, mac, true)?;
        let first_len = match &s.protect {
            Protect::Plain { enc, .. } if !s.length_in_clear && !matches!(**enc, Enc::None) => {
                s.block_size
            }
            _ => 4,
        };
        Ok(Opener {
            protect: s.protect,
            block_size: s.block_size,
            tag_len: s.tag_len,
            first_len,
            head_done: false,
            chacha_len: None,
        })
    }

    pub(crate) fn block_size(&self) -> usize {
        self.block_size
    }

    pub(crate) fn tag_len(&self) -> usize {
        self.tag_len
    }

    /// Leading bytes needed to learn a packet's length: 4 for
    /// none/chacha/gcm/EtM, `block_size` for CTR/CBC with non-EtM MACs.
    pub(crate) fn first_len(&self) -> usize {
        self.first_len
    }

    /// The packet_length field, given the first [`first_len`](Self::first_len)
    /// bytes of the packet (extra bytes are ignored). For non-EtM CTR/CBC this
    /// decrypts those bytes in place. If `first` is shorter than
    /// `first_len()`, returns `u32::MAX` (which any sane size check rejects)
    /// and touches nothing.
    pub(crate) fn packet_length(&mut self, seq: u32, first: &mut [u8]) -> u32 {
        if first.len() < self.first_len {
            return u32::MAX;
        }
        let mut len = [0u8; 4];
        match &mut self.protect {
            Protect::ChaCha(k) => {
                let mut enc = [0u8; 4];
                enc.copy_from_slice(&first[..4]);
                len = enc;
                k.crypt_len(seq, &mut len);
                self.chacha_len = Some((seq, enc, len));
            }
            Protect::Plain { enc, .. } if self.first_len > 4 => {
                // Idempotent: a second call on the same (already decrypted)
                // buffer just reads it again.
                if !self.head_done {
                    enc.apply(&mut first[..self.first_len]);
                    self.head_done = true;
                }
                len.copy_from_slice(&first[..4]);
            }
            _ => len.copy_from_slice(&first[..4]),
        }
        u32::from_be_bytes(len)
    }

    /// Verify and decrypt a whole packet in place (`packet` includes the
    /// 4-byte length field; `tag` is the `tag_len()` bytes after it). On
    /// success the whole of `packet` is plaintext. Fails with
    /// [`ErrorKind::Mac`] on a bad tag/MAC, with [`ErrorKind::Protocol`] if
    /// the packet is too short or (CBC) not a multiple of the block size.
    pub(crate) fn open(&mut self, seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<()> {
        let head_done = std::mem::replace(&mut self.head_done, false);
        let chacha_len = self.chacha_len.take();
        if tag.len() != self.tag_len {
            return Err(Error::new(
                ErrorKind::Mac,
                format!(
                    "MAC of {} bytes on packet {seq}, expected {}",
                    tag.len(),
                    self.tag_len
                ),
            ));
        }
        if packet.len() < 5 {
            return Err(Error::protocol(format!(
                "packet {seq} of {} bytes is too short",
                packet.len()
            )));
        }
        match &mut self.protect {
            Protect::ChaCha(k) => {
                let (core, poly) = k.payload_state(seq);
                let expected = poly.compute_unpadded(packet);
                if !bool::from(expected.as_slice().ct_eq(tag)) {
                    return Err(mac_failure(seq));
                }
                let (len, body) = packet.split_at_mut(4);
                core.apply_keystream_partial(InOutBuf::from(body));
                match chacha_len {
                    Some((s, enc, plain)) if s == seq && enc == *len => len.copy_from_slice(&plain),
                    _ => k.crypt_len(seq, len),
                }
                Ok(())
            }
            Protect::Gcm(g) => {
                if g.open(packet, tag) {
                    Ok(())
                } else {
                    Err(mac_failure(seq))
                }
            }
            Protect::Plain { enc, mac } => {
                let bs = self.block_size;
                if mac.as_ref().is_some_and(|m| m.etm) {
                    if let Some(m) = mac {
                        if !m.verify(seq, packet, tag) {
                            return Err(mac_failure(seq));
                        }
                    }
                    let body = &mut packet[4..];
                    if enc.is_cbc() && misaligned(body.len(), bs) {
                        return Err(Error::protocol(format!(
                            "packet {seq}: length {} is not a multiple of the block size {bs}",
                            body.len()
                        )));
                    }
                    enc.apply(body);
                    return Ok(());
                }
                let start = if head_done { self.first_len } else { 0 };
                if packet.len() < start || (enc.is_cbc() && misaligned(packet.len() - start, bs)) {
                    return Err(Error::protocol(format!(
                        "packet {seq}: length {} is not a multiple of the block size {bs}",
                        packet.len()
                    )));
                }
                enc.apply(&mut packet[start..]);
                if let Some(m) = mac {
                    if !m.verify(seq, packet, tag) {
                        return Err(mac_failure(seq));
                    }
                }
                Ok(())
            }
        }
    }
}
