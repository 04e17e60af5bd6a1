//! The key exchange message flow on a [`Transport`] (RFC 4253 §7-8,
//! RFC 4419, RFC 5656, RFC 8731): KEXINIT, negotiation, the method's
//! messages, and host key signature checks.

use rand_core::CryptoRng;

use crate::error::{Error, ErrorKind, Result};
use crate::keys::PublicKey;
use crate::transport::algorithms::{self, Negotiated};
use crate::transport::{cipher, kex, Role, Transport, VersionState};
use crate::wire::{msg, Put, Reader};

use super::{ClientKex, DhGroup, DhParams, KexKind, KexSpec};

/// A GEX request and the group that answered it: (min, n, max, p, g).
pub(in crate::transport) type GexParams = (u32, u32, u32, Vec<u8>, Vec<u8>);

/// Keys for one direction, made by a finished key exchange.
pub(in crate::transport) struct DirectionKeys {
    pub(super) cipher: String,
    pub(super) key: Vec<u8>,
    pub(super) iv: Vec<u8>,
    pub(super) mac: Option<(String, Vec<u8>)>,
    pub(super) compression: String,
}

impl Drop for DirectionKeys {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.key.zeroize();
        self.iv.zeroize();
        if let Some((_, k)) = &mut self.mac {
            k.zeroize();
        }
    }
}

pub(in crate::transport) enum Step {
    /// Waiting for the peer's KEXINIT (ours is sent).
    AwaitKexInit,
    ClientAwaitGexGroup,
    ClientAwaitReply {
        ck: ClientKex,
        gex: Option<GexParams>,
    },
    ServerAwaitGexRequest,
    ServerAwaitInit {
        gex: Option<(u32, u32, u32, &'static DhGroup)>,
    },
    /// Client: signature verified, waiting for the application's verdict.
    AwaitHostKey {
        key: PublicKey,
    },
    /// Our NEWKEYS is sent (or about to be); waiting for the peer's.
    AwaitNewKeys,
}

pub(in crate::transport) struct KexRun {
    pub(super) ours: Vec<u8>,
    pub(super) theirs: Option<Vec<u8>>,
    pub(super) neg: Option<Negotiated>,
    pub(super) spec: Option<&'static KexSpec>,
    pub(in crate::transport) step: Step,
    /// Keys computed, not yet installed: (tx, rx).
    pub(super) tx_keys: Option<DirectionKeys>,
    pub(super) rx_keys: Option<DirectionKeys>,
    pub(in crate::transport) sent_newkeys: bool,
    pub(super) ignore_next: bool,
    pub(super) h: Vec<u8>,
}

impl Transport {
    fn kexinit_payload(&self, rng: &mut dyn CryptoRng) -> Vec<u8> {
        let a = &self.config.algorithms;
        let mut p = Vec::with_capacity(1024);
        p.push(msg::KEXINIT);
        let mut cookie = [0u8; 16];
        rng.fill_bytes(&mut cookie);
        p.extend_from_slice(&cookie);
        let mut kex: Vec<&str> = a.kex.iter().map(String::as_str).collect();
        if self.session_id.is_none() {
            match self.role {
                Role::Client => {
                    kex.push(algorithms::EXT_INFO_C);
                    if self.config.strict_kex {
                        kex.push(algorithms::STRICT_KEX_C);
                    }
                }
                Role::Server => {
                    kex.push(algorithms::EXT_INFO_S);
                    if self.config.strict_kex {
                        kex.push(algorithms::STRICT_KEX_S);
                    }
                }
            }
        }
        p.put_name_list(&kex);
        match self.role {
            Role::Client => p.put_name_list(&a.host_key),
            Role::Server => {
                let usable: Vec<&str> = a
                    .host_key
                    .iter()
                    .map(String::as_str)
                    .filter(|alg| {
                        self.config
                            .host_keys
                            .iter()
                            .any(|k| k.public_key().sig_algorithms().contains(alg))
                    })
                    .collect();
                p.put_name_list(&usable);
            }
        }
        p.put_name_list(&a.cipher);
        p.put_name_list(&a.cipher);
        p.put_name_list(&a.mac);
        p.put_name_list(&a.mac);
        p.put_name_list(&a.compression);
        p.put_name_list(&a.compression);
        p.put_u32(0);
        p.put_u32(0);
        p.put_bool(false);
        p.put_u32(0);
        p
    }

    /// Starts a key exchange (sends KEXINIT) unless one is running.
    pub fn start_kex(&mut self, rng: &mut dyn CryptoRng) -> Result<()> {
        if self.kex.is_some() || self.closed {
            return Ok(());
        }
        if self.version != VersionState::Done && self.session_id.is_some() {
            return Ok(());
        }
        let ours = self.kexinit_payload(rng);
        if self.session_id.is_none() {
            tracing::debug!("key exchange started");
        } else {
            tracing::debug!(
                bytes = self.bytes_since_kex,
                packets_sent = self.tx_packets,
                packets_received = self.rx_packets,
                "rekey started (counts since the last key exchange)"
            );
        }
        log_kexinit("ours", &ours);
        self.kex = Some(KexRun {
            ours: ours.clone(),
            theirs: None,
            neg: None,
            spec: None,
            step: Step::AwaitKexInit,
            tx_keys: None,
            rx_keys: None,
            sent_newkeys: false,
            ignore_next: false,
            h: Vec::new(),
        });
        self.send_raw(rng, &ours)
    }

    /// Client requests a rekey now (no-op if one is running).
    pub fn rekey(&mut self, rng: &mut dyn CryptoRng) -> Result<()> {
        if self.session_id.is_none() {
            return Ok(());
        }
        self.start_kex(rng)
    }

    pub(in crate::transport) fn on_kexinit(
        &mut self,
        rng: &mut dyn CryptoRng,
        theirs: Vec<u8>,
    ) -> Result<()> {
        if self.kex.is_none() {
            self.start_kex(rng)?;
        }
        let first = self.session_id.is_none();
        let kex = self
            .kex
            .as_mut()
            .ok_or_else(|| Error::protocol("internal: no kex state"))?;
        if kex.theirs.is_some() {
            return Err(Error::protocol(
                "peer sent KEXINIT twice in one key exchange",
            ));
        }
        log_kexinit("peer", &theirs);
        // Parse the peer's lists.
        let mut r = Reader::new(&theirs[1..]);
        r.bytes(16)?;
        let mut lists = [""; 10];
        for l in lists.iter_mut() {
            *l = r.name_list()?;
        }
        let follows = r.bool()?;
        r.u32()?;
        let ours_p = kex.ours.clone();
        let mut ro = Reader::new(&ours_p[1..]);
        ro.bytes(16)?;
        let mut mine = [""; 10];
        for l in mine.iter_mut() {
            *l = ro.name_list()?;
        }
        let (c, s) = match self.role {
            Role::Client => (mine, lists),
            Role::Server => (lists, mine),
        };
        if first {
            let strict_c = crate::wire::names(c[0]).any(|n| n == algorithms::STRICT_KEX_C);
            let strict_s = crate::wire::names(s[0]).any(|n| n == algorithms::STRICT_KEX_S);
            self.strict = self.config.strict_kex && strict_c && strict_s;
            if self.strict && self.rx_packets_total != 1 {
                return Err(Error::protocol(
                    "strict key exchange violation: KEXINIT was not the first packet",
                ));
            }
            self.peer_ext_info = match self.role {
                Role::Client => crate::wire::names(s[0]).any(|n| n == algorithms::EXT_INFO_S),
                Role::Server => crate::wire::names(c[0]).any(|n| n == algorithms::EXT_INFO_C),
            };
        }
        let strip = |l: &str| -> String {
            crate::wire::names(l)
                .filter(|n| {
                    !n.starts_with("ext-info-")
                        && !n.starts_with("kex-strict-")
                        && !n.contains("ext-info-in-auth")
                })
                .collect::<Vec<_>>()
                .join(",")
        };
        let kex_name = algorithms::choose("key exchange", &strip(c[0]), &strip(s[0]))?;
        let host_key = algorithms::choose("host key", c[1], s[1])?;
        let cipher_c2s = algorithms::choose("cipher (client to server)", c[2], s[2])?;
        let cipher_s2c = algorithms::choose("cipher (server to client)", c[3], s[3])?;
        let aead = |n: &str| cipher::cipher_spec(n).is_some_and(|s| s.aead);
        let mac_c2s = if aead(&cipher_c2s) {
            None
        } else {
            Some(algorithms::choose("MAC (client to server)", c[4], s[4])?)
        };
        let mac_s2c = if aead(&cipher_s2c) {
            None
        } else {
            Some(algorithms::choose("MAC (server to client)", c[5], s[5])?)
        };
        let comp_c2s = algorithms::choose("compression (client to server)", c[6], s[6])?;
        let comp_s2c = algorithms::choose("compression (server to client)", c[7], s[7])?;
        let spec = kex::kex_spec(&kex_name).ok_or_else(|| {
            Error::new(
                ErrorKind::NoCommonAlgorithm,
                format!("unsupported kex {kex_name}"),
            )
        })?;
        if follows {
            // The peer guessed. RFC 4253 §7 (and OpenSSH): the guess is
            // right only when both sides list the same kex and host key
            // algorithms first; otherwise its guessed packet is dropped.
            let first = |l: &str| crate::wire::names(l).next().unwrap_or("").to_string();
            kex.ignore_next =
                first(lists[0]) != first(mine[0]) || first(lists[1]) != first(mine[1]);
        }
        let neg = Negotiated {
            kex: kex_name,
            host_key,
            cipher_c2s,
            cipher_s2c,
            mac_c2s,
            mac_s2c,
            compression_c2s: comp_c2s,
            compression_s2c: comp_s2c,
        };
        tracing::debug!(
            kex = %neg.kex,
            host_key = %neg.host_key,
            cipher_c2s = %neg.cipher_c2s,
            cipher_s2c = %neg.cipher_s2c,
            mac_c2s = neg.mac_c2s.as_deref().unwrap_or("<implicit>"),
            mac_s2c = neg.mac_s2c.as_deref().unwrap_or("<implicit>"),
            compression_c2s = %neg.compression_c2s,
            compression_s2c = %neg.compression_s2c,
            "algorithms chosen"
        );
        kex.theirs = Some(theirs);
        kex.neg = Some(neg);
        kex.spec = Some(spec);
        match self.role {
            Role::Client => {
                if matches!(spec.kind, KexKind::DhGex) {
                    let (min, n, max) = self.config.gex_bits;
                    kex.step = Step::ClientAwaitGexGroup;
                    self.send(rng, |b| {
                        b.push(msg::KEX_DH_GEX_REQUEST);
                        b.put_u32(min);
                        b.put_u32(n);
                        b.put_u32(max);
                    })?;
                } else {
                    let ck = ClientKex::new(spec, None, rng)?;
                    let public = ck.public().to_vec();
                    kex.step = Step::ClientAwaitReply { ck, gex: None };
                    let mpint = spec.public_is_mpint();
                    self.send(rng, |b| {
                        b.push(msg::KEX_30);
                        if mpint {
                            b.put_mpint_positive(&public);
                        } else {
                            b.put_string(&public);
                        }
                    })?;
                }
            }
            Role::Server => {
                kex.step = if matches!(spec.kind, KexKind::DhGex) {
                    Step::ServerAwaitGexRequest
                } else {
                    Step::ServerAwaitInit { gex: None }
                };
            }
        }
        Ok(())
    }

    pub(in crate::transport) fn on_kex_message(
        &mut self,
        rng: &mut dyn CryptoRng,
        payload: &[u8],
    ) -> Result<Option<PublicKey>> {
        let role = self.role;
        let Some(kex) = self.kex.as_mut() else {
            return Err(Error::protocol(format!(
                "unexpected kex message {} outside key exchange",
                payload[0]
            )));
        };
        if kex.ignore_next {
            kex.ignore_next = false;
            return Ok(None);
        }
        let spec = kex
            .spec
            .ok_or_else(|| Error::protocol("kex message before KEXINIT"))?;
        let t = payload[0];
        let mut r = Reader::new(&payload[1..]);
        let step = std::mem::replace(&mut kex.step, Step::AwaitNewKeys);
        match (role, step) {
            (Role::Client, Step::ClientAwaitGexGroup) if t == msg::KEX_31 => {
                let params = DhParams {
                    p: r.mpint_positive()?.to_vec(),
                    g: r.mpint_positive()?.to_vec(),
                };
                let (min, _, max) = self.config.gex_bits;
                // Measured, not computed from the length: an empty `p` is 0 bits.
                let bits = params.bits();
                if bits < min as usize || bits > max as usize {
                    return Err(Error::protocol(format!(
                        "server offered a {bits}-bit DH group outside the requested {min}..{max}"
                    )));
                }
                let ck = ClientKex::new(spec, Some(params.clone()), rng)?;
                let DhParams { p, g } = params;
                let public = ck.public().to_vec();
                let (min, n, max) = self.config.gex_bits;
                let kex = self
                    .kex
                    .as_mut()
                    .ok_or_else(|| Error::protocol("internal: kex state lost"))?;
                kex.step = Step::ClientAwaitReply {
                    ck,
                    gex: Some((min, n, max, p, g)),
                };
                self.send(rng, |b| {
                    b.push(msg::KEX_DH_GEX_INIT);
                    b.put_mpint_positive(&public);
                })?;
                Ok(None)
            }
            (Role::Client, Step::ClientAwaitReply { ck, gex })
                if (gex.is_none() && t == msg::KEX_31)
                    || (gex.is_some() && t == msg::KEX_DH_GEX_REPLY) =>
            {
                let ks = r.string()?;
                let q_s = if spec.public_is_mpint() {
                    r.mpint_positive()?
                } else {
                    r.string()?
                };
                let sig = r.string()?;
                let host_key = PublicKey::from_blob(ks)?;
                let q_c = ck.public().to_vec();
                let k = ck.finish(q_s)?;
                let h = self.exchange_hash(spec, ks, gex.as_ref(), &q_c, q_s, &k)?;
                let neg = self
                    .kex
                    .as_ref()
                    .and_then(|k| k.neg.clone())
                    .ok_or_else(|| Error::protocol("internal: no negotiation"))?;
                if !host_key.sig_algorithms().contains(&neg.host_key.as_str()) {
                    return Err(Error::new(
                        ErrorKind::HostKey,
                        format!(
                            "server sent a {} host key for algorithm {}",
                            host_key.key_type(),
                            neg.host_key
                        ),
                    ));
                }
                host_key.verify(&neg.host_key, &h, sig).map_err(|e| {
                    Error::new(
                        ErrorKind::HostKey,
                        format!(
                            "server's signature on the key exchange is invalid: {}",
                            e.detail()
                        ),
                    )
                })?;
                self.make_keys(spec, &k, &h);
                match &self.host_key {
                    Some(prev) => {
                        if *prev != host_key {
                            return Err(Error::new(
                                ErrorKind::HostKey,
                                "server host key changed during rekey",
                            ));
                        }
                        self.send_newkeys(rng)?;
                        Ok(None)
                    }
                    None => {
                        if let Some(kex) = self.kex.as_mut() {
                            kex.step = Step::AwaitHostKey {
                                key: host_key.clone(),
                            };
                        }
                        Ok(Some(host_key))
                    }
                }
            }
            (Role::Server, Step::ServerAwaitGexRequest) if t == msg::KEX_DH_GEX_REQUEST => {
                let min = r.u32()?;
                let n = r.u32()?;
                let max = r.u32()?;
                if min > max || n < min || n > max {
                    return Err(Error::protocol(format!(
                        "bad DH group request {min}/{n}/{max}"
                    )));
                }
                let group = kex::gex_choose(min, n, max).ok_or_else(|| {
                    Error::new(
                        ErrorKind::NoCommonAlgorithm,
                        format!("no DH group between {min} and {max} bits"),
                    )
                })?;
                let kex = self
                    .kex
                    .as_mut()
                    .ok_or_else(|| Error::protocol("internal: kex state lost"))?;
                kex.step = Step::ServerAwaitInit {
                    gex: Some((min, n, max, group)),
                };
                self.send(rng, |b| {
                    b.push(msg::KEX_31);
                    b.put_mpint_positive(group.p);
                    b.put_mpint_positive(&[group.g]);
                })?;
                Ok(None)
            }
            (Role::Server, Step::ServerAwaitInit { gex })
                if (gex.is_none() && t == msg::KEX_30)
                    || (gex.is_some() && t == msg::KEX_DH_GEX_INIT) =>
            {
                let q_c = if spec.public_is_mpint() {
                    r.mpint_positive()?
                } else {
                    r.string()?
                };
                let (q_s, k) = kex::server_kex(spec, gex.map(|g| g.3), q_c, rng)?;
                let neg = self
                    .kex
                    .as_ref()
                    .and_then(|k| k.neg.clone())
                    .ok_or_else(|| Error::protocol("internal: no negotiation"))?;
                let key = self
                    .config
                    .host_keys
                    .iter()
                    .find(|k| {
                        k.public_key()
                            .sig_algorithms()
                            .contains(&neg.host_key.as_str())
                    })
                    .cloned()
                    .ok_or_else(|| {
                        Error::new(
                            ErrorKind::HostKey,
                            format!("no host key for {}", neg.host_key),
                        )
                    })?;
                let ks = key.public_key().to_blob();
                let gex_full = gex.map(|(a, b, c, g)| (a, b, c, g.p.to_vec(), vec![g.g]));
                let h = self.exchange_hash(spec, &ks, gex_full.as_ref(), q_c, &q_s, &k)?;
                let sig = key.sign(&neg.host_key, &h)?;
                self.make_keys(spec, &k, &h);
                let mpint = spec.public_is_mpint();
                let reply = if gex.is_some() {
                    msg::KEX_DH_GEX_REPLY
                } else {
                    msg::KEX_31
                };
                self.send(rng, |b| {
                    b.push(reply);
                    b.put_string(&ks);
                    if mpint {
                        b.put_mpint_positive(&q_s);
                    } else {
                        b.put_string(&q_s);
                    }
                    b.put_string(&sig);
                })?;
                self.send_newkeys(rng)?;
                Ok(None)
            }
            (_, step) => {
                if let Some(kex) = self.kex.as_mut() {
                    kex.step = step;
                }
                Err(Error::protocol(format!(
                    "unexpected key exchange message type {t}"
                )))
            }
        }
    }
}

/// Logs the algorithm lists of a KEXINIT payload (at debug level).
fn log_kexinit(side: &str, payload: &[u8]) {
    if !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    let mut r = Reader::new(payload.get(1..).unwrap_or_default());
    if r.bytes(16).is_err() {
        return;
    }
    const NAMES: [&str; 10] = [
        "kex",
        "host_key",
        "cipher_c2s",
        "cipher_s2c",
        "mac_c2s",
        "mac_s2c",
        "compression_c2s",
        "compression_s2c",
        "languages_c2s",
        "languages_s2c",
    ];
    for name in NAMES {
        let Ok(list) = r.name_list() else { return };
        tracing::debug!(side, category = name, list = %crate::transport::sanitize(list), "KEXINIT");
    }
}
