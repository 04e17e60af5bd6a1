//! HMAC packet authentication (RFC 4253 §6.4, RFC 6668, OpenSSH
//! encrypt-then-MAC), with pre-keyed states reused for every packet.

use cipher::KeyInit;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

use crate::error::{Error, Result};

use super::mac_spec;

#[derive(Clone)]
pub(super) enum HmacState {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

/// A pre-keyed HMAC; each packet works on a (stack) clone of it.
pub(super) struct MacKey {
    state: HmacState,
    pub(super) etm: bool,
    pub(super) out_len: usize,
}

pub(super) fn hmac_sign<M: Mac + Clone>(keyed: &M, seq: u32, data: &[u8], out: &mut [u8]) {
    let mut m = keyed.clone();
    m.update(&seq.to_be_bytes());
    m.update(data);
    let tag = m.finalize().into_bytes();
    let n = out.len().min(tag.len());
    out[..n].copy_from_slice(&tag[..n]);
}

pub(super) fn hmac_verify<M: Mac + Clone>(keyed: &M, seq: u32, data: &[u8], tag: &[u8]) -> bool {
    let mut m = keyed.clone();
    m.update(&seq.to_be_bytes());
    m.update(data);
    // Constant time comparison (digest uses `subtle`).
    m.verify_slice(tag).is_ok()
}

impl MacKey {
    pub(super) fn new(name: &str, key: &[u8]) -> Result<MacKey> {
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

    pub(super) fn sign(&self, seq: u32, data: &[u8], out: &mut [u8]) {
        match &self.state {
            HmacState::Sha1(m) => hmac_sign(m, seq, data, out),
            HmacState::Sha256(m) => hmac_sign(m, seq, data, out),
            HmacState::Sha512(m) => hmac_sign(m, seq, data, out),
        }
    }

    pub(super) fn verify(&self, seq: u32, data: &[u8], tag: &[u8]) -> bool {
        match &self.state {
            HmacState::Sha1(m) => hmac_verify(m, seq, data, tag),
            HmacState::Sha256(m) => hmac_verify(m, seq, data, tag),
            HmacState::Sha512(m) => hmac_verify(m, seq, data, tag),
        }
    }
}
