//! The unauthenticated ciphers: AES-CTR (RFC 4344), AES-CBC and 3DES-CBC
//! (RFC 4253), and `none`.

use aes::{Aes128, Aes192, Aes256};
use cipher::{Array, BlockModeDecrypt, BlockModeEncrypt, BlockSizeUser, KeyIvInit, StreamCipher};
use des::TdesEde3;

use crate::error::{Error, Result};

pub(super) enum Ctr {
    A128(ctr::Ctr128BE<Aes128>),
    A192(ctr::Ctr128BE<Aes192>),
    A256(ctr::Ctr128BE<Aes256>),
}

impl Ctr {
    pub(super) fn new(name: &str, key: &[u8], iv: &[u8]) -> Result<Ctr> {
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

    pub(super) fn apply(&mut self, buf: &mut [u8]) {
        // A 128-bit counter wraps (mod 2^128, RFC 4344) and never runs out.
        match self {
            Ctr::A128(c) => c.apply_keystream(buf),
            Ctr::A192(c) => c.apply_keystream(buf),
            Ctr::A256(c) => c.apply_keystream(buf),
        }
    }
}

pub(super) fn cbc_encrypt<C: BlockModeEncrypt>(c: &mut C, buf: &mut [u8]) {
    let (blocks, _) = Array::<u8, <C as BlockSizeUser>::BlockSize>::slice_as_chunks_mut(buf);
    c.encrypt_blocks(blocks);
}

pub(super) fn cbc_decrypt<C: BlockModeDecrypt>(c: &mut C, buf: &mut [u8]) {
    let (blocks, _) = Array::<u8, <C as BlockSizeUser>::BlockSize>::slice_as_chunks_mut(buf);
    c.decrypt_blocks(blocks);
}

pub(super) enum CbcEnc {
    A128(cbc::Encryptor<Aes128>),
    A256(cbc::Encryptor<Aes256>),
    Tdes(cbc::Encryptor<TdesEde3>),
}

pub(super) enum CbcDec {
    A128(cbc::Decryptor<Aes128>),
    A256(cbc::Decryptor<Aes256>),
    Tdes(cbc::Decryptor<TdesEde3>),
}

/// Non-AEAD encryption state for one direction.
pub(super) enum Enc {
    None,
    Ctr(Ctr),
    CbcEnc(CbcEnc),
    CbcDec(CbcDec),
}

impl Enc {
    pub(super) fn new(name: &str, key: &[u8], iv: &[u8], decrypt: bool) -> Result<Enc> {
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

    pub(super) fn is_cbc(&self) -> bool {
        matches!(self, Enc::CbcEnc(_) | Enc::CbcDec(_))
    }

    /// Encrypt or decrypt (depending on the direction it was made for).
    /// For CBC `buf.len()` must be a multiple of the block size (checked by callers).
    pub(super) fn apply(&mut self, buf: &mut [u8]) {
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
