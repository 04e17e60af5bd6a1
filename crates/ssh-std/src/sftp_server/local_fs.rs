//! The [`LocalFs`] backend: its handles, paths and the answer to each
//! request.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use ssh_proto::sftp::codec::longname;
use ssh_proto::sftp::{open_flags, status, Attrs, NameEntry, Request, Response};

use super::errno::{errno_status, fail, now, to_attrs};
use crate::jail::{DirReader, Jail, OpenOptions as JailOpen};

/// Entries per READDIR reply.
const DIR_BATCH: usize = 100;

enum Handle {
    File { file: File, path: String },
    Dir { reader: DirReader },
}

/// A local-filesystem SFTP backend, confined to a root directory.
pub struct LocalFs {
    pub(super) jail: Jail,
    /// The client's starting directory (inside the root), absolute.
    start: String,
    /// The user's home (inside the root), for `home-directory`; the start
    /// when unknown.
    home: Option<String>,
    handles: HashMap<u32, Handle>,
    next: u32,
    /// Reused for READ replies.
    buf: Vec<u8>,
    /// Permission bits cleared from files and directories the client
    /// creates (`sftp-server -u`).
    umask: u32,
}

impl LocalFs {
    /// Serves `root` as `/`; relative client paths start at `start`
    /// (absolute inside the root; `/` when None).
    pub fn new(root: impl AsRef<std::path::Path>, start: Option<&str>) -> io::Result<LocalFs> {
        let jail = Jail::new(root)?;
        let start = match start {
            Some(s) if !s.is_empty() => {
                let s = if s.starts_with('/') {
                    s.to_string()
                } else {
                    format!("/{s}")
                };
                let p = jail.realpath(&s)?;
                if !jail.stat(&p)?.is_dir() {
                    return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
                }
                p
            }
            _ => "/".to_string(),
        };
        Ok(LocalFs {
            jail,
            start,
            handles: HashMap::new(),
            next: 1,
            buf: Vec::new(),
            umask: 0,
            home: None,
        })
    }

    /// Serves `root` as `/`, starting in the user's home directory `home`
    /// (a path on the host) as OpenSSH's server does: with root `/`, the
    /// home itself; with another root, the home's path inside the root
    /// when that is a directory there, else the root.
    pub fn at_home(root: impl AsRef<std::path::Path>, home: &str) -> io::Result<LocalFs> {
        let root = root.as_ref();
        match LocalFs::new(root, Some(home)) {
            Ok(mut fs) => {
                fs.home = Some(fs.start.clone());
                Ok(fs)
            }
            Err(_) if !home.is_empty() => LocalFs::new(root, None),
            Err(e) => Err(e),
        }
    }

    /// Sets the user's home directory (a path inside the root), which
    /// `home-directory` answers as OpenSSH's server does (`~` is the
    /// starting directory, as there); false (and unchanged) when it is not
    /// a directory there.
    pub fn set_home(&mut self, home: &str) -> bool {
        let h = if home.starts_with('/') {
            home.to_string()
        } else {
            format!("/{home}")
        };
        match self.jail.realpath(&h) {
            Ok(p) if self.jail.stat(&p).is_ok_and(|s| s.is_dir()) => {
                self.home = Some(p);
                true
            }
            _ => false,
        }
    }

    /// The starting directory: where relative paths and `.` resolve
    /// (absolute, inside the root).
    pub fn start(&self) -> &str {
        &self.start
    }

    /// Clears the bits of `umask` from the modes of files and directories
    /// the client creates (`sftp-server -u`; the process umask applies as
    /// well).
    pub fn set_umask(&mut self, umask: u32) {
        self.umask = umask & 0o7777;
    }

    pub(super) fn full(&self, p: &str) -> String {
        if p.starts_with('/') {
            p.to_string()
        } else if p.is_empty() || p == "." {
            self.start.clone()
        } else {
            format!("{}/{p}", self.start.trim_end_matches('/'))
        }
    }

    fn add(&mut self, h: Handle) -> Response {
        let id = self.next;
        self.next = self.next.wrapping_add(1).max(1);
        self.handles.insert(id, h);
        Response::Handle(id.to_be_bytes().to_vec())
    }

    fn key(handle: &[u8]) -> Option<u32> {
        <[u8; 4]>::try_from(handle).ok().map(u32::from_be_bytes)
    }

    pub(super) fn file(&self, handle: &[u8]) -> Result<(&File, &str), Response> {
        match Self::key(handle).and_then(|k| self.handles.get(&k)) {
            Some(Handle::File { file, path }) => Ok((file, path)),
            _ => Err(fail(status::FAILURE)),
        }
    }

    fn ok(r: io::Result<()>) -> Response {
        match r {
            Ok(()) => Response::ok(),
            Err(e) => errno_status(&e),
        }
    }

    fn name(path: String) -> Response {
        Response::Name(vec![NameEntry {
            filename: path,
            longname: String::new(),
            attrs: Attrs::default(),
        }])
    }

    fn set(&self, path: &str, a: &Attrs, follow: bool) -> io::Result<()> {
        let times = a.times.map(|(x, y)| (x as u64, y as u64));
        if follow {
            self.jail
                .setstat(path, a.size, a.uid_gid, a.permissions, times)
        } else {
            self.jail
                .lsetstat(path, a.size, a.uid_gid, a.permissions, times)
        }
    }

    /// Answers one request (READ is answered by [`serve`](super::serve) with
    /// [`read_into`](Self::read_into) to avoid a copy).
    pub fn handle(&mut self, req: Request) -> Response {
        match req {
            Request::Open { path, flags, attrs } => {
                let p = self.full(&path);
                let o = JailOpen {
                    read: flags & open_flags::READ != 0,
                    write: flags & open_flags::WRITE != 0,
                    append: flags & open_flags::APPEND != 0,
                    create: flags & open_flags::CREAT != 0,
                    truncate: flags & open_flags::TRUNC != 0,
                    exclusive: flags & open_flags::EXCL != 0,
                    mode: attrs.permissions.unwrap_or(0o666) & 0o7777 & !self.umask,
                };
                match self.jail.open(&p, &o) {
                    Ok(file) => self.add(Handle::File { file, path: p }),
                    Err(e) => errno_status(&e),
                }
            }
            Request::Opendir { path } => {
                let p = self.full(&path);
                match self.jail.open_dir(&p) {
                    Ok(reader) => self.add(Handle::Dir { reader }),
                    Err(e) => errno_status(&e),
                }
            }
            Request::Close { handle } => {
                match Self::key(&handle).and_then(|k| self.handles.remove(&k)) {
                    Some(_) => Response::ok(),
                    // OpenSSH: ENOENT.
                    None => fail(status::NO_SUCH_FILE),
                }
            }
            Request::Read {
                handle,
                offset,
                len,
            } => {
                let mut buf = std::mem::take(&mut self.buf);
                let r = match self.read_into(&handle, offset, len, &mut buf) {
                    Ok(n) => Response::Data(buf[..n].to_vec()),
                    Err(r) => r,
                };
                self.buf = buf;
                r
            }
            Request::Write {
                handle,
                offset,
                data,
            } => self.write(&handle, offset, &data),
            Request::Readdir { handle } => {
                let now = now();
                match Self::key(&handle).and_then(|k| self.handles.get_mut(&k)) {
                    Some(Handle::Dir { reader, .. }) => {
                        let mut v = Vec::new();
                        while v.len() < DIR_BATCH {
                            match reader.next() {
                                Some(Ok((name, st))) => {
                                    let attrs = to_attrs(&st);
                                    v.push(NameEntry {
                                        longname: longname(&name, &attrs, now),
                                        filename: name,
                                        attrs,
                                    });
                                }
                                Some(Err(e)) => {
                                    if v.is_empty() {
                                        return errno_status(&e);
                                    }
                                    break;
                                }
                                None => break,
                            }
                        }
                        if v.is_empty() {
                            Response::status(status::EOF, "End of file")
                        } else {
                            Response::Name(v)
                        }
                    }
                    _ => fail(status::FAILURE),
                }
            }
            Request::Stat { path } => match self.jail.stat(&self.full(&path)) {
                Ok(s) => Response::Attrs(to_attrs(&s)),
                Err(e) => errno_status(&e),
            },
            Request::Lstat { path } => match self.jail.lstat(&self.full(&path)) {
                Ok(s) => Response::Attrs(to_attrs(&s)),
                Err(e) => errno_status(&e),
            },
            Request::Fstat { handle } => match self.file(&handle) {
                Ok((f, _)) => match self.jail.fstat(f) {
                    Ok(s) => Response::Attrs(to_attrs(&s)),
                    Err(e) => errno_status(&e),
                },
                Err(r) => r,
            },
            Request::Setstat { path, attrs } => Self::ok(self.set(&self.full(&path), &attrs, true)),
            Request::Lsetstat { path, attrs } => {
                Self::ok(self.set(&self.full(&path), &attrs, false))
            }
            Request::Fsetstat { handle, attrs } => match self.file(&handle) {
                Ok((f, _)) => Self::ok(self.jail.fsetstat(
                    f,
                    attrs.size,
                    attrs.uid_gid,
                    attrs.permissions,
                    attrs.times.map(|(a, m)| (a as u64, m as u64)),
                )),
                Err(r) => r,
            },
            Request::Remove { path } => Self::ok(self.jail.remove(&self.full(&path))),
            Request::Mkdir { path, attrs } => Self::ok(self.jail.mkdir(
                &self.full(&path),
                attrs.permissions.unwrap_or(0o777) & 0o7777 & !self.umask,
            )),
            Request::Rmdir { path } => Self::ok(self.jail.rmdir(&self.full(&path))),
            Request::Realpath { path } | Request::ExpandPath { path } => {
                // As OpenSSH's: `~` is the starting directory (which is the
                // home unless -d moved it).
                let p = path
                    .strip_prefix("~/")
                    .map_or(path.clone(), |r| r.to_string());
                let p = if p == "~" { String::new() } else { p };
                match self.jail.realpath(&self.full(&p)) {
                    Ok(r) => Self::name(r),
                    Err(e) => errno_status(&e),
                }
            }
            Request::Rename { old, new } => {
                Self::ok(self.jail.rename(&self.full(&old), &self.full(&new), false))
            }
            Request::PosixRename { old, new } => {
                Self::ok(self.jail.rename(&self.full(&old), &self.full(&new), true))
            }
            Request::Readlink { path } => match self.jail.readlink(&self.full(&path)) {
                Ok(t) => Self::name(t),
                Err(e) => errno_status(&e),
            },
            Request::Symlink { target, link } => {
                Self::ok(self.jail.symlink(&target, &self.full(&link)))
            }
            Request::Hardlink { old, new } => {
                Self::ok(self.jail.hardlink(&self.full(&old), &self.full(&new)))
            }
            Request::Statvfs { path } => match self.jail.statvfs(&self.full(&path)) {
                Ok(v) => Response::ExtendedReply(v.encode()),
                Err(e) => errno_status(&e),
            },
            Request::Fstatvfs { handle } => match self.file(&handle) {
                Ok((_, p)) => match self.jail.statvfs(p) {
                    Ok(v) => Response::ExtendedReply(v.encode()),
                    Err(e) => errno_status(&e),
                },
                Err(r) => r,
            },
            Request::Fsync { handle } => match self.file(&handle) {
                Ok((f, _)) => Self::ok(f.sync_all()),
                // As OpenSSH's: a directory handle cannot be synced.
                Err(_)
                    if matches!(
                        Self::key(&handle).and_then(|k| self.handles.get(&k)),
                        Some(Handle::Dir { .. })
                    ) =>
                {
                    fail(status::OP_UNSUPPORTED)
                }
                Err(_) => fail(status::NO_SUCH_FILE),
            },
            Request::HomeDirectory { .. } => {
                Self::name(self.home.clone().unwrap_or_else(|| self.start.clone()))
            }
            Request::CopyData {
                from,
                from_offset,
                len,
                to,
                to_offset,
            } => self.copy_data(&from, from_offset, len, &to, to_offset),
            Request::CheckFile {
                target,
                algorithms,
                offset,
                len,
                block_size,
            } => self.check_file(target, &algorithms, offset, len, block_size),
            _ => Response::status(status::OP_UNSUPPORTED, "operation unsupported"),
        }
    }

    /// Reads for a READ request into `buf`; Ok(n) bytes, or the reply
    /// (EOF, error) to send instead.
    pub fn read_into(
        &mut self,
        handle: &[u8],
        offset: u64,
        len: u32,
        buf: &mut Vec<u8>,
    ) -> Result<usize, Response> {
        let (f, _) = self.file(handle)?;
        if buf.len() < len as usize {
            buf.resize(len as usize, 0);
        }
        let mut n = 0;
        while n < len as usize {
            match f.read_at(&mut buf[n..len as usize], offset + n as u64) {
                Ok(0) => break,
                Ok(m) => n += m,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if n == 0 => return Err(errno_status(&e)),
                Err(_) => break,
            }
        }
        if n == 0 && len > 0 {
            return Err(Response::status(status::EOF, "End of file"));
        }
        Ok(n)
    }

    /// Answers a WRITE from a borrowed slice.
    pub fn write(&mut self, handle: &[u8], offset: u64, data: &[u8]) -> Response {
        match self.file(handle) {
            // Files opened for append write at the end whatever the offset
            // (O_APPEND), as OpenSSH's server does.
            Ok((f, _)) => Self::ok(f.write_all_at(data, offset)),
            Err(r) => r,
        }
    }
}
