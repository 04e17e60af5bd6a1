//! SFTP version 3 messages (draft-ietf-secsh-filexfer-02) and the
//! extensions of OpenSSH's PROTOCOL file, with their wire encoding.
//!
//! A packet on the byte stream is `uint32 length, byte type, payload`.
//! Requests carry a `uint32 id` that the reply repeats.

mod request;
mod response;

pub use request::{ext, Request};
pub use response::{encode_data, encode_init, encode_version, encode_write, Response};

use crate::error::{Error, Result};
use crate::wire::{Put, Reader};

/// The largest SFTP packet either machine accepts or sends (OpenSSH's
/// `SFTP_MAX_MSG_LENGTH`).
pub const MAX_PACKET: usize = 256 * 1024;
/// The protocol version spoken.
pub const VERSION: u32 = 3;

/// `SSH_FXP_*` packet types.
pub mod msg {
    /// `SSH_FXP_INIT`: client hello with its version.
    pub const INIT: u8 = 1;
    /// `SSH_FXP_VERSION`: server reply with its version and extensions.
    pub const VERSION: u8 = 2;
    /// `SSH_FXP_OPEN`: open a file.
    pub const OPEN: u8 = 3;
    /// `SSH_FXP_CLOSE`: close a handle.
    pub const CLOSE: u8 = 4;
    /// `SSH_FXP_READ`: read from a file handle.
    pub const READ: u8 = 5;
    /// `SSH_FXP_WRITE`: write to a file handle.
    pub const WRITE: u8 = 6;
    /// `SSH_FXP_LSTAT`: attributes of a path, not following symlinks.
    pub const LSTAT: u8 = 7;
    /// `SSH_FXP_FSTAT`: attributes of an open handle.
    pub const FSTAT: u8 = 8;
    /// `SSH_FXP_SETSTAT`: set attributes of a path.
    pub const SETSTAT: u8 = 9;
    /// `SSH_FXP_FSETSTAT`: set attributes of an open handle.
    pub const FSETSTAT: u8 = 10;
    /// `SSH_FXP_OPENDIR`: open a directory for listing.
    pub const OPENDIR: u8 = 11;
    /// `SSH_FXP_READDIR`: next names of a directory handle.
    pub const READDIR: u8 = 12;
    /// `SSH_FXP_REMOVE`: delete a file.
    pub const REMOVE: u8 = 13;
    /// `SSH_FXP_MKDIR`: create a directory.
    pub const MKDIR: u8 = 14;
    /// `SSH_FXP_RMDIR`: delete a directory.
    pub const RMDIR: u8 = 15;
    /// `SSH_FXP_REALPATH`: canonicalize a path.
    pub const REALPATH: u8 = 16;
    /// `SSH_FXP_STAT`: attributes of a path, following symlinks.
    pub const STAT: u8 = 17;
    /// `SSH_FXP_RENAME`: rename a path.
    pub const RENAME: u8 = 18;
    /// `SSH_FXP_READLINK`: target of a symlink.
    pub const READLINK: u8 = 19;
    /// `SSH_FXP_SYMLINK`: create a symlink.
    pub const SYMLINK: u8 = 20;
    /// `SSH_FXP_STATUS`: reply: a status code and message.
    pub const STATUS: u8 = 101;
    /// `SSH_FXP_HANDLE`: reply: an opaque handle.
    pub const HANDLE: u8 = 102;
    /// `SSH_FXP_DATA`: reply: bytes read.
    pub const DATA: u8 = 103;
    /// `SSH_FXP_NAME`: reply: names with attributes.
    pub const NAME: u8 = 104;
    /// `SSH_FXP_ATTRS`: reply: attributes.
    pub const ATTRS: u8 = 105;
    /// `SSH_FXP_EXTENDED`: a named extension request.
    pub const EXTENDED: u8 = 200;
    /// `SSH_FXP_EXTENDED_REPLY`: reply to an extension request.
    pub const EXTENDED_REPLY: u8 = 201;
}

/// SSH_FX_* status codes.
pub mod status {
    /// `SSH_FX_OK`: success.
    pub const OK: u32 = 0;
    /// `SSH_FX_EOF`: end of file or of a directory listing.
    pub const EOF: u32 = 1;
    /// `SSH_FX_NO_SUCH_FILE`: the path does not exist.
    pub const NO_SUCH_FILE: u32 = 2;
    /// `SSH_FX_PERMISSION_DENIED`: permission denied.
    pub const PERMISSION_DENIED: u32 = 3;
    /// `SSH_FX_FAILURE`: any other failure.
    pub const FAILURE: u32 = 4;
    /// `SSH_FX_BAD_MESSAGE`: a malformed packet.
    pub const BAD_MESSAGE: u32 = 5;
    /// `SSH_FX_NO_CONNECTION`: no connection to the server (client-side only).
    pub const NO_CONNECTION: u32 = 6;
    /// `SSH_FX_CONNECTION_LOST`: connection lost (client-side only).
    pub const CONNECTION_LOST: u32 = 7;
    /// `SSH_FX_OP_UNSUPPORTED`: the server does not implement the operation.
    pub const OP_UNSUPPORTED: u32 = 8;

    /// A short English name for a status code.
    pub fn name(code: u32) -> &'static str {
        match code {
            OK => "success",
            EOF => "end of file",
            NO_SUCH_FILE => "no such file",
            PERMISSION_DENIED => "permission denied",
            FAILURE => "failure",
            BAD_MESSAGE => "bad message",
            NO_CONNECTION => "no connection",
            CONNECTION_LOST => "connection lost",
            OP_UNSUPPORTED => "operation unsupported",
            _ => "unknown status",
        }
    }

    /// The message OpenSSH's sftp-server sends with a status code
    /// (`status_to_message`).
    pub fn message(code: u32) -> &'static str {
        match code {
            OK => "Success",
            EOF => "End of file",
            NO_SUCH_FILE => "No such file",
            PERMISSION_DENIED => "Permission denied",
            FAILURE => "Failure",
            BAD_MESSAGE => "Bad message",
            NO_CONNECTION => "No connection",
            CONNECTION_LOST => "Connection lost",
            OP_UNSUPPORTED => "Operation unsupported",
            _ => "Unknown error",
        }
    }
}

/// SSH_FXF_* open flags.
pub mod open_flags {
    /// `SSH_FXF_READ`: open for reading.
    pub const READ: u32 = 0x01;
    /// `SSH_FXF_WRITE`: open for writing.
    pub const WRITE: u32 = 0x02;
    /// `SSH_FXF_APPEND`: every write goes to the end of the file.
    pub const APPEND: u32 = 0x04;
    /// `SSH_FXF_CREAT`: create the file if absent.
    pub const CREAT: u32 = 0x08;
    /// `SSH_FXF_TRUNC`: truncate an existing file to 0 bytes (needs `CREAT`).
    pub const TRUNC: u32 = 0x10;
    /// `SSH_FXF_EXCL`: fail if the file exists (needs `CREAT`).
    pub const EXCL: u32 = 0x20;
}

const ATTR_SIZE: u32 = 0x1;
const ATTR_UIDGID: u32 = 0x2;
const ATTR_PERMISSIONS: u32 = 0x4;
const ATTR_ACMODTIME: u32 = 0x8;
const ATTR_EXTENDED: u32 = 0x8000_0000;

/// File attributes; absent fields are `None`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attrs {
    /// Size in bytes.
    pub size: Option<u64>,
    /// Numeric (uid, gid).
    pub uid_gid: Option<(u32, u32)>,
    /// Full `st_mode` (type and permission bits).
    pub permissions: Option<u32>,
    /// (atime, mtime), seconds since the epoch.
    pub times: Option<(u32, u32)>,
    /// Extended attributes as (type, data).
    pub extended: Vec<(String, Vec<u8>)>,
}

impl Attrs {
    /// True when `permissions` says directory.
    pub fn is_dir(&self) -> bool {
        self.permissions.is_some_and(|p| p & 0o170000 == 0o040000)
    }
    /// True when `permissions` says symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.permissions.is_some_and(|p| p & 0o170000 == 0o120000)
    }
    /// True when `permissions` says regular file.
    pub fn is_file(&self) -> bool {
        self.permissions.is_some_and(|p| p & 0o170000 == 0o100000)
    }

    /// Appends the `ATTRS` encoding (flags, then present fields).
    pub fn encode(&self, b: &mut Vec<u8>) {
        let mut flags = 0;
        if self.size.is_some() {
            flags |= ATTR_SIZE;
        }
        if self.uid_gid.is_some() {
            flags |= ATTR_UIDGID;
        }
        if self.permissions.is_some() {
            flags |= ATTR_PERMISSIONS;
        }
        if self.times.is_some() {
            flags |= ATTR_ACMODTIME;
        }
        if !self.extended.is_empty() {
            flags |= ATTR_EXTENDED;
        }
        b.put_u32(flags);
        if let Some(s) = self.size {
            b.put_u64(s);
        }
        if let Some((u, g)) = self.uid_gid {
            b.put_u32(u);
            b.put_u32(g);
        }
        if let Some(p) = self.permissions {
            b.put_u32(p);
        }
        if let Some((a, m)) = self.times {
            b.put_u32(a);
            b.put_u32(m);
        }
        if !self.extended.is_empty() {
            b.put_u32(self.extended.len() as u32);
            for (k, v) in &self.extended {
                b.put_str(k);
                b.put_string(v);
            }
        }
    }

    /// Reads an `ATTRS` encoding; fails on truncation.
    pub fn decode(r: &mut Reader<'_>) -> Result<Attrs> {
        let flags = r.u32()?;
        let mut a = Attrs::default();
        if flags & ATTR_SIZE != 0 {
            a.size = Some(r.u64()?);
        }
        if flags & ATTR_UIDGID != 0 {
            a.uid_gid = Some((r.u32()?, r.u32()?));
        }
        if flags & ATTR_PERMISSIONS != 0 {
            a.permissions = Some(r.u32()?);
        }
        if flags & ATTR_ACMODTIME != 0 {
            a.times = Some((r.u32()?, r.u32()?));
        }
        if flags & ATTR_EXTENDED != 0 {
            let n = r.u32()?;
            // Each pair takes at least 8 bytes: bound the count by what is left.
            if n as usize > r.remaining() / 8 {
                return Err(Error::protocol(format!(
                    "SFTP attributes claim {n} extended pairs in {} bytes",
                    r.remaining()
                )));
            }
            for _ in 0..n {
                let k = String::from_utf8_lossy(r.string()?).into_owned();
                let v = r.string()?.to_vec();
                a.extended.push((k, v));
            }
        }
        Ok(a)
    }
}

/// One entry of a NAME reply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NameEntry {
    /// File name (no directory part).
    pub filename: String,
    /// `ls -l` style line (v3 servers fill it; may be empty).
    pub longname: String,
    /// Attributes.
    pub attrs: Attrs,
}

/// What `check-file-*` asks to hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckTarget {
    /// An open file handle (`check-file-handle`).
    Handle(Vec<u8>),
    /// A path (`check-file-name`).
    Name(String),
}

/// Filesystem statistics (`statvfs@openssh.com`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatVfs {
    /// File system block size, bytes (`f_bsize`).
    pub bsize: u64,
    /// Fundamental block size, bytes (`f_frsize`).
    pub frsize: u64,
    /// Size of the file system in `frsize` units.
    pub blocks: u64,
    /// Free blocks.
    pub bfree: u64,
    /// Free blocks available to non-root users.
    pub bavail: u64,
    /// Total inodes.
    pub files: u64,
    /// Free inodes.
    pub ffree: u64,
    /// Free inodes available to non-root users.
    pub favail: u64,
    /// File system id.
    pub fsid: u64,
    /// Mount flags: bit 0 read-only (`SSH_FXE_STATVFS_ST_RDONLY`), bit 1 nosuid.
    pub flag: u64,
    /// Longest file name, bytes.
    pub namemax: u64,
}

impl StatVfs {
    /// The extended-reply body: eleven `uint64`s in field order.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(88);
        for v in [
            self.bsize,
            self.frsize,
            self.blocks,
            self.bfree,
            self.bavail,
            self.files,
            self.ffree,
            self.favail,
            self.fsid,
            self.flag,
            self.namemax,
        ] {
            b.put_u64(v);
        }
        b
    }
    /// Parses an extended-reply body; fails on truncation or trailing bytes.
    pub fn decode(data: &[u8]) -> Result<StatVfs> {
        let mut r = Reader::new(data);
        Ok(StatVfs {
            bsize: r.u64()?,
            frsize: r.u64()?,
            blocks: r.u64()?,
            bfree: r.u64()?,
            bavail: r.u64()?,
            files: r.u64()?,
            ffree: r.u64()?,
            favail: r.u64()?,
            fsid: r.u64()?,
            flag: r.u64()?,
            namemax: r.u64()?,
        })
    }
}

/// Server limits (`limits@openssh.com`); 0 means "no limit stated".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest packet the server accepts, bytes.
    pub max_packet: u64,
    /// Largest `READ` length the server serves, bytes.
    pub max_read: u64,
    /// Largest `WRITE` length the server accepts, bytes.
    pub max_write: u64,
    /// Most handles open at once.
    pub max_open_handles: u64,
}

impl Limits {
    /// The extended-reply body: four `uint64`s in field order.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(32);
        for v in [
            self.max_packet,
            self.max_read,
            self.max_write,
            self.max_open_handles,
        ] {
            b.put_u64(v);
        }
        b
    }
    /// Parses an extended-reply body; fails on truncation or trailing bytes.
    pub fn decode(data: &[u8]) -> Result<Limits> {
        let mut r = Reader::new(data);
        Ok(Limits {
            max_packet: r.u64()?,
            max_read: r.u64()?,
            max_write: r.u64()?,
            max_open_handles: r.u64()?,
        })
    }
}

/// Splits the next whole packet off `buf` (from `start`): the payload range
/// and the total length consumed, or None when more bytes are needed.
pub fn next_packet(buf: &[u8]) -> Result<Option<(usize, usize)>> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len == 0 {
        return Err(Error::protocol("SFTP packet of length 0"));
    }
    if len > MAX_PACKET {
        return Err(Error::protocol(format!(
            "SFTP packet of {len} bytes (limit {MAX_PACKET})"
        )));
    }
    if buf.len() < 4 + len {
        return Ok(None);
    }
    Ok(Some((4, 4 + len)))
}

/// An `ls -l` line for a directory entry, in the layout OpenSSH's server
/// sends as a NAME entry's `longname`: mode, links, owner, group, size,
/// date (UTC) and name. `now` (seconds since the epoch) picks the date
/// format: time of day within six months, the year otherwise.
pub fn longname(name: &str, a: &Attrs, now: u64) -> String {
    let perm = a.permissions.unwrap_or(0);
    let kind = match perm & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
        0o020000 => 'c',
        0o060000 => 'b',
        0o010000 => 'p',
        0o140000 => 's',
        _ => '-',
    };
    let mut mode = String::with_capacity(10);
    mode.push(kind);
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        mode.push(if perm & (0o400 >> i) != 0 { c } else { '-' });
    }
    let (uid, gid) = a.uid_gid.unwrap_or((0, 0));
    let mtime = a.times.map_or(0, |t| t.1) as u64;
    let days = (mtime / 86400) as i64;
    let secs = mtime % 86400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let when = if now.abs_diff(mtime) < 182 * 86400 {
        format!("{:02}:{:02}", secs / 3600, secs % 3600 / 60)
    } else {
        format!("{year:>5}")
    };
    format!(
        "{mode} {:>4} {uid:<8} {gid:<8} {:>8} {} {day:>2} {when} {name}",
        1,
        a.size.unwrap_or(0),
        MONTHS[(month - 1).clamp(0, 11) as usize],
    )
}
