//! `zlib` / `zlib@openssh.com` packet compression (RFC 4253 §6.2) on
//! miniz_oxide streams. One stream per direction per set of keys: each
//! packet is a sync-flushed chunk of it, and every NEWKEYS ends the stream
//! and starts a new one (with a new zlib header), in each direction on its
//! own. That is RFC 4253's "initialized after each key exchange" and what
//! OpenSSH does (`ssh_set_newkeys` calls `deflateInit` / `inflateInit` again
//! since the new keys' compression starts disabled). `zlib@openssh.com`
//! starts only once the user is authenticated: at USERAUTH_SUCCESS (sent by
//! a server, received by a client) for the keys in use, then at each NEWKEYS.

use miniz_oxide::deflate::core::{create_comp_flags_from_zip_params, CompressorOxide};
use miniz_oxide::inflate::stream::InflateState;
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use crate::error::{Error, ErrorKind, Result};

pub(crate) struct Compressor {
    z: Box<CompressorOxide>,
}

impl Compressor {
    pub(crate) fn new() -> Self {
        // Level 6, zlib wrapper (window bits 15), default strategy: what OpenSSH uses.
        let flags = create_comp_flags_from_zip_params(6, 15, 0);
        Compressor {
            z: Box::new(CompressorOxide::new(flags)),
        }
    }

    /// Compresses `input` as one sync-flushed chunk, appending to `out`.
    pub(crate) fn compress(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let mut consumed = 0;
        loop {
            let start = out.len();
            let room = (input.len() - consumed) + 64 + (input.len() >> 3);
            out.resize(start + room, 0);
            let r = miniz_oxide::deflate::stream::deflate(
                &mut self.z,
                &input[consumed..],
                &mut out[start..],
                MZFlush::Sync,
            );
            out.truncate(start + r.bytes_written);
            consumed += r.bytes_consumed;
            match r.status {
                Ok(_) => {}
                // Nothing left to flush after an exactly full output buffer.
                Err(MZError::Buf) if consumed == input.len() => return Ok(()),
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!("compression failed: {e:?}"),
                    ))
                }
            }
            // The flush is complete when all input is consumed and the output
            // buffer was not filled up.
            if consumed == input.len() && r.bytes_written < room {
                return Ok(());
            }
        }
    }
}

impl Default for Compressor {
    fn default() -> Self {
        Self::new()
    }
}

/// A zlib inflater for one direction of a connection (RFC 4253 §6.2).
pub struct Decompressor {
    z: Box<InflateState>,
}

impl Decompressor {
    /// A decompressor at the start of a zlib stream.
    pub fn new() -> Self {
        Decompressor {
            z: InflateState::new_boxed(DataFormat::Zlib),
        }
    }

    /// Decompresses one packet's chunk, appending to `out`, which may not
    /// grow beyond `limit` bytes (a compression bomb is an error).
    pub fn decompress(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<()> {
        let mut consumed = 0;
        loop {
            let start = out.len();
            if start > limit {
                return Err(Error::limit(format!(
                    "decompressed packet exceeds {limit} bytes"
                )));
            }
            let room = (input.len() * 4).clamp(1024, 256 * 1024);
            out.resize(start + room, 0);
            let r = miniz_oxide::inflate::stream::inflate(
                &mut self.z,
                &input[consumed..],
                &mut out[start..],
                MZFlush::Sync,
            );
            out.truncate(start + r.bytes_written);
            consumed += r.bytes_consumed;
            match r.status {
                Ok(MZStatus::Ok) | Ok(MZStatus::StreamEnd) => {}
                // "No progress possible": the previous call used up all the
                // input and filled its output exactly. Done, not corrupt.
                Err(MZError::Buf) if consumed == input.len() => return Ok(()),
                Ok(MZStatus::NeedDict) | Err(_) => {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        "corrupt compressed data from peer",
                    ));
                }
            }
            if out.len() > limit {
                return Err(Error::limit(format!(
                    "decompressed packet exceeds {limit} bytes"
                )));
            }
            if consumed == input.len() && r.bytes_written < room {
                return Ok(());
            }
            if r.bytes_consumed == 0 && r.bytes_written == 0 {
                return Err(Error::new(
                    ErrorKind::Protocol,
                    "truncated compressed data from peer",
                ));
            }
        }
    }
}

impl Default for Decompressor {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_through_one_stream() {
        let mut c = Compressor::new();
        let mut d = Decompressor::new();
        for i in 0..50u32 {
            let data: Vec<u8> = (0..(i * 997) % 40000)
                .map(|x| (x % 251) as u8 ^ (i as u8))
                .collect();
            let mut z = Vec::new();
            c.compress(&data, &mut z).unwrap();
            let mut back = Vec::new();
            d.decompress(&z, &mut back, 1 << 20).unwrap();
            assert_eq!(back, data);
        }
    }

    /// Chunks whose inflated size fills the output buffer exactly
    /// (regression: the follow-up call reports "no progress", which is fine).
    #[test]
    fn exact_fill_of_the_output_buffer_is_not_corruption() {
        let mut c = Compressor::new();
        let mut d = Decompressor::new();
        // Runs of one byte compress ~1000:1; the buffer is 1024 bytes for
        // such tiny inputs, so sizes around multiples of 1024 hit the edge.
        for size in (1..40).flat_map(|k| [k * 1024 - 1, k * 1024, k * 1024 + 1]) {
            let data = vec![b'a' + (size % 26) as u8; size];
            let mut z = Vec::new();
            c.compress(&data, &mut z).unwrap();
            let mut back = Vec::new();
            d.decompress(&z, &mut back, 1 << 20).unwrap();
            assert_eq!(back, data, "size {size}");
        }
    }

    #[test]
    fn bomb_is_refused() {
        let mut c = Compressor::new();
        let data = vec![0u8; 1 << 20];
        let mut z = Vec::new();
        c.compress(&data, &mut z).unwrap();
        let mut d = Decompressor::new();
        let mut back = Vec::new();
        assert!(d.decompress(&z, &mut back, 256 * 1024).is_err());
    }

    #[test]
    fn garbage_is_an_error() {
        let mut d = Decompressor::new();
        let mut back = Vec::new();
        assert!(d
            .decompress(&[0xff, 0xff, 0xff, 0xff, 0x13], &mut back, 1 << 20)
            .is_err());
    }
}
