//! The async SFTP client: the blocking adapters' `Sftp`,
//! with every method that talks to the server `async`.
//!
//! ```no_run
//! # async fn f(client: &ssh_tokio::Client) -> Result<(), ssh_tokio::Error> {
//! let sftp = client.sftp().await?;
//! sftp.put("local.bin".as_ref(), "/tmp/remote.bin", None).await?;
//! for e in sftp.read_dir("/tmp").await? {
//!     println!("{} {:?}", e.name, e.attrs.size);
//! }
//! # Ok(()) }
//! ```
//!
//! One [`SftpClient`] machine runs over the channel, behind a short-held
//! (never across an `.await`) lock. A request is queued in the machine; the
//! task that waits for its reply writes whatever output is queued and reads
//! the channel into the machine, which files each reply under its id. So
//! several tasks may use one `Sftp` (it is `Clone + Send + Sync`) and their
//! requests are in flight together; whoever reads a reply leaves it for its
//! owner and wakes it.
//!
//! Cancellation: dropping any future of this module mid-operation leaves
//! the session intact. Bytes queued for the channel stay queued until the
//! next operation writes them (never half a packet), and the ids of
//! requests nobody waits for any more are remembered so their replies are
//! thrown away when they arrive.
//!
//! `get`, `put` and large reads and writes on a [`File`] keep many requests
//! in flight (about 4 MiB, in 255 KiB requests when the server's
//! `limits@openssh.com` allows, else 64 of 32 KiB).

use std::collections::HashSet;
use std::future::{poll_fn, Future};
use std::io::{self, SeekFrom};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll, Waker};

use ssh_proto::sftp::codec::ext;
use ssh_proto::sftp::{Attrs, Limits, Request, Response, SftpClient, StatVfs};
use ssh_proto::{Error, ErrorKind};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use ssh_proto::session::sftp::{
    self as shared, check_status, take_any, Call, Download, Settings, Upload,
};
pub use ssh_proto::session::sftp::{DirEntry, OpenOptions, Pipeline};
use ssh_std::read_full;

fn to_io(e: Error) -> io::Error {
    io::Error::from(e)
}

use crate::Channel;

/// Bytes read from the channel at a time.
const READ_BUF: usize = 256 * 1024;

/// A progress callback for `get`/`put`: `(done, total)`. As in
/// ssh-blocking, plus `Send` so the transfer's future can be spawned.
pub type Progress<'a> = &'a mut (dyn FnMut(u64, u64) + Send);

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + Sync>>;

struct State {
    machine: SftpClient,
    channel: Channel,
    /// Output taken from the machine; `out[out_pos..]` is not yet written.
    out: Vec<u8>,
    out_pos: usize,
    buf: Vec<u8>,
    /// Requests whose waiter went away: their replies are dropped.
    abandoned: HashSet<u32>,
    /// Tasks waiting for a reply some other task may read.
    waiters: Vec<Waker>,
    settings: Settings,
}

struct Inner {
    state: Mutex<State>,
}

/// An SFTP session. Cloning gives another handle to the same session;
/// handles may be used from several tasks at once.
#[derive(Clone)]
pub struct Sftp {
    inner: Arc<Inner>,
}

fn from_io(e: io::Error) -> Error {
    let text = e.to_string();
    match e.into_inner() {
        Some(inner) => match inner.downcast::<Error>() {
            Ok(e) => *e,
            Err(other) => Error::new(ErrorKind::Io, other.to_string()),
        },
        None => Error::new(ErrorKind::Io, format!("sftp channel failed: {text}")),
    }
}

fn local_error(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Io, format!("{what} {}: {e}", path.display()))
}

fn join_error(e: tokio::task::JoinError) -> Error {
    Error::new(ErrorKind::Io, format!("local file task failed: {e}"))
}

impl State {
    /// Writes queued output to the channel until all is written or the
    /// window is full.
    fn poll_flush(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            if self.out_pos >= self.out.len() {
                self.out.clear();
                self.out_pos = 0;
                if self.machine.transmit_len() == 0 {
                    return Poll::Ready(Ok(()));
                }
                self.machine.take_transmit(&mut self.out);
            }
            match Pin::new(&mut self.channel).poll_write(cx, &self.out[self.out_pos..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(Error::new(
                        ErrorKind::Closed,
                        "the SFTP channel takes no more data",
                    )))
                }
                Poll::Ready(Ok(n)) => self.out_pos += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(from_io(e))),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Writes what it can without waiting (from `Drop`).
    fn flush_now(&mut self) {
        let mut cx = Context::from_waker(Waker::noop());
        let _ = self.poll_flush(&mut cx);
    }

    /// One read from the channel into the machine.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if self.buf.len() < READ_BUF {
            self.buf.resize(READ_BUF, 0);
        }
        let mut rb = ReadBuf::new(&mut self.buf);
        let r = ready!(Pin::new(&mut self.channel).poll_read(cx, &mut rb));
        let n = rb.filled().len();
        let r = match r {
            Ok(()) if n == 0 => Err(Error::new(
                ErrorKind::Closed,
                "the SFTP channel closed with requests outstanding",
            )),
            Ok(()) => self.machine.recv(&self.buf[..n]),
            Err(e) => Err(from_io(e)),
        };
        if !self.abandoned.is_empty() {
            let m = &mut self.machine;
            self.abandoned
                .retain(|&id| m.take_reply(id).is_none() && m.is_pending(id));
        }
        for w in self.waiters.drain(..) {
            w.wake();
        }
        Poll::Ready(r)
    }

    /// Drives the channel until `take` finds what it waits for in the
    /// machine.
    fn poll_until<T>(
        &mut self,
        cx: &mut Context<'_>,
        mut take: impl FnMut(&mut SftpClient) -> Option<T>,
    ) -> Poll<Result<T, Error>> {
        // Reads at most this many times per poll, so one task does not
        // hold the lock for long while replies for others stream in.
        let mut budget = 32;
        loop {
            if let Some(t) = take(&mut self.machine) {
                return Poll::Ready(Ok(t));
            }
            if let Some(e) = self.machine.error() {
                return Poll::Ready(Err(e.clone()));
            }
            if let Poll::Ready(Err(e)) = self.poll_flush(cx) {
                return Poll::Ready(Err(e));
            }
            if budget == 0 {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            budget -= 1;
            match self.poll_fill(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    if !self.waiters.iter().any(|w| w.will_wake(cx.waker())) {
                        self.waiters.push(cx.waker().clone());
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    /// Sends CLOSE for `handle` and forgets its reply.
    fn close_detached(&mut self, handle: Vec<u8>) {
        if let Ok(id) = self.machine.send(&Request::Close { handle }) {
            self.abandoned.insert(id);
        }
        self.flush_now();
    }
}

/// Ids of requests sent and not yet answered to their waiter. Whatever is
/// left when this drops (the waiting future was dropped, or gave up early)
/// is marked abandoned, so the replies are discarded.
struct Outstanding<'a> {
    sftp: &'a Sftp,
    ids: Vec<u32>,
}

impl<'a> Outstanding<'a> {
    fn new(sftp: &'a Sftp) -> Self {
        Outstanding {
            sftp,
            ids: Vec::new(),
        }
    }
    fn forget(&mut self, id: u32) {
        if let Some(i) = self.ids.iter().position(|&x| x == id) {
            self.ids.swap_remove(i);
        }
    }
}

impl Drop for Outstanding<'_> {
    fn drop(&mut self) {
        if self.ids.is_empty() {
            return;
        }
        let mut st = self.sftp.lock();
        for &id in &self.ids {
            if st.machine.take_reply(id).is_none() && st.machine.is_pending(id) {
                st.abandoned.insert(id);
            }
        }
    }
}

/// Closes a handle when dropped before [`disarm`](Self::disarm).
struct HandleGuard<'a> {
    sftp: &'a Sftp,
    handle: Option<Vec<u8>>,
}

impl HandleGuard<'_> {
    fn disarm(&mut self) -> Vec<u8> {
        self.handle.take().unwrap_or_default()
    }
}

impl Drop for HandleGuard<'_> {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.sftp.lock().close_detached(h);
        }
    }
}

impl Sftp {
    /// Starts SFTP on a channel whose `sftp` subsystem is already running.
    pub async fn new(channel: Channel) -> Result<Sftp, Error> {
        let st = State {
            machine: shared::new_machine(channel.peer_version().as_deref()),
            channel,
            out: Vec::new(),
            out_pos: 0,
            buf: Vec::new(),
            abandoned: HashSet::new(),
            waiters: Vec::new(),
            settings: Settings::default(),
        };
        let sftp = Sftp {
            inner: Arc::new(Inner {
                state: Mutex::new(st),
            }),
        };
        poll_fn(|cx| sftp.lock().poll_until(cx, |m| m.version())).await?;
        let has_limits = sftp.lock().machine.extension(ext::LIMITS).is_some();
        if has_limits {
            let r = sftp.call(&Request::Limits).await;
            sftp.lock().settings.apply_limits_reply(r);
        }
        Ok(sftp)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits for the reply to `id` (one of `g`'s).
    async fn wait_reply(&self, g: &mut Outstanding<'_>, id: u32) -> Result<Response, Error> {
        let r = poll_fn(|cx| self.lock().poll_until(cx, |m| m.take_reply(id))).await?;
        g.forget(id);
        Ok(r)
    }

    async fn call(&self, req: &Request) -> Result<Response, Error> {
        let mut g = Outstanding::new(self);
        let id = self.lock().machine.send(req)?;
        g.ids.push(id);
        self.wait_reply(&mut g, id).await
    }

    /// Sends `c`'s request and reads its reply.
    async fn run<T>(&self, c: Call<T>) -> Result<T, Error> {
        c.reply(self.call(&c.request).await?)
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

    /// Requests sent whose replies have not been taken yet, counting those
    /// of dropped futures whose replies have not arrived yet (they are
    /// thrown away when they do).
    pub fn in_flight(&self) -> usize {
        self.lock().machine.in_flight()
    }

    fn path(&self, p: &str) -> String {
        self.lock().settings.resolve(p)
    }

    // ------------------------------------------------------- directories

    /// paramiko's `chdir`: later relative paths resolve against it. `None`
    /// goes back to the server's default.
    pub async fn chdir(&self, path: Option<&str>) -> Result<(), Error> {
        let Some(p) = path else {
            self.lock().settings.cwd = None;
            return Ok(());
        };
        let real = self.realpath(p).await?;
        shared::require_dir(&self.stat(&real).await?, &real)?;
        self.lock().settings.cwd = Some(real);
        Ok(())
    }

    /// The directory set by `chdir`, or the server's idea of "." when none.
    pub async fn getcwd(&self) -> Result<String, Error> {
        let cwd = self.lock().settings.cwd.clone();
        match cwd {
            Some(c) => Ok(c),
            None => self.realpath(".").await,
        }
    }

    /// The server's canonical absolute form of `path`.
    pub async fn realpath(&self, path: &str) -> Result<String, Error> {
        self.run(shared::realpath(self.path(path))).await
    }

    /// Entries of a directory with their attributes, `.` and `..` left out.
    pub async fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, Error> {
        let p = self.path(path);
        let handle = self.run(shared::opendir(p.clone())).await?;
        // Closed even if this future is dropped half-way.
        let mut guard = HandleGuard {
            sftp: self,
            handle: Some(handle.clone()),
        };
        let mut out = Vec::new();
        let result = loop {
            let r = self
                .call(&Request::Readdir {
                    handle: handle.clone(),
                })
                .await;
            if let ControlFlow::Break(r) = shared::read_dir_reply(r, &mut out, &p) {
                break r;
            }
        };
        let handle = guard.disarm();
        let _ = self.call(&Request::Close { handle }).await;
        result.map(|_| out)
    }

    /// Creates a directory with permission bits `mode`.
    pub async fn mkdir(&self, path: &str, mode: u32) -> Result<(), Error> {
        self.run(shared::mkdir(self.path(path), mode)).await
    }

    /// Removes an empty directory.
    pub async fn rmdir(&self, path: &str) -> Result<(), Error> {
        self.run(shared::rmdir(self.path(path))).await
    }

    // ------------------------------------------------------------- paths

    /// Removes a file (not a directory).
    pub async fn remove(&self, path: &str) -> Result<(), Error> {
        self.run(shared::remove(self.path(path))).await
    }

    /// Renames, replacing `new` when the server offers
    /// `posix-rename@openssh.com` (plain SFTP rename fails if it exists).
    pub async fn rename(&self, old: &str, new: &str) -> Result<(), Error> {
        let (old, new) = (self.path(old), self.path(new));
        let posix = self.lock().machine.extension(ext::POSIX_RENAME).is_some();
        self.run(shared::rename(old, new, posix)).await
    }

    /// Creates `link` pointing at `target`.
    pub async fn symlink(&self, target: &str, link: &str) -> Result<(), Error> {
        self.run(shared::symlink(target, self.path(link))).await
    }

    /// The target of a symbolic link.
    pub async fn readlink(&self, path: &str) -> Result<String, Error> {
        self.run(shared::readlink(self.path(path))).await
    }

    /// Creates hard link `new` to `old` (`hardlink@openssh.com`; fails
    /// when the server lacks it).
    pub async fn hardlink(&self, old: &str, new: &str) -> Result<(), Error> {
        self.run(shared::hardlink(self.path(old), self.path(new)))
            .await
    }

    // -------------------------------------------------------- attributes

    /// Attributes of `path`, following symbolic links.
    pub async fn stat(&self, path: &str) -> Result<Attrs, Error> {
        self.run(shared::stat(self.path(path))).await
    }

    /// Attributes of `path` itself (a link is not followed).
    pub async fn lstat(&self, path: &str) -> Result<Attrs, Error> {
        self.run(shared::lstat(self.path(path))).await
    }

    /// Sets the attributes present in `attrs`.
    pub async fn setstat(&self, path: &str, attrs: Attrs) -> Result<(), Error> {
        self.run(shared::setstat(self.path(path), attrs)).await
    }

    /// Sets the permission bits.
    pub async fn chmod(&self, path: &str, mode: u32) -> Result<(), Error> {
        self.run(shared::chmod(self.path(path), mode)).await
    }

    /// Sets owner and group (numeric ids).
    pub async fn chown(&self, path: &str, uid: u32, gid: u32) -> Result<(), Error> {
        self.run(shared::chown(self.path(path), uid, gid)).await
    }

    /// Sets access and modification times (seconds since the epoch).
    pub async fn set_times(&self, path: &str, atime: u32, mtime: u32) -> Result<(), Error> {
        self.run(shared::set_times(self.path(path), atime, mtime))
            .await
    }

    /// Sets the file's size to `size` bytes.
    pub async fn truncate(&self, path: &str, size: u64) -> Result<(), Error> {
        self.run(shared::truncate(self.path(path), size)).await
    }

    /// Filesystem statistics (`statvfs@openssh.com`; fails when the
    /// server lacks it).
    pub async fn statvfs(&self, path: &str) -> Result<StatVfs, Error> {
        self.run(shared::statvfs(self.path(path))).await
    }

    /// paramiko's `check()`: the server hashes the file (`check-file-name`).
    /// Returns (algorithm used, hash bytes).
    pub async fn check(&self, path: &str, algorithms: &str) -> Result<(String, Vec<u8>), Error> {
        self.run(shared::check(self.path(path), algorithms)).await
    }

    // ------------------------------------------------------------- files

    /// Opens a remote file as `opts` says; awaits the server's answer.
    pub async fn open(&self, path: &str, opts: OpenOptions) -> Result<File, Error> {
        let p = self.path(path);
        let handle = self.run(shared::open(p.clone(), &opts)).await?;
        // From here the File's Drop closes the handle.
        let mut f = File {
            sftp: self.clone(),
            handle: handle.into(),
            path: p.into(),
            pos: 0,
            append: opts.append,
            closed: false,
            rbuf: Vec::new(),
            rstart: 0,
            read_op: None,
            wbuf: Vec::new(),
            wbuf_off: 0,
            write_op: None,
            write_err: None,
            seek: None,
            seek_op: None,
        };
        if opts.append {
            f.pos = f.stat().await?.size.unwrap_or(0);
        }
        Ok(f)
    }

    /// paramiko-style `open(path, "r"|"w"|"a"|"x"…)`.
    pub async fn open_mode(&self, path: &str, mode: &str) -> Result<File, Error> {
        self.open(path, OpenOptions::from_mode(mode)?).await
    }

    /// Downloads `remote` to `local`, pipelined. `progress(done, total)`
    /// is called as data arrives. Returns the bytes copied.
    pub async fn get(
        &self,
        remote: &str,
        local: &Path,
        progress: Option<Progress<'_>>,
    ) -> Result<u64, Error> {
        let mut src = self.open(remote, OpenOptions::read()).await?;
        let total = src.stat().await.ok().and_then(|a| a.size).unwrap_or(0);
        let lp = local.to_path_buf();
        let out = tokio::task::spawn_blocking(move || std::fs::File::create(&lp))
            .await
            .map_err(join_error)?
            .map_err(|e| local_error("cannot create", local, e))?;
        // The local file is written at offsets by a blocking task, so the
        // disk and the network work at the same time.
        let requests = self.pipeline().requests;
        let (tx, mut rx) = mpsc::channel::<(u64, Vec<u8>)>(requests.max(4));
        let writer = tokio::task::spawn_blocking(move || -> io::Result<()> {
            while let Some((off, d)) = rx.blocking_recv() {
                out.write_all_at(&d, off)?;
            }
            Ok(())
        });
        let r = self.get_pipelined(&src, tx, total, progress).await;
        // The sender is gone: the writer finishes what it holds.
        let w = writer.await.map_err(join_error)?;
        w.map_err(|e| local_error("write to", local, e))?;
        let n = r?;
        src.close().await?;
        Ok(n)
    }

    async fn get_pipelined(
        &self,
        src: &File,
        tx: mpsc::Sender<(u64, Vec<u8>)>,
        total: u64,
        mut progress: Option<Progress<'_>>,
    ) -> Result<u64, Error> {
        let Pipeline { chunk, requests } = self.pipeline();
        let mut g = Outstanding::new(self);
        let mut dl = Download::new(chunk, requests);
        loop {
            {
                let mut st = self.lock();
                dl.request_more(requests, |offset, len| {
                    let id = st.machine.send(&Request::Read {
                        handle: src.handle.to_vec(),
                        offset,
                        len,
                    })?;
                    g.ids.push(id);
                    Ok(id)
                })?;
            }
            if dl.is_idle() {
                break;
            }
            let replies =
                poll_fn(|cx| self.lock().poll_until(cx, |m| take_any(m, dl.ids()))).await?;
            for (id, r) in replies {
                g.forget(id);
                if let Some((off, d)) = dl.reply(id, r, &src.path)? {
                    if tx.send((off, d)).await.is_err() {
                        // The writer failed; get() reports its error.
                        return Err(Error::new(ErrorKind::Io, "local write failed"));
                    }
                    if let Some(p) = progress.as_mut() {
                        p(dl.done(), total.max(dl.done()));
                    }
                }
            }
        }
        Ok(dl.done())
    }

    /// Uploads `local` to `remote` (created or truncated), pipelined.
    pub async fn put(
        &self,
        local: &Path,
        remote: &str,
        progress: Option<Progress<'_>>,
    ) -> Result<u64, Error> {
        let lp = local.to_path_buf();
        let (mut src, total) = tokio::task::spawn_blocking(move || {
            let f = std::fs::File::open(&lp)?;
            let total = f.metadata().map(|m| m.len()).unwrap_or(0);
            Ok::<_, io::Error>((f, total))
        })
        .await
        .map_err(join_error)?
        .map_err(|e| local_error("cannot open", local, e))?;
        let mut dst = self.open(remote, OpenOptions::write()).await?;
        let Pipeline { chunk, requests } = self.pipeline();
        // A blocking task reads the local file ahead of the network.
        let (tx, rx) = mpsc::channel::<io::Result<Vec<u8>>>(requests.max(4));
        let reader = tokio::task::spawn_blocking(move || loop {
            let mut buf = vec![0u8; chunk as usize];
            let piece = match read_full(&mut src, &mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    buf.truncate(n);
                    Ok(buf)
                }
                Err(e) => Err(e),
            };
            let failed = piece.is_err();
            if tx.blocking_send(piece).is_err() || failed {
                return;
            }
        });
        let r = self.put_pipelined(&dst, rx, total, local, progress).await;
        let _ = reader.await;
        let closed = dst.close_inner().await;
        let n = r?;
        closed?;
        Ok(n)
    }

    async fn put_pipelined(
        &self,
        dst: &File,
        mut rx: mpsc::Receiver<io::Result<Vec<u8>>>,
        total: u64,
        local: &Path,
        mut progress: Option<Progress<'_>>,
    ) -> Result<u64, Error> {
        let requests = self.pipeline().requests;
        let mut g = Outstanding::new(self);
        let mut up = Upload::default();
        let mut acked = 0u64;
        let mut eof = false;
        loop {
            while !eof && up.in_flight() < requests {
                let piece = if up.in_flight() == 0 {
                    rx.recv().await
                } else {
                    match rx.try_recv() {
                        Ok(p) => Some(p),
                        Err(mpsc::error::TryRecvError::Empty) => break,
                        Err(mpsc::error::TryRecvError::Disconnected) => None,
                    }
                };
                match piece {
                    None => eof = true,
                    Some(Err(e)) => return Err(local_error("cannot read", local, e)),
                    Some(Ok(d)) => {
                        let id = self
                            .lock()
                            .machine
                            .send_write(&dst.handle, up.offset(), &d)?;
                        g.ids.push(id);
                        up.sent(id, d.len());
                    }
                }
            }
            if up.in_flight() == 0 {
                break;
            }
            let replies =
                poll_fn(|cx| self.lock().poll_until(cx, |m| take_any(m, up.ids()))).await?;
            for (id, r) in replies {
                g.forget(id);
                acked = up.reply(id, r, &dst.path)?;
                if let Some(p) = progress.as_mut() {
                    p(acked, total.max(acked));
                }
            }
        }
        Ok(acked)
    }

    /// Reads up to `len` bytes at `offset`, many requests in flight for a
    /// large `len`. Shorter at end of file; empty at or past it.
    async fn read_range(
        &self,
        handle: &[u8],
        path: &str,
        offset: u64,
        len: usize,
    ) -> Result<Vec<u8>, Error> {
        let mut g = Outstanding::new(self);
        let mut reqs = Vec::new();
        {
            let mut st = self.lock();
            for (offset, at, n) in shared::read_plan(offset, len, st.settings.pipeline) {
                let id = st.machine.send(&Request::Read {
                    handle: handle.to_vec(),
                    offset,
                    len: n as u32,
                })?;
                g.ids.push(id);
                reqs.push((id, at, n));
            }
        }
        // In order; stop at the first short read (replies still to come
        // are discarded by the guard).
        let mut out = Vec::new();
        for (id, at, n) in reqs {
            let r = self.wait_reply(&mut g, id).await?;
            match shared::read_piece(r, at, out.len(), n, path) {
                Ok(Some(d)) => {
                    let short = d.len() < n;
                    if out.is_empty() {
                        out = d;
                    } else {
                        out.extend_from_slice(&d);
                    }
                    if short {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) if out.is_empty() => return Err(e),
                Err(_) => break,
            }
        }
        Ok(out)
    }

    /// Writes `data` at `offset`, all of it in flight at once.
    async fn write_range(
        &self,
        handle: &[u8],
        path: &str,
        offset: u64,
        data: &[u8],
    ) -> Result<(), Error> {
        let chunk = self.pipeline().chunk as usize;
        let mut g = Outstanding::new(self);
        let mut ids = Vec::new();
        {
            let mut st = self.lock();
            for (i, piece) in data.chunks(chunk).enumerate() {
                let id = st
                    .machine
                    .send_write(handle, offset + (i * chunk) as u64, piece)?;
                g.ids.push(id);
                ids.push(id);
            }
        }
        for id in ids {
            let r = self.wait_reply(&mut g, id).await?;
            check_status(r, "write", path)?;
        }
        Ok(())
    }

    async fn fstat(&self, handle: &[u8], path: &str) -> Result<Attrs, Error> {
        self.run(shared::fstat(handle.to_vec(), path)).await
    }
}

/// An open remote file: `AsyncRead + AsyncWrite + AsyncSeek`.
///
/// Reads fetch ahead (at least one request's worth, up to about 4 MiB in
/// flight for a large buffer) and keep what the caller did not take yet.
/// Writes are written behind, like `tokio::fs::File`: `poll_write` takes
/// the bytes and sends them (many requests at once); an error shows on a
/// later write, on `flush` or on [`close`](Self::close). Call `flush` (or
/// `close`) to know the data is written. Dropped, the file still sends
/// what it took (from a task it spawns, when dropped inside a tokio
/// runtime with data left to send) and closes its handle.
pub struct File {
    sftp: Sftp,
    handle: Arc<[u8]>,
    path: Arc<str>,
    /// The caller's position.
    pos: u64,
    append: bool,
    closed: bool,
    /// Data read ahead: `rbuf[rstart..]` is the file at `pos`.
    rbuf: Vec<u8>,
    rstart: usize,
    /// A read in flight (always at `pos`).
    read_op: Option<BoxFuture<Result<Vec<u8>, Error>>>,
    /// Bytes taken and not yet sent, for the file at `wbuf_off`.
    wbuf: Vec<u8>,
    wbuf_off: u64,
    write_op: Option<BoxFuture<Result<(), Error>>>,
    write_err: Option<Error>,
    seek: Option<SeekFrom>,
    seek_op: Option<BoxFuture<Result<Attrs, Error>>>,
}

impl File {
    /// The file's absolute remote path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// Whether the file was opened for appending (writes go to the end on
    /// servers that honour SSH_FXF_APPEND; the position starts at the end).
    pub fn is_append(&self) -> bool {
        self.append
    }

    /// The attributes (after sending the bytes written so far).
    pub async fn stat(&mut self) -> Result<Attrs, Error> {
        self.flush_writes().await?;
        self.sftp.fstat(&self.handle, &self.path).await
    }

    /// Sets the attributes present in `attrs` on the open file.
    pub async fn setstat(&mut self, attrs: Attrs) -> Result<(), Error> {
        self.flush_writes().await?;
        self.sftp
            .run(shared::fsetstat(self.handle.to_vec(), &self.path, attrs))
            .await
    }

    /// `fsync@openssh.com` (after sending the bytes written so far).
    pub async fn sync(&mut self) -> Result<(), Error> {
        self.flush_writes().await?;
        self.sftp
            .run(shared::fsync(self.handle.to_vec(), &self.path))
            .await
    }

    /// Sends what was written, closes the handle, and reports the first
    /// error of either.
    pub async fn close(mut self) -> Result<(), Error> {
        self.close_inner().await
    }

    async fn close_inner(&mut self) -> Result<(), Error> {
        let flushed = self.flush_writes().await;
        self.read_op = None;
        self.seek_op = None;
        self.closed = true;
        let c = shared::close(self.handle.to_vec(), &self.path);
        let r = self.sftp.call(&c.request).await;
        flushed?;
        c.reply(r?)
    }

    async fn flush_writes(&mut self) -> Result<(), Error> {
        poll_fn(|cx| self.poll_flush_writes(cx)).await
    }

    fn start_write(&mut self) {
        let data = std::mem::take(&mut self.wbuf);
        let (sftp, handle, path) = (self.sftp.clone(), self.handle.clone(), self.path.clone());
        let off = self.wbuf_off;
        self.write_op = Some(Box::pin(async move {
            sftp.write_range(&handle, &path, off, &data).await
        }));
    }

    /// Polls the write in flight, if any: Ready once none is.
    fn poll_write_op(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let Some(op) = self.write_op.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let r = ready!(op.as_mut().poll(cx));
        self.write_op = None;
        Poll::Ready(r)
    }

    /// Sends everything taken and waits for it.
    fn poll_flush_writes(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            if let Some(e) = self.write_err.take() {
                return Poll::Ready(Err(e));
            }
            ready!(self.poll_write_op(cx))?;
            if self.wbuf.is_empty() {
                return Poll::Ready(Ok(()));
            }
            self.start_write();
        }
    }

    fn batch_limit(&self) -> usize {
        let Pipeline { chunk, requests } = self.sftp.pipeline();
        chunk as usize * requests
    }

    fn drop_read_ahead(&mut self) {
        self.read_op = None;
        self.rbuf.clear();
        self.rstart = 0;
    }
}

impl AsyncRead for File {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        // Reads see earlier writes.
        ready!(this.poll_flush_writes(cx)).map_err(to_io)?;
        loop {
            if this.rstart < this.rbuf.len() {
                let n = buf.remaining().min(this.rbuf.len() - this.rstart);
                buf.put_slice(&this.rbuf[this.rstart..this.rstart + n]);
                this.rstart += n;
                this.pos += n as u64;
                if this.rstart == this.rbuf.len() {
                    this.rbuf.clear();
                    this.rstart = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let op = match this.read_op.as_mut() {
                Some(op) => op,
                None => {
                    let Pipeline { chunk, .. } = this.sftp.pipeline();
                    let len = buf.remaining().max(chunk as usize).min(this.batch_limit());
                    let (sftp, handle, path) =
                        (this.sftp.clone(), this.handle.clone(), this.path.clone());
                    let off = this.pos;
                    this.read_op.insert(Box::pin(async move {
                        sftp.read_range(&handle, &path, off, len).await
                    }))
                }
            };
            let r = ready!(op.as_mut().poll(cx));
            this.read_op = None;
            match r {
                // End of file.
                Ok(d) if d.is_empty() => return Poll::Ready(Ok(())),
                Ok(d) => {
                    this.rbuf = d;
                    this.rstart = 0;
                }
                Err(e) => return Poll::Ready(Err(to_io(e))),
            }
        }
    }
}

impl AsyncWrite for File {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if let Some(e) = this.write_err.take() {
            return Poll::Ready(Err(to_io(e)));
        }
        this.drop_read_ahead();
        let limit = this.batch_limit();
        // Move the write in flight on; start the next batch when it is done.
        if let Poll::Ready(r) = this.poll_write_op(cx) {
            r.map_err(to_io)?;
            if !this.wbuf.is_empty() {
                this.start_write();
                if let Poll::Ready(r) = this.poll_write_op(cx) {
                    r.map_err(to_io)?;
                }
            }
        }
        let contiguous = this.wbuf.is_empty() || this.wbuf_off + this.wbuf.len() as u64 == this.pos;
        let room = limit.saturating_sub(this.wbuf.len());
        if room == 0 || !contiguous {
            // A batch is in flight (its waker is registered) and the next
            // one is full.
            return Poll::Pending;
        }
        let n = room.min(buf.len());
        if this.wbuf.is_empty() {
            this.wbuf_off = this.pos;
        }
        this.wbuf.extend_from_slice(&buf[..n]);
        this.pos += n as u64;
        if this.write_op.is_none() {
            this.start_write();
            if let Poll::Ready(Err(e)) = this.poll_write_op(cx) {
                this.write_err = Some(e);
            }
        }
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_writes(cx).map_err(to_io)
    }

    /// Flushes; the handle stays open until [`File::close`] or drop.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_writes(cx).map_err(to_io)
    }
}

impl AsyncSeek for File {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        let this = self.get_mut();
        if this.seek.is_some() {
            return Err(io::Error::other(
                "another seek is in progress; poll_complete it first",
            ));
        }
        this.seek = Some(position);
        Ok(())
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        let this = self.get_mut();
        let Some(target) = this.seek else {
            return Poll::Ready(Ok(this.pos));
        };
        let new = match target {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::Current(d) => this.pos.checked_add_signed(d),
            SeekFrom::End(d) => {
                // The size counts what was written.
                if let Err(e) = ready!(this.poll_flush_writes(cx)) {
                    this.seek = None;
                    return Poll::Ready(Err(to_io(e)));
                }
                let op = match this.seek_op.as_mut() {
                    Some(op) => op,
                    None => {
                        let (sftp, handle, path) =
                            (this.sftp.clone(), this.handle.clone(), this.path.clone());
                        this.seek_op
                            .insert(Box::pin(async move { sftp.fstat(&handle, &path).await }))
                    }
                };
                let r = ready!(op.as_mut().poll(cx));
                this.seek_op = None;
                match r {
                    Ok(a) => a.size.unwrap_or(0).checked_add_signed(d),
                    Err(e) => {
                        this.seek = None;
                        return Poll::Ready(Err(to_io(e)));
                    }
                }
            }
        };
        this.seek = None;
        let Some(p) = new else {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "seek before the start of the file",
            )));
        };
        // Keep read-ahead data the new position still falls in.
        let ahead = (this.rbuf.len() - this.rstart) as u64;
        if p >= this.pos && p - this.pos < ahead {
            this.rstart += (p - this.pos) as usize;
        } else if p != this.pos {
            this.drop_read_ahead();
        }
        this.pos = p;
        Poll::Ready(Ok(p))
    }
}

impl Drop for File {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let write_op = self.write_op.take();
        let wbuf = std::mem::take(&mut self.wbuf);
        if write_op.is_some() || !wbuf.is_empty() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                let (sftp, handle, path) =
                    (self.sftp.clone(), self.handle.clone(), self.path.clone());
                let off = self.wbuf_off;
                rt.spawn(async move {
                    if let Some(op) = write_op {
                        let _ = op.await;
                    }
                    if !wbuf.is_empty() {
                        let _ = sftp.write_range(&handle, &path, off, &wbuf).await;
                    }
                    let _ = sftp
                        .call(&Request::Close {
                            handle: handle.to_vec(),
                        })
                        .await;
                });
                return;
            }
        }
        self.sftp.lock().close_detached(self.handle.to_vec());
    }
}
