//! Transport layer (RFC 4253): version exchange, binary packet protocol,
//! ciphers and MACs, compression, key exchange, strict kex, ext-info, rekeying.
//!
//! [`Transport`] owns the receive and send buffers. Incoming packets are
//! decrypted in place in the receive buffer and handed upward as borrowed
//! payloads ([`InPacket`]); outgoing payloads are encoded straight into the
//! send buffer and encrypted there, so no packet allocates in steady state.
//!
//! Files: `input` (version exchange and the receive path), `output` (the
//! send path), `kex` (key exchange: its mathematics, and in `kex::run` /
//! `kex::newkeys` the message flow on a `Transport`), `cipher` (packet
//! protection), `compress`, `algorithms` (lists and negotiation).

pub(crate) mod algorithms;
pub(crate) mod cipher;
pub(crate) mod compress;
mod input;
pub(crate) mod kex;
mod output;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_core::CryptoRng;

use crate::error::{Error, Result};
use crate::keys::{PrivateKey, PublicKey};
use crate::wire::byte_queue::ByteQueue;
use crate::wire::msg;
use algorithms::{Algorithms, Negotiated};
use cipher::{Opener, Sealer};
use compress::{Compressor, Decompressor};
use kex::run::KexRun;

/// Largest `packet_length` accepted from a peer (OpenSSH's limit).
pub const MAX_PACKET_LEN: usize = 256 * 1024;
/// Largest payload (after decompression) accepted from a peer.
pub(crate) const MAX_PAYLOAD_LEN: usize = 256 * 1024;
/// Bytes of lines a server may send before its version line.
const MAX_PRE_BANNER: usize = 64 * 1024;
/// Receive-buffer size beyond which `recv` stops accepting input until the
/// application has processed what is there.
const RX_SOFT_LIMIT: usize = 2 * MAX_PACKET_LEN + 64 * 1024;
/// Packets in one direction under one set of keys after which a rekey
/// starts (RFC 4344 section 3.1; OpenSSH's `MAX_PACKETS`).
pub const MAX_REKEY_PACKETS: u64 = 1 << 31;

/// Client or server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The side that opened the connection.
    Client,
    /// The side that accepted it.
    Server,
}

/// Transport settings (part of the connection's `Config`).
#[derive(Clone)]
pub struct TransportConfig {
    /// Algorithms offered, per category, in preference order.
    pub algorithms: Algorithms,
    /// Our identification string, without CR LF (`SSH-2.0-...`).
    pub version: String,
    /// Strict key exchange (Terrapin countermeasure); on by default.
    pub strict_kex: bool,
    /// Rekey after this many bytes in either direction; `None`: the
    /// cipher-dependent OpenSSH default.
    pub rekey_bytes: Option<u64>,
    /// Rekey after this many packets in either direction under one set of
    /// keys; `None` (and anything larger): 2^31, the most RFC 4344 section
    /// 3.1 allows and what OpenSSH uses. A set of keys never carries twice
    /// this many packets in one direction (2^32 by default, where the
    /// sequence number, which ciphers and MACs use as a nonce, would
    /// repeat): when a peer leaves the rekey unfinished that long, the
    /// connection ends with an error instead.
    pub rekey_packets: Option<u64>,
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
            rekey_packets: None,
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
    buf: PacketBuf,
    start: usize,
    end: usize,
    /// The packet's sequence number.
    pub seq: u32,
}

/// Where a received payload lies.
enum PacketBuf {
    /// In the receive queue, at the head: the packet's bytes (`len`) are
    /// consumed when the queue is handed back.
    Rx { queue: ByteQueue, len: usize },
    /// In the decompression buffer.
    Decompressed(Vec<u8>),
}

impl InPacket {
    /// The decrypted, decompressed payload (message number first).
    pub fn payload(&self) -> &[u8] {
        match &self.buf {
            PacketBuf::Rx { queue, .. } => &queue.pending()[self.start..self.end],
            PacketBuf::Decompressed(v) => &v[self.start..self.end],
        }
    }
    /// The message number.
    pub fn msg_type(&self) -> u8 {
        self.payload()[0]
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

/// The transport's settings, shared by every connection made from one
/// `Config` (held by reference, not copied per connection: the algorithm
/// lists alone are dozens of strings).
#[derive(Clone)]
pub struct SharedConfig(std::sync::Arc<dyn AsRef<TransportConfig> + Send + Sync>);

impl std::ops::Deref for SharedConfig {
    type Target = TransportConfig;
    fn deref(&self) -> &TransportConfig {
        (*self.0).as_ref()
    }
}

impl AsRef<TransportConfig> for TransportConfig {
    fn as_ref(&self) -> &TransportConfig {
        self
    }
}

impl From<TransportConfig> for SharedConfig {
    fn from(c: TransportConfig) -> SharedConfig {
        SharedConfig(std::sync::Arc::new(c))
    }
}

impl<C: AsRef<TransportConfig> + Send + Sync + 'static> From<std::sync::Arc<C>> for SharedConfig {
    fn from(c: std::sync::Arc<C>) -> SharedConfig {
        SharedConfig(c)
    }
}

/// The transport layer (RFC 4253): version exchange, packets, key exchange.
pub struct Transport {
    role: Role,
    config: SharedConfig,
    version: VersionState,
    peer_version: Option<String>,
    pre_banner: usize,
    /// Lines the server sent before its version (client side).
    pub banner_lines: Vec<String>,

    rx: ByteQueue,
    rx_len: Option<usize>,
    opener: Opener,
    rx_seq: u32,
    rx_decomp: Option<Decompressor>,
    rx_comp_pending: Option<String>,
    decomp_buf: Vec<u8>,

    tx: ByteQueue,
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
    /// Packets sent under the current sending keys, and received under the
    /// current receiving keys (each reset at its NEWKEYS).
    tx_packets: u64,
    rx_packets: u64,
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
    /// A transport that sends its version line first.
    pub fn new(role: Role, config: impl Into<SharedConfig>, now: Instant) -> Result<Self> {
        let config: SharedConfig = config.into();
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
            rx: ByteQueue::with_capacity(64 * 1024),
            rx_len: None,
            opener: Opener::none(),
            rx_seq: 0,
            rx_decomp: None,
            rx_comp_pending: None,
            decomp_buf: Vec::new(),
            tx: ByteQueue::with_capacity(64 * 1024),
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
            tx_packets: 0,
            rx_packets: 0,
            rekey_limit: u64::MAX,
            last_kex: now,
            closed: false,
            rx_packets_total: 0,
            config,
        };
        t.tx.push(t.config.version.as_bytes());
        t.tx.push(b"\r\n");
        tracing::debug!(version = %t.config.version, "our version line");
        Ok(t)
    }

    /// Client or server.
    pub fn role(&self) -> Role {
        self.role
    }
    /// Exchange hash of the first key exchange.
    pub fn session_id(&self) -> Option<&[u8]> {
        self.session_id.as_deref()
    }
    /// The peer's version line.
    pub fn peer_version(&self) -> Option<&str> {
        self.peer_version.as_deref()
    }
    /// Algorithms in use.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }
    /// The server's `server-sig-algs` extension (RFC 8308), if sent.
    pub fn server_sig_algs(&self) -> Option<&str> {
        self.server_sig_algs.as_deref()
    }
    /// The server's verified host key.
    pub fn host_key(&self) -> Option<&PublicKey> {
        self.host_key.as_ref()
    }
    /// True under strict key exchange.
    pub fn strict_kex(&self) -> bool {
        self.strict
    }
    /// True after a disconnect.
    pub fn is_closed(&self) -> bool {
        self.closed
    }
    /// True once the first key exchange is complete in both directions.
    pub fn is_ready(&self) -> bool {
        self.session_id.is_some() && self.kex.is_none()
    }
    /// True while a key exchange is under way (test support).
    #[cfg(any(test, fuzzing, feature = "internal"))]
    pub fn in_kex(&self) -> bool {
        self.kex.is_some()
    }
    /// Number of completed key exchanges.
    pub fn kex_count(&self) -> u32 {
        self.kex_count
    }

    // ---------------------------------------------------------------- output

    // ----------------------------------------------------------------- input

    // ------------------------------------------------------------------- kex

    // ---------------------------------------------------------------- timers

    /// Starts a rekey when the byte, packet or time limit is reached in
    /// either direction.
    pub fn check_rekey(&mut self, rng: &mut dyn CryptoRng, now: Instant) -> Result<()> {
        if self.session_id.is_none() || self.kex.is_some() || self.closed {
            return Ok(());
        }
        let by_time = self
            .config
            .rekey_time
            .is_some_and(|t| now.saturating_duration_since(self.last_kex) >= t);
        let packets = self.rekey_packets();
        let by_packets = self.tx_packets >= packets || self.rx_packets >= packets;
        if self.bytes_since_kex >= self.rekey_limit || by_packets || by_time {
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
    matches!(t, msg::DISCONNECT..=msg::DEBUG | msg::KEXINIT..=msg::KEX_METHOD_LAST)
        || t == msg::EXT_INFO
}

/// Makes peer-supplied text safe to print on a terminal.
pub(crate) fn sanitize(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() || *c == '\t')
        .take(1024)
        .collect()
}
