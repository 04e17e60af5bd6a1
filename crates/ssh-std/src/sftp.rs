//! The blocking SFTP client (paramiko's `SFTPClient`), over one channel.
//!
//! ```no_run
//! # fn f(client: &ssh_std::Client) -> Result<(), ssh_proto::Error> {
//! let sftp = client.sftp()?;
//! sftp.put("local.bin", "/tmp/remote.bin", None)?;
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
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use ssh_proto::sftp::codec::ext;
use ssh_proto::sftp::{Attrs, Limits, Request, Response, SftpClient, StatVfs};
use ssh_proto::{Error, ErrorKind};

use crate::channel::Channel;

use ssh_proto::session::sftp as sftp_ops;
use ssh_proto::session::sftp::{check_status, Call, Download, Settings, Upload};
use ssh_proto::session::sftp::{DirEntry, OpenOptions, Pipeline};

use crate::io_util::{read_full, to_io};

struct State {
    machine: SftpClient,
    out: Vec<u8>,
    buf: Vec<u8>,
    settings: Settings,
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
}

impl Sftp {
    /// Starts SFTP on a channel whose `sftp` subsystem is already running.
    pub fn new(channel: Channel) -> Result<Sftp, Error> {
        let mut st = State {
            machine: sftp_ops::new_machine(channel.peer_version().as_deref()),
            out: Vec::new(),
            buf: Vec::new(),
            settings: Settings::default(),
        };
        st.flush(&channel)?;
        while st.machine.version().is_none() {
            st.fill(&channel)?;
        }
        if st.machine.extension(ext::LIMITS).is_some() {
            let r = st.call(&channel, &Request::Limits);
            st.settings.apply_limits_reply(r);
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

    /// Sends `c`'s request and reads its reply.
    fn run<T>(&self, c: Call<T>) -> Result<T, Error> {
        c.reply(self.call(&c.request)?)
    }

    /// Extensions the server offered.
    pub fn extensions(&self) -> Vec<(String, String)> {
        self.lock().machine.extensions().to_vec()
    }

    /// The server's `limits@openssh.com`, if it offered them.
    pub fn limits(&self) -> Option<Limits> {
        self.lock().settings.limits
    }

    /// Request size and count for transfers (OpenSSH `sftp -B` / `-R`).
    pub fn set_pipeline(&self, chunk: u32, requests: usize) {
        self.lock().settings.set_pipeline(chunk, requests);
    }

    /// The current request size and count for transfers.
    pub fn pipeline(&self) -> Pipeline {
        self.lock().settings.pipeline
    }

    fn path(&self, p: &str) -> String {
        self.lock().settings.resolve(p)
    }

    // ------------------------------------------------------- directories

    /// paramiko's `chdir`: later relative paths resolve against it. `None`
    /// goes back to the server's default.
    pub fn chdir(&self, path: Option<&str>) -> Result<(), Error> {
        let Some(p) = path else {
            self.lock().settings.cwd = None;
            return Ok(());
        };
        let real = self.realpath(p)?;
        sftp_ops::require_dir(&self.stat(&real)?, &real)?;
        self.lock().settings.cwd = Some(real);
        Ok(())
    }

    /// The directory set by `chdir`, or the server's idea of "." when none.
    pub fn getcwd(&self) -> Result<String, Error> {
        if let Some(c) = self.lock().settings.cwd.clone() {
            return Ok(c);
        }
        self.realpath(".")
    }

    /// The server's canonical absolute form of `path`.
    pub fn realpath(&self, path: &str) -> Result<String, Error> {
        self.run(sftp_ops::realpath(self.path(path)))
    }

    /// Entries of a directory with their attributes, `.` and `..` left out.
    pub fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, Error> {
        let p = self.path(path);
        let handle = self.run(sftp_ops::opendir(p.clone()))?;
        let mut out = Vec::new();
        let result = loop {
            let r = self.call(&Request::Readdir {
                handle: handle.clone(),
            });
            if let ControlFlow::Break(r) = sftp_ops::read_dir_reply(r, &mut out, &p) {
                break r;
            }
        };
        let _ = self.call(&Request::Close { handle });
        result.map(|_| out)
    }

    /// Creates a directory with permission bits `mode`.
    pub fn mkdir(&self, path: &str, mode: u32) -> Result<(), Error> {
        self.run(sftp_ops::mkdir(self.path(path), mode))
    }

    /// Removes an empty directory.
    pub fn rmdir(&self, path: &str) -> Result<(), Error> {
        self.run(sftp_ops::rmdir(self.path(path)))
    }

    // ------------------------------------------------------------- paths

    /// Removes a file (not a directory).
    pub fn remove(&self, path: &str) -> Result<(), Error> {
        self.run(sftp_ops::remove(self.path(path)))
    }

    /// Renames, replacing `new` when the server offers
    /// `posix-rename@openssh.com` (plain SFTP rename fails if it exists).
    pub fn rename(&self, old: &str, new: &str) -> Result<(), Error> {
        let (old, new) = (self.path(old), self.path(new));
        let posix = self.lock().machine.extension(ext::POSIX_RENAME).is_some();
        self.run(sftp_ops::rename(old, new, posix))
    }

    /// Creates `link` pointing at `target`.
    pub fn symlink(&self, target: &str, link: &str) -> Result<(), Error> {
        self.run(sftp_ops::symlink(target, self.path(link)))
    }

    /// The target of a symbolic link.
    pub fn readlink(&self, path: &str) -> Result<String, Error> {
        self.run(sftp_ops::readlink(self.path(path)))
    }

    /// Creates hard link `new` to `old` (`hardlink@openssh.com`; fails
    /// when the server lacks it).
    pub fn hardlink(&self, old: &str, new: &str) -> Result<(), Error> {
        self.run(sftp_ops::hardlink(self.path(old), self.path(new)))
    }

    // -------------------------------------------------------- attributes

    /// Attributes of `path`, following symbolic links.
    pub fn stat(&self, path: &str) -> Result<Attrs, Error> {
        self.run(sftp_ops::stat(self.path(path)))
    }

    /// Attributes of `path` itself (a link is not followed).
    pub fn lstat(&self, path: &str) -> Result<Attrs, Error> {
        self.run(sftp_ops::lstat(self.path(path)))
    }

    /// Sets the attributes present in `attrs`.
    pub fn setstat(&self, path: &str, attrs: Attrs) -> Result<(), Error> {
        self.run(sftp_ops::setstat(self.path(path), attrs))
    }

    /// Sets the permission bits.
    pub fn chmod(&self, path: &str, mode: u32) -> Result<(), Error> {
        self.run(sftp_ops::chmod(self.path(path), mode))
    }

    /// Sets owner and group (numeric ids).
    pub fn chown(&self, path: &str, uid: u32, gid: u32) -> Result<(), Error> {
        self.run(sftp_ops::chown(self.path(path), uid, gid))
    }

    /// Sets access and modification times (seconds since the epoch).
    pub fn set_times(&self, path: &str, atime: u32, mtime: u32) -> Result<(), Error> {
        self.run(sftp_ops::set_times(self.path(path), atime, mtime))
    }

    /// Sets the file's size to `size` bytes.
    pub fn truncate(&self, path: &str, size: u64) -> Result<(), Error> {
        self.run(sftp_ops::truncate(self.path(path), size))
    }

    /// Filesystem statistics (`statvfs@openssh.com`; fails when the
    /// server lacks it).
    pub fn statvfs(&self, path: &str) -> Result<StatVfs, Error> {
        self.run(sftp_ops::statvfs(self.path(path)))
    }

    /// paramiko's `check()`: the server hashes the file (`check-file-name`).
    /// Returns (algorithm used, hash bytes).
    pub fn check(&self, path: &str, algorithms: &str) -> Result<(String, Vec<u8>), Error> {
        self.run(sftp_ops::check(self.path(path), algorithms))
    }

    // ------------------------------------------------------------- files

    /// Opens a remote file as `opts` says; blocks until the server answers.
    pub fn open(&self, path: &str, opts: OpenOptions) -> Result<File, Error> {
        let p = self.path(path);
        let handle = self.run(sftp_ops::open(p.clone(), &opts))?;
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
        local: impl AsRef<Path>,
        progress: Option<&mut dyn FnMut(u64, u64)>,
    ) -> Result<u64, Error> {
        let local = local.as_ref();
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
        local: impl AsRef<Path>,
        remote: &str,
        progress: Option<&mut dyn FnMut(u64, u64)>,
    ) -> Result<u64, Error> {
        let local = local.as_ref();
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
    let Pipeline { chunk, requests } = st.settings.pipeline;
    let mut dl = Download::new(chunk, requests);
    loop {
        let machine = &mut st.machine;
        dl.request_more(requests, |offset, len| {
            machine.send(&Request::Read {
                handle: src.handle.clone(),
                offset,
                len,
            })
        })?;
        if dl.is_idle() {
            break;
        }
        st.flush(ch)?;
        // Take whatever replies have arrived; read more if none.
        let Some(replies) = sftp_ops::take_any(&mut st.machine, dl.ids()) else {
            st.fill(ch)?;
            continue;
        };
        for (id, r) in replies {
            if let Some((off, d)) = dl.reply(id, r, &src.path)? {
                out.write_all_at(&d, off)
                    .map_err(|e| Error::new(ErrorKind::Io, format!("local write failed: {e}")))?;
                if let Some(p) = progress.as_mut() {
                    p(dl.done(), total.max(dl.done()));
                }
            }
        }
    }
    Ok(dl.done())
}

fn put_pipelined(
    st: &mut State,
    ch: &Channel,
    dst: &File,
    src: &mut std::fs::File,
    total: u64,
    mut progress: Option<&mut dyn FnMut(u64, u64)>,
) -> Result<u64, Error> {
    let Pipeline { chunk, requests } = st.settings.pipeline;
    let mut buf = vec![0u8; chunk as usize];
    let mut up = Upload::default();
    let mut acked = 0u64;
    let mut eof = false;
    loop {
        while !eof && up.in_flight() < requests {
            let n = read_full(src, &mut buf)
                .map_err(|e| Error::new(ErrorKind::Io, format!("local read failed: {e}")))?;
            if n == 0 {
                eof = true;
                break;
            }
            let id = st.machine.send_write(&dst.handle, up.offset(), &buf[..n])?;
            up.sent(id, n);
            if st.machine.transmit_len() > 1 << 20 {
                st.flush(ch)?;
            }
        }
        let Some(id) = up.oldest() else {
            break;
        };
        let r = st.wait(ch, id)?;
        acked = up.reply(id, r, &dst.path)?;
        if let Some(p) = progress.as_mut() {
            p(acked, total.max(acked));
        }
    }
    Ok(acked)
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
    /// The file's absolute remote path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Attributes of the open file.
    pub fn stat(&self) -> Result<Attrs, Error> {
        self.sftp
            .run(sftp_ops::fstat(self.handle.clone(), &self.path))
    }

    /// Sets the attributes present in `attrs` on the open file.
    pub fn setstat(&self, attrs: Attrs) -> Result<(), Error> {
        self.sftp
            .run(sftp_ops::fsetstat(self.handle.clone(), &self.path, attrs))
    }

    /// `fsync@openssh.com`.
    pub fn sync(&self) -> Result<(), Error> {
        self.sftp
            .run(sftp_ops::fsync(self.handle.clone(), &self.path))
    }

    /// Closes the remote handle and reports the server's answer (dropping
    /// the file closes it too, without reporting errors).
    pub fn close(mut self) -> Result<(), Error> {
        self.closed = true;
        self.sftp
            .run(sftp_ops::close(self.handle.clone(), &self.path))
    }

    /// Reads up to `buf.len()` bytes at the position, with many requests
    /// in flight for a large buffer. Ok(0) at end of file.
    fn read_at_pos(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut st = self.sftp.lock();
        let ch = &self.sftp.inner.channel;
        let mut ids = Vec::new();
        for (offset, at, len) in sftp_ops::read_plan(self.pos, buf.len(), st.settings.pipeline) {
            let id = st.machine.send(&Request::Read {
                handle: self.handle.clone(),
                offset,
                len: len as u32,
            })?;
            ids.push((id, at, len));
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
            match sftp_ops::read_piece(r, at, total, len, &self.path) {
                Ok(Some(d)) => {
                    buf[at..at + d.len()].copy_from_slice(&d);
                    total += d.len();
                    if d.len() < len {
                        stop = Some(Ok(()));
                    }
                }
                Ok(None) => stop = Some(Ok(())),
                Err(e) => stop = Some(Err(e)),
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
        let Pipeline { chunk, requests } = st.settings.pipeline;
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
