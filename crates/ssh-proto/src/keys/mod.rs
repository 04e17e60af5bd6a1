//! Host and user keys: parsing, signatures, fingerprints, known_hosts, authorized_keys.
//!
//! Supported key types: `ssh-ed25519` (RFC 8709), `ecdsa-sha2-nistp256/384/521`
//! (RFC 5656) and `ssh-rsa` (RFC 4253, signatures `rsa-sha2-512`/`rsa-sha2-256`
//! per RFC 8332 and legacy `ssh-rsa`).
//!
//! [`PublicKey`] parses and writes SSH wire blobs and OpenSSH one-line public
//! keys, computes `ssh-keygen`-style fingerprints and verifies signatures.
//! [`PrivateKey`] reads OpenSSH, PKCS#1, SEC1 and PKCS#8 key files (OpenSSH
//! files may be passphrase-protected) and signs.

pub mod authorized_keys;
pub mod known_hosts;
mod pem;

#[cfg(test)]
mod tests;

use std::fmt;

use base64ct::{Base64, Base64Unpadded, Encoding};
use sha2::{Digest, Sha256, Sha512};
use zeroize::Zeroizing;

use crate::error::{Error, ErrorKind, Result};
use crate::wire::{Put, Reader};

pub use authorized_keys::{AuthorizedKey, AuthorizedKeys, ExpiryTime, KeyOptions};
pub use known_hosts::{known_hosts_line, HostKeyStatus, KnownHosts};

const ED25519: &str = "ssh-ed25519";
const ECDSA_P256: &str = "ecdsa-sha2-nistp256";
const ECDSA_P384: &str = "ecdsa-sha2-nistp384";
const ECDSA_P521: &str = "ecdsa-sha2-nistp521";
const SSH_RSA: &str = "ssh-rsa";
const RSA_SHA2_256: &str = "rsa-sha2-256";
const RSA_SHA2_512: &str = "rsa-sha2-512";

/// Smallest RSA modulus accepted (OpenSSH's `SSH_RSA_MINIMUM_MODULUS_SIZE`).
const RSA_MIN_BITS: usize = 1024;
/// Largest RSA modulus accepted (OpenSSH's `SSHBUF_MAX_BIGNUM` limit).
const RSA_MAX_BITS: usize = 16384;

fn host_key_error(detail: impl Into<String>) -> Error {
    Error::new(ErrorKind::HostKey, detail)
}

// ---------------------------------------------------------------------------
// Public keys
// ---------------------------------------------------------------------------

/// A public key of one of the supported types.
///
/// Two keys are equal when their canonical wire blobs are equal.
#[derive(Clone)]
pub struct PublicKey {
    /// Canonical wire blob (RFC 4253 §6.6 encoding, minimal mpints).
    blob: Vec<u8>,
    kind: PubKind,
}

#[derive(Clone)]
enum PubKind {
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

fn blob_err<T>(r: Result<T>) -> Result<T> {
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

    fn from_ed25519(vk: ed25519_dalek::VerifyingKey) -> PublicKey {
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
    fn from_ecdsa_kind(kind: PubKind, point: &[u8]) -> PublicKey {
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
    fn rsa_from_parts(e: &[u8], n: &[u8]) -> Result<PublicKey> {
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
    /// `data`. Fails with [`ErrorKind::HostKey`] unless the blob's algorithm equals `sig_alg`,
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
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    Base64::decode_vec(s)
        .ok()
        .or_else(|| Base64Unpadded::decode_vec(s).ok())
}

/// Turns an SSH ECDSA signature (`mpint r || mpint s`, RFC 5656 §3.1.2) into `r || s`,
/// each left-padded to `size` bytes.
fn ecdsa_sig_to_fixed(sig: &[u8], size: usize) -> Option<Vec<u8>> {
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

fn ecdsa_sig_encode(r: &[u8], s: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(r.len() + s.len() + 10);
    v.put_mpint_positive(r);
    v.put_mpint_positive(s);
    v
}

// ---------------------------------------------------------------------------
// Private keys
// ---------------------------------------------------------------------------

/// A private key. Secret material is zeroized on drop (by the underlying
/// `ed25519-dalek`, `ecdsa` and `rsa` key types); `Debug` prints only the key
/// type, fingerprint and comment.
#[derive(Clone)]
pub struct PrivateKey {
    inner: PrivKind,
    public: PublicKey,
    comment: String,
}

#[derive(Clone)]
enum PrivKind {
    Ed25519(ed25519_dalek::SigningKey),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    P521(p521::ecdsa::SigningKey),
    Rsa(Box<rsa::PrivateKey>),
}

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrivateKey")
            .field("type", &self.public.key_type())
            .field("fingerprint", &self.public.fingerprint())
            .field("comment", &self.comment)
            .finish_non_exhaustive()
    }
}

const OPENSSH_LABEL: &str = "OPENSSH PRIVATE KEY";
/// Refuse bcrypt-pbkdf work factors beyond this (ssh-keygen's default is 16; 1024 rounds take
/// about 7 s, for OpenSSH as for us), so a hostile key file cannot make us spin for minutes.
/// Fuzzing found that 100,000 (the earlier limit) kept a parser busy for over 7 minutes.
#[cfg(not(fuzzing))]
pub const MAX_BCRYPT_ROUNDS: u32 = 1024;
/// Under the fuzzer (AddressSanitizer makes a round ~90 ms) the cap is
/// ssh-keygen's default, so one mutated key cannot stall a run for minutes.
#[cfg(fuzzing)]
pub const MAX_BCRYPT_ROUNDS: u32 = 16;

impl PrivateKey {
    /// Generates a new ed25519 key from `rng`.
    pub fn generate_ed25519(rng: &mut dyn rand_core::CryptoRng) -> PrivateKey {
        let mut seed = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut seed[..]);
        let sk = ed25519_dalek::SigningKey::from_bytes(&seed);
        let public = PublicKey::from_ed25519(sk.verifying_key());
        PrivateKey {
            inner: PrivKind::Ed25519(sk),
            public,
            comment: String::new(),
        }
    }

    fn from_kind(inner: PrivKind, comment: String) -> Result<PrivateKey> {
        let public = match &inner {
            PrivKind::Ed25519(sk) => PublicKey::from_ed25519(sk.verifying_key()),
            PrivKind::P256(sk) => {
                let vk = *sk.verifying_key();
                let point = vk.to_sec1_point(false);
                PublicKey::from_ecdsa_kind(PubKind::P256(vk), point.as_bytes())
            }
            PrivKind::P384(sk) => {
                let vk = *sk.verifying_key();
                let point = vk.to_sec1_point(false);
                PublicKey::from_ecdsa_kind(PubKind::P384(vk), point.as_bytes())
            }
            PrivKind::P521(sk) => {
                let vk = *sk.verifying_key();
                let point = vk.to_sec1_point(false);
                PublicKey::from_ecdsa_kind(PubKind::P521(vk), point.as_bytes())
            }
            PrivKind::Rsa(k) => {
                use rsa::traits::PublicKeyParts;
                PublicKey::rsa_from_parts(&k.e_bytes(), &k.n_bytes())?
            }
        };
        Ok(PrivateKey {
            inner,
            public,
            comment,
        })
    }

    /// Parses a private key file's contents.
    ///
    /// Formats: OpenSSH (`BEGIN OPENSSH PRIVATE KEY`; ed25519, ECDSA, RSA; unencrypted or
    /// encrypted with any cipher/KDF `ssh-key` supports, e.g. bcrypt-pbkdf + aes256-ctr),
    /// PKCS#1 (`BEGIN RSA PRIVATE KEY`), SEC1 (`BEGIN EC PRIVATE KEY`, P-256/384/521) and
    /// PKCS#8 (`BEGIN PRIVATE KEY`; ed25519, EC, RSA).
    ///
    /// An encrypted OpenSSH key without `passphrase` fails with "passphrase required"; a wrong
    /// passphrase with "wrong passphrase". A passphrase given for an unencrypted key is ignored.
    /// Legacy encrypted PEM (`Proc-Type: 4,ENCRYPTED`) and encrypted PKCS#8 are refused as
    /// unsupported.
    pub fn from_bytes(data: &[u8], passphrase: Option<&[u8]>) -> Result<PrivateKey> {
        let text = std::str::from_utf8(data)
            .map_err(|_| Error::key("private key file is not text (expected PEM)"))?;
        if pem::first_label(text).is_none() {
            if text.trim_start().starts_with("PuTTY-User-Key-File") {
                return Err(Error::key("PuTTY .ppk private keys are not supported"));
            }
            return Err(Error::key("not a PEM private key file"));
        }
        let pem = pem::parse(text)?;
        match pem.label.as_str() {
            OPENSSH_LABEL => Self::from_openssh_binary(&pem.body, passphrase),
            "RSA PRIVATE KEY" | "EC PRIVATE KEY" | "DSA PRIVATE KEY"
                if pem.has_encrypted_header() =>
            {
                Err(Error::key(format!(
                    "unsupported: legacy encrypted PEM key ({}, Proc-Type: 4,ENCRYPTED); \
                     convert it with `ssh-keygen -p -f FILE` to the OpenSSH format",
                    pem.label
                )))
            }
            "RSA PRIVATE KEY" => {
                use rsa::pkcs1::DecodeRsaPrivateKey;
                let k = rsa::PrivateKey::from_pkcs1_der(&pem.body)
                    .map_err(|e| Error::key(format!("invalid PKCS#1 RSA private key: {e}")))?;
                Self::from_kind(PrivKind::Rsa(Box::new(k)), String::new())
            }
            "EC PRIVATE KEY" => Self::from_sec1_der(&pem.body),
            "PRIVATE KEY" => Self::from_pkcs8_der(&pem.body),
            "ENCRYPTED PRIVATE KEY" => Err(Error::key(
                "unsupported: encrypted PKCS#8 private key; convert it with \
                 `ssh-keygen -p -f FILE` to the OpenSSH format",
            )),
            "DSA PRIVATE KEY" => Err(Error::key("unsupported key type: DSA")),
            other => Err(Error::key(format!(
                "unsupported PEM block \"{other}\" (not a private key)"
            ))),
        }
    }

    fn from_openssh_binary(body: &[u8], passphrase: Option<&[u8]>) -> Result<PrivateKey> {
        let parsed = ssh_key::PrivateKey::from_bytes(body)
            .map_err(|e| Error::key(format!("invalid OpenSSH private key: {e}")))?;
        let key = if parsed.is_encrypted() {
            let Some(pass) = passphrase else {
                return Err(Error::key("passphrase required to decrypt the private key"));
            };
            if !cipher_supported(parsed.cipher()) {
                return Err(Error::key(format!(
                    "unsupported private key encryption cipher {}",
                    parsed.cipher()
                )));
            }
            if let ssh_key::Kdf::Bcrypt { rounds, .. } = parsed.kdf() {
                if *rounds > MAX_BCRYPT_ROUNDS {
                    return Err(Error::key(format!(
                        "unsupported: bcrypt-pbkdf with {rounds} rounds (limit {MAX_BCRYPT_ROUNDS})"
                    )));
                }
            }
            parsed.decrypt(pass).map_err(|e| match e {
                ssh_key::Error::AlgorithmUnknown | ssh_key::Error::AlgorithmUnsupported { .. } => {
                    Error::key(format!("unsupported private key encryption: {e}"))
                }
                ssh_key::Error::Crypto => Error::key("wrong passphrase"),
                other => Error::key(format!("wrong passphrase (or corrupt key file: {other})")),
            })?
        } else {
            parsed
        };
        let comment = key.comment().as_str_lossy().to_string();
        let stated_public = key
            .public_key()
            .to_bytes()
            .map_err(|e| Error::key(format!("invalid OpenSSH private key: {e}")))?;
        let inner = openssh_keypair_to_kind(key.key_data())?;
        let pk = Self::from_kind(inner, comment)?;
        if pk.public.blob != stated_public {
            return Err(Error::key("private key does not match its public key"));
        }
        Ok(pk)
    }

    fn from_sec1_der(der: &[u8]) -> Result<PrivateKey> {
        use p256::elliptic_curve::pkcs8::AssociatedOid;
        let ec = ssh_key::sec1::EcPrivateKey::try_from(der)
            .map_err(|e| Error::key(format!("invalid SEC1 EC private key: {e}")))?;
        let oid = match ec.parameters {
            Some(ssh_key::sec1::EcParameters::NamedCurve(oid)) => oid,
            _ => return Err(Error::key("SEC1 EC private key without a named curve")),
        };
        let inner = if oid == p256::NistP256::OID {
            PrivKind::P256(p256::SecretKey::from_sec1_der(der).map_err(dec_err)?.into())
        } else if oid == p384::NistP384::OID {
            PrivKind::P384(p384::SecretKey::from_sec1_der(der).map_err(dec_err)?.into())
        } else if oid == p521::NistP521::OID {
            PrivKind::P521(p521::SecretKey::from_sec1_der(der).map_err(dec_err)?.into())
        } else {
            return Err(Error::key(format!("unsupported EC curve {oid}")));
        };
        Self::from_kind(inner, String::new())
    }

    fn from_pkcs8_der(der: &[u8]) -> Result<PrivateKey> {
        use p256::elliptic_curve::pkcs8::{AssociatedOid, ObjectIdentifier, PrivateKeyInfoRef};
        const ED25519_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
        const EC_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
        const RSA_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
        let p8err = |e: p256::pkcs8::Error| Error::key(format!("invalid PKCS#8 private key: {e}"));
        let info = PrivateKeyInfoRef::try_from(der).map_err(p8err)?;
        let oid = info.algorithm.oid;
        let inner = if oid == ED25519_OID {
            // RFC 8410: privateKey is an OCTET STRING wrapping the 32-byte seed.
            let bytes = info.private_key.as_bytes();
            let seed: &[u8; 32] = match bytes {
                [0x04, 0x20, rest @ ..] => rest.try_into().ok(),
                _ => None,
            }
            .ok_or_else(|| Error::key("invalid PKCS#8 ed25519 private key"))?;
            let sk = ed25519_dalek::SigningKey::from_bytes(seed);
            if let Some(pk) = &info.public_key {
                if pk.as_bytes() != Some(sk.verifying_key().as_bytes().as_slice()) {
                    return Err(Error::key(
                        "PKCS#8 ed25519 private key does not match its public key",
                    ));
                }
            }
            PrivKind::Ed25519(sk)
        } else if oid == EC_OID {
            let curve = info
                .algorithm
                .parameters_oid()
                .map_err(|e| p8err(e.into()))?;
            if curve == p256::NistP256::OID {
                PrivKind::P256(p256::SecretKey::try_from(info).map_err(p8err)?.into())
            } else if curve == p384::NistP384::OID {
                PrivKind::P384(p384::SecretKey::try_from(info).map_err(p8err)?.into())
            } else if curve == p521::NistP521::OID {
                PrivKind::P521(p521::SecretKey::try_from(info).map_err(p8err)?.into())
            } else {
                return Err(Error::key(format!("unsupported EC curve {curve}")));
            }
        } else if oid == RSA_OID {
            PrivKind::Rsa(Box::new(rsa::PrivateKey::try_from(info).map_err(p8err)?))
        } else {
            return Err(Error::key(format!(
                "unsupported PKCS#8 key algorithm {oid}"
            )));
        };
        Self::from_kind(inner, String::new())
    }

    /// True when `data` is a private key file that needs a passphrase (an encrypted OpenSSH
    /// key, legacy encrypted PEM, or encrypted PKCS#8).
    pub fn is_encrypted(data: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(data) else {
            return false;
        };
        let Ok(pem) = pem::parse(text) else {
            return false;
        };
        match pem.label.as_str() {
            OPENSSH_LABEL => ssh_key::PrivateKey::from_bytes(&pem.body)
                .map(|k| k.is_encrypted())
                .unwrap_or(false),
            "ENCRYPTED PRIVATE KEY" => true,
            _ => pem.has_encrypted_header(),
        }
    }

    /// The public half of this key.
    pub fn public_key(&self) -> PublicKey {
        self.public.clone()
    }

    /// The key comment (from an OpenSSH key file; empty otherwise).
    pub fn comment(&self) -> &str {
        &self.comment
    }

    /// Sets the comment written by [`to_openssh`](Self::to_openssh).
    pub fn set_comment(&mut self, comment: &str) {
        self.comment = comment.to_string();
    }

    /// Signs `data` with `sig_alg` (one of [`PublicKey::sig_algorithms`] of this key) and returns
    /// the wire signature blob: `string sig_alg || string signature`.
    ///
    /// RSA signing uses the `rsa` crate's default blinding, which draws from the operating
    /// system RNG; the signature itself is deterministic (as are ed25519 and RFC 6979 ECDSA).
    pub fn sign(&self, sig_alg: &str, data: &[u8]) -> Result<Vec<u8>> {
        if !self.public.sig_algorithms().contains(&sig_alg) {
            return Err(Error::key(format!(
                "signature algorithm {} cannot be used with a {} key",
                sig_alg.escape_default(),
                self.public.key_type()
            )));
        }
        let fail = |e: &dyn fmt::Display| Error::key(format!("{sig_alg} signing failed: {e}"));
        let sig = match &self.inner {
            PrivKind::Ed25519(sk) => {
                use ed25519_dalek::Signer;
                sk.sign(data).to_bytes().to_vec()
            }
            PrivKind::P256(sk) => {
                use p256::ecdsa::signature::Signer;
                let s: p256::ecdsa::Signature = sk.try_sign(data).map_err(|e| fail(&e))?;
                let (r, s) = s.split_bytes();
                ecdsa_sig_encode(&r, &s)
            }
            PrivKind::P384(sk) => {
                use p384::ecdsa::signature::Signer;
                let s: p384::ecdsa::Signature = sk.try_sign(data).map_err(|e| fail(&e))?;
                let (r, s) = s.split_bytes();
                ecdsa_sig_encode(&r, &s)
            }
            PrivKind::P521(sk) => {
                use p521::ecdsa::signature::Signer;
                let s: p521::ecdsa::Signature = sk.try_sign(data).map_err(|e| fail(&e))?;
                let (r, s) = s.split_bytes();
                ecdsa_sig_encode(&r, &s)
            }
            PrivKind::Rsa(k) => match sig_alg {
                RSA_SHA2_512 => k.pkcs1v15_sign::<Sha512>(data),
                RSA_SHA2_256 => k.pkcs1v15_sign::<Sha256>(data),
                _ => k.pkcs1v15_sign::<sha1::Sha1>(data),
            }
            .map_err(|e| fail(&e))?,
        };
        let mut out = Vec::with_capacity(sig.len() + sig_alg.len() + 8);
        out.put_str(sig_alg);
        out.put_string(&sig);
        Ok(out)
    }

    /// The key as unencrypted OpenSSH private key file text (`-----BEGIN OPENSSH PRIVATE
    /// KEY-----`, LF line endings), readable by `ssh`/`ssh-keygen`.
    pub fn to_openssh(&self) -> Result<String> {
        use ssh_key::private::{EcdsaKeypair, Ed25519Keypair, KeypairData, RsaKeypair};
        let err = |e: ssh_key::Error| Error::key(format!("cannot encode private key: {e}"));
        let data: KeypairData = match &self.inner {
            PrivKind::Ed25519(sk) => Ed25519Keypair::from(sk).into(),
            PrivKind::P256(sk) => {
                let secret = p256::SecretKey::from(sk.as_nonzero_scalar());
                let public = secret.public_key();
                EcdsaKeypair::NistP256 {
                    public: public.into(),
                    private: secret.into(),
                }
                .into()
            }
            PrivKind::P384(sk) => {
                let secret = p384::SecretKey::from(sk.as_nonzero_scalar());
                let public = secret.public_key();
                EcdsaKeypair::NistP384 {
                    public: public.into(),
                    private: secret.into(),
                }
                .into()
            }
            PrivKind::P521(sk) => {
                let secret = p521::SecretKey::from(sk.as_nonzero_scalar());
                let public = secret.public_key();
                EcdsaKeypair::NistP521 {
                    public: public.into(),
                    private: secret.into(),
                }
                .into()
            }
            PrivKind::Rsa(k) => RsaKeypair::try_from(&**k).map_err(err)?.into(),
        };
        let key = ssh_key::PrivateKey::new(data, self.comment.as_str()).map_err(err)?;
        let text = key.to_openssh(ssh_key::LineEnding::LF).map_err(err)?;
        Ok(String::clone(&text))
    }
}

/// Whether `ssh-key` was built with support for `cipher` (it reports a missing cipher as a
/// generic crypto error from `decrypt`, indistinguishable from a wrong passphrase).
fn cipher_supported(cipher: ssh_key::Cipher) -> bool {
    let Some((key_len, iv_len)) = cipher.key_and_iv_size() else {
        return true;
    };
    let mut block = vec![0u8; cipher.block_size()];
    !matches!(
        cipher.decrypt(&vec![0u8; key_len], &vec![0u8; iv_len], &mut block, None),
        Err(ssh_key::cipher::Error::UnsupportedCipher(_))
    )
}

fn dec_err(e: p256::elliptic_curve::DecodeError) -> Error {
    Error::key(format!("invalid EC private key: {e}"))
}

fn openssh_keypair_to_kind(data: &ssh_key::private::KeypairData) -> Result<PrivKind> {
    use ssh_key::private::{EcdsaKeypair, KeypairData};
    let bad = |what: &str| Error::key(format!("invalid {what} private key in OpenSSH key file"));
    Ok(match data {
        KeypairData::Ed25519(kp) => {
            PrivKind::Ed25519(ed25519_dalek::SigningKey::try_from(kp).map_err(|_| bad("ed25519"))?)
        }
        KeypairData::Ecdsa(kp) => match kp {
            EcdsaKeypair::NistP256 { private, .. } => PrivKind::P256(
                p256::SecretKey::from_slice(private.as_slice())
                    .map_err(|_| bad("P-256"))?
                    .into(),
            ),
            EcdsaKeypair::NistP384 { private, .. } => PrivKind::P384(
                p384::SecretKey::from_slice(private.as_slice())
                    .map_err(|_| bad("P-384"))?
                    .into(),
            ),
            EcdsaKeypair::NistP521 { private, .. } => PrivKind::P521(
                p521::SecretKey::from_slice(private.as_slice())
                    .map_err(|_| bad("P-521"))?
                    .into(),
            ),
        },
        KeypairData::Rsa(kp) => PrivKind::Rsa(Box::new(
            rsa::PrivateKey::try_from(kp).map_err(|_| bad("RSA"))?,
        )),
        other => {
            let name = other
                .algorithm()
                .map(|a| a.as_str().to_string())
                .unwrap_or_else(|_| "unknown".to_string());
            return Err(Error::key(format!("unsupported private key type {name}")));
        }
    })
}
