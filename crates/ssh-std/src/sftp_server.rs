//! Serving SFTP from a local directory: the [`LocalFs`] backend answers
//! the requests of `ssh_proto::sftp::SftpServer` from a [`Jail`]ed root,
//! and [`serve`] runs the two over any reader/writer pair (a channel, or
//! stdin/stdout for an `sftp-server` program).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;

use ssh_proto::sftp::codec::longname;
use ssh_proto::sftp::{
    open_flags, status, Attrs, CheckTarget, NameEntry, Request, Response, SftpServer,
    SftpServerConfig,
};
use ssh_proto::{Error, ErrorKind};

use crate::jail::{DirReader, FileStat, Jail, OpenOptions as JailOpen};

/// Entries per READDIR reply.
const DIR_BATCH: usize = 100;

/// The most bytes one `check-file` request hashes (4 GiB): larger ranges
/// are refused, so that one request cannot keep the server busy for long.
pub const MAX_CHECK_BYTES: u64 = 4 << 30;

enum Handle {
    File { file: File, path: String },
    Dir { reader: DirReader },
}

/// A local-filesystem SFTP backend, confined to a root directory.
pub struct LocalFs {
    jail: Jail,
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

/// The status code for an errno, as OpenSSH's sftp-server maps it
/// (`errno_to_portable`).
fn errno_to_status(errno: i32) -> u32 {
    match errno {
        0 => status::OK,
        libc::ENOENT | libc::ENOTDIR | libc::EBADF | libc::ELOOP => status::NO_SUCH_FILE,
        libc::EPERM | libc::EACCES | libc::EFAULT => status::PERMISSION_DENIED,
        libc::ENAMETOOLONG | libc::EINVAL => status::BAD_MESSAGE,
        libc::ENOSYS => status::OP_UNSUPPORTED,
        _ => status::FAILURE,
    }
}

/// The reply to a failed operation: OpenSSH's code and message for the
/// errno (errors without one are FAILURE).
fn errno_status(e: &io::Error) -> Response {
    let code = match e.raw_os_error() {
        Some(n) => errno_to_status(n),
        None => match e.kind() {
            io::ErrorKind::NotFound => status::NO_SUCH_FILE,
            io::ErrorKind::PermissionDenied => status::PERMISSION_DENIED,
            _ => status::FAILURE,
        },
    };
    fail(code)
}

/// A status reply with OpenSSH's message for `code`.
fn fail(code: u32) -> Response {
    Response::status(code, status::message(code))
}

fn to_attrs(s: &FileStat) -> Attrs {
    Attrs {
        size: Some(s.size),
        uid_gid: Some((s.uid, s.gid)),
        permissions: Some(s.mode),
        times: Some((s.atime as u32, s.mtime as u32)),
        extended: Vec::new(),
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl LocalFs {
    /// Serves `root` as `/`; relative client paths start at `start`
    /// (absolute inside the root; `/` when None).
    pub fn new(root: &std::path::Path, start: Option<&str>) -> io::Result<LocalFs> {
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
    pub fn at_home(root: &std::path::Path, home: &str) -> io::Result<LocalFs> {
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

    fn full(&self, p: &str) -> String {
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

    fn file(&self, handle: &[u8]) -> Result<(&File, &str), Response> {
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

    /// Answers one request (READ is answered by [`serve`] with
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

    /// `copy-data`: as OpenSSH's, refuses a source and destination that
    /// are one file (same handle, path, or device and inode) with FAILURE.
    /// The copy ends at the source's size when the request arrived, so a
    /// file that grows meanwhile cannot keep one request running; a range
    /// past that end answers EOF after copying what there was.
    fn copy_data(&mut self, from: &[u8], off: u64, len: u64, to: &[u8], to_off: u64) -> Response {
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

    fn check_file(
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

/// Serves SFTP over `reader`/`writer` from `fs` until the client closes
/// its side. Requests are answered in order as they arrive; many may be in
/// flight.
pub fn serve(
    mut reader: impl Read,
    mut writer: impl Write,
    mut fs: LocalFs,
    config: SftpServerConfig,
) -> Result<(), Error> {
    let mut machine = SftpServer::new(config);
    let mut inbuf = vec![0u8; 256 * 1024];
    let mut held: Vec<u8> = Vec::new();
    let mut out: Vec<u8> = Vec::with_capacity(512 * 1024);
    let mut rbuf: Vec<u8> = Vec::new();
    let mut wrote = false;
    let io = |e: io::Error| Error::new(ErrorKind::Io, format!("sftp stream: {e}"));
    loop {
        // Input the machine held back last time goes first.
        if held.is_empty() {
            let n = match reader.read(&mut inbuf) {
                Ok(0) => return Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io(e)),
            };
            let taken = machine.recv(&inbuf[..n])?;
            held.extend_from_slice(&inbuf[taken..n]);
        } else {
            let taken = machine.recv(&held)?;
            held.drain(..taken);
        }
        while let Some((id, req)) = machine.poll_request() {
            if tracing::enabled!(tracing::Level::TRACE) {
                tracing::trace!("sftp request {id}: {}", describe(&req));
            }
            match req {
                Request::Read {
                    handle,
                    offset,
                    len,
                } => match fs.read_into(&handle, offset, len, &mut rbuf) {
                    Ok(n) => machine.reply_data(id, &rbuf[..n])?,
                    Err(r) => machine.reply(id, &r)?,
                },
                Request::Write {
                    handle,
                    offset,
                    data,
                } => {
                    let r = fs.write(&handle, offset, &data);
                    machine.reply(id, &r)?;
                }
                req => {
                    let r = fs.handle(req);
                    machine.reply(id, &r)?;
                }
            }
            if machine.transmit_len() > 256 * 1024 {
                out.clear();
                machine.take_transmit(&mut out);
                writer.write_all(&out).map_err(io)?;
                wrote = true;
            }
        }
        if machine.transmit().is_some() {
            out.clear();
            machine.take_transmit(&mut out);
            writer.write_all(&out).map_err(io)?;
            wrote = true;
        }
        // The writer may buffer (stdout does): everything answered must
        // reach the client before we block reading again.
        if std::mem::take(&mut wrote) {
            writer.flush().map_err(io)?;
        }
    }
}

/// A short description of a request for logs (no data bytes).
fn describe(req: &Request) -> String {
    match req {
        Request::Read { offset, len, .. } => format!("read {len} at {offset}"),
        Request::Write { offset, data, .. } => format!("write {} at {offset}", data.len()),
        r => {
            let s = format!("{r:?}");
            s.chars().take(200).collect()
        }
    }
}

/// The options of OpenSSH's `sftp-server` (and of sshd's `internal-sftp`),
/// parsed as its `getopt(3)` does: bundled flags (`-eR`), option values
/// attached or separate (`-u022`, `-u 022`), `--` ends the options, and
/// the first non-option argument ends them too (the rest, such as the
/// `HOST sftp` that `scp -D` and `sftp -D` append, is left alone).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerArgs {
    /// `-R`: refuse every request that writes.
    pub read_only: bool,
    /// `-P LIST`: request names to refuse.
    pub denied: Option<Vec<String>>,
    /// `-p LIST`: the only request names served.
    pub allowed: Option<Vec<String>>,
    /// `-u UMASK` (octal, at most 0777).
    pub umask: Option<u32>,
    /// `-d DIR`: the starting directory, before `~` and `%` expansion
    /// ([`expand_start_dir`]).
    pub start_dir: Option<String>,
    /// `-e`: log to stderr.
    pub log_stderr: bool,
    /// `-l LEVEL`, one of OpenSSH's names (upper case).
    pub log_level: Option<String>,
    /// `-f FACILITY`, one of OpenSSH's names (upper case).
    pub log_facility: Option<String>,
    /// `-Q WHAT`: print what is asked (`requests`) and exit.
    pub query: Option<String>,
    /// `-h`: print the usage and exit.
    pub help: bool,
    /// Values of the extra options the caller asked for, in order.
    pub extra: Vec<(char, String)>,
    /// The arguments after the options (OpenSSH's sftp-server ignores
    /// them), and after `-c`.
    pub operands: Vec<String>,
}

/// Why [`ServerArgs::parse`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsError {
    /// A getopt error (`unknown option -- x`, `option requires an argument
    /// -- d`): print it and the usage, exit 1.
    Usage(String),
    /// A bad value (`Invalid umask "9"`): print it, exit 255 as OpenSSH's
    /// `fatal` does.
    Fatal(String),
}

/// OpenSSH's log level names (`-l`).
pub const LOG_LEVELS: &[&str] = &[
    "QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3",
];

/// OpenSSH's syslog facility names (`-f`).
pub const LOG_FACILITIES: &[&str] = &[
    "DAEMON", "USER", "AUTH", "AUTHPRIV", "LOCAL0", "LOCAL1", "LOCAL2", "LOCAL3", "LOCAL4",
    "LOCAL5", "LOCAL6", "LOCAL7",
];

impl ServerArgs {
    /// Parses `args` (without the program name). `extra` names further
    /// option letters that take a value (such as `r` for a root), returned
    /// in [`extra`](Self::extra).
    pub fn parse(args: &[String], extra: &str) -> Result<ServerArgs, ArgsError> {
        let mut a = ServerArgs::default();
        let mut i = 0;
        'args: while i < args.len() {
            let arg = args[i].as_str();
            i += 1;
            if arg == "--" {
                a.operands = args[i..].to_vec();
                break;
            }
            if arg.len() < 2 || !arg.starts_with('-') {
                a.operands = args[i - 1..].to_vec();
                break;
            }
            let flags: Vec<char> = arg[1..].chars().collect();
            let mut j = 0;
            while j < flags.len() {
                let c = flags[j];
                j += 1;
                let takes_value = "dflPpQu".contains(c) || extra.contains(c);
                if !takes_value {
                    match c {
                        'R' => a.read_only = true,
                        'e' => a.log_stderr = true,
                        'h' => a.help = true,
                        // As OpenSSH's sftp-server: run as a user's login
                        // shell ("sftp-server -c command"), it stops reading
                        // options at -c and serves SFTP whatever follows
                        // (its getopt loop ends on `skipargs`).
                        'c' => {
                            a.operands = args[i..].to_vec();
                            break 'args;
                        }
                        _ => return Err(ArgsError::Usage(format!("unknown option -- {c}"))),
                    }
                    continue;
                }
                let value = if j < flags.len() {
                    flags[j..].iter().collect::<String>()
                } else if i < args.len() {
                    i += 1;
                    args[i - 1].clone()
                } else {
                    return Err(ArgsError::Usage(format!(
                        "option requires an argument -- {c}"
                    )));
                };
                j = flags.len();
                a.set(c, value, extra)?;
            }
        }
        Ok(a)
    }

    fn set(&mut self, c: char, v: String, extra: &str) -> Result<(), ArgsError> {
        let names = |v: &str| {
            ssh_proto::sftp::parse_request_names(v)
                .map_err(|n| ArgsError::Fatal(format!("Unknown request name \"{n}\"")))
        };
        match c {
            'd' => self.start_dir = Some(v),
            'l' => match LOG_LEVELS.iter().find(|n| n.eq_ignore_ascii_case(&v)) {
                Some(n) => self.log_level = Some(n.to_string()),
                None => return Err(ArgsError::Fatal(format!("Invalid log level \"{v}\""))),
            },
            'f' => match LOG_FACILITIES.iter().find(|n| n.eq_ignore_ascii_case(&v)) {
                Some(n) => self.log_facility = Some(n.to_string()),
                None => return Err(ArgsError::Fatal(format!("Invalid log facility \"{v}\""))),
            },
            'P' => {
                if self.denied.is_some() {
                    return Err(ArgsError::Fatal("Refused requests already set".into()));
                }
                self.denied = Some(names(&v)?);
            }
            'p' => {
                if self.allowed.is_some() {
                    return Err(ArgsError::Fatal("Permitted requests already set".into()));
                }
                self.allowed = Some(names(&v)?);
            }
            'Q' => self.query = Some(v),
            'u' => {
                let ok =
                    !v.is_empty() && v.len() <= 11 && v.bytes().all(|b| (b'0'..=b'7').contains(&b));
                match u32::from_str_radix(&v, 8) {
                    Ok(m) if ok && m <= 0o777 => self.umask = Some(m),
                    _ => return Err(ArgsError::Fatal(format!("Invalid umask \"{v}\""))),
                }
            }
            c if extra.contains(c) => self.extra.push((c, v)),
            c => return Err(ArgsError::Usage(format!("unknown option -- {c}"))),
        }
        Ok(())
    }

    /// The request-policy, umask and start options as arguments again
    /// (`-R`, `-P`, `-p`, `-u`, `-d`), for a child process that parses
    /// them with [`parse`](Self::parse).
    pub fn to_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.read_only {
            v.push("-R".to_string());
        }
        if let Some(d) = &self.denied {
            v.extend(["-P".to_string(), d.join(",")]);
        }
        if let Some(p) = &self.allowed {
            v.extend(["-p".to_string(), p.join(",")]);
        }
        if let Some(u) = self.umask {
            v.extend(["-u".to_string(), format!("{u:03o}")]);
        }
        if let Some(d) = &self.start_dir {
            v.extend(["-d".to_string(), d.clone()]);
        }
        v
    }

    /// The SFTP machine's configuration for these options (read-only mode,
    /// deny and allow lists), on top of `base`.
    pub fn config(&self, base: SftpServerConfig) -> SftpServerConfig {
        SftpServerConfig {
            read_only: self.read_only,
            denied_requests: self.denied.clone().unwrap_or_default(),
            allowed_requests: self.allowed.clone(),
            ..base
        }
    }

    /// The `tracing` level for `-l` (None for QUIET; INFO when not given,
    /// OpenSSH's default).
    pub fn tracing_level(&self) -> Option<tracing::Level> {
        match self.log_level.as_deref().unwrap_or("INFO") {
            "QUIET" => None,
            "FATAL" | "ERROR" => Some(tracing::Level::ERROR),
            "INFO" => Some(tracing::Level::INFO),
            "VERBOSE" | "DEBUG" | "DEBUG1" | "DEBUG2" => Some(tracing::Level::DEBUG),
            _ => Some(tracing::Level::TRACE),
        }
    }

    /// The answer to `-Q WHAT`: the text to print, or Err for an unknown
    /// query (OpenSSH prints `Invalid query type` and exits 1).
    pub fn query_answer(what: &str) -> Result<String, String> {
        if what.eq_ignore_ascii_case("requests") {
            let mut s = String::new();
            for (n, _) in ssh_proto::sftp::REQUEST_NAMES {
                s.push_str(n);
                s.push('\n');
            }
            Ok(s)
        } else {
            Err("Invalid query type".into())
        }
    }
}

/// Expands `-d`'s directory as OpenSSH's sftp-server does: a leading `~`
/// or `~USER` becomes that user's home, then `%d` the home of `user`,
/// `%u` its name, `%U` its uid and `%%` a `%`. Err names what failed.
pub fn expand_start_dir(spec: &str, user: &crate::passwd::Passwd) -> Result<String, String> {
    let tilde = if let Some(rest) = spec.strip_prefix('~') {
        let (name, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let home = if name.is_empty() {
            user.dir.clone()
        } else {
            match crate::passwd::Passwd::by_name(name) {
                Ok(Some(p)) => p.dir,
                _ => return Err(format!("No such user {name}")),
            }
        };
        if tail.is_empty() {
            home
        } else {
            format!("{}{tail}", home.trim_end_matches('/'))
        }
    } else {
        spec.to_string()
    };
    let mut out = String::new();
    let mut chars = tilde.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('d') => out.push_str(&user.dir),
            Some('u') => out.push_str(&user.name),
            Some('U') => out.push_str(&user.uid.to_string()),
            Some(k) => return Err(format!("percent_expand: unknown key %{k}")),
            None => return Err("percent_expand: invalid format".into()),
        }
    }
    Ok(out)
}

/// The usage line of OpenSSH's sftp-server, with this program's name.
pub fn usage(prog: &str) -> String {
    format!(
        "usage: {prog} [-ehR] [-d start_directory] [-f log_facility] [-l log_level]\n\t\
         [-P denied_requests] [-p allowed_requests] [-u umask]\n       {prog} -Q protocol_feature"
    )
}
