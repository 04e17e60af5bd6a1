//! Public keys: SSH wire blobs, OpenSSH one-line keys, fingerprints and
//! signature verification.

use std::fmt;

use base64ct::{Base64, Base64Unpadded, Encoding};
use sha2::{Digest, Sha256, Sha512};

use super::{
    host_key_error, ECDSA_P256, ECDSA_P384, ECDSA_P521, ED25519, RSA_MAX_BITS, RSA_MIN_BITS,
    RSA_SHA2_256, RSA_SHA2_512, SSH_RSA,
};
use crate::error::{Error, Result};
use crate::wire::{Put, Reader};

///
/// Two keys are equal when their canonical wire blobs are equal.
#[derive(Clone)]
pub struct PublicKey {
    /// Canonical wire blob (RFC 4253 §6.6 encoding, minimal mpints).
    pub(super) blob: Vec<u8>,
    pub(super) kind: PubKind,
}

#[derive(Clone)]
pub(super) enum PubKind {
    Ed25519(ed25519_dalek::VerifyingKey),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    P521(p521::ecdsa::VerifyingKey),
    Rsa {
        key: Box<rsa::PublicKey>,
        bits: usize,
    },
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.blob == other.blob
    }
}

impl Eq for PublicKey {}

impl std::hash::Hash for PublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.blob.hash(state)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} {})", self.key_type(), self.fingerprint())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_openssh())
    }
}

pub(super) fn blob_err<T>(r: Result<T>) -> Result<T> {
    r.map_err(|e| Error::key(format!("malformed public key blob: {}", e.detail())))
}

impl PublicKey {
    /// Parses an SSH wire public key blob (RFC 4253 §6.6, RFC 5656 §3.1, RFC 8709 §4).
    ///
    /// RSA mpints with redundant leading zero bytes are accepted; [`to_blob`](Self::to_blob)
    /// then returns the canonical (minimal) encoding, which may differ from the input.
    pub fn from_blob(blob: &[u8]) -> Result<PublicKey> {
        let mut r = Reader::new(blob);
        let alg = blob_err(r.string())?;
        let key = match alg {
            b"ssh-ed25519" => {
                let pk = blob_err(r.string())?;
                Self::ed25519_from_bytes(pk)?
            }
            b"ecdsa-sha2-nistp256" | b"ecdsa-sha2-nistp384" | b"ecdsa-sha2-nistp521" => {
                let curve = blob_err(r.string())?;
                let q = blob_err(r.string())?;
                if alg[11..] != *curve {
                    return Err(Error::key(format!(
                        "ECDSA key type {} does not match its curve identifier {}",
                        String::from_utf8_lossy(alg),
                        String::from_utf8_lossy(curve)
                    )));
                }
                Self::ecdsa_from_sec1(alg, q)?
            }
            b"ssh-rsa" => {
                let e = blob_err(r.mpint_positive())?;
                let n = blob_err(r.mpint_positive())?;
                Self::rsa_from_parts(e, n)?
            }
            other => {
                return Err(Error::key(format!(
                    "unsupported public key type \"{}\"",
                    String::from_utf8_lossy(other).escape_default()
                )))
            }
        };
        if !r.is_empty() {
            return Err(Error::key("trailing bytes after public key blob"));
        }
        Ok(key)
    }

    fn ed25519_from_bytes(pk: &[u8]) -> Result<PublicKey> {
        let arr: &[u8; 32] = pk
            .try_into()
            .map_err(|_| Error::key("ed25519 public key is not 32 bytes"))?;
        let vk = ed25519_dalek::VerifyingKey::from_bytes(arr)
            .map_err(|_| Error::key("invalid ed25519 public key"))?;
        Ok(Self::from_ed25519(vk))
    }

    pub(super) fn from_ed25519(vk: ed25519_dalek::VerifyingKey) -> PublicKey {
        let mut blob = Vec::with_capacity(51);
        blob.put_str(ED25519);
        blob.put_string(vk.as_bytes());
        PublicKey {
            blob,
            kind: PubKind::Ed25519(vk),
        }
    }

    fn ecdsa_from_sec1(alg: &[u8], q: &[u8]) -> Result<PublicKey> {
        // Only the uncompressed form (RFC 5656 §3.1 / what OpenSSH sends) is accepted, which
        // keeps the blob canonical.
        if q.first() != Some(&0x04) {
            return Err(Error::key(
                "ECDSA public key is not an uncompressed SEC1 point",
            ));
        }
        let bad = |_| Error::key("invalid ECDSA public key point");
        let kind = match alg {
            b"ecdsa-sha2-nistp256" => {
                PubKind::P256(p256::ecdsa::VerifyingKey::from_sec1_bytes(q).map_err(bad)?)
            }
            b"ecdsa-sha2-nistp384" => {
                PubKind::P384(p384::ecdsa::VerifyingKey::from_sec1_bytes(q).map_err(bad)?)
            }
            b"ecdsa-sha2-nistp521" => {
                PubKind::P521(p521::ecdsa::VerifyingKey::from_sec1_bytes(q).map_err(bad)?)
            }
            _ => return Err(Error::key("unsupported ECDSA curve")),
        };
        Ok(Self::from_ecdsa_kind(kind, q))
    }

    /// `point` must be the uncompressed SEC1 encoding of the key in `kind`.
    pub(super) fn from_ecdsa_kind(kind: PubKind, point: &[u8]) -> PublicKey {
        let name = match kind {
            PubKind::P256(_) => ECDSA_P256,
            PubKind::P384(_) => ECDSA_P384,
            _ => ECDSA_P521,
        };
        let mut blob = Vec::with_capacity(40 + point.len());
        blob.put_str(name);
        blob.put_str(&name[11..]);
        blob.put_string(point);
        PublicKey { blob, kind }
    }

    /// `e` and `n` are unsigned big-endian magnitudes (leading zeros allowed).
    pub(super) fn rsa_from_parts(e: &[u8], n: &[u8]) -> Result<PublicKey> {
        let strip = |b: &[u8]| -> usize { b.iter().position(|&x| x != 0).unwrap_or(b.len()) };
        let e = &e[strip(e)..];
        let n = &n[strip(n)..];
        if n.is_empty() || e.is_empty() {
            return Err(Error::key("RSA key with zero modulus or exponent"));
        }
        if n.len() > RSA_MAX_BITS / 8 {
            return Err(Error::key("RSA modulus too large"));
        }
        if e.len() > n.len() {
            return Err(Error::key("RSA public exponent larger than modulus"));
        }
        let bits = (n.len() - 1) * 8 + (8 - n[0].leading_zeros() as usize);
        if bits < RSA_MIN_BITS {
            return Err(Error::key(format!(
                "RSA key of {bits} bits is too small (minimum {RSA_MIN_BITS})"
            )));
        }
        let key = rsa::PublicKey::new_with_size_limits(
            rsa::BoxedUint::from_be_slice_vartime(n),
            rsa::BoxedUint::from_be_slice_vartime(e),
            RSA_MIN_BITS..=RSA_MAX_BITS,
        )
        .map_err(|err| Error::key(format!("invalid RSA public key: {err}")))?;
        let mut blob = Vec::with_capacity(n.len() + e.len() + 24);
        blob.put_str(SSH_RSA);
        blob.put_mpint_positive(e);
        blob.put_mpint_positive(n);
        Ok(PublicKey {
            blob,
            kind: PubKind::Rsa {
                key: Box::new(key),
                bits,
            },
        })
    }

    /// The canonical SSH wire blob of this key.
    pub fn to_blob(&self) -> Vec<u8> {
        self.blob.clone()
    }

    /// The canonical SSH wire blob of this key, borrowed.
    pub fn blob(&self) -> &[u8] {
        &self.blob
    }

    /// Parses a one-line OpenSSH public key: `"type base64 [comment]"` (a `.pub` file or the
    /// key part of an `authorized_keys`/`known_hosts` line). The type must agree with the blob.
    pub fn from_openssh(line: &str) -> Result<PublicKey> {
        let mut fields = line.split_ascii_whitespace();
        let (Some(key_type), Some(b64)) = (fields.next(), fields.next()) else {
            return Err(Error::key("OpenSSH public key line needs \"type base64\""));
        };
        Self::from_type_and_base64(key_type, b64)
    }

    pub(crate) fn from_type_and_base64(key_type: &str, b64: &str) -> Result<PublicKey> {
        let blob =
            decode_base64(b64).ok_or_else(|| Error::key("invalid base64 in OpenSSH public key"))?;
        let key = Self::from_blob(&blob)?;
        if key.key_type() != key_type {
            return Err(Error::key(format!(
                "public key type \"{}\" does not match its blob ({})",
                key_type.escape_default(),
                key.key_type()
            )));
        }
        Ok(key)
    }

    /// `"type base64"` (no comment), as in a `.pub` file or `known_hosts`.
    pub fn to_openssh(&self) -> String {
        format!("{} {}", self.key_type(), Base64::encode_string(&self.blob))
    }

    /// The key type name: `ssh-ed25519`, `ecdsa-sha2-nistp256/384/521` or `ssh-rsa`.
    pub fn key_type(&self) -> &'static str {
        match self.kind {
            PubKind::Ed25519(_) => ED25519,
            PubKind::P256(_) => ECDSA_P256,
            PubKind::P384(_) => ECDSA_P384,
            PubKind::P521(_) => ECDSA_P521,
            PubKind::Rsa { .. } => SSH_RSA,
        }
    }

    /// Signature algorithms usable with this key, best first.
    pub fn sig_algorithms(&self) -> &'static [&'static str] {
        match self.kind {
            PubKind::Ed25519(_) => &[ED25519],
            PubKind::P256(_) => &[ECDSA_P256],
            PubKind::P384(_) => &[ECDSA_P384],
            PubKind::P521(_) => &[ECDSA_P521],
            PubKind::Rsa { .. } => &[RSA_SHA2_512, RSA_SHA2_256, SSH_RSA],
        }
    }

    /// `"SHA256:"` + unpadded base64 of SHA-256 of the blob, exactly as `ssh-keygen -l` prints it.
    pub fn fingerprint(&self) -> String {
        format!(
            "SHA256:{}",
            Base64Unpadded::encode_string(&Sha256::digest(&self.blob))
        )
    }

    /// Key size in bits: 256 for ed25519, the curve size for ECDSA, the modulus size for RSA.
    pub fn bits(&self) -> usize {
        match &self.kind {
            PubKind::Ed25519(_) | PubKind::P256(_) => 256,
            PubKind::P384(_) => 384,
            PubKind::P521(_) => 521,
            PubKind::Rsa { bits, .. } => *bits,
        }
    }

    /// Verifies `signature_blob` (`string sig_alg || string signature`, as on the wire) over
    /// `data`. Fails with [`ErrorKind::HostKey`](crate::ErrorKind::HostKey) unless the blob's algorithm equals `sig_alg`,
    /// `sig_alg` is valid for this key, and the signature is good.
    pub fn verify(&self, sig_alg: &str, data: &[u8], signature_blob: &[u8]) -> Result<()> {
        if !self.sig_algorithms().contains(&sig_alg) {
            return Err(host_key_error(format!(
                "signature algorithm {} cannot be used with a {} key",
                sig_alg.escape_default(),
                self.key_type()
            )));
        }
        let mut r = Reader::new(signature_blob);
        let (alg, sig) = match (r.string(), r.string()) {
            (Ok(a), Ok(s)) if r.is_empty() => (a, s),
            _ => return Err(host_key_error("malformed signature blob")),
        };
        if alg != sig_alg.as_bytes() {
            return Err(host_key_error(format!(
                "signature algorithm mismatch: expected {sig_alg}, got {}",
                String::from_utf8_lossy(alg).escape_default()
            )));
        }
        let bad = || host_key_error(format!("{sig_alg} signature verification failed"));
        match &self.kind {
            PubKind::Ed25519(vk) => {
                let arr: &[u8; 64] = sig.try_into().map_err(|_| bad())?;
                let sig = ed25519_dalek::Signature::from_bytes(arr);
                vk.verify_strict(data, &sig).map_err(|_| bad())
            }
            PubKind::P256(vk) => {
                use p256::ecdsa::signature::Verifier;
                let rs = ecdsa_sig_to_fixed(sig, 32).ok_or_else(bad)?;
                let sig = p256::ecdsa::Signature::from_slice(&rs).map_err(|_| bad())?;
                vk.verify(data, &sig).map_err(|_| bad())
            }
            PubKind::P384(vk) => {
                use p384::ecdsa::signature::Verifier;
                let rs = ecdsa_sig_to_fixed(sig, 48).ok_or_else(bad)?;
                let sig = p384::ecdsa::Signature::from_slice(&rs).map_err(|_| bad())?;
                vk.verify(data, &sig).map_err(|_| bad())
            }
            PubKind::P521(vk) => {
                use p521::ecdsa::signature::Verifier;
                let rs = ecdsa_sig_to_fixed(sig, 66).ok_or_else(bad)?;
                let sig = p521::ecdsa::Signature::from_slice(&rs).map_err(|_| bad())?;
                vk.verify(data, &sig).map_err(|_| bad())
            }
            PubKind::Rsa { key, .. } => {
                use rsa::traits::PublicKeyParts;
                // OpenSSH accepts (and some signers emit) signatures shorter than the modulus;
                // left-pad them as ssh_rsa_verify() does.
                let size = key.size();
                if sig.len() > size || sig.is_empty() {
                    return Err(bad());
                }
                let mut padded = vec![0u8; size - sig.len()];
                padded.extend_from_slice(sig);
                let res = match sig_alg {
                    RSA_SHA2_512 => key.verify(
                        rsa::Pkcs1v15Sign::new::<Sha512>(),
                        &Sha512::digest(data),
                        &padded,
                    ),
                    RSA_SHA2_256 => key.verify(
                        rsa::Pkcs1v15Sign::new::<Sha256>(),
                        &Sha256::digest(data),
                        &padded,
                    ),
                    _ => key.verify(
                        rsa::Pkcs1v15Sign::new::<sha1::Sha1>(),
                        &sha1::Sha1::digest(data),
                        &padded,
                    ),
                };
                res.map_err(|_| bad())
            }
        }
    }
}

/// Decodes base64 with or without padding.
pub(super) fn decode_base64(s: &str) -> Option<Vec<u8>> {
    Base64::decode_vec(s)
        .ok()
        .or_else(|| Base64Unpadded::decode_vec(s).ok())
}

/// Turns an SSH ECDSA signature (`mpint r || mpint s`, RFC 5656 §3.1.2) into `r || s`,
/// each left-padded to `size` bytes.
pub(super) fn ecdsa_sig_to_fixed(sig: &[u8], size: usize) -> Option<Vec<u8>> {
    let mut r = Reader::new(sig);
    let a = r.mpint_positive().ok()?;
    let b = r.mpint_positive().ok()?;
    if !r.is_empty() || a.len() > size || b.len() > size {
        return None;
    }
    let mut out = vec![0u8; 2 * size];
    out[size - a.len()..size].copy_from_slice(a);
    out[2 * size - b.len()..].copy_from_slice(b);
    Some(out)
}

pub(super) fn ecdsa_sig_encode(r: &[u8], s: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(r.len() + s.len() + 10);
    v.put_mpint_positive(r);
    v.put_mpint_positive(s);
    v
}
