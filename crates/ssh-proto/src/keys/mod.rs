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
mod openssh_ecdsa;
mod pem;
mod private;
mod public;

#[cfg(test)]
mod tests;

use crate::error::{Error, ErrorKind};

pub use authorized_keys::{AuthorizedKey, AuthorizedKeys, ExpiryTime, KeyOptions};
pub use known_hosts::{known_hosts_line, HostKeyStatus, KnownHosts};
pub use private::{PrivateKey, MAX_BCRYPT_ROUNDS};
pub use public::PublicKey;

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
