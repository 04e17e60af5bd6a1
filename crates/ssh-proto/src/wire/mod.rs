//! SSH data types (RFC 4251 §5): readers and writers, message numbers.
//!
//! Decoding borrows from the packet buffer: a [`Reader`] hands out slices of
//! the buffer it reads, never copies.
//!
//! # One codec
//!
//! The library has one way to read and write messages: each machine
//! (transport, auth, connection) parses the payload it is given with a
//! [`Reader`] and encodes straight into the send buffer with [`Put`]. The
//! typed codec in `message` (`Message::decode` / `encode`) is not a second
//! path of the library: it is compiled only for tests, for fuzzing
//! (`--cfg fuzzing`) and with the `internal` feature, and reached through
//! the one door `ssh_proto::internal`. Why not the other way round (the
//! machines decoding into `Message`):
//!
//! - the machines already read each field once, in place, where they use
//!   it, and write each packet straight into the send buffer behind a
//!   reserved header; a typed layer in between adds a step per packet and
//!   needs care (and tests) to keep data packets free of allocation, which
//!   `tests/alloc.rs` pins at zero;
//! - several numbers mean different things by context (30..=49 by kex
//!   method, 60 by auth method), which the machines know from their state
//!   and `Message` must be told (`decode_kex`, `decode_userauth_60`);
//! - as an independent second implementation, the typed codec is worth
//!   most to the tests: it checks the machines' encoders and parsers byte
//!   for byte and builds hostile inputs field by field.

pub(crate) mod byte_queue;
#[cfg(any(test, fuzzing, feature = "internal"))]
pub(crate) mod message;
pub mod msg;

use crate::error::{Error, Result};

/// A cursor over an SSH-encoded buffer. Every read is bounds-checked and
/// returns a protocol error naming what was being read when input is short.
#[derive(Clone, Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }
    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }
    /// Takes every byte not yet read.
    pub fn rest(&mut self) -> &'a [u8] {
        let r = &self.buf[self.pos..];
        self.pos = self.buf.len();
        r
    }
    /// True when every byte was read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }
    /// Bytes read so far (the offset into the buffer).
    pub fn position(&self) -> usize {
        self.pos
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(Error::protocol(format!(
                "truncated message reading {what}: need {n} bytes, have {}",
                self.remaining()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    /// Exactly `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        self.take(n, "bytes")
    }
    /// A `byte`.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1, "byte")?[0])
    }
    /// A `boolean`: any non-zero byte is true (RFC 4251 §5).
    pub fn bool(&mut self) -> Result<bool> {
        Ok(self.take(1, "boolean")?[0] != 0)
    }
    /// A big-endian `uint32`.
    pub fn u32(&mut self) -> Result<u32> {
        let b = self.take(4, "uint32")?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// A big-endian `uint64`.
    pub fn u64(&mut self) -> Result<u64> {
        let b = self.take(8, "uint64")?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }
    /// A `string` (uint32 length + bytes). The length is checked against the
    /// bytes actually present before anything is returned.
    pub fn string(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n, "string")
    }
    /// A `string` that must be UTF-8.
    pub fn utf8(&mut self) -> Result<&'a str> {
        let b = self.string()?;
        std::str::from_utf8(b).map_err(|_| Error::protocol("string is not valid UTF-8"))
    }
    /// A `name-list`: returned as the raw comma-separated str (ASCII).
    pub fn name_list(&mut self) -> Result<&'a str> {
        let b = self.string()?;
        if !b.is_ascii() {
            return Err(Error::protocol("name-list is not ASCII"));
        }
        std::str::from_utf8(b).map_err(|_| Error::protocol("name-list is not ASCII"))
    }
    /// An `mpint`, returned as its two's complement bytes as sent.
    pub fn mpint(&mut self) -> Result<&'a [u8]> {
        self.string()
    }
    /// An `mpint` that must be non-negative; returns the magnitude without
    /// leading zero bytes.
    pub fn mpint_positive(&mut self) -> Result<&'a [u8]> {
        let b = self.string()?;
        if let Some(&first) = b.first() {
            if first & 0x80 != 0 {
                return Err(Error::protocol(
                    "negative mpint where a positive one is required",
                ));
            }
        }
        let start = b.iter().position(|&x| x != 0).unwrap_or(b.len());
        Ok(&b[start..])
    }
    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<()> {
        if self.remaining() != 0 {
            return Err(Error::protocol(format!(
                "{} unexpected trailing bytes in message",
                self.remaining()
            )));
        }
        Ok(())
    }
}

/// Appending SSH types to a byte vector.
pub trait Put {
    /// A `byte`.
    fn put_u8(&mut self, v: u8);
    /// A `boolean` as 0 or 1.
    fn put_bool(&mut self, v: bool);
    /// A big-endian `uint32`.
    fn put_u32(&mut self, v: u32);
    /// A big-endian `uint64`.
    fn put_u64(&mut self, v: u64);
    /// Bytes as they are, without a length.
    fn put_raw(&mut self, v: &[u8]);
    /// `string`: uint32 length then the bytes.
    fn put_string(&mut self, v: &[u8]);
    /// `string` from UTF-8 text.
    fn put_str(&mut self, v: &str) {
        self.put_string(v.as_bytes())
    }
    /// `name-list` from names joined by commas.
    fn put_name_list<S: AsRef<str>>(&mut self, names: &[S]);
    /// `mpint` from an unsigned big-endian magnitude (leading zeros are
    /// stripped; a zero byte is prepended when the top bit is set).
    fn put_mpint_positive(&mut self, magnitude: &[u8]);
}

impl Put for Vec<u8> {
    fn put_u8(&mut self, v: u8) {
        self.push(v)
    }
    fn put_bool(&mut self, v: bool) {
        self.push(v as u8)
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes())
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes())
    }
    fn put_raw(&mut self, v: &[u8]) {
        self.extend_from_slice(v)
    }
    fn put_string(&mut self, v: &[u8]) {
        self.put_u32(v.len() as u32);
        self.extend_from_slice(v)
    }
    fn put_name_list<S: AsRef<str>>(&mut self, names: &[S]) {
        let len: usize =
            names.iter().map(|s| s.as_ref().len()).sum::<usize>() + names.len().saturating_sub(1);
        self.put_u32(len as u32);
        for (i, n) in names.iter().enumerate() {
            if i > 0 {
                self.push(b',');
            }
            self.extend_from_slice(n.as_ref().as_bytes());
        }
    }
    fn put_mpint_positive(&mut self, magnitude: &[u8]) {
        let start = magnitude
            .iter()
            .position(|&x| x != 0)
            .unwrap_or(magnitude.len());
        let m = &magnitude[start..];
        if m.is_empty() {
            self.put_u32(0);
        } else if m[0] & 0x80 != 0 {
            self.put_u32(m.len() as u32 + 1);
            self.push(0);
            self.extend_from_slice(m);
        } else {
            self.put_string(m);
        }
    }
}

/// Splits a name-list into its names (an empty list gives no names).
pub fn names(list: &str) -> impl Iterator<Item = &str> {
    list.split(',').filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mpint_encoding_matches_rfc4251_examples() {
        let cases: &[(&[u8], &[u8])] = &[
            (&[], &[0, 0, 0, 0]),
            (
                &[0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7],
                &[0, 0, 0, 8, 0x09, 0xa3, 0x78, 0xf9, 0xb2, 0xe3, 0x32, 0xa7],
            ),
            (&[0x80], &[0, 0, 0, 2, 0x00, 0x80]),
            (&[0, 0, 0x7f], &[0, 0, 0, 1, 0x7f]),
        ];
        for (mag, enc) in cases {
            let mut v = Vec::new();
            v.put_mpint_positive(mag);
            assert_eq!(&v[..], *enc);
            let mut r = Reader::new(&v);
            let back = r.mpint_positive().unwrap();
            let start = mag.iter().position(|&x| x != 0).unwrap_or(mag.len());
            assert_eq!(back, &mag[start..]);
        }
    }

    #[test]
    fn truncated_string_is_an_error_not_a_panic() {
        let mut r = Reader::new(&[0, 0, 0, 9, 1, 2]);
        let e = r.string().unwrap_err();
        assert!(e.to_string().contains("truncated"));
        let mut r = Reader::new(&[0xff, 0xff, 0xff, 0xff]);
        assert!(r.string().is_err());
    }

    #[test]
    fn name_list_round_trip() {
        let mut v = Vec::new();
        v.put_name_list(&["a", "bc", "d"]);
        let mut r = Reader::new(&v);
        assert_eq!(r.name_list().unwrap(), "a,bc,d");
        assert_eq!(names("a,bc,d").collect::<Vec<_>>(), ["a", "bc", "d"]);
        assert_eq!(names("").count(), 0);
    }
}
