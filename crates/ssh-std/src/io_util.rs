//! Small `std::io` helpers.

use std::io;

/// Reads until `buf` is full or the reader ends; the bytes read.
pub fn read_full(r: &mut impl io::Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(m) => n += m,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// An error of the core as an `io::Error` (see `From<Error> for io::Error`).
pub(crate) fn to_io(e: ssh_proto::Error) -> io::Error {
    io::Error::from(e)
}
