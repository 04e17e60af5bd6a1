//! The end of a key exchange on a [`Transport`]: the exchange hash, key
//! derivation, NEWKEYS in both directions, compression and ext-info.

use std::time::Instant;

use rand_core::CryptoRng;

use crate::error::{Error, Result};
use crate::transport::algorithms::Negotiated;
use crate::transport::cipher::{self, Opener, Sealer};
use crate::transport::compress::{Compressor, Decompressor};
use crate::transport::{default_rekey_bytes, kex, Role, Transport};
use crate::wire::{msg, Put, Reader};

use super::run::{DirectionKeys, GexParams, Step};
use super::{KexSpec, SharedSecret};

impl Transport {
    pub(in crate::transport) fn exchange_hash(
        &self,
        spec: &KexSpec,
        ks: &[u8],
        gex: Option<&GexParams>,
        q_c: &[u8],
        q_s: &[u8],
        k: &SharedSecret,
    ) -> Result<Vec<u8>> {
        let kex = self
            .kex
            .as_ref()
            .ok_or_else(|| Error::protocol("internal: no kex"))?;
        let theirs = kex
            .theirs
            .as_deref()
            .ok_or_else(|| Error::protocol("internal: no peer kexinit"))?;
        let peer_v = self.peer_version.as_deref().unwrap_or("");
        let (v_c, v_s, i_c, i_s) = match self.role {
            Role::Client => (
                self.config.version.as_str(),
                peer_v,
                kex.ours.as_slice(),
                theirs,
            ),
            Role::Server => (
                peer_v,
                self.config.version.as_str(),
                theirs,
                kex.ours.as_slice(),
            ),
        };
        let mut b = Vec::with_capacity(4096);
        b.put_string(v_c.as_bytes());
        b.put_string(v_s.as_bytes());
        b.put_string(i_c);
        b.put_string(i_s);
        b.put_string(ks);
        if let Some((min, n, max, p, g)) = gex {
            b.put_u32(*min);
            b.put_u32(*n);
            b.put_u32(*max);
            b.put_mpint_positive(p);
            b.put_mpint_positive(g);
        }
        if spec.public_is_mpint() {
            b.put_mpint_positive(q_c);
            b.put_mpint_positive(q_s);
        } else {
            b.put_string(q_c);
            b.put_string(q_s);
        }
        b.put_raw(k.encoded());
        let h = spec.hash.digest(&b);
        use zeroize::Zeroize;
        b.zeroize();
        Ok(h)
    }

    pub(in crate::transport) fn make_keys(&mut self, spec: &KexSpec, k: &SharedSecret, h: &[u8]) {
        if self.session_id.is_none() {
            self.session_id = Some(h.to_vec());
        }
        let sid = self.session_id.clone().unwrap_or_default();
        let Some(kex) = self.kex.as_mut() else { return };
        let Some(neg) = kex.neg.clone() else { return };
        let dir = |cipher_name: &str,
                   mac_name: &Option<String>,
                   comp: &str,
                   iv_l: u8,
                   key_l: u8,
                   mac_l: u8| {
            let cs = cipher::cipher_spec(cipher_name);
            let (kl, il) = cs.map_or((0, 0), |c| (c.key_len, c.iv_len));
            let mac = mac_name.as_ref().map(|m| {
                let ml = cipher::mac_spec(m).map_or(0, |s| s.key_len);
                (m.clone(), kex::derive_key(spec.hash, k, h, mac_l, &sid, ml))
            });
            DirectionKeys {
                cipher: cipher_name.to_string(),
                key: kex::derive_key(spec.hash, k, h, key_l, &sid, kl),
                iv: kex::derive_key(spec.hash, k, h, iv_l, &sid, il),
                mac,
                compression: comp.to_string(),
            }
        };
        let c2s = dir(
            &neg.cipher_c2s,
            &neg.mac_c2s,
            &neg.compression_c2s,
            b'A',
            b'C',
            b'E',
        );
        let s2c = dir(
            &neg.cipher_s2c,
            &neg.mac_s2c,
            &neg.compression_s2c,
            b'B',
            b'D',
            b'F',
        );
        let (tx, rx) = match self.role {
            Role::Client => (c2s, s2c),
            Role::Server => (s2c, c2s),
        };
        kex.tx_keys = Some(tx);
        kex.rx_keys = Some(rx);
        kex.h = h.to_vec();
    }

    /// Client: the application accepted the host key.
    pub fn accept_host_key(&mut self, rng: &mut dyn CryptoRng) -> Result<()> {
        let key = match self
            .kex
            .as_mut()
            .map(|k| std::mem::replace(&mut k.step, Step::AwaitNewKeys))
        {
            Some(Step::AwaitHostKey { key }) => key,
            Some(other) => {
                if let Some(k) = self.kex.as_mut() {
                    k.step = other;
                }
                return Err(Error::usage("no host key is waiting for a decision"));
            }
            None => return Err(Error::usage("no host key is waiting for a decision")),
        };
        self.host_key = Some(key);
        self.send_newkeys(rng)
    }

    pub(in crate::transport) fn send_newkeys(&mut self, rng: &mut dyn CryptoRng) -> Result<()> {
        self.send(rng, |b| b.push(msg::NEWKEYS))?;
        let kex = self
            .kex
            .as_mut()
            .ok_or_else(|| Error::protocol("internal: no kex"))?;
        kex.sent_newkeys = true;
        kex.step = Step::AwaitNewKeys;
        let keys = kex
            .tx_keys
            .take()
            .ok_or_else(|| Error::protocol("internal: keys missing"))?;
        let mac = keys.mac.as_ref().map(|(n, k)| (n.as_str(), k.as_slice()));
        self.sealer = Sealer::new(&keys.cipher, &keys.key, &keys.iv, mac)?;
        if self.strict {
            self.tx_seq = 0;
        }
        self.tx_packets = 0;
        // RFC 4253 section 6.2: the compression context is initialized
        // after each key exchange. OpenSSH starts a fresh zlib stream at
        // every NEWKEYS too, so the old one ends here.
        self.tx_comp = None;
        self.tx_comp_pending = Some(keys.compression.clone());
        self.apply_compression();
        self.rekey_limit = self
            .config
            .rekey_bytes
            .unwrap_or_else(|| default_rekey_bytes(&keys.cipher));
        // The server's EXT_INFO must be the first message after its NEWKEYS.
        if self.role == Role::Server
            && self.session_id.is_some()
            && self.kex_count == 0
            && self.peer_ext_info
        {
            let algs = self.config.pubkey_accepted_algorithms.clone();
            self.send(rng, |b| {
                b.push(msg::EXT_INFO);
                b.put_u32(1);
                b.put_str("server-sig-algs");
                b.put_name_list(&algs);
            })?;
        }
        self.flush_queue(rng)
    }

    pub(in crate::transport) fn on_newkeys(
        &mut self,
        rng: &mut dyn CryptoRng,
        now: Instant,
    ) -> Result<Option<Negotiated>> {
        let Some(kex) = self.kex.as_mut() else {
            return Err(Error::protocol("unexpected NEWKEYS outside key exchange"));
        };
        let Some(keys) = kex.rx_keys.take() else {
            return Err(Error::protocol("NEWKEYS before the key exchange reply"));
        };
        if !kex.sent_newkeys {
            return Err(Error::protocol(
                "peer sent NEWKEYS before we finished our side of the key exchange",
            ));
        }
        let neg = kex.neg.clone();
        let mac = keys.mac.as_ref().map(|(n, k)| (n.as_str(), k.as_slice()));
        self.opener = Opener::new(&keys.cipher, &keys.key, &keys.iv, mac)?;
        if self.strict {
            self.rx_seq = 0;
        }
        self.rx_packets = 0;
        // A fresh inflate stream for the new keys (see `send_newkeys`).
        self.rx_decomp = None;
        self.rx_comp_pending = Some(keys.compression.clone());
        self.apply_compression();
        self.kex = None;
        self.kex_count += 1;
        self.bytes_since_kex = 0;
        self.last_kex = now;
        self.negotiated = neg.clone();
        tracing::debug!(
            kex_count = self.kex_count,
            strict = self.strict,
            "key exchange done"
        );
        self.flush_queue(rng)?;
        Ok(neg)
    }

    /// Releases what was held back during a key exchange, in order.
    fn flush_queue(&mut self, rng: &mut dyn CryptoRng) -> Result<()> {
        while let Some(p) = self.queued.pop_front() {
            let start = self.tx.tail().len();
            self.tx.tail().extend_from_slice(&[0u8; 5]);
            self.tx.tail().extend_from_slice(&p);
            self.finish_packet(start, rng)?;
        }
        Ok(())
    }

    /// Called by the auth layer when authentication succeeded: turns on
    /// delayed (`zlib@openssh.com`) compression for the keys in use (and,
    /// since the session is now authenticated, for every later NEWKEYS).
    pub fn set_authenticated(&mut self) {
        self.authenticated = true;
        self.apply_compression();
    }

    /// Starts the compression streams the keys in use call for, in each
    /// direction that has none yet (`send_newkeys` and `on_newkeys` drop the
    /// old stream first, so each NEWKEYS begins a new one).
    fn apply_compression(&mut self) {
        let want = |name: &Option<String>, authed: bool| match name.as_deref() {
            Some("zlib") => true,
            Some("zlib@openssh.com") => authed,
            _ => false,
        };
        if self.tx_comp.is_none() && want(&self.tx_comp_pending, self.authenticated) {
            self.tx_comp = Some(Compressor::new());
        }
        if self.rx_decomp.is_none() && want(&self.rx_comp_pending, self.authenticated) {
            self.rx_decomp = Some(Decompressor::new());
        }
    }

    pub(in crate::transport) fn on_ext_info(&mut self, payload: &[u8]) -> Result<()> {
        let mut r = Reader::new(&payload[1..]);
        let n = r.u32()?;
        if n > 1024 {
            return Err(Error::protocol(format!("EXT_INFO with {n} extensions")));
        }
        for _ in 0..n {
            let name = r.string()?;
            let value = r.string()?;
            if name == b"server-sig-algs" && self.role == Role::Client {
                self.server_sig_algs = Some(String::from_utf8_lossy(value).into_owned());
            }
        }
        Ok(())
    }
}
