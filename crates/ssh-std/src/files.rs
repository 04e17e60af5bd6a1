//! Key and known_hosts files.

use std::path::Path;

use ssh_proto::keys::known_hosts::KnownHosts;
use ssh_proto::{Error, ErrorKind, PrivateKey};

/// Reads a private key file (OpenSSH, PEM or PKCS#8), decrypting it with
/// `passphrase` when it is encrypted.
pub fn load_private_key(
    path: impl AsRef<Path>,
    passphrase: Option<&str>,
) -> Result<PrivateKey, Error> {
    let path = path.as_ref();
    let data = std::fs::read(path).map_err(|e| {
        Error::new(
            ErrorKind::Key,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
    PrivateKey::from_bytes(&data, passphrase.map(str::as_bytes))
        .map_err(|e| Error::new(e.kind(), format!("{}: {}", path.display(), e.detail())))
}

/// Reads and parses an OpenSSH known_hosts file. A missing or unreadable
/// file knows no hosts (as for ssh, the host is then unknown).
pub fn read_known_hosts(path: impl AsRef<Path>) -> KnownHosts {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    KnownHosts::parse(&text)
}
