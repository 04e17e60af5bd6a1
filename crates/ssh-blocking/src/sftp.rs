//! The blocking SFTP client (paramiko's `SFTPClient`), over one channel.
//!
//! ```no_run
//! # fn f(client: &ssh_blocking::Client) -> Result<(), ssh_blocking::Error> {
//! let sftp = client.sftp()?;
//! sftp.put("local.bin".as_ref(), "/tmp/remote.bin", None)?;
//! for e in sftp.read_dir("/tmp")? {
//!     println!("{} {:?}", e.name, e.attrs.size);
//! }
//! # Ok(()) }
//! ```
//!
//! `get`, `put` and large reads and writes on a [`File`] keep many
//! requests in flight (64 of 32 KiB by default, larger when the server's
//! `limits@openssh.com` allows). Operations on one `Sftp` are serialized;
//! `Sftp` is `Send + Sync` and clones cheaply.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use ssh_proto::sftp::codec::ext;
use ssh_proto::sftp::{
    open_flags, status, status_error, Attrs, CheckTarget, Limits, NameEntry, Request, Response,
    SftpClient, StatVfs,
};
use ssh_proto::{Error, ErrorKind};

use crate::channel::Channel;

/// A directory entry with its attributes (paramiko's `SFTPAttributes`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    pub name: String,
    /// The server's `ls -l` line (may be empty).
    pub longname: String,
    pub attrs: Attrs,
}

/// How to open a remote file (paramiko's mode letters map onto these; see
/// [`OpenOptions::from_mode`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OpenOptions {
    pub read: bool,
    pub write: bool,
    pub append: bool,
    pub create: bool,
    pub truncate: bool,
    /// Fail if the file exists (paramiko's `'x'`).
    pub exclusive: bool,
    /// Permissions for a created file.
    pub mode: Option<u32>,
}

impl OpenOptions {
    pub fn read() -> Self {
        OpenOptions {
            read: true,
            ..Default::default()
        }
    }
    /// Create or truncate, write only.
    pub fn write() -> Self {
        OpenOptions {
            write: true,
            create: true,
            truncate: true,
            ..Default::default()
        }
    }
    /// Python/paramiko mode strings: `r`, `w`, `a`, `x`, with `+`
    /// (and `b`, ignored).
    pub fn from_mode(mode: &str) -> Result<Self, Error> {
        let mut o = OpenOptions::default();
        let plus = mode.contains('+');
        match mode.chars().find(|c| "rwax".contains(*c)) {
            Some('r') => {
                o.read = true;
                o.write = plus;
            }
            Some('w') => {
                o.write = true;
                o.create = true;
                o.truncate = true;
                o.read = plus;
            }
            Some('a') => {
                o.write = true;
                o.append = true;
                o.create = true;
                o.read = plus;
            }
            Some('x') => {
                o.write = true;
                o.create = true;
                o.exclusive = true;
                o.read = plus;
            }
            _ => return Err(Error::usage(format!("bad file mode {mode:?}"))),
        }
        Ok(o)
    }
    fn flags(&self) -> u32 {
        let mut f = 0;
        if self.read {
            f |= open_flags::READ;
        }
        if self.write || self.append {
            f |= open_flags::WRITE;
        }
        if self.append {
            f |= open_flags::APPEND;
        }
        if self.create {
            f |= open_flags::CREAT;
        }
        if self.truncate {
            f |= open_flags::TRUNC;
        }
        if self.exclusive {
            f |= open_flags::EXCL | open_flags::CREAT;
        }
        f
    }
}

/// Transfer tuning: request size and how many are in flight.
#[derive(Clone, Copy, Debug)]
pub struct Pipeline {
    pub chunk: u32,
    pub requests: usize,
}

struct State {
    machine: SftpClient,
    out: Vec<u8>,
    buf: Vec<u8>,
    cwd: Option<String>,
    limits: Option<Limits>,
    pipeline: Pipeline,
}

struct Inner {
    channel: Channel,
    state: Mutex<State>,
}

/// An SFTP session. Cloning gives another handle to the same session.
#[derive(Clone)]
pub struct Sftp {
    inner: Arc<Inner>,
}

fn io_error(e: io::Error) -> Error {
    match e.into_inner() {
        Some(inner) => match inner.downcast::<Error>() {
            Ok(e) => *e,
            Err(other) => Error::new(ErrorKind::Io, other.to_string()),
        },
        None => Error::new(ErrorKind::Io, "sftp channel failed"),
    }
}

fn unexpected(what: &str, r: &Response) -> Error {
    Error::protocol(format!("unexpected SFTP reply to {what}: {r:?}"))
}

impl State {
    fn flush(&mut self, ch: &Channel) -> Result<(), Error> {
        if self.machine.transmit().is_none() {
            return Ok(());
        }
        self.out.clear();
        self.machine.take_transmit(&mut self.out);
        (&*ch).write_all(&self.out).map_err(io_error)
    }

    /// Reads from the channel until the reply to `id` is there.
    fn wait(&mut self, ch: &Channel, id: u32) -> Result<Response, Error> {
        self.flush(ch)?;
        loop {
            if let Some(r) = self.machine.take_reply(id) {
                return Ok(r);
            }
            self.fill(ch)?;
        }
    }

    /// One read from the channel into the machine.
    fn fill(&mut self, ch: &Channel) -> Result<(), Error> {
        if self.buf.len() < 256 * 1024 {
            self.buf.resize(256 * 1024, 0);
        }
        let n = (&*ch).read(&mut self.buf).map_err(io_error)?;
        if n == 0 {
            return Err(Error::new(
                ErrorKind::Closed,
                "the SFTP channel closed with requests outstanding",
            ));
        }
        self.machine.recv(&self.buf[..n])
    }

    fn call(&mut self, ch: &Channel, req: &Request) -> Result<Response, Error> {
        let id = self.machine.send(req)?;
        self.wait(ch, id)
    }

    fn resolve(&self, path: &str) -> String {
        match &self.cwd {
            Some(cwd) if !path.starts_with('/') => {
                if path.is_empty() || path == "." {
                    cwd.clone()
                } else if cwd.ends_with('/') {
                    format!("{cwd}{path}")
                } else {
                    format!("{cwd}/{path}")
                }
            }
            _ => path.to_string(),
        }
    }
}

/// Turns a status reply into Ok(()) or the error naming `path`.
fn check_status(r: Response, what: &str, path: &str) -> Result<(), Error> {
    match r {
        Response::Status { code, .. } if code == status::OK => Ok(()),
        Response::Status { code, message } => Err(status_error(code, &message, Some(path))),
        r => Err(unexpected(what, &r)),
    }
}

fn status_or(r: Response, path: &str) -> Error {
    match r {
        Response::Status { code, message } => status_error(code, &message, Some(path)),
        r => unexpected(path, &r),
    }
}

impl Sftp {
    /// Starts SFTP on a channel whose `sftp` subsystem is already running.
    pub fn new(channel: Channel) -> Result<Sftp, Error> {
        let mut st = State {
            machine: SftpClient::new(),
            out: Vec::new(),
            buf: Vec::new(),
            cwd: None,
            limits: None,
            pipeline: Pipeline {
                chunk: 32 * 1024,
                requests: 64,
            },
        };
        if channel
            .peer_version()
            .is_some_and(|v| ssh_proto::sftp::draft_symlink_peer(&v))
        {
            st.machine.set_draft_symlink(true);
        }
        st.flush(&channel)?;
        while st.machine.version().is_none() {
            st.fill(&channel)?;
        }
        if st.machine.extension(ext::LIMITS).is_some() {
            if let Ok(Response::ExtendedReply(d)) = st.call(&channel, &Request::Limits) {
                if let Ok(l) = Limits::decode(&d) {
                    st.limits = Some(l);
                    // Larger requests when the server takes them; keep
                    // about 4 MiB in flight.
                    let max = l.max_read.min(l.max_write).min(255 * 1024);
                    if max >= 64 * 1024 {
                        st.pipeline.chunk = max as u32;
                        st.pipeline.requests = (4 << 20) / max as usize;
                    }
                }
            }
        }
        Ok(Sftp {
            inner: Arc::new(Inner {
                channel,
                state: Mutex::new(st),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn call(&self, req: &Request) -> Result<Response, Error> {
        self.lock().call(&self.inner.channel, req)
    }

    /// Extensions the server offered.
    pub fn extensions(&self) -> Vec<(String, String)> {
        self.lock().machine.extensions().to_vec()
    }

    /// The server's `limits@openssh.com`, if it offered them.
    pub fn limits(&self) -> Option<Limits> {
        self.lock().limits
    }

    /// Request size and count for transfers (OpenSSH `sftp -B` / `-R`).
    pub fn set_pipeline(&self, chunk: u32, requests: usize) {
        let mut st = self.lock();
        let max = st
            .limits
            .map_or(32 * 1024, |l| {
                l.max_read.min(l.max_write).min(255 * 1024) as u32
            })
            .max(32 * 1024);
        st.pipeline = Pipeline {
            chunk: chunk.clamp(512, max),
            requests: requests.clamp(1, 1024),
        };
    }

    pub fn pipeline(&self) -> Pipeline {
        self.lock().pipeline
    }

    fn path(&self, p: &str) -> String {
        self.lock().resolve(p)
    }

    // ------------------------------------------------------- directories

    /// paramiko's `chdir`: later relative paths resolve against it. `None`
    /// goes back to the server's default.
    pub fn chdir(&self, path: Option<&str>) -> Result<(), Error> {
        let Some(p) = path else {
            self.lock().cwd = None;
            return Ok(());
        };
        let real = self.realpath(p)?;
        let a = self.stat(&real)?;
        if !a.is_dir() {
            return Err(status_error(
                status::NO_SUCH_FILE,
                "not a directory",
                Some(&real),
            ));
        }
        self.lock().cwd = Some(real);
        Ok(())
    }

    /// The directory set by `chdir`, or the server's idea of "." when none.
    pub fn getcwd(&self) -> Result<String, Error> {
        if let Some(c) = self.lock().cwd.clone() {
            return Ok(c);
        }
        self.realpath(".")
    }

    pub fn realpath(&self, path: &str) -> Result<String, Error> {
        let p = self.path(path);
        match self.call(&Request::Realpath { path: p.clone() })? {
            Response::Name(mut v) if !v.is_empty() => Ok(v.swap_remove(0).filename),
            r => Err(status_or(r, &p)),
        }
    }

    /// Entries of a directory with their attributes, `.` and `..` left out.
    pub fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, Error> {
        let p = self.path(path);
        let handle = match self.call(&Request::Opendir { path: p.clone() })? {
            Response::Handle(h) => h,
            r => return Err(status_or(r, &p)),
        };
        let mut out = Vec::new();
        let result = loop {
            match self.call(&Request::Readdir {
                handle: handle.clone(),
            }) {
                Ok(Response::Name(v)) => out.extend(
                    v.into_iter()
                        .filter(|e| e.filename != "." && e.filename != "..")
                        .map(
                            |NameEntry {
                                 filename,
                                 longname,
                                 attrs,
                             }| DirEntry {
                                name: filename,
                                longname,
                                attrs,
                            },
                        ),
                ),
                Ok(Response::Status { code, .. }) if code == status::EOF => break Ok(()),
                Ok(r) => break Err(status_or(r, &p)),
                Err(e) => break Err(e),
            }
        };
        let _ = self.call(&Request::Close { handle });
        result.map(|_| out)
    }

    pub fn mkdir(&self, path: &str, mode: u32) -> Result<(), Error> {
        let p = self.path(path);
        let attrs = Attrs {
            permissions: Some(mode),
            ..Default::default()
        };
        check_status(
            self.call(&Request::Mkdir {
                path: p.clone(),
                attrs,
            })?,
            "mkdir",
            &p,
        )
    }

    pub fn rmdir(&self, path: &str) -> Result<(), Error> {
        let p = self.path(path);
        check_status(self.call(&Request::Rmdir { path: p.clone() })?, "rmdir", &p)
    }

    // ------------------------------------------------------------- paths

    pub fn remove(&self, path: &str) -> Result<(), Error> {
        let p = self.path(path);
        check_status(
            self.call(&Request::Remove { path: p.clone() })?,
            "remove",
            &p,
        )
    }

    /// Renames, replacing `new` when the server offers
    /// `posix-rename@openssh.com` (plain SFTP rename fails if it exists).
    pub fn rename(&self, old: &str, new: &str) -> Result<(), Error> {
        let (old, new) = (self.path(old), self.path(new));
        let posix = self.lock().machine.extension(ext::POSIX_RENAME).is_some();
        let req = if posix {
            Request::PosixRename {
                old: old.clone(),
                new,
            }
        } else {
            Request::Rename {
                old: old.clone(),
                new,
            }
        };
        check_status(self.call(&req)?, "rename", &old)
    }

    /// Creates `link` pointing at `target`.
    pub fn symlink(&self, target: &str, link: &str) -> Result<(), Error> {
        let l = self.path(link);
        check_status(
            self.call(&Request::Symlink {
                target: target.to_string(),
                link: l.clone(),
            })?,
            "symlink",
            &l,
        )
    }

    pub fn readlink(&self, path: &str) -> Result<String, Error> {
        let p = self.path(path);
        match self.call(&Request::Readlink { path: p.clone() })? {
            Response::Name(mut v) if !v.is_empty() => Ok(v.swap_remove(0).filename),
            r => Err(status_or(r, &p)),
        }
    }

    pub fn hardlink(&self, old: &str, new: &str) -> Result<(), Error> {
        let (o, n) = (self.path(old), self.path(new));
        check_status(
            self.call(&Request::Hardlink {
                old: o.clone(),
                new: n,
            })?,
            "hardlink",
            &o,
        )
    }

    // -------------------------------------------------------- attributes

    fn attrs_call(&self, req: Request, p: &str) -> Result<Attrs, Error> {
        match self.call(&req)? {
            Response::Attrs(a) => Ok(a),
            r => Err(status_or(r, p)),
        }
    }

    pub fn stat(&self, path: &str) -> Result<Attrs, Error> {
        let p = self.path(path);
        self.attrs_call(Request::Stat { path: p.clone() }, &p)
    }

    pub fn lstat(&self, path: &str) -> Result<Attrs, Error> {
        let p = self.path(path);
        self.attrs_call(Request::Lstat { path: p.clone() }, &p)
    }

    pub fn setstat(&self, path: &str, attrs: Attrs) -> Result<(), Error> {
        let p = self.path(path);
        check_status(
            self.call(&Request::Setstat {
                path: p.clone(),
                attrs,
            })?,
            "setstat",
            &p,
        )
    }

    pub fn chmod(&self, path: &str, mode: u32) -> Result<(), Error> {
        self.setstat(
            path,
            Attrs {
                permissions: Some(mode),
                ..Default::default()
            },
        )
    }

    pub fn chown(&self, path: &str, uid: u32, gid: u32) -> Result<(), Error> {
        self.setstat(
            path,
            Attrs {
                uid_gid: Some((uid, gid)),
                ..Default::default()
            },
        )
    }

    /// Sets access and modification times (seconds since the epoch).
    pub fn set_times(&self, path: &str, atime: u32, mtime: u32) -> Result<(), Error> {
        self.setstat(
            path,
            Attrs {
                times: Some((atime, mtime)),
                ..Default::default()
            },
        )
    }

    pub fn truncate(&self, path: &str, size: u64) -> Result<(), Error> {
        self.setstat(
            path,
            Attrs {
                size: Some(size),
                ..Default::default()
            },
        )
    }

    pub fn statvfs(&self, path: &str) -> Result<StatVfs, Error> {
        let p = self.path(path);
        match self.call(&Request::Statvfs { path: p.clone() })? {
            Response::ExtendedReply(d) => StatVfs::decode(&d),
            r => Err(status_or(r, &p)),
        }
    }

    /// paramiko's `check()`: the server hashes the file (`check-file-name`).
    /// Returns (algorithm used, hash bytes).
    pub fn check(&self, path: &str, algorithms: &str) -> Result<(String, Vec<u8>), Error> {
        let p = self.path(path);
        match self.call(&Request::CheckFile {
            target: CheckTarget::Name(p.clone()),
            algorithms: algorithms.to_string(),
            offset: 0,
            len: 0,
            block_size: 0,
        })? {
            Response::ExtendedReply(d) => {
                let mut r = ssh_proto::wire::Reader::new(&d);
                let alg = String::from_utf8_lossy(r.string()?).into_owned();
                Ok((alg, r.rest().to_vec()))
            }
            r => Err(status_or(r, &p)),
        }
    }

    // ------------------------------------------------------------- files

    pub fn open(&self, path: &str, opts: OpenOptions) -> Result<File, Error> {
        let p = self.path(path);
        let attrs = Attrs {
            permissions: opts.mode,
            ..Default::default()
        };
        let handle = match self.call(&Request::Open {
            path: p.clone(),
            flags: opts.flags(),
            attrs,
        })? {
            Response::Handle(h) => h,
            r => return Err(status_or(r, &p)),
        };
        let mut f = File {
            sftp: self.clone(),
            handle,
            path: p,
            pos: 0,
            append: opts.append,
            closed: false,
        };
        if opts.append {
            f.pos = f.stat()?.size.unwrap_or(0);
        }
        Ok(f)
    }

    /// paramiko-style `open(path, "r"|"w"|"a"|"x"…)`.
    pub fn open_mode(&self, path: &str, mode: &str) -> Result<File, Error> {
        self.open(path, OpenOptions::from_mode(mode)?)
    }

    /// Downloads `remote` to `local`, pipelined. `progress(done, total)`
    /// is called as data arrives. Returns the bytes copied.
    pub fn get(
        &self,
        remote: &str,
        local: &Path,
        progress: Option<&mut dyn FnMut(u64, u64)>,
    ) -> Result<u64, Error> {
        let src = self.open(remote, OpenOptions::read())?;
        let total = src.stat().ok().and_then(|a| a.size).unwrap_or(0);
        let out = std::fs::File::create(local).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot create {}: {e}", local.display()),
            )
        })?;
        let mut st = self.lock();
        let n = get_pipelined(&mut st, &self.inner.channel, &src, &out, total, progress)?;
        drop(st);
        src.close()?;
        Ok(n)
    }

    /// Uploads `local` to `remote` (created or truncated), pipelined.
    pub fn put(
        &self,
        local: &Path,
        remote: &str,
        progress: Option<&mut dyn FnMut(u64, u64)>,
    ) -> Result<u64, Error> {
        let mut src = std::fs::File::open(local).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("cannot open {}: {e}", local.display()),
            )
        })?;
        let total = src.metadata().map(|m| m.len()).unwrap_or(0);
        let dst = self.open(remote, OpenOptions::write())?;
        let mut st = self.lock();
        let r = put_pipelined(
            &mut st,
            &self.inner.channel,
            &dst,
            &mut src,
            total,
            progress,
        );
        drop(st);
        let closed = dst.close();
        let n = r?;
        closed?;
        Ok(n)
    }
}

/// Pipelined download into `out` (written at offsets, so replies may
/// arrive in any order).
fn get_pipelined(
    st: &mut State,
    ch: &Channel,
    src: &File,
    out: &std::fs::File,
    total: u64,
    mut progress: Option<&mut dyn FnMut(u64, u64)>,
) -> Result<u64, Error> {
    let Pipeline { chunk, requests } = st.pipeline;
    // id -> (offset, length asked)
    let mut inflight: Vec<(u32, u64, u32)> = Vec::with_capacity(requests);
    let mut next = 0u64;
    let mut eof_at: Option<u64> = None;
    let mut done = 0u64;
    // Gaps left by short reads, fetched again.
    let mut holes: Vec<(u64, u32)> = Vec::new();
    loop {
        while inflight.len() < requests {
            let (off, len) = if let Some(h) = holes.pop() {
                h
            } else if eof_at.is_none() {
                let o = next;
                next += chunk as u64;
                (o, chunk)
            } else {
                break;
            };
            let id = st.machine.send(&Request::Read {
                handle: src.handle.clone(),
                offset: off,
                len,
            })?;
            inflight.push((id, off, len));
        }
        if inflight.is_empty() {
            break;
        }
        st.flush(ch)?;
        // Take whatever replies have arrived; read more if none.
        let mut got_any = false;
        let mut i = 0;
        while i < inflight.len() {
            let (id, off, len) = inflight[i];
            let Some(r) = st.machine.take_reply(id) else {
                i += 1;
                continue;
            };
            got_any = true;
            inflight.swap_remove(i);
            match r {
                Response::Data(d) => {
                    if d.is_empty() || d.len() > len as usize {
                        return Err(Error::protocol(format!(
                            "SFTP read of {len} bytes at {off} returned {}",
                            d.len()
                        )));
                    }
                    out.write_all_at(&d, off).map_err(|e| {
                        Error::new(ErrorKind::Io, format!("local write failed: {e}"))
                    })?;
                    done += d.len() as u64;
                    if (d.len() as u32) < len {
                        holes.push((off + d.len() as u64, len - d.len() as u32));
                    }
                    if let Some(p) = progress.as_mut() {
                        p(done, total.max(done));
                    }
                }
                Response::Status { code, .. } if code == status::EOF => {
                    eof_at = Some(eof_at.map_or(off, |e| e.min(off)));
                }
                r => return Err(status_or(r, &src.path)),
            }
        }
        // Holes past EOF are not holes.
        if let Some(e) = eof_at {
            holes.retain(|(o, _)| *o < e);
        }
        if !got_any {
            st.fill(ch)?;
        }
    }
    Ok(done)
}

fn put_pipelined(
    st: &mut State,
    ch: &Channel,
    dst: &File,
    src: &mut std::fs::File,
    total: u64,
    mut progress: Option<&mut dyn FnMut(u64, u64)>,
) -> Result<u64, Error> {
    let Pipeline { chunk, requests } = st.pipeline;
    let mut buf = vec![0u8; chunk as usize];
    let mut inflight: std::collections::VecDeque<(u32, u64)> = Default::default();
    let mut off = 0u64;
    let mut acked = 0u64;
    let mut eof = false;
    loop {
        while !eof && inflight.len() < requests {
            let n = read_full(src, &mut buf)
                .map_err(|e| Error::new(ErrorKind::Io, format!("local read failed: {e}")))?;
            if n == 0 {
                eof = true;
                break;
            }
            let id = st.machine.send_write(&dst.handle, off, &buf[..n])?;
            inflight.push_back((id, n as u64));
            off += n as u64;
            if st.machine.transmit_len() > 1 << 20 {
                st.flush(ch)?;
            }
        }
        let Some(&(id, n)) = inflight.front() else {
            break;
        };
        let r = st.wait(ch, id)?;
        inflight.pop_front();
        check_status(r, "write", &dst.path)?;
        acked += n;
        if let Some(p) = progress.as_mut() {
            p(acked, total.max(acked));
        }
    }
    Ok(acked)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
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

/// An open remote file: `Read + Write + Seek`. Closed on drop (or with
/// [`close`](Self::close) to see the result).
pub struct File {
    sftp: Sftp,
    handle: Vec<u8>,
    path: String,
    pos: u64,
    append: bool,
    closed: bool,
}

impl File {
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn stat(&self) -> Result<Attrs, Error> {
        match self.sftp.call(&Request::Fstat {
            handle: self.handle.clone(),
        })? {
            Response::Attrs(a) => Ok(a),
            r => Err(status_or(r, &self.path)),
        }
    }

    pub fn setstat(&self, attrs: Attrs) -> Result<(), Error> {
        check_status(
            self.sftp.call(&Request::Fsetstat {
                handle: self.handle.clone(),
                attrs,
            })?,
            "fsetstat",
            &self.path,
        )
    }

    /// `fsync@openssh.com`.
    pub fn sync(&self) -> Result<(), Error> {
        check_status(
            self.sftp.call(&Request::Fsync {
                handle: self.handle.clone(),
            })?,
            "fsync",
            &self.path,
        )
    }

    pub fn close(mut self) -> Result<(), Error> {
        self.closed = true;
        check_status(
            self.sftp.call(&Request::Close {
                handle: self.handle.clone(),
            })?,
            "close",
            &self.path,
        )
    }

    /// Reads up to `buf.len()` bytes at the position, with many requests
    /// in flight for a large buffer. Ok(0) at end of file.
    fn read_at_pos(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut st = self.sftp.lock();
        let ch = &self.sftp.inner.channel;
        let Pipeline { chunk, requests } = st.pipeline;
        let chunk = chunk as usize;
        let mut ids = Vec::new();
        let mut off = 0usize;
        while off < buf.len() && ids.len() < requests {
            let len = chunk.min(buf.len() - off);
            let id = st.machine.send(&Request::Read {
                handle: self.handle.clone(),
                offset: self.pos + off as u64,
                len: len as u32,
            })?;
            ids.push((id, off, len));
            off += len;
        }
        // Consume in order; stop at the first short read (the rest is
        // still drained so no reply is left behind).
        let mut total = 0usize;
        let mut stop: Option<Result<(), Error>> = None;
        for (id, at, len) in ids {
            let r = st.wait(ch, id)?;
            if stop.is_some() {
                continue;
            }
            match r {
                Response::Data(d) if d.len() <= len && at == total => {
                    buf[at..at + d.len()].copy_from_slice(&d);
                    total += d.len();
                    if d.len() < len {
                        stop = Some(Ok(()));
                    }
                }
                Response::Data(_) => stop = Some(Ok(())),
                Response::Status { code, .. } if code == status::EOF => stop = Some(Ok(())),
                r => stop = Some(Err(status_or(r, &self.path))),
            }
        }
        if let Some(Err(e)) = stop {
            if total == 0 {
                return Err(e);
            }
        }
        self.pos += total as u64;
        Ok(total)
    }

    fn write_at_pos(&mut self, buf: &[u8]) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut st = self.sftp.lock();
        let ch = &self.sftp.inner.channel;
        let Pipeline { chunk, requests } = st.pipeline;
        let mut ids = Vec::new();
        for (i, piece) in buf.chunks(chunk as usize).take(requests).enumerate() {
            let off = self.pos + (i * chunk as usize) as u64;
            ids.push((
                st.machine.send_write(&self.handle, off, piece)?,
                piece.len(),
            ));
        }
        let mut written = 0usize;
        let mut err = None;
        for (id, len) in ids {
            let r = st.wait(ch, id)?;
            match check_status(r, "write", &self.path) {
                Ok(()) if err.is_none() => written += len,
                Ok(()) => {}
                Err(e) => err = err.or(Some(e)),
            }
        }
        if let Some(e) = err {
            if written == 0 {
                return Err(e);
            }
        }
        self.pos += written as u64;
        Ok(written)
    }
}

fn to_io(e: Error) -> io::Error {
    let kind = match (e.kind(), e.code()) {
        (ErrorKind::Sftp, Some(status::NO_SUCH_FILE)) => io::ErrorKind::NotFound,
        (ErrorKind::Sftp, Some(status::PERMISSION_DENIED)) => io::ErrorKind::PermissionDenied,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_at_pos(buf).map_err(to_io)
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_at_pos(buf).map_err(to_io)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
            SeekFrom::End(d) => {
                let size = self.stat().map_err(to_io)?.size.unwrap_or(0);
                size.checked_add_signed(d)
            }
        };
        match new {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            )),
        }
    }
}

impl Drop for File {
    fn drop(&mut self) {
        if !self.closed {
            let _ = self.sftp.call(&Request::Close {
                handle: std::mem::take(&mut self.handle),
            });
        }
    }
}

impl File {
    /// Whether the file was opened for appending (writes go to the end on
    /// servers that honour SSH_FXF_APPEND; the position starts at the end).
    pub fn is_append(&self) -> bool {
        self.append
    }
}
