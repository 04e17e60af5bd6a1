//! Helpers for a loop over a `std::io` byte stream, in the manner of
//! rustls' `read_tls` / `write_tls`: the connection keeps input it could
//! not take yet, so a caller never drops bytes.

use std::io::{self, Read, Write};
use std::time::Instant;

use super::Connection;

/// Bytes read from a stream per [`Connection::read_from`] call.
const READ_CHUNK: usize = 64 * 1024;

impl Connection {
    /// Whether [`read_from`](Self::read_from) would read: false while the
    /// connection holds input it could not take yet (it waits for the
    /// application to read channel data or answer a decision) and once the
    /// connection is over.
    pub fn wants_read(&self) -> bool {
        self.held.is_empty() && !self.is_closed()
    }

    /// Whether output waits for [`write_to`](Self::write_to).
    pub fn wants_write(&self) -> bool {
        self.transmit().is_some()
    }

    /// Offers the input held back by an earlier [`read_from`](Self::read_from)
    /// again (call after the application read channel data or answered a
    /// decision); returns how many bytes are still held.
    pub fn process_held(&mut self, now: Instant) -> usize {
        if !self.held.is_empty() {
            let held = std::mem::take(&mut self.held);
            // An error ends the connection; it is reported as
            // `Event::Disconnected` and by `error()`.
            let n = self.recv(now, &held).unwrap_or(held.len());
            self.held = held;
            self.held.drain(..n);
        }
        self.held.len()
    }

    /// Reads once from `rd` and feeds what came to the core. Bytes the core
    /// cannot take yet stay inside (see [`wants_read`](Self::wants_read)
    /// and [`process_held`](Self::process_held)): nothing read is lost.
    ///
    /// Returns the bytes read; `Ok(0)` means the stream ended (the core is
    /// told). While input is still held, nothing is read and the result is
    /// an [`io::ErrorKind::WouldBlock`] error. An input that ends the connection is not an `Err` here: it
    /// shows as [`Event::Disconnected`](crate::Event::Disconnected) and
    /// [`error`](Self::error); still [`write_to`](Self::write_to) what is
    /// queued (the DISCONNECT that tells the peer why).
    pub fn read_from(&mut self, now: Instant, rd: &mut dyn Read) -> io::Result<usize> {
        if self.process_held(now) > 0 {
            // Reading more would only grow what is held.
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "input is held until the application reads channel data",
            ));
        }
        let mut buf = [0u8; READ_CHUNK];
        let n = loop {
            match rd.read(&mut buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        if n == 0 {
            self.recv_eof(now);
            return Ok(0);
        }
        let took = self.recv(now, &buf[..n]).unwrap_or(n);
        self.held.extend_from_slice(&buf[took..n]);
        Ok(n)
    }

    /// Writes queued output to `wr` (one `write` call) and marks it sent;
    /// returns the bytes written (0 when nothing was queued).
    pub fn write_to(&mut self, wr: &mut dyn Write) -> io::Result<usize> {
        let Some(out) = self.transmit() else {
            return Ok(0);
        };
        let n = loop {
            match wr.write(out) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r?,
            }
        };
        self.advance_transmit(n);
        Ok(n)
    }
}
