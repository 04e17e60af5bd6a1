//! ECDSA keys in `openssh-key-v1` files whose private scalar is short.
//!
//! OpenSSH writes an ECDSA private scalar as a minimal `mpint`, so when its
//! top byte is zero (about one P-256 key in 256 that `ssh-keygen` makes) the
//! number is 31 bytes or fewer. `ssh-key` wants at least 32 bytes and refuses
//! such a file. This module rebuilds the private section with the scalar at
//! full width (the same number), after decrypting it when the file is
//! encrypted, and wraps it in an unencrypted container that `ssh-key` reads.
//! Every other key type and every full-width scalar takes `ssh-key`'s path
//! unchanged.

use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::wire::{Put, Reader};

const MAGIC: &[u8] = b"openssh-key-v1\0";

/// The parts of an `openssh-key-v1` container (PROTOCOL.key) holding one key.
pub(super) struct Container<'a> {
    /// The cipher name (`none` when unencrypted).
    pub(super) cipher: &'a [u8],
    /// The public key blob.
    pub(super) public: &'a [u8],
    /// The (possibly encrypted) private section.
    pub(super) private: &'a [u8],
    /// What follows the private section: the AEAD tag, if any.
    pub(super) tag: &'a [u8],
}

impl<'a> Container<'a> {
    /// Splits `body`; `None` when it is not a one-key container (then `ssh-key`
    /// reports the error).
    pub(super) fn parse(body: &'a [u8]) -> Option<Self> {
        let rest = body.strip_prefix(MAGIC)?;
        let mut r = Reader::new(rest);
        let cipher = r.string().ok()?;
        let _kdf = r.string().ok()?;
        let _kdf_options = r.string().ok()?;
        if r.u32().ok()? != 1 {
            return None;
        }
        let public = r.string().ok()?;
        let private = r.string().ok()?;
        let tag = r.rest();
        Some(Container {
            cipher,
            public,
            private,
            tag,
        })
    }

    /// True when the public key is ECDSA (the only type this module rewrites).
    pub(super) fn is_ecdsa(&self) -> bool {
        Reader::new(self.public)
            .string()
            .is_ok_and(|t| scalar_size(t).is_some())
    }
}

fn scalar_size(key_type: &[u8]) -> Option<usize> {
    match key_type {
        b"ecdsa-sha2-nistp256" => Some(32),
        b"ecdsa-sha2-nistp384" => Some(48),
        b"ecdsa-sha2-nistp521" => Some(66),
        _ => None,
    }
}

/// Why a plaintext private section could not be rebuilt.
pub(super) enum SectionError {
    /// The two check integers differ: the passphrase was wrong.
    CheckMismatch,
    /// The section is not an ECDSA key followed by a comment and padding.
    Malformed(&'static str),
}

/// Rebuilds a plaintext ECDSA private section (check integers, key, comment,
/// padding) with the scalar at full width and the padding for the `none`
/// cipher (block size 8).
pub(super) fn rebuild_section(
    section: &[u8],
) -> std::result::Result<Zeroizing<Vec<u8>>, SectionError> {
    let bad = |_| SectionError::Malformed("truncated private section");
    let mut r = Reader::new(section);
    let check1 = r.u32().map_err(bad)?;
    let check2 = r.u32().map_err(bad)?;
    if check1 != check2 {
        return Err(SectionError::CheckMismatch);
    }
    let key_type = r.string().map_err(bad)?;
    let size = scalar_size(key_type).ok_or(SectionError::Malformed("not an ECDSA key"))?;
    let curve = r.string().map_err(bad)?;
    let point = r.string().map_err(bad)?;
    let scalar = r.mpint().map_err(bad)?;
    let comment = r.string().map_err(bad)?;
    let padding = r.rest();
    if padding.len() > 255 || padding.iter().enumerate().any(|(i, &b)| b != (i + 1) as u8) {
        return Err(SectionError::Malformed("bad padding"));
    }
    if scalar.first().is_some_and(|b| b & 0x80 != 0) {
        return Err(SectionError::Malformed("negative private scalar"));
    }
    let start = scalar.iter().position(|&b| b != 0).unwrap_or(scalar.len());
    let magnitude = &scalar[start..];
    if magnitude.len() > size {
        return Err(SectionError::Malformed("private scalar too long"));
    }
    let mut full = Zeroizing::new(vec![0u8; size]);
    full[size - magnitude.len()..].copy_from_slice(magnitude);

    let mut out = Zeroizing::new(Vec::with_capacity(section.len() + size + 16));
    out.put_u32(check1);
    out.put_u32(check2);
    out.put_string(key_type);
    out.put_string(curve);
    out.put_string(point);
    if full[0] & 0x80 != 0 {
        out.put_u32(size as u32 + 1);
        out.put_u8(0);
        out.put_raw(&full);
    } else {
        out.put_string(&full);
    }
    out.put_string(comment);
    let mut pad = 1u8;
    while out.len() % 8 != 0 {
        out.put_u8(pad);
        pad += 1;
    }
    Ok(out)
}

/// An unencrypted one-key container around `public` and a plaintext `section`.
pub(super) fn plain_container(public: &[u8], section: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(
        MAGIC.len() + 32 + public.len() + section.len(),
    ));
    out.put_raw(MAGIC);
    out.put_str("none");
    out.put_str("none");
    out.put_string(b"");
    out.put_u32(1);
    out.put_string(public);
    out.put_string(section);
    out
}

/// Parses an unencrypted container with `ssh-key`; when that fails on an
/// ECDSA key, retries once with the private section rebuilt.
pub(super) fn parse_plain(body: &[u8]) -> std::result::Result<ssh_key::PrivateKey, ssh_key::Error> {
    let first = ssh_key::PrivateKey::from_bytes(body);
    let Err(err) = first else {
        return first;
    };
    let Some(c) = Container::parse(body) else {
        return Err(err);
    };
    if c.cipher != b"none" || !c.is_ecdsa() {
        return Err(err);
    }
    match rebuild_section(c.private) {
        Ok(section) => ssh_key::PrivateKey::from_bytes(&plain_container(c.public, &section)),
        Err(_) => Err(err),
    }
}

/// Decrypts an encrypted ECDSA container's private section with `pass` and
/// parses it rebuilt.
pub(super) fn decrypt_ecdsa(
    parsed: &ssh_key::PrivateKey,
    body: &[u8],
    pass: &[u8],
) -> Result<ssh_key::PrivateKey> {
    let c = Container::parse(body)
        .ok_or_else(|| Error::key("invalid OpenSSH private key: malformed container"))?;
    let cipher = parsed.cipher();
    let (key, iv) = parsed
        .kdf()
        .derive_key_and_iv(cipher, pass)
        .map_err(|e| Error::key(format!("unsupported private key encryption: {e}")))?;
    let tag = if cipher.has_tag() {
        Some(
            ssh_key::cipher::Tag::try_from(c.tag)
                .map_err(|_| Error::key("invalid OpenSSH private key: bad authentication tag"))?,
        )
    } else {
        None
    };
    let mut section = Zeroizing::new(c.private.to_vec());
    cipher
        .decrypt(&key, &iv, &mut section, tag)
        .map_err(|_| Error::key("wrong passphrase"))?;
    let rebuilt = rebuild_section(&section).map_err(|e| match e {
        SectionError::CheckMismatch => Error::key("wrong passphrase"),
        SectionError::Malformed(what) => {
            Error::key(format!("wrong passphrase (or corrupt key file: {what})"))
        }
    })?;
    ssh_key::PrivateKey::from_bytes(&plain_container(c.public, &rebuilt))
        .map_err(|e| Error::key(format!("invalid OpenSSH private key: {e}")))
}
