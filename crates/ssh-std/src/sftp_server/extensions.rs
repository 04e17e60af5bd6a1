//! The SFTP extensions [`LocalFs`] answers beyond the basic protocol:
//! `copy-data` and `check-file`.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use ssh_proto::sftp::{status, CheckTarget, Response};

use super::errno::{errno_status, errno_to_status, fail};
use super::LocalFs;
use crate::jail::OpenOptions as JailOpen;

/// The most bytes one `check-file` request hashes (4 GiB): larger ranges
/// are refused, so that one request cannot keep the server busy for long.
pub const MAX_CHECK_BYTES: u64 = 4 << 30;

impl LocalFs {
    /// `copy-data`: as OpenSSH's, refuses a source and destination that
    /// are one file (same handle, path, or device and inode) with FAILURE.
    /// The copy ends at the source's size when the request arrived, so a
    /// file that grows meanwhile cannot keep one request running; a range
    /// past that end answers EOF after copying what there was.
    pub(super) fn copy_data(
        &mut self,
        from: &[u8],
        off: u64,
        len: u64,
        to: &[u8],
        to_off: u64,
    ) -> Response {
        let (src, src_path, dst, dst_path) = match (self.file(from), self.file(to)) {
            (Ok((s, sp)), Ok((d, dp))) => (s, sp, d, dp),
            (Err(_), _) | (_, Err(_)) => return fail(errno_to_status(libc::EBADF)),
        };
        let (ss, ds) = match (self.jail.fstat(src), self.jail.fstat(dst)) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return errno_status(&e),
        };
        if from == to || src_path == dst_path || (ss.dev, ss.ino) == (ds.dev, ds.ino) {
            return fail(status::FAILURE);
        }
        let until_eof = len == 0;
        let end = if until_eof {
            ss.size
        } else {
            off.saturating_add(len).min(ss.size)
        };
        let mut buf = vec![0u8; 256 * 1024];
        let mut done = 0u64;
        while off.saturating_add(done) < end {
            let want = (end - off - done).min(buf.len() as u64) as usize;
            let n = match src.read_at(&mut buf[..want], off + done) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return errno_status(&e),
            };
            if let Err(e) = dst.write_all_at(&buf[..n], to_off.saturating_add(done)) {
                return errno_status(&e);
            }
            done += n as u64;
        }
        if !until_eof && done < len {
            return fail(status::EOF);
        }
        Response::ok()
    }

    pub(super) fn check_file(
        &mut self,
        target: CheckTarget,
        algorithms: &str,
        offset: u64,
        len: u64,
        block_size: u32,
    ) -> Response {
        use sha2::Digest;
        let alg = algorithms
            .split(',')
            .find(|a| matches!(*a, "sha256" | "sha512"));
        let Some(alg) = alg else {
            return Response::status(
                status::OP_UNSUPPORTED,
                format!("no supported hash in {algorithms:?} (sha256, sha512)"),
            );
        };
        let opened;
        let file: &File = match &target {
            CheckTarget::Handle(h) => match self.file(h) {
                Ok((f, _)) => f,
                Err(r) => return r,
            },
            CheckTarget::Name(p) => {
                let o = JailOpen {
                    read: true,
                    ..Default::default()
                };
                match self.jail.open(&self.full(p), &o) {
                    Ok(f) => {
                        opened = f;
                        &opened
                    }
                    Err(e) => return errno_status(&e),
                }
            }
        };
        let size = match self.jail.fstat(file) {
            Ok(s) => s.size,
            Err(e) => return errno_status(&e),
        };
        let end = if len == 0 {
            size
        } else {
            offset.saturating_add(len).min(size)
        };
        let block = if block_size == 0 {
            end.saturating_sub(offset).max(1)
        } else {
            block_size.max(255) as u64
        };
        // Bounds: the reply must fit in one packet, and one request hashes
        // at most MAX_CHECK_BYTES (both checked before any reading).
        let range = end.saturating_sub(offset);
        let hashes = range.div_ceil(block).max(1);
        let hash_len: u64 = if alg == "sha256" { 32 } else { 64 };
        let reply_len = hashes.saturating_mul(hash_len) + 4 + alg.len() as u64;
        if reply_len > (ssh_proto::sftp::codec::MAX_PACKET - 1024) as u64 {
            return Response::status(
                status::FAILURE,
                format!(
                    "check-file: {hashes} hashes would exceed the packet limit; \
                     use a larger block size or a shorter range"
                ),
            );
        }
        if range > MAX_CHECK_BYTES {
            return Response::status(
                status::FAILURE,
                format!(
                    "check-file: at most {MAX_CHECK_BYTES} bytes are hashed per request \
                     ({range} asked); hash the file in ranges"
                ),
            );
        }
        let mut out = Vec::new();
        ssh_proto::sftp::Put::put_str(&mut out, alg);
        let mut buf = vec![0u8; 256 * 1024];
        let mut pos = offset;
        while pos < end || (pos == offset && end == offset) {
            let stop = (pos + block).min(end);
            let mut h256 = sha2::Sha256::new();
            let mut h512 = sha2::Sha512::new();
            let mut at = pos;
            while at < stop {
                let want = ((stop - at) as usize).min(buf.len());
                match file.read_at(&mut buf[..want], at) {
                    Ok(0) => break,
                    Ok(n) => {
                        if alg == "sha256" {
                            h256.update(&buf[..n]);
                        } else {
                            h512.update(&buf[..n]);
                        }
                        at += n as u64;
                    }
                    Err(e) => return errno_status(&e),
                }
            }
            if alg == "sha256" {
                out.extend_from_slice(&h256.finalize());
            } else {
                out.extend_from_slice(&h512.finalize());
            }
            if stop >= end {
                break;
            }
            pos = stop;
        }
        Response::ExtendedReply(out)
    }
}
