//! Elliptic-curve primitives of the key exchange methods: X25519 (RFC 8731),
//! NIST ECDH (RFC 5656) and the hybrid-KEM secret (ML-KEM, sntrup761).

use rand_core::CryptoRng;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

use super::{HashAlg, SharedSecret};

pub(super) const X25519_LEN: usize = 32;
pub(super) const MLKEM768_PK_LEN: usize = 1184;
pub(super) const MLKEM768_CT_LEN: usize = 1088;
pub(super) const SNTRUP_PK_LEN: usize = sntrup761::PUBLIC_KEY_SIZE; // 1158
pub(super) const SNTRUP_CT_LEN: usize = sntrup761::CIPHERTEXT_SIZE; // 1039

pub(super) type MlKemDk = ml_kem::DecapsulationKey768;
pub(super) type MlKemEk = ml_kem::EncapsulationKey768;

pub(super) fn x25519_keygen(rng: &mut dyn CryptoRng) -> (x25519_dalek::EphemeralSecret, [u8; 32]) {
    let secret = x25519_dalek::EphemeralSecret::random_from_rng(rng);
    let public = x25519_dalek::PublicKey::from(&secret).to_bytes();
    (secret, public)
}

/// X25519 with the peer's 32-byte public value; rejects an all-zero result.
pub(super) fn x25519_shared(
    secret: x25519_dalek::EphemeralSecret,
    peer: &[u8],
) -> Result<x25519_dalek::SharedSecret> {
    let peer: [u8; 32] = peer.try_into().map_err(|_| {
        Error::protocol(format!(
            "invalid curve25519 public key length {}",
            peer.len()
        ))
    })?;
    let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(peer));
    if bool::from(shared.as_bytes().ct_eq(&[0u8; 32])) {
        return Err(Error::protocol(
            "curve25519 shared secret is zero (invalid peer public key)",
        ));
    }
    Ok(shared)
}

/// K of the hybrids: string(HASH(kem_key || x25519_key)).
pub(super) fn hybrid_secret(hash: HashAlg, kem_key: &[u8], x25519_key: &[u8]) -> SharedSecret {
    let mut h = hash.hasher();
    h.update(kem_key);
    h.update(x25519_key);
    let digest = Zeroizing::new(h.finish());
    SharedSecret::string(&digest)
}

macro_rules! ecdh_curve {
    ($keygen:ident, $shared:ident, $krate:ident, $name:literal, $field:literal) => {
        pub(super) fn $keygen(rng: &mut dyn CryptoRng) -> ($krate::ecdh::EphemeralSecret, Vec<u8>) {
            use $krate::elliptic_curve::{sec1::ToSec1Point, Generate};
            let secret = $krate::ecdh::EphemeralSecret::generate_from_rng(rng);
            let public = secret.public_key().to_sec1_point(false).as_bytes().to_vec();
            (secret, public)
        }

        /// Validate the peer's uncompressed SEC1 point and return K.
        pub(super) fn $shared(
            secret: &$krate::ecdh::EphemeralSecret,
            peer: &[u8],
        ) -> Result<SharedSecret> {
            const FIELD: usize = $field;
            if peer.len() != 1 + 2 * FIELD || peer[0] != 0x04 {
                return Err(Error::protocol(format!(
                    "invalid {} public key (length {}, expected uncompressed point of {})",
                    $name,
                    peer.len(),
                    1 + 2 * FIELD
                )));
            }
            let peer = $krate::PublicKey::from_sec1_bytes(peer).map_err(|_| {
                Error::protocol(concat!("invalid ", $name, " public key (not on the curve)"))
            })?;
            let shared = secret.diffie_hellman(&peer);
            Ok(SharedSecret::mpint(shared.raw_secret_bytes()))
        }
    };
}

ecdh_curve!(p256_keygen, p256_shared, p256, "nistp256", 32);
ecdh_curve!(p384_keygen, p384_shared, p384, "nistp384", 48);
ecdh_curve!(p521_keygen, p521_shared, p521, "nistp521", 66);
