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

use aes::{Aes128, Aes192, Aes256};
use aes_gcm::{AeadInOut, Aes128Gcm, Aes256Gcm};
use chacha20::{ChaCha20LegacyCore, LegacyNonce};
use cipher::{
    consts::U64, Array, BlockModeDecrypt, BlockModeEncrypt, BlockSizeUser, InOutBuf, KeyInit,
    KeyIvInit, StreamCipher, StreamCipherCore,
};
use des::TdesEde3;
use hmac::{Hmac, Mac};
use poly1305::Poly1305;
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, ErrorKind, Result};

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
pub struct MacSpec {
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
pub fn mac_spec(name: &str) -> Option<&'static MacSpec> {
    MACS.iter().find(|m| m.name == name)
}

fn mac_failure(seq: u32) -> Error {
    Error::new(ErrorKind::Mac, format!("MAC mismatch on packet {seq}"))
}

// ------------------------------------------------------------------ HMAC

#[derive(Clone)]
enum HmacState {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

/// A pre-keyed HMAC; each packet works on a (stack) clone of it.
struct MacKey {
    state: HmacState,
    etm: bool,
    out_len: usize,
}

fn hmac_sign<M: Mac + Clone>(keyed: &M, seq: u32, data: &[u8], out: &mut [u8]) {
    let mut m = keyed.clone();
    m.update(&seq.to_be_bytes());
    m.update(data);
    let tag = m.finalize().into_bytes();
    let n = out.len().min(tag.len());
    out[..n].copy_from_slice(&tag[..n]);
}

fn hmac_verify<M: Mac + Clone>(keyed: &M, seq: u32, data: &[u8], tag: &[u8]) -> bool {
    let mut m = keyed.clone();
    m.update(&seq.to_be_bytes());
    m.update(data);
    // Constant time comparison (digest uses `subtle`).
    m.verify_slice(tag).is_ok()
}

impl MacKey {
    fn new(name: &str, key: &[u8]) -> Result<MacKey> {
        let spec = mac_spec(name).ok_or_else(|| Error::usage(format!("unknown MAC {name:?}")))?;
        if key.len() != spec.key_len {
            return Err(Error::usage(format!(
                "MAC {name}: key is {} bytes, expected {}",
                key.len(),
                spec.key_len
            )));
        }
        let bad = |_| Error::usage(format!("MAC {name}: bad key"));
        let state = match spec.out_len {
            20 => HmacState::Sha1(<Hmac<Sha1> as KeyInit>::new_from_slice(key).map_err(bad)?),
            32 => HmacState::Sha256(<Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(bad)?),
            _ => HmacState::Sha512(<Hmac<Sha512> as KeyInit>::new_from_slice(key).map_err(bad)?),
        };
        Ok(MacKey {
            state,
            etm: spec.etm,
            out_len: spec.out_len,
        })
    }

    fn sign(&self, seq: u32, data: &[u8], out: &mut [u8]) {
        match &self.state {
            HmacState::Sha1(m) => hmac_sign(m, seq, data, out),
            HmacState::Sha256(m) => hmac_sign(m, seq, data, out),
            HmacState::Sha512(m) => hmac_sign(m, seq, data, out),
        }
    }

    fn verify(&self, seq: u32, data: &[u8], tag: &[u8]) -> bool {
        match &self.state {
            HmacState::Sha1(m) => hmac_verify(m, seq, data, tag),
            HmacState::Sha256(m) => hmac_verify(m, seq, data, tag),
            HmacState::Sha512(m) => hmac_verify(m, seq, data, tag),
        }
    }
}

// ------------------------------------------------------- chacha20-poly1305

/// The two keys of chacha20-poly1305@openssh.com.
struct ChaChaKeys {
    /// K_2: payload key (first half of the 64-byte key), also yields the poly1305 key.
    main: Zeroizing<[u8; 32]>,
    /// K_1: header (length) key (second half).
    hdr: Zeroizing<[u8; 32]>,
}

impl ChaChaKeys {
    fn new(key: &[u8]) -> Result<ChaChaKeys> {
        if key.len() != 64 {
            return Err(Error::usage(format!(
                "chacha20-poly1305@openssh.com: key is {} bytes, expected 64",
                key.len()
            )));
        }
        let mut main = Zeroizing::new([0u8; 32]);
        let mut hdr = Zeroizing::new([0u8; 32]);
        main.copy_from_slice(&key[..32]);
        hdr.copy_from_slice(&key[32..]);
        Ok(ChaChaKeys { main, hdr })
    }

    fn nonce(seq: u32) -> LegacyNonce {
        LegacyNonce::from(u64::from(seq).to_be_bytes())
    }

    /// XOR the 4 length bytes with the K_1 keystream (block 0).
    fn crypt_len(&self, seq: u32, len: &mut [u8]) {
        let core = ChaCha20LegacyCore::new((&*self.hdr).into(), &Self::nonce(seq));
        core.apply_keystream_partial(InOutBuf::from(len));
    }

    /// K_2 stream positioned at block 1, and the poly1305 instance keyed
    /// from block 0.
    fn payload_state(&self, seq: u32) -> (ChaCha20LegacyCore, Poly1305) {
        let mut core = ChaCha20LegacyCore::new((&*self.main).into(), &Self::nonce(seq));
        let mut block0 = Array::<u8, U64>::default();
        core.write_keystream_block(&mut block0);
        let mut pkey = [0u8; 32];
        pkey.copy_from_slice(&block0[..32]);
        let poly = Poly1305::new((&pkey).into());
        pkey.zeroize();
        block0.as_mut_slice().zeroize();
        (core, poly)
    }

    fn seal(&self, seq: u32, packet: &mut [u8], tag: &mut [u8]) {
        let (core, poly) = self.payload_state(seq);
        let (len, body) = packet.split_at_mut(4);
        self.crypt_len(seq, len);
        core.apply_keystream_partial(InOutBuf::from(body));
        let t = poly.compute_unpadded(packet);
        tag.copy_from_slice(&t);
    }
}

// ------------------------------------------------------------------ GCM

enum GcmAead {
    A128(Aes128Gcm),
    A256(Aes256Gcm),
}

/// AES-GCM with the OpenSSH nonce: 4-byte fixed field || 8-byte invocation counter.
struct Gcm {
    aead: GcmAead,
    fixed: [u8; 4],
    counter: u64,
}

impl Gcm {
    fn new(name: &str, key: &[u8], iv: &[u8]) -> Result<Gcm> {
        if iv.len() != 12 {
            return Err(Error::usage(format!(
                "{name}: IV is {} bytes, expected 12",
                iv.len()
            )));
        }
        let bad = |_| Error::usage(format!("{name}: key is {} bytes", key.len()));
        let aead = if name == "aes128-gcm@openssh.com" {
            GcmAead::A128(Aes128Gcm::new_from_slice(key).map_err(bad)?)
        } else {
            GcmAead::A256(Aes256Gcm::new_from_slice(key).map_err(bad)?)
        };
        let mut fixed = [0u8; 4];
        fixed.copy_from_slice(&iv[..4]);
        let mut ctr = [0u8; 8];
        ctr.copy_from_slice(&iv[4..]);
        Ok(Gcm {
            aead,
            fixed,
            counter: u64::from_be_bytes(ctr),
        })
    }

    fn nonce(&self) -> aes_gcm::Nonce<cipher::consts::U12> {
        let mut n = aes_gcm::Nonce::<cipher::consts::U12>::default();
        n[..4].copy_from_slice(&self.fixed);
        n[4..].copy_from_slice(&self.counter.to_be_bytes());
        n
    }

    /// Returns false only if the crate refuses the input (over 64 GiB).
    fn seal(&mut self, packet: &mut [u8], tag: &mut [u8]) -> bool {
        let nonce = self.nonce();
        let (aad, body) = packet.split_at_mut(4);
        let res = match &self.aead {
            GcmAead::A128(a) => a.encrypt_inout_detached(&nonce, aad, InOutBuf::from(body)),
            GcmAead::A256(a) => a.encrypt_inout_detached(&nonce, aad, InOutBuf::from(body)),
        };
        self.counter = self.counter.wrapping_add(1);
        match res {
            Ok(t) => {
                tag.copy_from_slice(&t);
                true
            }
            Err(_) => false,
        }
    }

    fn open(&mut self, packet: &mut [u8], tag: &[u8]) -> bool {
        let Ok(tag) = <&aes_gcm::Tag>::try_from(tag) else {
            return false;
        };
        let nonce = self.nonce();
        let (aad, body) = packet.split_at_mut(4);
        let res = match &self.aead {
            GcmAead::A128(a) => a.decrypt_inout_detached(&nonce, aad, InOutBuf::from(body), tag),
            GcmAead::A256(a) => a.decrypt_inout_detached(&nonce, aad, InOutBuf::from(body), tag),
        };
        if res.is_ok() {
            self.counter = self.counter.wrapping_add(1);
        }
        res.is_ok()
    }
}

impl Drop for Gcm {
    fn drop(&mut self) {
        self.fixed.zeroize();
        self.counter.zeroize();
    }
}

// ------------------------------------------------------- CTR / CBC / none

enum Ctr {
    A128(ctr::Ctr128BE<Aes128>),
    A192(ctr::Ctr128BE<Aes192>),
    A256(ctr::Ctr128BE<Aes256>),
}

impl Ctr {
    fn new(name: &str, key: &[u8], iv: &[u8]) -> Result<Ctr> {
        let bad = |_| {
            Error::usage(format!(
                "{name}: bad key ({} bytes) or IV ({} bytes)",
                key.len(),
                iv.len()
            ))
        };
        Ok(match name {
            "aes128-ctr" => Ctr::A128(ctr::Ctr128BE::new_from_slices(key, iv).map_err(bad)?),
            "aes192-ctr" => Ctr::A192(ctr::Ctr128BE::new_from_slices(key, iv).map_err(bad)?),
            _ => Ctr::A256(ctr::Ctr128BE::new_from_slices(key, iv).map_err(bad)?),
        })
    }

    fn apply(&mut self, buf: &mut [u8]) {
        // A 128-bit counter wraps (mod 2^128, RFC 4344) and never runs out.
        match self {
            Ctr::A128(c) => c.apply_keystream(buf),
            Ctr::A192(c) => c.apply_keystream(buf),
            Ctr::A256(c) => c.apply_keystream(buf),
        }
    }
}

fn cbc_encrypt<C: BlockModeEncrypt>(c: &mut C, buf: &mut [u8]) {
    let (blocks, _) = Array::<u8, <C as BlockSizeUser>::BlockSize>::slice_as_chunks_mut(buf);
    c.encrypt_blocks(blocks);
}

fn cbc_decrypt<C: BlockModeDecrypt>(c: &mut C, buf: &mut [u8]) {
    let (blocks, _) = Array::<u8, <C as BlockSizeUser>::BlockSize>::slice_as_chunks_mut(buf);
    c.decrypt_blocks(blocks);
}

enum CbcEnc {
    A128(cbc::Encryptor<Aes128>),
    A256(cbc::Encryptor<Aes256>),
    Tdes(cbc::Encryptor<TdesEde3>),
}

enum CbcDec {
    A128(cbc::Decryptor<Aes128>),
    A256(cbc::Decryptor<Aes256>),
    Tdes(cbc::Decryptor<TdesEde3>),
}

/// Non-AEAD encryption state for one direction.
enum Enc {
    None,
    Ctr(Ctr),
    CbcEnc(CbcEnc),
    CbcDec(CbcDec),
}

impl Enc {
    fn new(name: &str, key: &[u8], iv: &[u8], decrypt: bool) -> Result<Enc> {
        let bad = |_| {
            Error::usage(format!(
                "{name}: bad key ({} bytes) or IV ({} bytes)",
                key.len(),
                iv.len()
            ))
        };
        Ok(match name {
            "none" => Enc::None,
            "aes128-ctr" | "aes192-ctr" | "aes256-ctr" => Enc::Ctr(Ctr::new(name, key, iv)?),
            "aes128-cbc" if decrypt => Enc::CbcDec(CbcDec::A128(
                cbc::Decryptor::new_from_slices(key, iv).map_err(bad)?,
            )),
            "aes256-cbc" if decrypt => Enc::CbcDec(CbcDec::A256(
                cbc::Decryptor::new_from_slices(key, iv).map_err(bad)?,
            )),
            "3des-cbc" if decrypt => Enc::CbcDec(CbcDec::Tdes(
                cbc::Decryptor::new_from_slices(key, iv).map_err(bad)?,
            )),
            "aes128-cbc" => Enc::CbcEnc(CbcEnc::A128(
                cbc::Encryptor::new_from_slices(key, iv).map_err(bad)?,
            )),
            "aes256-cbc" => Enc::CbcEnc(CbcEnc::A256(
                cbc::Encryptor::new_from_slices(key, iv).map_err(bad)?,
            )),
            "3des-cbc" => Enc::CbcEnc(CbcEnc::Tdes(
                cbc::Encryptor::new_from_slices(key, iv).map_err(bad)?,
            )),
            _ => return Err(Error::usage(format!("unknown cipher {name:?}"))),
        })
    }

    fn is_cbc(&self) -> bool {
        matches!(self, Enc::CbcEnc(_) | Enc::CbcDec(_))
    }

    /// Encrypt or decrypt (depending on the direction it was made for).
    /// For CBC `buf.len()` must be a multiple of the block size (checked by callers).
    fn apply(&mut self, buf: &mut [u8]) {
        match self {
            Enc::None => {}
            Enc::Ctr(c) => c.apply(buf),
            Enc::CbcEnc(CbcEnc::A128(c)) => cbc_encrypt(c, buf),
            Enc::CbcEnc(CbcEnc::A256(c)) => cbc_encrypt(c, buf),
            Enc::CbcEnc(CbcEnc::Tdes(c)) => cbc_encrypt(c, buf),
            Enc::CbcDec(CbcDec::A128(c)) => cbc_decrypt(c, buf),
            Enc::CbcDec(CbcDec::A256(c)) => cbc_decrypt(c, buf),
            Enc::CbcDec(CbcDec::Tdes(c)) => cbc_decrypt(c, buf),
        }
    }
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
pub struct Sealer {
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
    pub fn none() -> Sealer {
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
    pub fn new(cipher: &str, key: &[u8], iv: &[u8], mac: Option<(&str, &[u8])>) -> Result<Sealer> {
        let s = setup(cipher, key, iv, mac, false)?;
        Ok(Sealer {
            protect: s.protect,
            block_size: s.block_size,
            tag_len: s.tag_len,
            length_in_clear: s.length_in_clear,
        })
    }

    /// Padding multiple (8 for none/chacha/3des, 16 for AES).
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Bytes of tag/MAC appended after the packet.
    pub fn tag_len(&self) -> usize {
        self.tag_len
    }

    /// True when the 4-byte length field is not part of the padded/encrypted
    /// unit (AEAD ciphers and EtM MACs).
    pub fn length_in_clear(&self) -> bool {
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
    pub fn seal(&mut self, seq: u32, packet: &mut [u8], tag: &mut [u8]) {
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
pub struct Opener {
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
    pub fn none() -> Opener {
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
    pub fn new(cipher: &str, key: &[u8], iv: &[u8], mac: Option<(&str, &[u8])>) -> Result<Opener> {
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

    pub fn block_size(&self) -> usize {
        self.block_size
    }

    pub fn tag_len(&self) -> usize {
        self.tag_len
    }

    /// Leading bytes needed to learn a packet's length: 4 for
    /// none/chacha/gcm/EtM, `block_size` for CTR/CBC with non-EtM MACs.
    pub fn first_len(&self) -> usize {
        self.first_len
    }

    /// The packet_length field, given the first [`first_len`](Self::first_len)
    /// bytes of the packet (extra bytes are ignored). For non-EtM CTR/CBC this
    /// decrypts those bytes in place. If `first` is shorter than
    /// `first_len()`, returns `u32::MAX` (which any sane size check rejects)
    /// and touches nothing.
    pub fn packet_length(&mut self, seq: u32, first: &mut [u8]) -> u32 {
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
    pub fn open(&mut self, seq: u32, packet: &mut [u8], tag: &[u8]) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const AEADS: [&str; 3] = [
        "chacha20-poly1305@openssh.com",
        "aes128-gcm@openssh.com",
        "aes256-gcm@openssh.com",
    ];
    const BLOCK: [&str; 6] = [
        "aes128-ctr",
        "aes192-ctr",
        "aes256-ctr",
        "aes128-cbc",
        "aes256-cbc",
        "3des-cbc",
    ];
    const MAC_NAMES: [&str; 6] = [
        "hmac-sha2-256-etm@openssh.com",
        "hmac-sha2-512-etm@openssh.com",
        "hmac-sha1-etm@openssh.com",
        "hmac-sha2-256",
        "hmac-sha2-512",
        "hmac-sha1",
    ];

    /// Every (cipher, mac) pair worth testing.
    fn combos() -> Vec<(&'static str, Option<&'static str>)> {
        let mut v: Vec<(&str, Option<&str>)> = AEADS.iter().map(|c| (*c, None)).collect();
        for c in BLOCK {
            for m in MAC_NAMES {
                v.push((c, Some(m)));
            }
        }
        v.push(("none", None));
        for m in MAC_NAMES {
            v.push(("none", Some(m)));
        }
        v
    }

    fn kb(start: u8, n: usize) -> Vec<u8> {
        (0..n).map(|i| start.wrapping_add(i as u8)).collect()
    }

    struct Keys {
        key: Vec<u8>,
        iv: Vec<u8>,
        mac: Option<(&'static str, Vec<u8>)>,
    }

    fn keys(cipher: &str, mac: Option<&'static str>, seed: u8) -> Keys {
        let spec = cipher_spec(cipher).unwrap();
        Keys {
            key: kb(seed, spec.key_len),
            iv: kb(seed.wrapping_add(0x10), spec.iv_len),
            mac: mac.map(|m| (m, kb(seed.wrapping_add(0x20), mac_spec(m).unwrap().key_len))),
        }
    }

    fn pair(cipher: &str, mac: Option<&'static str>) -> (Sealer, Opener) {
        let k = keys(cipher, mac, 7);
        let m = k.mac.as_ref().map(|(n, k)| (*n, k.as_slice()));
        (
            Sealer::new(cipher, &k.key, &k.iv, m).unwrap(),
            Opener::new(cipher, &k.key, &k.iv, m).unwrap(),
        )
    }

    fn opener(cipher: &str, mac: Option<&'static str>) -> Opener {
        pair(cipher, mac).1
    }

    /// Same layout as the Python generator of the known answers.
    fn make_packet(plen: usize, lic: bool, bs: usize, seed: u8) -> Vec<u8> {
        let base = 1 + plen + if lic { 0 } else { 4 };
        let mut pad = bs - base % bs;
        if pad < 4 {
            pad += bs;
        }
        let mut p = Vec::with_capacity(5 + plen + pad);
        p.extend_from_slice(&((1 + plen + pad) as u32).to_be_bytes());
        p.push(pad as u8);
        p.extend((0..plen).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
        p.extend((0..pad).map(|j| 0xA0u8.wrapping_add(j as u8)));
        p
    }

    fn seal_one(s: &mut Sealer, seq: u32, plen: usize, seed: u8) -> (Vec<u8>, Vec<u8>) {
        let p = make_packet(plen, s.length_in_clear(), s.block_size(), seed);
        let mut buf = p.clone();
        buf.resize(p.len() + s.tag_len(), 0);
        let (pkt, tag) = buf.split_at_mut(p.len());
        s.seal(seq, pkt, tag);
        (p, buf)
    }

    /// What the transport does: packet_length on the first bytes, then open.
    fn open_one(o: &mut Opener, seq: u32, wire: &mut [u8]) -> Result<u32> {
        let first = o.first_len();
        let len = o.packet_length(seq, &mut wire[..first]);
        let plen = wire.len() - o.tag_len();
        let (pkt, tag) = wire.split_at_mut(plen);
        o.open(seq, pkt, tag)?;
        Ok(len)
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn spec_tables() {
        let c = cipher_spec("chacha20-poly1305@openssh.com").unwrap();
        assert_eq!(
            (c.key_len, c.iv_len, c.block_size, c.aead, c.tag_len),
            (64, 0, 8, true, 16)
        );
        for n in ["aes128-gcm@openssh.com", "aes256-gcm@openssh.com"] {
            let c = cipher_spec(n).unwrap();
            assert_eq!(
                (c.iv_len, c.block_size, c.aead, c.tag_len),
                (12, 16, true, 16)
            );
        }
        assert_eq!(cipher_spec("aes128-gcm@openssh.com").unwrap().key_len, 16);
        assert_eq!(cipher_spec("aes256-gcm@openssh.com").unwrap().key_len, 32);
        for (n, k) in [
            ("aes128-ctr", 16),
            ("aes192-ctr", 24),
            ("aes256-ctr", 32),
            ("aes128-cbc", 16),
            ("aes256-cbc", 32),
        ] {
            let c = cipher_spec(n).unwrap();
            assert_eq!(
                (c.key_len, c.iv_len, c.block_size, c.aead, c.tag_len),
                (k, 16, 16, false, 0),
                "{n}"
            );
        }
        let c = cipher_spec("3des-cbc").unwrap();
        assert_eq!((c.key_len, c.iv_len, c.block_size), (24, 8, 8));
        let c = cipher_spec("none").unwrap();
        assert_eq!(
            (c.key_len, c.iv_len, c.block_size, c.aead),
            (0, 0, 8, false)
        );
        assert!(cipher_spec("arcfour").is_none());
        for (n, l, etm) in [
            ("hmac-sha2-256-etm@openssh.com", 32, true),
            ("hmac-sha2-512-etm@openssh.com", 64, true),
            ("hmac-sha1-etm@openssh.com", 20, true),
            ("hmac-sha2-256", 32, false),
            ("hmac-sha2-512", 64, false),
            ("hmac-sha1", 20, false),
        ] {
            let m = mac_spec(n).unwrap();
            assert_eq!((m.key_len, m.out_len, m.etm), (l, l, etm), "{n}");
        }
        assert!(mac_spec("hmac-md5").is_none());
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        let mk = [0u8; 32];
        type Case<'a> = (&'a str, Vec<u8>, Vec<u8>, Option<(&'a str, &'a [u8])>);
        let cases: Vec<Case<'_>> = vec![
            ("rot13", vec![], vec![], None),
            (
                "aes128-ctr",
                vec![0; 15],
                vec![0; 16],
                Some(("hmac-sha2-256", &mk)),
            ),
            (
                "aes128-ctr",
                vec![0; 16],
                vec![0; 8],
                Some(("hmac-sha2-256", &mk)),
            ),
            ("aes128-ctr", vec![0; 16], vec![0; 16], None),
            (
                "aes128-ctr",
                vec![0; 16],
                vec![0; 16],
                Some(("hmac-md5", &mk)),
            ),
            (
                "aes128-ctr",
                vec![0; 16],
                vec![0; 16],
                Some(("hmac-sha2-256", &mk[..31])),
            ),
            ("aes256-gcm@openssh.com", vec![0; 16], vec![0; 12], None),
            ("aes128-gcm@openssh.com", vec![0; 16], vec![0; 16], None),
            ("chacha20-poly1305@openssh.com", vec![0; 32], vec![], None),
            (
                "3des-cbc",
                vec![0; 24],
                vec![0; 16],
                Some(("hmac-sha1", &mk[..20])),
            ),
        ];
        for (c, k, iv, m) in cases {
            assert_eq!(
                Sealer::new(c, &k, &iv, m).unwrap_err().kind(),
                ErrorKind::Usage,
                "{c}"
            );
            assert_eq!(
                Opener::new(c, &k, &iv, m).unwrap_err().kind(),
                ErrorKind::Usage,
                "{c}"
            );
        }
        // A MAC passed with an AEAD cipher is ignored.
        let (s, _) = {
            let k = keys("aes128-gcm@openssh.com", None, 1);
            (
                Sealer::new(
                    "aes128-gcm@openssh.com",
                    &k.key,
                    &k.iv,
                    Some(("hmac-sha1", &mk[..20])),
                )
                .unwrap(),
                (),
            )
        };
        assert_eq!(s.tag_len(), 16);
    }

    #[test]
    fn geometry() {
        for (c, m) in combos() {
            let (s, o) = pair(c, m);
            let spec = cipher_spec(c).unwrap();
            let etm = m.is_some_and(|m| mac_spec(m).unwrap().etm);
            assert_eq!(s.block_size(), spec.block_size);
            assert_eq!(o.block_size(), spec.block_size);
            let tag = if spec.aead {
                spec.tag_len
            } else {
                m.map_or(0, |m| mac_spec(m).unwrap().out_len)
            };
            assert_eq!(s.tag_len(), tag);
            assert_eq!(o.tag_len(), tag);
            assert_eq!(s.length_in_clear(), spec.aead || etm, "{c} {m:?}");
            let first = if spec.aead || etm || c == "none" {
                4
            } else {
                spec.block_size
            };
            assert_eq!(o.first_len(), first, "{c} {m:?}");
        }
        let (s, o) = (Sealer::none(), Opener::none());
        assert_eq!(
            (s.block_size(), s.tag_len(), s.length_in_clear()),
            (8, 0, false)
        );
        assert_eq!((o.block_size(), o.tag_len(), o.first_len()), (8, 0, 4));
    }

    #[test]
    fn round_trip_every_combination() {
        let sizes = [
            0usize,
            1,
            7,
            15,
            16,
            31,
            100,
            255,
            1000,
            32768,
            3,
            32 * 1024 + 13,
        ];
        for (c, m) in combos() {
            let (mut s, mut o) = pair(c, m);
            let mut seq = u32::MAX - 4;
            for (i, &n) in sizes.iter().enumerate() {
                let (plain, mut wire) = seal_one(&mut s, seq, n, i as u8);
                if c != "none" {
                    assert_ne!(
                        &wire[5..plain.len()],
                        &plain[5..],
                        "{c} {m:?}: not encrypted"
                    );
                }
                let len = open_one(&mut o, seq, &mut wire)
                    .unwrap_or_else(|e| panic!("{c} {m:?} size {n}: {e}"));
                assert_eq!(len as usize, plain.len() - 4, "{c} {m:?}");
                assert_eq!(&wire[..plain.len()], &plain[..], "{c} {m:?} size {n}");
                seq = seq.wrapping_add(1);
            }
        }
        // The initial (pre-NEWKEYS) state is the identity.
        let (mut s, mut o) = (Sealer::none(), Opener::none());
        let (plain, mut wire) = seal_one(&mut s, 0, 50, 1);
        assert_eq!(plain, wire);
        assert_eq!(
            open_one(&mut o, 0, &mut wire).unwrap() as usize,
            plain.len() - 4
        );
        assert_eq!(plain, wire);
    }

    #[test]
    fn open_without_packet_length_and_repeated_packet_length() {
        for (c, m) in combos() {
            let (mut s, mut o) = pair(c, m);
            for seq in 0..4u32 {
                let (plain, mut wire) = seal_one(&mut s, seq, 40 + seq as usize * 9, seq as u8);
                let first = o.first_len();
                let plen = plain.len();
                match seq {
                    0 => {}
                    1 => {
                        let a = o.packet_length(seq, &mut wire[..first]);
                        let b = o.packet_length(seq, &mut wire[..first]);
                        assert_eq!(a, b, "{c} {m:?}");
                        assert_eq!(a as usize, plen - 4);
                    }
                    _ => assert_eq!(o.packet_length(seq, &mut wire[..first]) as usize, plen - 4),
                }
                let (pkt, tag) = wire.split_at_mut(plen);
                o.open(seq, pkt, tag)
                    .unwrap_or_else(|e| panic!("{c} {m:?}: {e}"));
                assert_eq!(pkt, &plain[..], "{c} {m:?}");
            }
        }
    }

    #[test]
    fn any_flipped_bit_is_a_mac_error() {
        for (c, m) in combos() {
            let (mut s, _) = pair(c, m);
            if s.tag_len() == 0 {
                continue;
            }
            let (_, wire) = seal_one(&mut s, 9, 23, 3);
            for bit in 0..wire.len() * 8 {
                let mut w = wire.clone();
                w[bit / 8] ^= 1 << (bit % 8);
                let mut o = opener(c, m);
                let err = open_one(&mut o, 9, &mut w).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Mac, "{c} {m:?} bit {bit}: {err}");
            }
            // Unmodified it opens.
            let mut o = opener(c, m);
            open_one(&mut o, 9, &mut wire.clone()).unwrap();
        }
    }

    #[test]
    fn wrong_sequence_number_is_a_mac_error() {
        for (c, m) in combos() {
            let (mut s, _) = pair(c, m);
            if s.tag_len() == 0 {
                continue;
            }
            let (_, w0) = seal_one(&mut s, 17, 30, 1);
            let (_, w1) = seal_one(&mut s, 18, 30, 2);
            if c.contains("gcm") {
                // GCM ignores the sequence number; its own invocation counter
                // must match instead: skipping a packet fails.
                let mut o = opener(c, m);
                let err = open_one(&mut o, 18, &mut w1.clone()).unwrap_err();
                assert_eq!(err.kind(), ErrorKind::Mac);
                let mut o = opener(c, m);
                open_one(&mut o, 17, &mut w0.clone()).unwrap();
                open_one(&mut o, 18, &mut w1.clone()).unwrap();
                continue;
            }
            let mut o = opener(c, m);
            let err = open_one(&mut o, 18, &mut w0.clone()).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Mac, "{c} {m:?}");
            assert_eq!(err.detail(), "MAC mismatch on packet 18");
        }
    }

    #[test]
    fn malformed_input_never_panics() {
        let mut rng = 0x1234_5678_9abc_def0u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for (c, m) in combos() {
            let mut o = opener(c, m);
            let tl = o.tag_len();
            // Too-short `first`.
            assert_eq!(
                o.packet_length(0, &mut [0u8; 3][..]),
                if o.first_len() > 3 { u32::MAX } else { 0 }
            );
            // Wrong tag length.
            let mut p = vec![0u8; 32];
            let bad_tag = vec![0u8; tl + 1];
            assert!(o.open(0, &mut p, &bad_tag).is_err());
            // Too short packets.
            for n in 0..5 {
                let mut p = vec![0u8; n];
                assert!(o.open(0, &mut p, &vec![0u8; tl]).is_err());
            }
            // Random garbage of every length; CBC misalignment included.
            for n in 0..200usize {
                let mut o = opener(c, m);
                let mut w: Vec<u8> = (0..n + 5 + tl).map(|_| next() as u8).collect();
                let first = o.first_len();
                let _ = o.packet_length(1, &mut w[..first]);
                let plen = w.len() - tl;
                let (pkt, tag) = w.split_at_mut(plen);
                let r = o.open(1, pkt, tag);
                if tl > 0 {
                    let e = r.unwrap_err();
                    assert!(
                        matches!(e.kind(), ErrorKind::Mac | ErrorKind::Protocol),
                        "{c} {m:?}: {e}"
                    );
                }
            }
        }
    }

    #[test]
    fn cbc_misaligned_open_is_protocol_error() {
        for c in ["aes128-cbc", "3des-cbc"] {
            for m in ["hmac-sha1", "hmac-sha1-etm@openssh.com"] {
                let mut o = opener(c, Some(m));
                let mut w = [0u8; 4 + 21 + 20];
                let first = o.first_len();
                o.packet_length(0, &mut w[..first]);
                let (pkt, tag) = w.split_at_mut(25);
                let e = o.open(0, pkt, tag).unwrap_err();
                // EtM checks the MAC first.
                let want = if m.contains("etm") {
                    ErrorKind::Mac
                } else {
                    ErrorKind::Protocol
                };
                assert_eq!(e.kind(), want, "{c} {m}");
            }
        }
    }

    /// Expected ciphertext||tag, computed independently with Python `cryptography`
    /// (see `kat_setup`): (cipher, mac, packets).
    const KATS: &[(&str, &str, &[&str])] = &[
        (
            "aes128-ctr",
            "hmac-sha2-256",
            &[
                "07feef68e6d6212ff07170ac526f88aacab553b10cff903316d9dcc0285d7bae176d6a374f4157aeae97a376aa06910b8a7d7d5f4ec1d082ec452471fe6adbf6",
                "ca21385b26e1dbe9041615927c292640098af1028eb6ae477de3baac03e0da227f6c79625bcb16e838aaf4b6f121339dfd39892f3fecd614e01bfc1352c591ad2d1d0405d23a382c5e2cf6e08666d7c409f27285a003f55a512c348c5ce6d2a4",
                "e6047beb10861935c77f663197a90017d9dc9c789ff1e8a9fd9989dab009cb3446f5273c63d86578d3c81c89fa1dd278",
            ],
        ),
        (
            "aes192-ctr",
            "hmac-sha2-512-etm@openssh.com",
            &[
                "000000203af4fbc8aad1d6c1a7e0decd9554996500270ea53db584694e4f9e116a6be004279c67eace5e53c3eea74d29136c54dc6785397d8c0752bd23f1d99e10587c0ac03ca8bae686af1b6ffa06a8950f14365b241756f25a51e7ef1f42487fcd0a6a",
                "00000030024893fc0944deaf8eeddcd501d31c6b9681f9cac17103526c2a37bac19e90e79133e62950b22c30152ec6c586f9b4dc41a22299bed366d43b437b0e6dc9273d2ddf31e30698006b83b2fc4381a7a5a1d916768f91170e78ad58b03cd82d24a8b4f61c4ac064adb04c725478a1d85b7c",
                "00000010ef4357e53245c3a59f1602d7afb6ecdd163761ce421a7fe949a482d6b9e7ff71aa0d0e58ca329ecef41ff17235767c88b49ede0aaaf6634905936d94cb3c5f83448843cef96c194c8ed739315098771e",
            ],
        ),
        (
            "aes256-cbc",
            "hmac-sha1-etm@openssh.com",
            &[
                "00000020f5f46035ab8d08abef9d1f3b17a25a40ea778bcc3da65a45d721d83a4c065106e7f9f9573629affc258ffbbaff022bb9a54fde00",
                "00000030ace1a3011a80c2a9c68518edfb1c31099b4f4b3a5298aca27368d14d5f6cef5a8f19a0b6641c8b31a5e0bc174b79fcf3bfc16efad8bd0c532034759ce47806e6c6899ef4",
                "00000010be2853bba23aaf1ca2ee834b304cf5629b8a3bb3f6f1748ed211a2fa1745ce4a447d6fea",
            ],
        ),
        (
            "3des-cbc",
            "hmac-sha1",
            &[
                "55909fb2cdda8d309d57866e149917503bf5ec7491369afe79820a6ae76d21e390bd4742f59f8c47c93f4e45a3f611c0d87fabde",
                "84f0739eb5db417ac27ee2c10ce3a1afd0269d0b15d2a16201aa257be30177d331c1a78039665bd45a7f78ac18ed216362dad01fecff770b44385e494e9b8683ab87714095bd5946fa8055d7",
                "8d086821899ba1df20f6bb6b2d6eaf8e13f8b80ac92d3b784829016de010ac0768acae28",
            ],
        ),
        (
            "chacha20-poly1305@openssh.com",
            "",
            &[
                "2a7638400c555eb80e19dce3b5d6e736852886bf8938224ad83fe53f19867a39e5ea27ee48dc0c53df22adae81e52724a8b6dd12",
                "04cfd1707517ae2830793c991c4d170b853aa242c31f039c47dbe8881daede51c562f6e890f71049efe3e2316e5afa3a935c25fdf2a1439ba4b67f5e0ff0910442a33201",
                "470493a166d0e2c32d5a189ef031df6a977c441701dd68da3121a6c65e8fbf5bab9fd1ab755fea8d1e6444776ba049bd7798e0e683d95d4cb67a0215695cb025248898dd05e2e2f0725961f8db96c3be0fe0a01189185f491037a4489df2281eb125b9f951d8fe9e755186c1bbe90e07845cfc57b4954cc410e6750e1f2d12c94d901073",
            ],
        ),
        (
            "aes128-gcm@openssh.com",
            "",
            &[
                "00000020cbe979d088fe23b009959402d6e5524453e962e4fd78a9a9a2d52003cf369d5812f75b0975d6c57e590363ade4aa9d3b",
                "000000300003e65a2cb3825105b8f6772059b703251a6367a79bedf58f13cd69aed62bef40640f49b755ca4a3e9b05f46ae4f839f515fc40f07aff7de46b39531ae63cdd",
                "00000010398663c613e08791b1fd14dea57d0ee6e6fdefbbadf6ca619b115d4b1bede425",
            ],
        ),
        (
            "aes256-gcm@openssh.com",
            "",
            &[
                "00000020d5d79d817ee26abbc287d4be37728307971204f19bef1fa80e297a8e6b7f94d31a192cccd644671c790b574da3e25142",
                "0000003070b7ba9ba39f4c4b724b7534b9f77a41c64251ae4aff27652277d8328eba982cf8995562f1ff4a187c24d8ab13356ac210297c3f9d5b8eb7ccf7c37241bb9f8f",
                "0000001089ecae925b11006805e9c1aacf0c137129859abc1d2c779e26bfb533af9727c4",
            ],
        ),
    ];

    /// (seq, payload length, payload seed) of each packet.
    type KatPackets = &'static [(u32, usize, u8)];

    /// Key material and packets of the known-answer vectors; the Python
    /// generator (`cryptography` package) used exactly these:
    /// key = kb(k, key_len), iv = kb(k + 0x10, iv_len), mac key = kb(k + 0x20, ..),
    /// GCM iv = 01020304 ffffffffffffff fe (the invocation counter wraps).
    fn kat_setup(cipher: &str) -> (u8, Vec<u8>, KatPackets) {
        const PKTS: &[(u32, usize, u8)] = &[(3, 20, 3), (4, 40, 4), (5, 0, 5)];
        const CHACHA: &[(u32, usize, u8)] = &[(3, 20, 3), (7, 40, 7), (0xFFFF_FFFF, 100, 0xFF)];
        let spec = cipher_spec(cipher).unwrap();
        match cipher {
            "aes128-ctr" => (0, kb(0x10, 16), PKTS),
            "aes192-ctr" => (1, kb(0x11, 16), PKTS),
            "aes256-cbc" => (2, kb(0x12, 16), PKTS),
            "3des-cbc" => (3, kb(0x13, 8), PKTS),
            "chacha20-poly1305@openssh.com" => (4, vec![], CHACHA),
            _ => {
                assert_eq!(spec.iv_len, 12);
                let mut iv = vec![1, 2, 3, 4];
                iv.extend([0xff; 7]);
                iv.push(0xfe);
                (5, iv, PKTS)
            }
        }
    }

    #[test]
    fn known_answers() {
        for (cipher, mac, expected) in KATS {
            let spec = cipher_spec(cipher).unwrap();
            let (k, iv, pkts) = kat_setup(cipher);
            let key = kb(k, spec.key_len);
            let mac_key = (!mac.is_empty()).then(|| kb(k + 0x20, mac_spec(mac).unwrap().key_len));
            let m = mac_key.as_ref().map(|mk| (*mac, mk.as_slice()));
            let mut s = Sealer::new(cipher, &key, &iv, m).unwrap();
            let mut o = Opener::new(cipher, &key, &iv, m).unwrap();
            assert_eq!(pkts.len(), expected.len());
            for (&(seq, plen, seed), hex) in pkts.iter().zip(expected.iter()) {
                let (plain, wire) = seal_one(&mut s, seq, plen, seed);
                assert_eq!(wire, unhex(hex), "{cipher} {mac} seq {seq}");
                let mut w = unhex(hex);
                open_one(&mut o, seq, &mut w).unwrap();
                assert_eq!(&w[..plain.len()], &plain[..], "{cipher} {mac} seq {seq}");
            }
        }
    }
}
