//! Transport layer (RFC 4253): version exchange, binary packet protocol,
//! ciphers and MACs, compression, key exchange, strict kex, ext-info, rekeying.
//!
//! [`Transport`] owns the receive and send buffers. Incoming packets are
//! decrypted in place in the receive buffer and handed upward as borrowed
//! payloads ([`InPacket`]); outgoing payloads are encoded straight into the
//! send buffer and encrypted there, so no packet allocates in steady state.

pub mod algorithms;
pub mod cipher;
pub mod compress;
pub mod kex;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_core::CryptoRng;

use crate::error::{Error, ErrorKind, Result};
use crate::keys::{PrivateKey, PublicKey};
use crate::wire::{msg, Put, Reader};
use algorithms::{Algorithms, Negotiated};
use cipher::{Opener, Sealer};
use compress::{Compressor, Decompressor};
use kex::{ClientKex, DhGroup, DhParams, KexKind, KexSpec, SharedSecret};

/// Largest `packet_length` accepted from a peer (OpenSSH's limit).
pub const MAX_PACKET_LEN: usize = 256 * 1024;
/// Largest payload (after decompression) accepted from a peer.
pub const MAX_PAYLOAD_LEN: usize = 256 * 1024;
/// Bytes of lines a server may send before its version line.
const MAX_PRE_BANNER: usize = 64 * 1024;
/// Receive-buffer size beyond which `recv` stops accepting input until the
/// application has processed what is there.
const RX_SOFT_LIMIT: usize = 2 * MAX_PACKET_LEN + 64 * 1024;

/// Client or server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Client,
    Server,
}

/// Transport settings (part of the connection's `Config`).
#[derive(Clone)]
pub struct TransportConfig {
    pub algorithms: Algorithms,
    /// Our identification string, without CR LF (`SSH-2.0-...`).
    pub version: String,
    /// Strict key exchange (Terrapin countermeasure); on by default.
    pub strict_kex: bool,
    /// Rekey after this many bytes in either direction; `None`: the
    /// cipher-dependent OpenSSH default.
    pub rekey_bytes: Option<u64>,
    /// Rekey after this much time; `None`: never by time (OpenSSH default).
    pub rekey_time: Option<Duration>,
    /// Server host keys (at least one for a server).
    pub host_keys: Vec<Arc<PrivateKey>>,
    /// Client: GEX group size request (min, preferred, max).
    pub gex_bits: (u32, u32, u32),
    /// Server: the signature algorithms accepted for publickey user
    /// authentication (OpenSSH `PubkeyAcceptedAlgorithms`); a request with
    /// any other algorithm fails (and counts toward `max_auth_tries`). Also
    /// sent to the client as `server-sig-algs`. Defaults to OpenSSH's list
    /// (less what this crate lacks: certificates, security keys), which
    /// leaves out SHA-1 `ssh-rsa`; every name this crate can verify is in
    /// [`PUBKEY_ALGORITHMS_ALL`](crate::transport::algorithms::PUBKEY_ALGORITHMS_ALL).
    pub pubkey_accepted_algorithms: Vec<String>,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            algorithms: Algorithms::default(),
            version: format!("SSH-2.0-sshlib_{}", env!("CARGO_PKG_VERSION")),
            strict_kex: true,
            rekey_bytes: None,
            rekey_time: None,
            host_keys: Vec::new(),
            gex_bits: (2048, 3072, 8192),
            pubkey_accepted_algorithms: algorithms::PUBKEY_ALGORITHMS_ALL
                .iter()
                .filter(|a| !algorithms::PUBKEY_ALGORITHMS_LEGACY.contains(a))
                .map(|a| a.to_string())
                .collect(),
        }
    }
}

/// A received payload, borrowed out of the transport's buffer. Hand it back
/// with [`Transport::restore`] after use.
pub struct InPacket {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    from_rx: bool,
    pub seq: u32,
}

impl InPacket {
    pub fn payload(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }
    pub fn msg_type(&self) -> u8 {
        self.buf[self.start]
    }
}

/// What the transport produced for the layer above.
pub enum Input {
    /// A message for the auth or connection layer (or unknown).
    Packet(InPacket),
    /// Client: the server's host key, verified to have signed the exchange;
    /// the application must accept or reject it before the session goes on.
    HostKey(PublicKey),
    /// A key exchange finished; these algorithms are now in use.
    KexDone(Negotiated),
    /// The peer sent SSH_MSG_DEBUG with always_display set.
    Debug(String),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum VersionState {
    Waiting,
    Done,
}

/// A GEX request and the group that answered it: (min, n, max, p, g).
type GexParams = (u32, u32, u32, Vec<u8>, Vec<u8>);

/// Keys for one direction, made by a finished key exchange.
struct DirectionKeys {
    cipher: String,
    key: Vec<u8>,
    iv: Vec<u8>,
    mac: Option<(String, Vec<u8>)>,
    compression: String,
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

enum Step {
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

struct KexRun {
    ours: Vec<u8>,
    theirs: Option<Vec<u8>>,
    neg: Option<Negotiated>,
    spec: Option<&'static KexSpec>,
    step: Step,
    /// Keys computed, not yet installed: (tx, rx).
    tx_keys: Option<DirectionKeys>,
    rx_keys: Option<DirectionKeys>,
    sent_newkeys: bool,
    ignore_next: bool,
    h: Vec<u8>,
}

pub struct Transport {
    role: Role,
    config: TransportConfig,
    version: VersionState,
    peer_version: Option<String>,
    pre_banner: usize,
    /// Lines the server sent before its version (client side).
    pub banner_lines: Vec<String>,

    rx: Vec<u8>,
    rx_start: usize,
    rx_len: Option<usize>,
    opener: Opener,
    rx_seq: u32,
    rx_decomp: Option<Decompressor>,
    rx_comp_pending: Option<String>,
    decomp_buf: Vec<u8>,

    tx: Vec<u8>,
    tx_sent: usize,
    sealer: Sealer,
    tx_seq: u32,
    tx_comp: Option<Compressor>,
    tx_comp_pending: Option<String>,
    comp_scratch: Vec<u8>,
    queued: VecDeque<Vec<u8>>,

    kex: Option<KexRun>,
    kex_count: u32,
    session_id: Option<Vec<u8>>,
    strict: bool,
    peer_ext_info: bool,
    server_sig_algs: Option<String>,
    host_key: Option<PublicKey>,
    negotiated: Option<Negotiated>,
    authenticated: bool,

    bytes_since_kex: u64,
    rekey_limit: u64,
    last_kex: Instant,
    closed: bool,
    rx_packets_total: u64,
}

fn default_rekey_bytes(cipher: &str) -> u64 {
    // OpenSSH: 2^(block_size*2) blocks for 16-byte blocks, else 1 GiB.
    match cipher::cipher_spec(cipher) {
        Some(s) if s.block_size >= 16 => 1u64 << 32, // capped: 4 GiB is plenty and keeps counters sane
        _ => 1u64 << 30,
    }
}

impl Transport {
    pub fn new(role: Role, config: TransportConfig, now: Instant) -> Result<Self> {
        if !config.version.starts_with("SSH-2.0-") || config.version.len() > 253 {
            return Err(Error::usage(
                "version string must start with SSH-2.0- and be at most 253 bytes",
            ));
        }
        if role == Role::Server && config.host_keys.is_empty() {
            return Err(Error::usage("a server needs at least one host key"));
        }
        let mut t = Transport {
            role,
            version: VersionState::Waiting,
            peer_version: None,
            pre_banner: 0,
            banner_lines: Vec::new(),
            rx: Vec::with_capacity(64 * 1024),
            rx_start: 0,
            rx_len: None,
            opener: Opener::none(),
            rx_seq: 0,
            rx_decomp: None,
            rx_comp_pending: None,
            decomp_buf: Vec::new(),
            tx: Vec::with_capacity(64 * 1024),
            tx_sent: 0,
            sealer: Sealer::none(),
            tx_seq: 0,
            tx_comp: None,
            tx_comp_pending: None,
            comp_scratch: Vec::new(),
            queued: VecDeque::new(),
            kex: None,
            kex_count: 0,
            session_id: None,
            strict: false,
            peer_ext_info: false,
            server_sig_algs: None,
            host_key: None,
            negotiated: None,
            authenticated: false,
            bytes_since_kex: 0,
            rekey_limit: u64::MAX,
            last_kex: now,
            closed: false,
            rx_packets_total: 0,
            config,
        };
        t.tx.extend_from_slice(t.config.version.as_bytes());
        t.tx.extend_from_slice(b"\r\n");
        Ok(t)
    }

    pub fn role(&self) -> Role {
        self.role
    }
    pub fn session_id(&self) -> Option<&[u8]> {
        self.session_id.as_deref()
    }
    pub fn peer_version(&self) -> Option<&str> {
        self.peer_version.as_deref()
    }
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }
    pub fn server_sig_algs(&self) -> Option<&str> {
        self.server_sig_algs.as_deref()
    }
    pub fn host_key(&self) -> Option<&PublicKey> {
        self.host_key.as_ref()
    }
    pub fn strict_kex(&self) -> bool {
        self.strict
    }
    pub fn is_closed(&self) -> bool {
        self.closed
    }
    /// True once the first key exchange is complete in both directions.
    pub fn is_ready(&self) -> bool {
        self.session_id.is_some() && self.kex.is_none()
    }
    pub fn in_kex(&self) -> bool {
        self.kex.is_some()
    }
    /// Number of completed key exchanges.
    pub fn kex_count(&self) -> u32 {
        self.kex_count
    }
    pub fn config(&self) -> &TransportConfig {
        &self.config
    }

    // ---------------------------------------------------------------- output

    /// Bytes waiting to be written to the peer.
    pub fn pending_output(&self) -> &[u8] {
        &self.tx[self.tx_sent..]
    }
    pub fn pending_output_len(&self) -> usize {
        self.tx.len() - self.tx_sent
    }
    /// Moves all pending output into `buf` (which must be empty) without
    /// copying when possible: the buffers are swapped.
    pub fn take_output(&mut self, buf: &mut Vec<u8>) {
        if self.tx_sent == 0 && buf.is_empty() {
            std::mem::swap(&mut self.tx, buf);
        } else {
            buf.extend_from_slice(&self.tx[self.tx_sent..]);
            self.tx.clear();
            self.tx_sent = 0;
        }
    }

    pub fn advance_output(&mut self, n: usize) {
        self.tx_sent = (self.tx_sent + n).min(self.tx.len());
        if self.tx_sent == self.tx.len() {
            self.tx.clear();
            self.tx_sent = 0;
        } else if self.tx_sent > 256 * 1024 && self.tx_sent * 2 > self.tx.len() {
            self.tx.drain(..self.tx_sent);
            self.tx_sent = 0;
        }
    }

    fn may_send_now(&self, msg_type: u8) -> bool {
        match &self.kex {
            None => self.session_id.is_some() || is_transport_msg(msg_type),
            Some(k) => k.sent_newkeys || is_transport_msg(msg_type),
        }
    }

    /// Sends one message; `encode` appends the payload (starting with the
    /// message number). Messages that may not go out during a key exchange
    /// are queued whole and sent, in order, after it.
    pub fn send(
        &mut self,
        rng: &mut dyn CryptoRng,
        encode: impl FnOnce(&mut Vec<u8>),
    ) -> Result<()> {
        if self.closed {
            return Err(Error::new(ErrorKind::Closed, "connection is closed"));
        }
        // Encode into the send buffer directly after a 5-byte header gap.
        let start = self.tx.len();
        self.tx.extend_from_slice(&[0u8; 5]);
        encode(&mut self.tx);
        let msg_type = self.tx.get(start + 5).copied().unwrap_or(0);
        if !self.may_send_now(msg_type) || (!self.queued.is_empty() && !is_transport_msg(msg_type))
        {
            let payload = self.tx[start + 5..].to_vec();
            self.tx.truncate(start);
            self.queued.push_back(payload);
            return Ok(());
        }
        self.finish_packet(start, rng)
    }

    /// Compresses (when on) the payload that runs from `start + 5` to the
    /// end of the send buffer, then pads, frames and encrypts it.
    fn finish_packet(&mut self, start: usize, rng: &mut dyn CryptoRng) -> Result<()> {
        if let Some(c) = self.tx_comp.as_mut() {
            let mut scratch = std::mem::take(&mut self.comp_scratch);
            scratch.clear();
            scratch.extend_from_slice(&self.tx[start + 5..]);
            self.tx.truncate(start + 5);
            let r = c.compress(&scratch, &mut self.tx);
            self.comp_scratch = scratch;
            r?;
        }
        self.seal_at(start, rng);
        Ok(())
    }

    /// Sends a payload given as a slice (used for queued messages).
    fn send_raw(&mut self, rng: &mut dyn CryptoRng, payload: &[u8]) -> Result<()> {
        self.send(rng, |b| b.extend_from_slice(payload))
    }

    /// Pads, frames and encrypts the packet whose payload starts at
    /// `start + 5` and runs to the end of the send buffer.
    fn seal_at(&mut self, start: usize, rng: &mut dyn CryptoRng) {
        let payload_len = self.tx.len() - start - 5;
        let bs = self.sealer.block_size().max(8);
        let unpadded = if self.sealer.length_in_clear() {
            1 + payload_len
        } else {
            5 + payload_len
        };
        let mut pad = bs - (unpadded % bs);
        if pad < 4 {
            pad += bs;
        }
        let mut padding = [0u8; 64];
        rng.fill_bytes(&mut padding[..pad]);
        self.tx.extend_from_slice(&padding[..pad]);
        let packet_len = (1 + payload_len + pad) as u32;
        self.tx[start..start + 4].copy_from_slice(&packet_len.to_be_bytes());
        self.tx[start + 4] = pad as u8;
        let tag_len = self.sealer.tag_len();
        let end = self.tx.len();
        self.tx.resize(end + tag_len, 0);
        let (pkt, tag) = self.tx[start..].split_at_mut(end - start);
        self.sealer.seal(self.tx_seq, pkt, tag);
        self.tx_seq = self.tx_seq.wrapping_add(1);
        self.bytes_since_kex += (end - start + tag_len) as u64;
    }

    /// Room for channel data in the send buffer before `send` should be
    /// held back (keeps memory bounded when the socket is slow).
    pub fn send_buffer_room(&self) -> usize {
        const HIGH_WATER: usize = 4 * 1024 * 1024;
        HIGH_WATER.saturating_sub(
            self.pending_output_len() + self.queued.iter().map(|q| q.len()).sum::<usize>(),
        )
    }

    /// Sends SSH_MSG_DISCONNECT and closes the transport for sending.
    pub fn disconnect(&mut self, rng: &mut dyn CryptoRng, reason: u32, description: &str) {
        if self.closed {
            return;
        }
        // A transport message: it goes out even during a key exchange.
        let start = self.tx.len();
        self.tx.extend_from_slice(&[0u8; 5]);
        self.tx.push(msg::DISCONNECT);
        self.tx.put_u32(reason);
        self.tx.put_str(description);
        self.tx.put_str("");
        if self.finish_packet(start, rng).is_err() {
            self.tx.truncate(start);
        }
        self.closed = true;
    }

    /// Marks the transport closed without sending anything.
    pub fn close(&mut self) {
        self.closed = true;
    }

    // ----------------------------------------------------------------- input

    /// Takes received bytes; returns how many were accepted (fewer than
    /// offered when the receive buffer is full because processing is held).
    pub fn feed(&mut self, data: &[u8]) -> usize {
        if self.rx_start > 0 && (self.rx_start == self.rx.len() || self.rx_start > 128 * 1024) {
            self.rx.drain(..self.rx_start);
            self.rx_start = 0;
        }
        let buffered = self.rx.len() - self.rx_start;
        let room = RX_SOFT_LIMIT.saturating_sub(buffered);
        let n = data.len().min(room);
        self.rx.extend_from_slice(&data[..n]);
        n
    }

    /// Bytes received but not yet processed.
    pub fn buffered_input(&self) -> usize {
        self.rx.len().saturating_sub(self.rx_start)
    }

    /// Hands back a payload taken by [`Transport::poll`].
    pub fn restore(&mut self, p: InPacket) {
        if p.from_rx {
            self.rx = p.buf;
        } else {
            self.decomp_buf = p.buf;
        }
    }

    /// True while a host key decision is pending.
    pub fn awaiting_host_key(&self) -> bool {
        matches!(
            self.kex.as_ref().map(|k| &k.step),
            Some(Step::AwaitHostKey { .. })
        )
    }

    /// Processes buffered input until it yields something for the layer above
    /// or needs more bytes (`Ok(None)`).
    pub fn poll(&mut self, rng: &mut dyn CryptoRng, now: Instant) -> Result<Option<Input>> {
        if self.closed {
            return Ok(None);
        }
        if self.version == VersionState::Waiting {
            if !self.read_version()? {
                return Ok(None);
            }
            // Both sides send KEXINIT right after the version exchange.
            if self.kex.is_none() {
                self.start_kex(rng)?;
            }
        }
        loop {
            if self.awaiting_host_key() {
                return Ok(None);
            }
            let Some(pkt) = self.read_packet()? else {
                return Ok(None);
            };
            let t = pkt.msg_type();
            // Strict kex: during the initial exchange only kex messages pass
            // (and DISCONNECT, so that a peer giving up can say why).
            if self.strict
                && self.kex_count == 0
                && !matches!(t, msg::KEXINIT | msg::NEWKEYS | msg::DISCONNECT | 30..=49)
            {
                let name = msg::name(t);
                self.restore(pkt);
                return Err(Error::protocol(format!(
                    "strict key exchange violation: unexpected {name} (type {t}) during initial key exchange"
                )));
            }
            match t {
                msg::IGNORE | msg::UNIMPLEMENTED => {
                    self.restore(pkt);
                }
                msg::DEBUG => {
                    let mut r = Reader::new(&pkt.payload()[1..]);
                    let display = r.bool().unwrap_or(false);
                    let text = r.utf8().unwrap_or("").to_string();
                    self.restore(pkt);
                    if display {
                        return Ok(Some(Input::Debug(text)));
                    }
                }
                msg::DISCONNECT => {
                    let mut r = Reader::new(&pkt.payload()[1..]);
                    let code = r.u32().unwrap_or(0);
                    let desc = String::from_utf8_lossy(r.string().unwrap_or(b"")).into_owned();
                    self.restore(pkt);
                    self.closed = true;
                    return Err(Error::with_code(
                        ErrorKind::PeerDisconnected,
                        code,
                        format!("{} (reason {code})", sanitize(&desc)),
                    ));
                }
                msg::KEXINIT => {
                    let payload = pkt.payload().to_vec();
                    self.restore(pkt);
                    self.on_kexinit(rng, payload)?;
                }
                msg::NEWKEYS => {
                    self.restore(pkt);
                    if let Some(done) = self.on_newkeys(rng, now)? {
                        return Ok(Some(Input::KexDone(done)));
                    }
                }
                30..=49 => {
                    let payload = pkt.payload().to_vec();
                    self.restore(pkt);
                    if let Some(key) = self.on_kex_message(rng, &payload)? {
                        return Ok(Some(Input::HostKey(key)));
                    }
                }
                msg::EXT_INFO => {
                    // RFC 8308: EXT_INFO follows NEWKEYS; before it, it could
                    // only have been injected into the unauthenticated stream.
                    if self.kex_count == 0 {
                        self.restore(pkt);
                        return Err(Error::protocol(
                            "EXT_INFO before the first key exchange completed",
                        ));
                    }
                    let res = self.on_ext_info(pkt.payload());
                    self.restore(pkt);
                    res?;
                }
                _ => {
                    return Ok(Some(Input::Packet(pkt)));
                }
            }
        }
    }

    fn read_version(&mut self) -> Result<bool> {
        loop {
            let buf = &self.rx[self.rx_start..];
            let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
                if buf.len() > 8192 {
                    return Err(Error::protocol(
                        "peer sent a line of more than 8192 bytes before its version",
                    ));
                }
                return Ok(false);
            };
            let mut line = &buf[..nl];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            let consumed = nl + 1;
            if line.starts_with(b"SSH-") {
                if line.len() > 253 {
                    return Err(Error::protocol("peer version line longer than 255 bytes"));
                }
                let v = String::from_utf8_lossy(line).into_owned();
                self.rx_start += consumed;
                if !(v.starts_with("SSH-2.0-") || v.starts_with("SSH-1.99-")) {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!(
                            "peer speaks an unsupported protocol version: {}",
                            sanitize(&v)
                        ),
                    ));
                }
                self.peer_version = Some(v);
                self.version = VersionState::Done;
                return Ok(true);
            }
            if self.role == Role::Server {
                return Err(Error::protocol(format!(
                    "client did not start with an SSH version line (got {:?})",
                    sanitize(&String::from_utf8_lossy(&line[..line.len().min(64)]))
                )));
            }
            self.pre_banner += consumed;
            if self.pre_banner > MAX_PRE_BANNER || self.banner_lines.len() >= 1024 {
                return Err(Error::protocol(
                    "server sent too many lines before its version line",
                ));
            }
            self.banner_lines
                .push(String::from_utf8_lossy(line).into_owned());
            self.rx_start += consumed;
        }
    }

    fn read_packet(&mut self) -> Result<Option<InPacket>> {
        let avail = self.rx.len() - self.rx_start;
        let len = match self.rx_len {
            Some(l) => l,
            None => {
                let first = self.opener.first_len();
                if avail < first {
                    return Ok(None);
                }
                let s = self.rx_start;
                let l = self
                    .opener
                    .packet_length(self.rx_seq, &mut self.rx[s..s + first])
                    as usize;
                let bs = self.opener.block_size().max(8);
                let aligned = if self.opener.tag_len() > 0 && first == 4 && !self.opener_is_none() {
                    l.is_multiple_of(bs)
                } else {
                    (l + 4).is_multiple_of(bs)
                };
                if !(5..=MAX_PACKET_LEN).contains(&l) || !aligned || l + 4 < first {
                    return Err(Error::protocol(format!(
                        "bad packet length {l} (block size {bs}, maximum {MAX_PACKET_LEN})"
                    )));
                }
                self.rx_len = Some(l);
                l
            }
        };
        let tag_len = self.opener.tag_len();
        let total = 4 + len + tag_len;
        if avail < total {
            // Make sure the whole packet fits without many reallocations.
            self.rx.reserve(total - avail);
            return Ok(None);
        }
        let s = self.rx_start;
        {
            let (pkt, rest) = self.rx[s..s + total].split_at_mut(4 + len);
            self.opener.open(self.rx_seq, pkt, rest)?;
        }
        self.rx_len = None;
        self.rx_start += total;
        let seq = self.rx_seq;
        self.rx_seq = self.rx_seq.wrapping_add(1);
        self.rx_packets_total += 1;
        self.bytes_since_kex += total as u64;
        let pad = self.rx[s + 4] as usize;
        if pad < 4 || pad + 1 > len {
            return Err(Error::protocol(format!(
                "bad padding length {pad} in packet of {len} bytes"
            )));
        }
        let pstart = s + 5;
        let pend = s + 4 + len - pad;
        if pstart == pend {
            return Err(Error::protocol("empty packet payload"));
        }
        if let Some(d) = self.rx_decomp.as_mut() {
            let mut out = std::mem::take(&mut self.decomp_buf);
            out.clear();
            d.decompress(&self.rx[pstart..pend], &mut out, MAX_PAYLOAD_LEN)?;
            if out.is_empty() {
                self.decomp_buf = out;
                return Err(Error::protocol("compressed packet decompressed to nothing"));
            }
            let end = out.len();
            return Ok(Some(InPacket {
                buf: out,
                start: 0,
                end,
                from_rx: false,
                seq,
            }));
        }
        let buf = std::mem::take(&mut self.rx);
        Ok(Some(InPacket {
            buf,
            start: pstart,
            end: pend,
            from_rx: true,
            seq,
        }))
    }

    fn opener_is_none(&self) -> bool {
        self.opener.tag_len() == 0
    }

    // ------------------------------------------------------------------- kex

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

    fn on_kexinit(&mut self, rng: &mut dyn CryptoRng, theirs: Vec<u8>) -> Result<()> {
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

    fn on_kex_message(
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
                let p = r.mpint_positive()?.to_vec();
                let g = r.mpint_positive()?.to_vec();
                let (min, _, max) = self.config.gex_bits;
                let bits = p.len() * 8 - p.first().map_or(8, |b| b.leading_zeros() as usize);
                if bits < min as usize || bits > max as usize {
                    return Err(Error::protocol(format!(
                        "server offered a {bits}-bit DH group outside the requested {min}..{max}"
                    )));
                }
                let ck = ClientKex::new(
                    spec,
                    Some(DhParams {
                        p: p.clone(),
                        g: g.clone(),
                    }),
                    rng,
                )?;
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

    fn exchange_hash(
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

    fn make_keys(&mut self, spec: &KexSpec, k: &SharedSecret, h: &[u8]) {
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

    fn send_newkeys(&mut self, rng: &mut dyn CryptoRng) -> Result<()> {
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

    fn on_newkeys(&mut self, rng: &mut dyn CryptoRng, now: Instant) -> Result<Option<Negotiated>> {
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
        self.rx_comp_pending = Some(keys.compression.clone());
        self.apply_compression();
        self.kex = None;
        self.kex_count += 1;
        self.bytes_since_kex = 0;
        self.last_kex = now;
        self.negotiated = neg.clone();
        self.flush_queue(rng)?;
        Ok(neg)
    }

    /// Releases what was held back during a key exchange, in order.
    fn flush_queue(&mut self, rng: &mut dyn CryptoRng) -> Result<()> {
        while let Some(p) = self.queued.pop_front() {
            let start = self.tx.len();
            self.tx.extend_from_slice(&[0u8; 5]);
            self.tx.extend_from_slice(&p);
            self.finish_packet(start, rng)?;
        }
        Ok(())
    }

    /// Called by the auth layer when authentication succeeded: turns on
    /// delayed (`zlib@openssh.com`) compression.
    pub fn set_authenticated(&mut self) {
        self.authenticated = true;
        self.apply_compression();
    }

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

    fn on_ext_info(&mut self, payload: &[u8]) -> Result<()> {
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

    // ---------------------------------------------------------------- timers

    /// Starts a rekey when the byte or time limit is reached.
    pub fn check_rekey(&mut self, rng: &mut dyn CryptoRng, now: Instant) -> Result<()> {
        if self.session_id.is_none() || self.kex.is_some() || self.closed {
            return Ok(());
        }
        let by_time = self
            .config
            .rekey_time
            .is_some_and(|t| now.saturating_duration_since(self.last_kex) >= t);
        if self.bytes_since_kex >= self.rekey_limit || by_time {
            self.start_kex(rng)?;
        }
        Ok(())
    }

    /// When the transport next needs `handle_timeout`.
    pub fn next_timeout(&self) -> Option<Instant> {
        if self.session_id.is_none() || self.kex.is_some() {
            return None;
        }
        self.config.rekey_time.map(|t| self.last_kex + t)
    }
}

fn is_transport_msg(t: u8) -> bool {
    matches!(t, 1..=4 | 20..=49) || t == msg::EXT_INFO
}

/// Makes peer-supplied text safe to print on a terminal.
pub fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\t')
        .take(1024)
        .collect()
}
