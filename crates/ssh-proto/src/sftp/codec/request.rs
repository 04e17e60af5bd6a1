//! SFTP requests (client to server) and their encoding.

use super::{msg, Attrs, CheckTarget};
use crate::error::{Error, Result};
use crate::wire::{Put, Reader};

/// A request from client to server.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Request {
    /// `SSH_FXP_OPEN`: open a file.
    Open {
        /// Path, as the client sent it.
        path: String,
        /// `SSH_FXF_*` bits (see [`open_flags`](super::open_flags)).
        flags: u32,
        /// Attributes to set.
        attrs: Attrs,
    },
    /// `SSH_FXP_CLOSE`: close a file or directory handle.
    Close {
        /// Handle from a `HANDLE` reply.
        handle: Vec<u8>,
    },
    /// `SSH_FXP_READ`: read up to `len` bytes at `offset`.
    Read {
        /// Handle from a `HANDLE` reply.
        handle: Vec<u8>,
        /// Byte offset in the file.
        offset: u64,
        /// Length in bytes.
        len: u32,
    },
    /// `SSH_FXP_WRITE`: write `data` at `offset`.
    Write {
        /// Handle from a `HANDLE` reply.
        handle: Vec<u8>,
        /// Byte offset in the file.
        offset: u64,
        /// Bytes to write.
        data: Vec<u8>,
    },
    /// `SSH_FXP_LSTAT`: attributes, not following a final symlink.
    Lstat {
        /// Path, as the client sent it.
        path: String,
    },
    /// `SSH_FXP_FSTAT`: attributes of an open handle.
    Fstat {
        /// Handle from a `HANDLE` reply.
        handle: Vec<u8>,
    },
    /// `SSH_FXP_SETSTAT`: change attributes of a path.
    Setstat {
        /// Path, as the client sent it.
        path: String,
        /// Attributes to set.
        attrs: Attrs,
    },
    /// `SSH_FXP_FSETSTAT`: change attributes of an open handle.
    Fsetstat {
        /// Handle from a `HANDLE` reply.
        handle: Vec<u8>,
        /// Attributes to set.
        attrs: Attrs,
    },
    /// `SSH_FXP_OPENDIR`: open a directory for listing.
    Opendir {
        /// Path, as the client sent it.
        path: String,
    },
    /// `SSH_FXP_READDIR`: next batch of names; `EOF` status at the end.
    Readdir {
        /// Handle from a `HANDLE` reply.
        handle: Vec<u8>,
    },
    /// `SSH_FXP_REMOVE`: delete a file.
    Remove {
        /// Path, as the client sent it.
        path: String,
    },
    /// `SSH_FXP_MKDIR`: create a directory.
    Mkdir {
        /// Path, as the client sent it.
        path: String,
        /// Attributes to set.
        attrs: Attrs,
    },
    /// `SSH_FXP_RMDIR`: delete an empty directory.
    Rmdir {
        /// Path, as the client sent it.
        path: String,
    },
    /// `SSH_FXP_REALPATH`: canonical absolute form of a path.
    Realpath {
        /// Path, as the client sent it.
        path: String,
    },
    /// `SSH_FXP_STAT`: attributes, following symlinks.
    Stat {
        /// Path, as the client sent it.
        path: String,
    },
    /// Fails when `new` exists (v3 semantics).
    Rename {
        /// Existing path.
        old: String,
        /// New path.
        new: String,
    },
    /// `SSH_FXP_READLINK`: target of a symlink.
    Readlink {
        /// Path, as the client sent it.
        path: String,
    },
    /// Wire order is OpenSSH's (target first), which every common
    /// implementation follows.
    Symlink {
        /// What the link points to.
        target: String,
        /// Path of the link to create.
        link: String,
    },
    /// `posix-rename@openssh.com`: replaces `new`.
    PosixRename {
        /// Existing path.
        old: String,
        /// New path.
        new: String,
    },
    /// `statvfs@openssh.com`: file system statistics of a path.
    Statvfs {
        /// Path, as the client sent it.
        path: String,
    },
    /// `fstatvfs@openssh.com`: file system statistics of a handle.
    Fstatvfs {
        /// Handle from a `HANDLE` reply.
        handle: Vec<u8>,
    },
    /// `hardlink@openssh.com`: create `new` as a hard link to `old`.
    Hardlink {
        /// Existing path.
        old: String,
        /// New path.
        new: String,
    },
    /// `fsync@openssh.com`: flush a file handle to disk.
    Fsync {
        /// Handle from a `HANDLE` reply.
        handle: Vec<u8>,
    },
    /// `limits@openssh.com`: ask the server's size limits.
    Limits,
    /// `lsetstat@openssh.com`: change attributes without following a final symlink.
    Lsetstat {
        /// Path, as the client sent it.
        path: String,
        /// Attributes to set.
        attrs: Attrs,
    },
    /// `expand-path@openssh.com`: expand `~` and make the path absolute.
    ExpandPath {
        /// Path, as the client sent it.
        path: String,
    },
    /// `copy-data`: server-side copy of `len` bytes between handles (0 = to end of file).
    CopyData {
        /// Source file handle.
        from: Vec<u8>,
        /// Byte offset in the source.
        from_offset: u64,
        /// Length in bytes.
        len: u64,
        /// Destination file handle.
        to: Vec<u8>,
        /// Byte offset in the destination.
        to_offset: u64,
    },
    /// `home-directory`: a user's home directory.
    HomeDirectory {
        /// User name; empty for the current user.
        user: String,
    },
    /// `check-file-handle` / `check-file-name`: hashes of a byte range.
    CheckFile {
        /// The file to hash.
        target: CheckTarget,
        /// Comma-separated hash names, preferred first (`sha256`, `md5`, ...).
        algorithms: String,
        /// Byte offset in the file.
        offset: u64,
        /// Length in bytes; 0 means to the end of the file.
        len: u64,
        /// Hash each block of this many bytes separately; 0 hashes the whole range.
        block_size: u32,
    },
    /// Any other extended request.
    Extended {
        /// Extension name.
        name: String,
        /// Request-specific data after the name.
        data: Vec<u8>,
    },
}

/// Extension names this crate speaks (advertised in `SSH_FXP_VERSION` or used as `EXTENDED` request names).
pub mod ext {
    /// Extension: rename that replaces the destination.
    pub const POSIX_RENAME: &str = "posix-rename@openssh.com";
    /// Extension: file system statistics by path.
    pub const STATVFS: &str = "statvfs@openssh.com";
    /// Extension: file system statistics by handle.
    pub const FSTATVFS: &str = "fstatvfs@openssh.com";
    /// Extension: hard links.
    pub const HARDLINK: &str = "hardlink@openssh.com";
    /// Extension: flush a handle to disk.
    pub const FSYNC: &str = "fsync@openssh.com";
    /// Extension: server limits.
    pub const LIMITS: &str = "limits@openssh.com";
    /// Extension: set attributes without following symlinks.
    pub const LSETSTAT: &str = "lsetstat@openssh.com";
    /// Extension: `~` expansion.
    pub const EXPAND_PATH: &str = "expand-path@openssh.com";
    /// Extension: server-side copy.
    pub const COPY_DATA: &str = "copy-data";
    /// Extension: a user's home directory.
    pub const HOME_DIRECTORY: &str = "home-directory";
    /// Extension: hash a range of an open file.
    pub const CHECK_FILE_HANDLE: &str = "check-file-handle";
    /// Extension: hash a range of a file by path.
    pub const CHECK_FILE_NAME: &str = "check-file-name";
}

pub(super) fn text(r: &mut Reader<'_>) -> Result<String> {
    Ok(String::from_utf8_lossy(r.string()?).into_owned())
}

impl Request {
    /// The extension this request needs the server to have advertised.
    pub fn extension(&self) -> Option<&'static str> {
        Some(match self {
            Request::PosixRename { .. } => ext::POSIX_RENAME,
            Request::Statvfs { .. } => ext::STATVFS,
            Request::Fstatvfs { .. } => ext::FSTATVFS,
            Request::Hardlink { .. } => ext::HARDLINK,
            Request::Fsync { .. } => ext::FSYNC,
            Request::Limits => ext::LIMITS,
            Request::Lsetstat { .. } => ext::LSETSTAT,
            Request::ExpandPath { .. } => ext::EXPAND_PATH,
            Request::CopyData { .. } => ext::COPY_DATA,
            Request::HomeDirectory { .. } => ext::HOME_DIRECTORY,
            Request::CheckFile {
                target: CheckTarget::Handle(_),
                ..
            } => ext::CHECK_FILE_HANDLE,
            Request::CheckFile {
                target: CheckTarget::Name(_),
                ..
            } => ext::CHECK_FILE_NAME,
            _ => return None,
        })
    }

    /// Appends the whole packet (length, type, id, payload) to `b`.
    pub fn encode(&self, id: u32, b: &mut Vec<u8>) {
        let start = b.len();
        b.put_u32(0);
        match self {
            Request::Open { path, flags, attrs } => {
                b.push(msg::OPEN);
                b.put_u32(id);
                b.put_str(path);
                b.put_u32(*flags);
                attrs.encode(b);
            }
            Request::Close { handle } => handle_req(b, msg::CLOSE, id, handle),
            Request::Read {
                handle,
                offset,
                len,
            } => {
                handle_req(b, msg::READ, id, handle);
                b.put_u64(*offset);
                b.put_u32(*len);
            }
            Request::Write {
                handle,
                offset,
                data,
            } => {
                handle_req(b, msg::WRITE, id, handle);
                b.put_u64(*offset);
                b.put_string(data);
            }
            Request::Lstat { path } => path_req(b, msg::LSTAT, id, path),
            Request::Fstat { handle } => handle_req(b, msg::FSTAT, id, handle),
            Request::Setstat { path, attrs } => {
                path_req(b, msg::SETSTAT, id, path);
                attrs.encode(b);
            }
            Request::Fsetstat { handle, attrs } => {
                handle_req(b, msg::FSETSTAT, id, handle);
                attrs.encode(b);
            }
            Request::Opendir { path } => path_req(b, msg::OPENDIR, id, path),
            Request::Readdir { handle } => handle_req(b, msg::READDIR, id, handle),
            Request::Remove { path } => path_req(b, msg::REMOVE, id, path),
            Request::Mkdir { path, attrs } => {
                path_req(b, msg::MKDIR, id, path);
                attrs.encode(b);
            }
            Request::Rmdir { path } => path_req(b, msg::RMDIR, id, path),
            Request::Realpath { path } => path_req(b, msg::REALPATH, id, path),
            Request::Stat { path } => path_req(b, msg::STAT, id, path),
            Request::Rename { old, new } => {
                path_req(b, msg::RENAME, id, old);
                b.put_str(new);
            }
            Request::Readlink { path } => path_req(b, msg::READLINK, id, path),
            Request::Symlink { target, link } => {
                path_req(b, msg::SYMLINK, id, target);
                b.put_str(link);
            }
            Request::PosixRename { old, new } | Request::Hardlink { old, new } => {
                ext_req(b, id, self.extension().unwrap_or_default());
                b.put_str(old);
                b.put_str(new);
            }
            Request::Statvfs { path } | Request::ExpandPath { path } => {
                ext_req(b, id, self.extension().unwrap_or_default());
                b.put_str(path);
            }
            Request::Fstatvfs { handle } | Request::Fsync { handle } => {
                ext_req(b, id, self.extension().unwrap_or_default());
                b.put_string(handle);
            }
            Request::Limits => ext_req(b, id, ext::LIMITS),
            Request::Lsetstat { path, attrs } => {
                ext_req(b, id, ext::LSETSTAT);
                b.put_str(path);
                attrs.encode(b);
            }
            Request::CopyData {
                from,
                from_offset,
                len,
                to,
                to_offset,
            } => {
                ext_req(b, id, ext::COPY_DATA);
                b.put_string(from);
                b.put_u64(*from_offset);
                b.put_u64(*len);
                b.put_string(to);
                b.put_u64(*to_offset);
            }
            Request::HomeDirectory { user } => {
                ext_req(b, id, ext::HOME_DIRECTORY);
                b.put_str(user);
            }
            Request::CheckFile {
                target,
                algorithms,
                offset,
                len,
                block_size,
            } => {
                ext_req(b, id, self.extension().unwrap_or_default());
                match target {
                    CheckTarget::Handle(h) => b.put_string(h),
                    CheckTarget::Name(n) => b.put_str(n),
                }
                b.put_str(algorithms);
                b.put_u64(*offset);
                b.put_u64(*len);
                b.put_u32(*block_size);
            }
            Request::Extended { name, data } => {
                ext_req(b, id, name);
                b.extend_from_slice(data);
            }
        }
        finish(b, start);
    }

    /// Decodes one packet payload (type byte onwards): `(id, request)`.
    pub fn decode(payload: &[u8]) -> Result<(u32, Request)> {
        let (&t, rest) = payload
            .split_first()
            .ok_or_else(|| Error::protocol("empty SFTP packet"))?;
        let mut r = Reader::new(rest);
        let id = r.u32()?;
        let handle = |r: &mut Reader<'_>| -> Result<Vec<u8>> {
            let h = r.string()?;
            if h.len() > 256 {
                return Err(Error::protocol("SFTP handle longer than 256 bytes"));
            }
            Ok(h.to_vec())
        };
        let req = match t {
            msg::OPEN => Request::Open {
                path: text(&mut r)?,
                flags: r.u32()?,
                attrs: Attrs::decode(&mut r)?,
            },
            msg::CLOSE => Request::Close {
                handle: handle(&mut r)?,
            },
            msg::READ => Request::Read {
                handle: handle(&mut r)?,
                offset: r.u64()?,
                len: r.u32()?,
            },
            msg::WRITE => Request::Write {
                handle: handle(&mut r)?,
                offset: r.u64()?,
                data: r.string()?.to_vec(),
            },
            msg::LSTAT => Request::Lstat {
                path: text(&mut r)?,
            },
            msg::FSTAT => Request::Fstat {
                handle: handle(&mut r)?,
            },
            msg::SETSTAT => Request::Setstat {
                path: text(&mut r)?,
                attrs: Attrs::decode(&mut r)?,
            },
            msg::FSETSTAT => Request::Fsetstat {
                handle: handle(&mut r)?,
                attrs: Attrs::decode(&mut r)?,
            },
            msg::OPENDIR => Request::Opendir {
                path: text(&mut r)?,
            },
            msg::READDIR => Request::Readdir {
                handle: handle(&mut r)?,
            },
            msg::REMOVE => Request::Remove {
                path: text(&mut r)?,
            },
            msg::MKDIR => Request::Mkdir {
                path: text(&mut r)?,
                attrs: Attrs::decode(&mut r)?,
            },
            msg::RMDIR => Request::Rmdir {
                path: text(&mut r)?,
            },
            msg::REALPATH => Request::Realpath {
                path: text(&mut r)?,
            },
            msg::STAT => Request::Stat {
                path: text(&mut r)?,
            },
            msg::RENAME => Request::Rename {
                old: text(&mut r)?,
                new: text(&mut r)?,
            },
            msg::READLINK => Request::Readlink {
                path: text(&mut r)?,
            },
            msg::SYMLINK => Request::Symlink {
                target: text(&mut r)?,
                link: text(&mut r)?,
            },
            msg::EXTENDED => {
                let name = text(&mut r)?;
                match name.as_str() {
                    ext::POSIX_RENAME => Request::PosixRename {
                        old: text(&mut r)?,
                        new: text(&mut r)?,
                    },
                    ext::HARDLINK => Request::Hardlink {
                        old: text(&mut r)?,
                        new: text(&mut r)?,
                    },
                    ext::STATVFS => Request::Statvfs {
                        path: text(&mut r)?,
                    },
                    ext::EXPAND_PATH => Request::ExpandPath {
                        path: text(&mut r)?,
                    },
                    ext::FSTATVFS => Request::Fstatvfs {
                        handle: handle(&mut r)?,
                    },
                    ext::FSYNC => Request::Fsync {
                        handle: handle(&mut r)?,
                    },
                    ext::LIMITS => Request::Limits,
                    ext::LSETSTAT => Request::Lsetstat {
                        path: text(&mut r)?,
                        attrs: Attrs::decode(&mut r)?,
                    },
                    ext::COPY_DATA => Request::CopyData {
                        from: handle(&mut r)?,
                        from_offset: r.u64()?,
                        len: r.u64()?,
                        to: handle(&mut r)?,
                        to_offset: r.u64()?,
                    },
                    ext::HOME_DIRECTORY => Request::HomeDirectory {
                        user: text(&mut r)?,
                    },
                    ext::CHECK_FILE_HANDLE | ext::CHECK_FILE_NAME => Request::CheckFile {
                        target: if name == ext::CHECK_FILE_HANDLE {
                            CheckTarget::Handle(handle(&mut r)?)
                        } else {
                            CheckTarget::Name(text(&mut r)?)
                        },
                        algorithms: text(&mut r)?,
                        offset: r.u64()?,
                        len: r.u64()?,
                        block_size: r.u32()?,
                    },
                    _ => Request::Extended {
                        name,
                        data: r.rest().to_vec(),
                    },
                }
            }
            t => {
                return Err(Error::protocol(format!(
                    "unknown SFTP request type {t} (id {id})"
                )))
            }
        };
        Ok((id, req))
    }
}

fn path_req(b: &mut Vec<u8>, t: u8, id: u32, path: &str) {
    b.push(t);
    b.put_u32(id);
    b.put_str(path);
}

fn handle_req(b: &mut Vec<u8>, t: u8, id: u32, handle: &[u8]) {
    b.push(t);
    b.put_u32(id);
    b.put_string(handle);
}

fn ext_req(b: &mut Vec<u8>, id: u32, name: &str) {
    b.push(msg::EXTENDED);
    b.put_u32(id);
    b.put_str(name);
}

/// Writes the packet length at `start`.
pub(super) fn finish(b: &mut [u8], start: usize) {
    let len = (b.len() - start - 4) as u32;
    b[start..start + 4].copy_from_slice(&len.to_be_bytes());
}
