//! [`ByteQueue`]: a first-in first-out queue of bytes over one `Vec<u8>`
//! with a read offset, the buffer under every byte stream of the core (the
//! transport's receive and send buffers, channel receive buffers, the SFTP
//! machines' input and output).
//!
//! Bytes are appended at the tail and consumed from the head without moving
//! the rest. One compaction rule, applied when bytes are consumed:
//!
//! - when the queue becomes empty, the `Vec` is cleared (its capacity kept);
//! - otherwise, when the consumed prefix reaches half of the `Vec`, the
//!   pending bytes move to the front.
//!
//! So each byte is moved at most once per byte consumed before it (amortized
//! O(1)), the `Vec` never holds more than twice the pending bytes after a
//! consume, and in steady state no append allocates.

/// A FIFO of bytes; see the [module documentation](self).
#[derive(Default)]
pub(crate) struct ByteQueue {
    buf: Vec<u8>,
    start: usize,
}

impl ByteQueue {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        ByteQueue {
            buf: Vec::with_capacity(capacity),
            start: 0,
        }
    }

    /// Bytes waiting to be consumed.
    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes waiting, oldest first.
    pub(crate) fn pending(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The bytes waiting, for work in place (decryption).
    pub(crate) fn pending_mut(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }

    /// Appends bytes at the tail.
    pub(crate) fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The backing vector, to encode straight into its tail. Bytes appended
    /// become pending. Offsets taken from it (`tail().len()`) stay valid
    /// until the next [`consume`](Self::consume); a caller may truncate back
    /// to such an offset, never below [`len`](Self::len) bytes from the end
    /// as they were before it appended.
    pub(crate) fn tail(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    /// Makes room for `additional` more bytes at the tail.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional);
    }

    /// Consumes up to `n` bytes from the head; returns how many. Applies the
    /// compaction rule.
    pub(crate) fn consume(&mut self, n: usize) -> usize {
        let n = n.min(self.len());
        self.start += n;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start >= self.buf.len() / 2 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        n
    }

    /// Copies bytes from the head into `out` and consumes them; returns the
    /// count.
    pub(crate) fn read(&mut self, out: &mut [u8]) -> usize {
        let n = out.len().min(self.len());
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.consume(n)
    }

    /// Drops the last `n` pending bytes (appended but handed back untaken).
    pub(crate) fn unpush(&mut self, n: usize) {
        let n = n.min(self.len());
        self.buf.truncate(self.buf.len() - n);
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
    }

    /// Moves every pending byte to the end of `out`, swapping vectors when
    /// `out` is empty and nothing was consumed (so nothing is copied).
    pub(crate) fn take_into(&mut self, out: &mut Vec<u8>) {
        if self.start == 0 && out.is_empty() {
            std::mem::swap(&mut self.buf, out);
        } else {
            out.extend_from_slice(&self.buf[self.start..]);
            self.buf.clear();
            self.start = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ByteQueue;

    #[test]
    fn fifo_with_compaction() {
        let mut q = ByteQueue::default();
        assert!(q.is_empty());
        q.push(b"hello world");
        assert_eq!(q.consume(6), 6);
        assert_eq!(q.pending(), b"world");
        q.push(b"!");
        let mut out = [0u8; 3];
        assert_eq!(q.read(&mut out), 3);
        assert_eq!(&out, b"wor");
        assert_eq!(q.pending(), b"ld!");
        q.unpush(1);
        assert_eq!(q.pending(), b"ld");
        assert_eq!(q.consume(10), 2);
        assert!(q.is_empty());
        q.tail().extend_from_slice(b"abc");
        let mut v = Vec::new();
        q.take_into(&mut v);
        assert_eq!(v, b"abc");
        assert!(q.is_empty());
    }

    #[test]
    fn never_more_than_twice_the_pending_bytes_after_consume() {
        let mut q = ByteQueue::default();
        for i in 0..1000usize {
            q.push(&[i as u8; 100]);
            q.consume(60);
            assert!(q.buf.len() <= 2 * q.len().max(1) + 100, "{i}");
        }
    }
}
