//! The AEAD modes: `chacha20-poly1305@openssh.com` (OpenSSH
//! `PROTOCOL.chacha20poly1305`) and AES-GCM (RFC 5647, OpenSSH `PROTOCOL`
//! §1.6).

use aes_gcm::{AeadInOut, Aes128Gcm, Aes256Gcm};
use chacha20::{ChaCha20LegacyCore, LegacyNonce};
use cipher::{consts::U64, Array, InOutBuf, KeyInit, KeyIvInit, StreamCipherCore};
use poly1305::Poly1305;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{Error, Result};

/// The two keys of chacha20-poly1305@openssh.com.
pub(super) struct ChaChaKeys {
    /// K_2: payload key (first half of the 64-byte key), also yields the poly1305 key.
    main: Zeroizing<[u8; 32]>,
    /// K_1: header (length) key (second half).
    hdr: Zeroizing<[u8; 32]>,
}

impl ChaChaKeys {
    pub(super) fn new(key: &[u8]) -> Result<ChaChaKeys> {
        if key.len() != 64 {
            return Err(Error::usage(format!(
                "chacha20-poly1305@openssh.com: key is {} bytes, expected 64",
                key.len()
            )));
        }
        let mut main = Zeroizing::new([0u8; 32]);
        let mut hdr = Zeroizing::new([0u8; 32]);
        main.copy_from_slice(&key[..32]);
        hdr.copy_from_slice(&key[32..]);
        Ok(ChaChaKeys { main, hdr })
    }

    pub(super) fn nonce(seq: u32) -> LegacyNonce {
        LegacyNonce::from(u64::from(seq).to_be_bytes())
    }

    /// XOR the 4 length bytes with the K_1 keystream (block 0).
    pub(super) fn crypt_len(&self, seq: u32, len: &mut [u8]) {
        let core = ChaCha20LegacyCore::new((&*self.hdr).into(), &Self::nonce(seq));
        core.apply_keystream_partial(InOutBuf::from(len));
    }

    /// K_2 stream positioned at block 1, and the poly1305 instance keyed
    /// from block 0.
    pub(super) fn payload_state(&self, seq: u32) -> (ChaCha20LegacyCore, Poly1305) {
        let mut core = ChaCha20LegacyCore::new((&*self.main).into(), &Self::nonce(seq));
        let mut block0 = Array::<u8, U64>::default();
        core.write_keystream_block(&mut block0);
        let mut pkey = [0u8; 32];
        pkey.copy_from_slice(&block0[..32]);
        let poly = Poly1305::new((&pkey).into());
        pkey.zeroize();
        block0.as_mut_slice().zeroize();
        (core, poly)
    }

    pub(super) fn seal(&self, seq: u32, packet: &mut [u8], tag: &mut [u8]) {
        let (core, poly) = self.payload_state(seq);
        let (len, body) = packet.split_at_mut(4);
        self.crypt_len(seq, len);
        core.apply_keystream_partial(InOutBuf::from(body));
        let t = poly.compute_unpadded(packet);
        tag.copy_from_slice(&t);
    }
}

// ------------------------------------------------------------------ GCM

pub(super) enum GcmAead {
    A128(Aes128Gcm),
    A256(Aes256Gcm),
}

/// AES-GCM with the OpenSSH nonce: 4-byte fixed field || 8-byte invocation counter.
pub(super) struct Gcm {
    aead: GcmAead,
    fixed: [u8; 4],
    counter: u64,
}

impl Gcm {
    pub(super) fn new(name: &str, key: &[u8], iv: &[u8]) -> Result<Gcm> {
        if iv.len() != 12 {
            return Err(Error::usage(format!(
                "{name}: IV is {} bytes, expected 12",
                iv.len()
            )));
        }
        let bad = |_| Error::usage(format!("{name}: key is {} bytes", key.len()));
        let aead = if name == "aes128-gcm@openssh.com" {
            GcmAead::A128(Aes128Gcm::new_from_slice(key).map_err(bad)?)
        } else {
            GcmAead::A256(Aes256Gcm::new_from_slice(key).map_err(bad)?)
        };
        let mut fixed = [0u8; 4];
        fixed.copy_from_slice(&iv[..4]);
        let mut ctr = [0u8; 8];
        ctr.copy_from_slice(&iv[4..]);
        Ok(Gcm {
            aead,
            fixed,
            counter: u64::from_be_bytes(ctr),
        })
    }

    pub(super) fn nonce(&self) -> aes_gcm::Nonce<cipher::consts::U12> {
        let mut n = aes_gcm::Nonce::<cipher::consts::U12>::default();
        n[..4].copy_from_slice(&self.fixed);
        n[4..].copy_from_slice(&self.counter.to_be_bytes());
        n
    }

    /// Returns false only if the crate refuses the input (over 64 GiB).
    pub(super) fn seal(&mut self, packet: &mut [u8], tag: &mut [u8]) -> bool {
        let nonce = self.nonce();
        let (aad, body) = packet.split_at_mut(4);
        let res = match &self.aead {
            GcmAead::A128(a) => a.encrypt_inout_detached(&nonce, aad, InOutBuf::from(body)),
            GcmAead::A256(a) => a.encrypt_inout_detached(&nonce, aad, InOutBuf::from(body)),
        };
        self.counter = self.counter.wrapping_add(1);
        match res {
            Ok(t) => {
                tag.copy_from_slice(&t);
                true
            }
            Err(_) => false,
        }
    }

    pub(super) fn open(&mut self, packet: &mut [u8], tag: &[u8]) -> bool {
        let Ok(tag) = <&aes_gcm::Tag>::try_from(tag) else {
            return false;
        };
        let nonce = self.nonce();
        let (aad, body) = packet.split_at_mut(4);
        let res = match &self.aead {
            GcmAead::A128(a) => a.decrypt_inout_detached(&nonce, aad, InOutBuf::from(body), tag),
            GcmAead::A256(a) => a.decrypt_inout_detached(&nonce, aad, InOutBuf::from(body), tag),
        };
        if res.is_ok() {
            self.counter = self.counter.wrapping_add(1);
        }
        res.is_ok()
    }
}

impl Drop for Gcm {
    fn drop(&mut self) {
        self.fixed.zeroize();
        self.counter.zeroize();
    }
}
