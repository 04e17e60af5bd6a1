//! The receive path: the version exchange, and packets decrypted in place
//! in the receive buffer and handed upward as [`Input`]s.

use std::time::Instant;

use rand_core::CryptoRng;

use crate::error::{Error, ErrorKind, Result};
use crate::wire::{msg, Reader};

use super::kex::run::Step;
use super::{
    sanitize, InPacket, Input, PacketBuf, Role, Transport, VersionState, MAX_PACKET_LEN,
    MAX_PAYLOAD_LEN, MAX_PRE_BANNER, RX_SOFT_LIMIT,
};

impl Transport {
    /// Takes received bytes; returns how many were accepted (fewer than
    /// offered when the receive buffer is full because processing is held).
    pub fn feed(&mut self, data: &[u8]) -> usize {
        let room = RX_SOFT_LIMIT.saturating_sub(self.rx.len());
        let n = data.len().min(room);
        self.rx.push(&data[..n]);
        n
    }

    /// Bytes received but not yet processed.
    pub fn buffered_input(&self) -> usize {
        self.rx.len()
    }

    /// Hands back a payload taken by [`Transport::poll`].
    pub fn restore(&mut self, p: InPacket) {
        match p.buf {
            PacketBuf::Rx { queue, len } => {
                self.rx = queue;
                self.rx.consume(len);
            }
            PacketBuf::Decompressed(v) => self.decomp_buf = v,
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
                && !matches!(
                    t,
                    msg::KEXINIT | msg::NEWKEYS | msg::DISCONNECT | msg::KEX_METHOD_FIRST
                        ..=msg::KEX_METHOD_LAST
                )
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
                msg::KEX_METHOD_FIRST..=msg::KEX_METHOD_LAST => {
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
            let buf = self.rx.pending();
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
                self.rx.consume(consumed);
                if !(v.starts_with("SSH-2.0-") || v.starts_with("SSH-1.99-")) {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!(
                            "peer speaks an unsupported protocol version: {}",
                            sanitize(&v)
                        ),
                    ));
                }
                tracing::debug!(version = %sanitize(&v), "peer version line");
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
            self.rx.consume(consumed);
        }
    }

    fn read_packet(&mut self) -> Result<Option<InPacket>> {
        let avail = self.rx.len();
        if avail > 0 && self.rx_packets >= self.max_packets_per_key() {
            return Err(Error::limit(format!(
                "the peer sent {} packets under one set of keys without finishing a rekey: \
                 the next would repeat a sequence number (nonce) under them",
                self.rx_packets
            )));
        }
        let len = match self.rx_len {
            Some(l) => l,
            None => {
                let first = self.opener.first_len();
                if avail < first {
                    return Ok(None);
                }
                let l = self
                    .opener
                    .packet_length(self.rx_seq, &mut self.rx.pending_mut()[..first])
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
        {
            let (pkt, rest) = self.rx.pending_mut()[..total].split_at_mut(4 + len);
            self.opener.open(self.rx_seq, pkt, rest)?;
        }
        self.rx_len = None;
        let seq = self.rx_seq;
        self.rx_seq = self.rx_seq.wrapping_add(1);
        self.rx_packets_total += 1;
        self.rx_packets += 1;
        self.bytes_since_kex += total as u64;
        let pad = self.rx.pending()[4] as usize;
        if pad < 4 || pad + 1 > len {
            return Err(Error::protocol(format!(
                "bad padding length {pad} in packet of {len} bytes"
            )));
        }
        let pstart = 5;
        let pend = 4 + len - pad;
        if pstart == pend {
            return Err(Error::protocol("empty packet payload"));
        }
        if let Some(d) = self.rx_decomp.as_mut() {
            let mut out = std::mem::take(&mut self.decomp_buf);
            out.clear();
            let r = d.decompress(&self.rx.pending()[pstart..pend], &mut out, MAX_PAYLOAD_LEN);
            self.rx.consume(total);
            r?;
            if out.is_empty() {
                self.decomp_buf = out;
                return Err(Error::protocol("compressed packet decompressed to nothing"));
            }
            let end = out.len();
            tracing::trace!(
                msg = out[0],
                name = msg::name(out[0]),
                len = end,
                seq,
                "packet received (decompressed)"
            );
            return Ok(Some(InPacket {
                buf: PacketBuf::Decompressed(out),
                start: 0,
                end,
                seq,
            }));
        }
        let t = self.rx.pending()[pstart];
        tracing::trace!(
            msg = t,
            name = msg::name(t),
            len = pend - pstart,
            seq,
            "packet received"
        );
        let queue = std::mem::take(&mut self.rx);
        Ok(Some(InPacket {
            buf: PacketBuf::Rx { queue, len: total },
            start: pstart,
            end: pend,
            seq,
        }))
    }

    fn opener_is_none(&self) -> bool {
        self.opener.tag_len() == 0
    }
}
