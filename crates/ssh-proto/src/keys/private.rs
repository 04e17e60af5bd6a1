//! Private keys: OpenSSH, PKCS#1, SEC1 and PKCS#8 key files, and signing.

use std::fmt;

use sha2::{Sha256, Sha512};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::wire::Put;

use super::openssh_ecdsa;
use super::public::{ecdsa_sig_encode, PubKind};
use super::{pem, PublicKey, RSA_SHA2_256, RSA_SHA2_512};

/// A private key. Secret material is zeroized on drop (by the underlying
/// `ed25519-dalek`, `ecdsa` and `rsa` key types); `Debug` prints only the key
/// type, fingerprint and comment.
#[derive(Clone)]
pub struct PrivateKey {
    pub(super) inner: PrivKind,
    pub(super) public: PublicKey,
    pub(super) comment: String,
}

#[derive(Clone)]
pub(super) enum PrivKind {
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

pub(super) const OPENSSH_LABEL: &str = "OPENSSH PRIVATE KEY";
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
        let parsed = openssh_ecdsa::parse_plain(body)
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
            if openssh_ecdsa::Container::parse(body).is_some_and(|c| c.is_ecdsa()) {
                openssh_ecdsa::decrypt_ecdsa(&parsed, body, pass)?
            } else {
                parsed.decrypt(pass).map_err(|e| match e {
                    ssh_key::Error::AlgorithmUnknown
                    | ssh_key::Error::AlgorithmUnsupported { .. } => {
                        Error::key(format!("unsupported private key encryption: {e}"))
                    }
                    ssh_key::Error::Crypto => Error::key("wrong passphrase"),
                    other => Error::key(format!("wrong passphrase (or corrupt key file: {other})")),
                })?
            }
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
            OPENSSH_LABEL => openssh_ecdsa::parse_plain(&pem.body)
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
pub(super) fn cipher_supported(cipher: ssh_key::Cipher) -> bool {
    let Some((key_len, iv_len)) = cipher.key_and_iv_size() else {
        return true;
    };
    let mut block = vec![0u8; cipher.block_size()];
    !matches!(
        cipher.decrypt(&vec![0u8; key_len], &vec![0u8; iv_len], &mut block, None),
        Err(ssh_key::cipher::Error::UnsupportedCipher(_))
    )
}

pub(super) fn dec_err(e: p256::elliptic_curve::DecodeError) -> Error {
    Error::key(format!("invalid EC private key: {e}"))
}

pub(super) fn openssh_keypair_to_kind(data: &ssh_key::private::KeypairData) -> Result<PrivKind> {
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
