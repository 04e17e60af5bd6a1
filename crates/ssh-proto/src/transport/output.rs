//! The send path: encoding payloads into the send buffer, sealing packets
//! in place, the rekey limits and disconnect.

use rand_core::CryptoRng;

use crate::error::{Error, ErrorKind, Result};
use crate::wire::{msg, Put};

use super::{is_transport_msg, Transport, MAX_REKEY_PACKETS};

impl Transport {
    /// Bytes waiting to be written to the peer.
    pub fn pending_output(&self) -> &[u8] {
        self.tx.pending()
    }
    /// Bytes waiting to be written to the peer.
    pub fn pending_output_len(&self) -> usize {
        self.tx.len()
    }
    /// Moves all pending output into `buf` without copying when possible
    /// (when `buf` is empty the buffers are swapped).
    pub fn take_output(&mut self, buf: &mut Vec<u8>) {
        self.tx.take_into(buf);
    }

    /// Marks the first `n` pending bytes as written.
    pub fn advance_output(&mut self, n: usize) {
        self.tx.consume(n);
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
        let start = self.tx.tail().len();
        self.tx.tail().extend_from_slice(&[0u8; 5]);
        encode(self.tx.tail());
        let msg_type = self.tx.tail().get(start + 5).copied().unwrap_or(0);
        if !self.may_send_now(msg_type) || (!self.queued.is_empty() && !is_transport_msg(msg_type))
        {
            let payload = self.tx.tail()[start + 5..].to_vec();
            self.tx.tail().truncate(start);
            self.queued.push_back(payload);
            return Ok(());
        }
        self.finish_packet(start, rng)
    }

    /// Compresses (when on) the payload that runs from `start + 5` to the
    /// end of the send buffer, then pads, frames and encrypts it.
    pub(in crate::transport) fn finish_packet(
        &mut self,
        start: usize,
        rng: &mut dyn CryptoRng,
    ) -> Result<()> {
        if let Some(&t) = self.tx.tail().get(start + 5) {
            tracing::trace!(
                msg = t,
                name = msg::name(t),
                len = self.tx.tail().len() - start - 5,
                seq = self.tx_seq,
                "packet sent"
            );
        }
        if let Some(c) = self.tx_comp.as_mut() {
            let mut scratch = std::mem::take(&mut self.comp_scratch);
            scratch.clear();
            scratch.extend_from_slice(&self.tx.tail()[start + 5..]);
            self.tx.tail().truncate(start + 5);
            let r = c.compress(&scratch, self.tx.tail());
            self.comp_scratch = scratch;
            r?;
        }
        self.seal_at(start, rng)
    }

    /// Sends a payload given as a slice (used for queued messages).
    pub(in crate::transport) fn send_raw(
        &mut self,
        rng: &mut dyn CryptoRng,
        payload: &[u8],
    ) -> Result<()> {
        self.send(rng, |b| b.extend_from_slice(payload))
    }

    /// Pads, frames and encrypts the packet whose payload starts at
    /// `start + 5` and runs to the end of the send buffer.
    fn seal_at(&mut self, start: usize, rng: &mut dyn CryptoRng) -> Result<()> {
        if self.tx_packets >= self.max_packets_per_key() {
            self.tx.tail().truncate(start);
            return Err(Error::limit(format!(
                "{} packets sent under one set of keys and the peer has not finished \
                 the rekey: stopping before a sequence number (nonce) repeats under them",
                self.tx_packets
            )));
        }
        let payload_len = self.tx.tail().len() - start - 5;
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
        self.tx.tail().extend_from_slice(&padding[..pad]);
        let packet_len = (1 + payload_len + pad) as u32;
        self.tx.tail()[start..start + 4].copy_from_slice(&packet_len.to_be_bytes());
        self.tx.tail()[start + 4] = pad as u8;
        let tag_len = self.sealer.tag_len();
        let end = self.tx.tail().len();
        self.tx.tail().resize(end + tag_len, 0);
        let (pkt, tag) = self.tx.tail()[start..].split_at_mut(end - start);
        self.sealer.seal(self.tx_seq, pkt, tag);
        // With strict kex the sequence number restarts at each NEWKEYS;
        // without, it runs on across rekeys and may wrap under later keys,
        // which OpenSSH allows too (it only logs "seqnr wraps around"). No
        // set of keys sees a number twice either way, since each carries at
        // most 2^32 packets per direction (`max_packets_per_key`); that
        // bound also covers OpenSSH's one fatal case, a wrap during the
        // initial key exchange, where the counter runs from the start.
        self.tx_seq = self.tx_seq.wrapping_add(1);
        self.tx_packets += 1;
        self.bytes_since_kex += (end - start + tag_len) as u64;
        Ok(())
    }

    /// Packets in one direction after which a rekey starts.
    pub(in crate::transport) fn rekey_packets(&self) -> u64 {
        self.config
            .rekey_packets
            .unwrap_or(MAX_REKEY_PACKETS)
            .clamp(1, MAX_REKEY_PACKETS)
    }

    /// Packets one direction may carry under one set of keys: twice the
    /// rekey point, so 2^32 by default, where the 32-bit sequence number
    /// would come round again under the same keys (OpenSSH ends the
    /// connection there too, when its per-key packet counter wraps).
    pub(in crate::transport) fn max_packets_per_key(&self) -> u64 {
        2 * self.rekey_packets()
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
        let start = self.tx.tail().len();
        self.tx.tail().extend_from_slice(&[0u8; 5]);
        self.tx.tail().push(msg::DISCONNECT);
        self.tx.tail().put_u32(reason);
        self.tx.tail().put_str(description);
        self.tx.tail().put_str("");
        if self.finish_packet(start, rng).is_err() {
            self.tx.tail().truncate(start);
        }
        self.closed = true;
    }

    /// Marks the transport closed without sending anything.
    pub fn close(&mut self) {
        self.closed = true;
    }
}
