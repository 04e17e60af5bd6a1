//! SSH key exchange.
//!
//! This file holds the mathematics (not the message flow); the files beside
//! it: `hash` (the hash functions), `dh` (finite-field groups and group
//! exchange), `primitives` (X25519, NIST ECDH, hybrid secrets), `run` (the
//! message flow on a `Transport`: KEXINIT, negotiation, the method's
//! messages) and `newkeys` (exchange hash, key derivation, NEWKEYS).
//!
//! This module knows every supported key exchange method by name
//! ([`kex_spec`]), generates the ephemeral values of each side
//! ([`ClientKex`], [`server_kex`]), validates the peer's values, computes the
//! shared secret `K` in the exact encoding that goes into the exchange hash,
//! and derives session keys from it ([`derive_key`], RFC 4253 §7.2).
//!
//! Methods and their references:
//!
//! | method | reference |
//! |---|---|
//! | `curve25519-sha256`, `curve25519-sha256@libssh.org` | RFC 8731 |
//! | `ecdh-sha2-nistp256/384/521` | RFC 5656 |
//! | `mlkem768x25519-sha256` | draft-ietf-sshm-mlkem-hybrid-kex, OpenSSH |
//! | `sntrup761x25519-sha512`, `…@openssh.com` | draft-josefsson-ntruprime-ssh (RFC 9941), OpenSSH |
//! | `diffie-hellman-group{1,14}-sha1`, `group14-sha256`, `group16/18-sha512` | RFC 4253, RFC 8268 |
//! | `diffie-hellman-group-exchange-sha1/sha256` | RFC 4419 |
//!
//! Secrets (private scalars, exponents, KEM private keys, `K`) are zeroized
//! on drop where the underlying crate allows it.

mod dh;
mod hash;
mod newkeys;
mod primitives;
pub(super) mod run;
#[cfg(test)]
mod tests;

use core::fmt;

use ml_kem::kem::{Decapsulate, Encapsulate, Kem, KeyExport, TryKeyInit};
use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

pub use dh::gex_choose;
use dh::{strip_zeros, DhMath};
pub(crate) use dh::{DhGroup, DhParams, GROUP1, GROUP14, GROUP16, GROUP18};
#[cfg(test)]
use dh::{GROUP15, GROUP17};
pub(crate) use hash::HashAlg;
use primitives::{
    hybrid_secret, p256_keygen, p256_shared, p384_keygen, p384_shared, p521_keygen, p521_shared,
    x25519_keygen, x25519_shared, MlKemDk, MlKemEk, MLKEM768_CT_LEN, MLKEM768_PK_LEN,
    SNTRUP_CT_LEN, SNTRUP_PK_LEN, X25519_LEN,
};

// ---------------------------------------------------------------------------
// Methods
// ---------------------------------------------------------------------------

/// The mathematics behind a key exchange method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KexKind {
    Curve25519,
    EcdhP256,
    EcdhP384,
    EcdhP521,
    MlKem768X25519,
    Sntrup761X25519,
    /// Classic Diffie-Hellman over a fixed group.
    Dh(&'static DhGroup),
    /// Diffie-Hellman group exchange (RFC 4419): the group is chosen per
    /// connection.
    DhGex,
}

/// One key exchange method: its name, hash and mathematics.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct KexSpec {
    pub name: &'static str,
    pub hash: HashAlg,
    pub kind: KexKind,
}

impl KexSpec {
    /// true when the public values go on the wire and into the exchange hash
    /// as `mpint` (classic DH, GEX); false when they are `string` (ECDH,
    /// curve25519, hybrids).
    pub(crate) fn public_is_mpint(&self) -> bool {
        matches!(self.kind, KexKind::Dh(_) | KexKind::DhGex)
    }
}

static SPECS: [KexSpec; 15] = [
    KexSpec {
        name: "mlkem768x25519-sha256",
        hash: HashAlg::Sha256,
        kind: KexKind::MlKem768X25519,
    },
    KexSpec {
        name: "sntrup761x25519-sha512",
        hash: HashAlg::Sha512,
        kind: KexKind::Sntrup761X25519,
    },
    KexSpec {
        name: "sntrup761x25519-sha512@openssh.com",
        hash: HashAlg::Sha512,
        kind: KexKind::Sntrup761X25519,
    },
    KexSpec {
        name: "curve25519-sha256",
        hash: HashAlg::Sha256,
        kind: KexKind::Curve25519,
    },
    KexSpec {
        name: "curve25519-sha256@libssh.org",
        hash: HashAlg::Sha256,
        kind: KexKind::Curve25519,
    },
    KexSpec {
        name: "ecdh-sha2-nistp256",
        hash: HashAlg::Sha256,
        kind: KexKind::EcdhP256,
    },
    KexSpec {
        name: "ecdh-sha2-nistp384",
        hash: HashAlg::Sha384,
        kind: KexKind::EcdhP384,
    },
    KexSpec {
        name: "ecdh-sha2-nistp521",
        hash: HashAlg::Sha512,
        kind: KexKind::EcdhP521,
    },
    KexSpec {
        name: "diffie-hellman-group14-sha256",
        hash: HashAlg::Sha256,
        kind: KexKind::Dh(&GROUP14),
    },
    KexSpec {
        name: "diffie-hellman-group16-sha512",
        hash: HashAlg::Sha512,
        kind: KexKind::Dh(&GROUP16),
    },
    KexSpec {
        name: "diffie-hellman-group18-sha512",
        hash: HashAlg::Sha512,
        kind: KexKind::Dh(&GROUP18),
    },
    KexSpec {
        name: "diffie-hellman-group-exchange-sha256",
        hash: HashAlg::Sha256,
        kind: KexKind::DhGex,
    },
    KexSpec {
        name: "diffie-hellman-group1-sha1",
        hash: HashAlg::Sha1,
        kind: KexKind::Dh(&GROUP1),
    },
    KexSpec {
        name: "diffie-hellman-group14-sha1",
        hash: HashAlg::Sha1,
        kind: KexKind::Dh(&GROUP14),
    },
    KexSpec {
        name: "diffie-hellman-group-exchange-sha1",
        hash: HashAlg::Sha1,
        kind: KexKind::DhGex,
    },
];

/// The method called `name`, if this library implements it.
pub(crate) fn kex_spec(name: &str) -> Option<&'static KexSpec> {
    SPECS.iter().find(|s| s.name == name)
}

/// Every implemented method, strongest first (in the order of the table above).
#[cfg(test)]
pub(crate) fn all_kex_specs() -> &'static [KexSpec] {
    &SPECS
}

// ---------------------------------------------------------------------------
// Shared secret and key derivation
// ---------------------------------------------------------------------------

/// K, exactly as it goes into the exchange hash and key derivation: for
/// DH/ECDH/curve25519 the encoded `mpint` (with its 4-byte length), for the
/// PQ hybrids an encoded `string` (4-byte length + hash bytes). Zeroized on
/// drop.
pub(crate) struct SharedSecret(Zeroizing<Vec<u8>>);

impl SharedSecret {
    /// The encoded K (mpint or string, with the 4-byte length).
    pub(crate) fn encoded(&self) -> &[u8] {
        &self.0
    }

    /// Encode a non-negative big-endian magnitude as an SSH `mpint`.
    fn mpint(mag: &[u8]) -> SharedSecret {
        let mag = strip_zeros(mag);
        let pad = mag.first().is_some_and(|&b| b & 0x80 != 0);
        let len = mag.len() + usize::from(pad);
        let mut v = Zeroizing::new(Vec::with_capacity(4 + len));
        v.extend_from_slice(&(len as u32).to_be_bytes());
        if pad {
            v.push(0);
        }
        v.extend_from_slice(mag);
        SharedSecret(v)
    }

    /// Encode bytes as an SSH `string`.
    fn string(bytes: &[u8]) -> SharedSecret {
        let mut v = Zeroizing::new(Vec::with_capacity(4 + bytes.len()));
        v.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        v.extend_from_slice(bytes);
        SharedSecret(v)
    }
}

impl PartialEq for SharedSecret {
    /// Constant-time comparison.
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && bool::from(self.0.ct_eq(&other.0))
    }
}

impl Eq for SharedSecret {}

impl fmt::Debug for SharedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SharedSecret({} bytes)", self.0.len())
    }
}

/// RFC 4253 §7.2 key derivation, extended to any length:
/// K1 = HASH(K || H || letter || session_id), Kn = HASH(K || H || K1..Kn-1),
/// truncated to `len`.
pub(crate) fn derive_key(
    hash: HashAlg,
    k: &SharedSecret,
    h: &[u8],
    letter: u8,
    session_id: &[u8],
    len: usize,
) -> Vec<u8> {
    let mut base = hash.hasher();
    base.update(k.encoded());
    base.update(h);
    let mut first = base.clone();
    first.update(&[letter]);
    first.update(session_id);
    let mut out = first.finish();
    while out.len() < len {
        // HASH(K || H || K1 || ... || Kn-1): keep one running state.
        let mut next = base.clone();
        next.update(&out);
        let block = Zeroizing::new(next.finish());
        out.extend_from_slice(&block);
    }
    if out.len() > len {
        out[len..].zeroize();
        out.truncate(len);
    }
    out
}

// ---------------------------------------------------------------------------
// Client side
// ---------------------------------------------------------------------------

/// Client half of one key exchange round. Secrets are zeroized on drop.
pub(crate) struct ClientKex {
    spec: &'static KexSpec,
    public: Vec<u8>,
    secret: ClientSecret,
}

enum ClientSecret {
    X25519(x25519_dalek::EphemeralSecret),
    P256(p256::ecdh::EphemeralSecret),
    P384(p384::ecdh::EphemeralSecret),
    P521(p521::ecdh::EphemeralSecret),
    MlKem(Box<MlKemDk>, x25519_dalek::EphemeralSecret),
    Sntrup(
        Box<sntrup761::DecapsulationKey>,
        x25519_dalek::EphemeralSecret,
    ),
    Dh(Box<DhMath>, Zeroizing<Vec<u8>>),
}

impl fmt::Debug for ClientKex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientKex")
            .field("method", &self.spec.name)
            .finish_non_exhaustive()
    }
}

fn check_gex_arg(spec: &KexSpec, has_gex: bool) -> Result<()> {
    let want = spec.kind == KexKind::DhGex;
    if want && !has_gex {
        return Err(Error::usage(format!(
            "{}: a DH group is required",
            spec.name
        )));
    }
    if !want && has_gex {
        return Err(Error::usage(format!("{}: takes no DH group", spec.name)));
    }
    Ok(())
}

impl ClientKex {
    /// Start a key exchange round: generate the client's ephemeral values.
    ///
    /// `gex` must be Some for DhGex (the group from KEX_DH_GEX_GROUP), None
    /// otherwise. A GEX group is validated here (p odd, 1024..=8192 bits,
    /// 1 < g < p-1); checking it against the client's own (min, n, max)
    /// request is the caller's business ([`DhParams::bits`]).
    pub(crate) fn new(
        spec: &'static KexSpec,
        gex: Option<DhParams>,
        rng: &mut dyn CryptoRng,
    ) -> Result<ClientKex> {
        check_gex_arg(spec, gex.is_some())?;
        let (public, secret) = match spec.kind {
            KexKind::Curve25519 => {
                let (s, p) = x25519_keygen(rng);
                (p.to_vec(), ClientSecret::X25519(s))
            }
            KexKind::EcdhP256 => {
                let (s, p) = p256_keygen(rng);
                (p, ClientSecret::P256(s))
            }
            KexKind::EcdhP384 => {
                let (s, p) = p384_keygen(rng);
                (p, ClientSecret::P384(s))
            }
            KexKind::EcdhP521 => {
                let (s, p) = p521_keygen(rng);
                (p, ClientSecret::P521(s))
            }
            KexKind::MlKem768X25519 => {
                let mut r = &mut *rng;
                let (dk, ek) = ml_kem::MlKem768::generate_keypair_from_rng(&mut r);
                let (xs, xp) = x25519_keygen(rng);
                let mut public = Vec::with_capacity(MLKEM768_PK_LEN + X25519_LEN);
                public.extend_from_slice(&ek.to_bytes());
                public.extend_from_slice(&xp);
                (public, ClientSecret::MlKem(Box::new(dk), xs))
            }
            KexKind::Sntrup761X25519 => {
                let (pk, sk) = sntrup761::generate_key(&mut *rng);
                let (xs, xp) = x25519_keygen(rng);
                let mut public = Vec::with_capacity(SNTRUP_PK_LEN + X25519_LEN);
                public.extend_from_slice(pk.as_ref());
                public.extend_from_slice(&xp);
                (public, ClientSecret::Sntrup(Box::new(sk), xs))
            }
            KexKind::Dh(group) => {
                let math = DhMath::from_group(group);
                let x = math.gen_secret(rng);
                (math.public(&x)?, ClientSecret::Dh(Box::new(math), x))
            }
            KexKind::DhGex => {
                let params = gex.ok_or_else(|| Error::usage("DH group exchange needs a group"))?;
                let math = DhMath::from_params(&params)?;
                let x = math.gen_secret(rng);
                (math.public(&x)?, ClientSecret::Dh(Box::new(math), x))
            }
        };
        Ok(ClientKex {
            spec,
            public,
            secret,
        })
    }

    /// Q_C (string kinds) or e (mpint kinds: big-endian magnitude without the
    /// mpint header).
    pub(crate) fn public(&self) -> &[u8] {
        &self.public
    }

    /// Q_S / f as received (for mpint kinds, the magnitude); validates and
    /// computes K.
    pub(crate) fn finish(self, server_public: &[u8]) -> Result<SharedSecret> {
        match self.secret {
            ClientSecret::X25519(s) => {
                let shared = x25519_shared(s, server_public)?;
                Ok(SharedSecret::mpint(shared.as_bytes()))
            }
            ClientSecret::P256(s) => p256_shared(&s, server_public),
            ClientSecret::P384(s) => p384_shared(&s, server_public),
            ClientSecret::P521(s) => p521_shared(&s, server_public),
            ClientSecret::MlKem(dk, xs) => {
                if server_public.len() != MLKEM768_CT_LEN + X25519_LEN {
                    return Err(Error::protocol(format!(
                        "invalid mlkem768x25519 reply length {} (expected {})",
                        server_public.len(),
                        MLKEM768_CT_LEN + X25519_LEN
                    )));
                }
                let (ct, xp) = server_public.split_at(MLKEM768_CT_LEN);
                let mut kem_key = dk
                    .decapsulate_slice(ct)
                    .map_err(|_| Error::protocol("invalid ML-KEM ciphertext length"))?;
                let result = x25519_shared(xs, xp)
                    .map(|x| hybrid_secret(self.spec.hash, &kem_key, x.as_bytes()));
                kem_key.as_mut_slice().zeroize();
                result
            }
            ClientSecret::Sntrup(sk, xs) => {
                if server_public.len() != SNTRUP_CT_LEN + X25519_LEN {
                    return Err(Error::protocol(format!(
                        "invalid sntrup761x25519 reply length {} (expected {})",
                        server_public.len(),
                        SNTRUP_CT_LEN + X25519_LEN
                    )));
                }
                let (ct, xp) = server_public.split_at(SNTRUP_CT_LEN);
                let ct = sntrup761::Ciphertext::try_from(ct)
                    .map_err(|_| Error::protocol("invalid sntrup761 ciphertext length"))?;
                let kem_key = sk.decapsulate(&ct);
                let x = x25519_shared(xs, xp)?;
                Ok(hybrid_secret(
                    self.spec.hash,
                    kem_key.as_ref(),
                    x.as_bytes(),
                ))
            }
            ClientSecret::Dh(math, x) => {
                let f = math.check_public(server_public)?;
                math.shared(&f, &x)
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Server side
// ---------------------------------------------------------------------------

/// Server half: from the client's Q_C/e compute (Q_S/f, K). `gex` is the
/// group the server chose for DhGex (None for every other kind).
pub(crate) fn server_kex(
    spec: &'static KexSpec,
    gex: Option<&DhGroup>,
    client_public: &[u8],
    rng: &mut dyn CryptoRng,
) -> Result<(Vec<u8>, SharedSecret)> {
    check_gex_arg(spec, gex.is_some())?;
    match spec.kind {
        KexKind::Curve25519 => {
            if client_public.len() != X25519_LEN {
                return Err(Error::protocol(format!(
                    "invalid curve25519 public key length {}",
                    client_public.len()
                )));
            }
            let (s, p) = x25519_keygen(rng);
            let shared = x25519_shared(s, client_public)?;
            Ok((p.to_vec(), SharedSecret::mpint(shared.as_bytes())))
        }
        KexKind::EcdhP256 => {
            let (s, p) = p256_keygen(rng);
            Ok((p, p256_shared(&s, client_public)?))
        }
        KexKind::EcdhP384 => {
            let (s, p) = p384_keygen(rng);
            Ok((p, p384_shared(&s, client_public)?))
        }
        KexKind::EcdhP521 => {
            let (s, p) = p521_keygen(rng);
            Ok((p, p521_shared(&s, client_public)?))
        }
        KexKind::MlKem768X25519 => {
            if client_public.len() != MLKEM768_PK_LEN + X25519_LEN {
                return Err(Error::protocol(format!(
                    "invalid mlkem768x25519 public key length {} (expected {})",
                    client_public.len(),
                    MLKEM768_PK_LEN + X25519_LEN
                )));
            }
            let (ek, xc) = client_public.split_at(MLKEM768_PK_LEN);
            let ek = MlKemEk::new_from_slice(ek)
                .map_err(|_| Error::protocol("invalid ML-KEM-768 public key"))?;
            let (ct, mut kem_key) = ek.encapsulate_with_rng(rng);
            let (xs, xp) = x25519_keygen(rng);
            let result =
                x25519_shared(xs, xc).map(|x| hybrid_secret(spec.hash, &kem_key, x.as_bytes()));
            kem_key.as_mut_slice().zeroize();
            let k = result?;
            let mut reply = Vec::with_capacity(MLKEM768_CT_LEN + X25519_LEN);
            reply.extend_from_slice(&ct);
            reply.extend_from_slice(&xp);
            Ok((reply, k))
        }
        KexKind::Sntrup761X25519 => {
            if client_public.len() != SNTRUP_PK_LEN + X25519_LEN {
                return Err(Error::protocol(format!(
                    "invalid sntrup761x25519 public key length {} (expected {})",
                    client_public.len(),
                    SNTRUP_PK_LEN + X25519_LEN
                )));
            }
            let (pk, xc) = client_public.split_at(SNTRUP_PK_LEN);
            let pk = sntrup761::EncapsulationKey::try_from(pk)
                .map_err(|_| Error::protocol("invalid sntrup761 public key"))?;
            let (ct, kem_key) = pk.encapsulate(&mut *rng);
            let (xs, xp) = x25519_keygen(rng);
            let x = x25519_shared(xs, xc)?;
            let k = hybrid_secret(spec.hash, kem_key.as_ref(), x.as_bytes());
            let mut reply = Vec::with_capacity(SNTRUP_CT_LEN + X25519_LEN);
            reply.extend_from_slice(ct.as_ref());
            reply.extend_from_slice(&xp);
            Ok((reply, k))
        }
        KexKind::Dh(group) => dh_server(&DhMath::from_group(group), client_public, rng),
        KexKind::DhGex => {
            let group = gex.ok_or_else(|| Error::usage("DH group exchange needs a group"))?;
            dh_server(&DhMath::from_group(group), client_public, rng)
        }
    }
}

fn dh_server(
    math: &DhMath,
    client_public: &[u8],
    rng: &mut dyn CryptoRng,
) -> Result<(Vec<u8>, SharedSecret)> {
    let e = math.check_public(client_public)?;
    let y = math.gen_secret(rng);
    let f = math.public(&y)?;
    let k = math.shared(&e, &y)?;
    Ok((f, k))
}
