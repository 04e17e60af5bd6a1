//! The async SFTP client: `ssh-blocking`'s [`Sftp`](ssh_blocking::Sftp),
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

use std::collections::{HashSet, VecDeque};
use std::future::{poll_fn, Future};
use std::io::{self, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll, Waker};

use ssh_proto::sftp::codec::ext;
use ssh_proto::sftp::{
    open_flags, status, status_error, Attrs, CheckTarget, Limits, NameEntry, Request, Response,
    SftpClient, StatVfs,
};
use ssh_proto::{Error, ErrorKind};
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

pub use ssh_blocking::sftp::{DirEntry, OpenOptions, Pipeline};

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
    cwd: Option<String>,
    limits: Option<Limits>,
    pipeline: Pipeline,
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

fn to_io(e: Error) -> io::Error {
    let kind = match (e.kind(), e.code()) {
        (ErrorKind::Sftp, Some(status::NO_SUCH_FILE)) => io::ErrorKind::NotFound,
        (ErrorKind::Sftp, Some(status::PERMISSION_DENIED)) => io::ErrorKind::PermissionDenied,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

fn unexpected(what: &str, r: &Response) -> Error {
    Error::protocol(format!("unexpected SFTP reply to {what}: {r:?}"))
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

fn local_error(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Io, format!("{what} {}: {e}", path.display()))
}

fn join_error(e: tokio::task::JoinError) -> Error {
    Error::new(ErrorKind::Io, format!("local file task failed: {e}"))
}

/// The SFTP open flags for `o` (as ssh-blocking computes them).
fn flags_of(o: &OpenOptions) -> u32 {
    let mut f = 0;
    if o.read {
        f |= open_flags::READ;
    }
    if o.write || o.append {
        f |= open_flags::WRITE;
    }
    if o.append {
        f |= open_flags::APPEND;
    }
    if o.create {
        f |= open_flags::CREAT;
    }
    if o.truncate {
        f |= open_flags::TRUNC;
    }
    if o.exclusive {
        f |= open_flags::EXCL | open_flags::CREAT;
    }
    f
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

/// Takes every arrived reply among `ids`.
fn take_any(m: &mut SftpClient, ids: impl Iterator<Item = u32>) -> Option<Vec<(u32, Response)>> {
    let v: Vec<_> = ids
        .filter_map(|id| m.take_reply(id).map(|r| (id, r)))
        .collect();
    (!v.is_empty()).then_some(v)
}

impl Sftp {
    /// Starts SFTP on a channel whose `sftp` subsystem is already running.
    pub async fn new(channel: Channel) -> Result<Sftp, Error> {
        let mut machine = SftpClient::new();
        if channel
            .peer_version()
            .is_some_and(|v| ssh_proto::sftp::draft_symlink_peer(&v))
        {
            machine.set_draft_symlink(true);
        }
        let st = State {
            machine,
            channel,
            out: Vec::new(),
            out_pos: 0,
            buf: Vec::new(),
            abandoned: HashSet::new(),
            waiters: Vec::new(),
            cwd: None,
            limits: None,
            pipeline: Pipeline {
                chunk: 32 * 1024,
                requests: 64,
            },
        };
        let sftp = Sftp {
            inner: Arc::new(Inner {
                state: Mutex::new(st),
            }),
        };
        poll_fn(|cx| sftp.lock().poll_until(cx, |m| m.version())).await?;
        let has_limits = sftp.lock().machine.extension(ext::LIMITS).is_some();
        if has_limits {
            if let Ok(Response::ExtendedReply(d)) = sftp.call(&Request::Limits).await {
                if let Ok(l) = Limits::decode(&d) {
                    let mut st = sftp.lock();
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

    /// Requests sent whose replies have not been taken yet, counting those
    /// of dropped futures whose replies have not arrived yet (they are
    /// thrown away when they do).
    pub fn in_flight(&self) -> usize {
        self.lock().machine.in_flight()
    }

    fn path(&self, p: &str) -> String {
        self.lock().resolve(p)
    }

    // ------------------------------------------------------- directories

    /// paramiko's `chdir`: later relative paths resolve against it. `None`
    /// goes back to the server's default.
    pub async fn chdir(&self, path: Option<&str>) -> Result<(), Error> {
        let Some(p) = path else {
            self.lock().cwd = None;
            return Ok(());
        };
        let real = self.realpath(p).await?;
        let a = self.stat(&real).await?;
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
    pub async fn getcwd(&self) -> Result<String, Error> {
        let cwd = self.lock().cwd.clone();
        match cwd {
            Some(c) => Ok(c),
            None => self.realpath(".").await,
        }
    }

    pub async fn realpath(&self, path: &str) -> Result<String, Error> {
        let p = self.path(path);
        match self.call(&Request::Realpath { path: p.clone() }).await? {
            Response::Name(mut v) if !v.is_empty() => Ok(v.swap_remove(0).filename),
            r => Err(status_or(r, &p)),
        }
    }

    /// Entries of a directory with their attributes, `.` and `..` left out.
    pub async fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>, Error> {
        let p = self.path(path);
        let handle = match self.call(&Request::Opendir { path: p.clone() }).await? {
            Response::Handle(h) => h,
            r => return Err(status_or(r, &p)),
        };
        // Closed even if this future is dropped half-way.
        let mut guard = HandleGuard {
            sftp: self,
            handle: Some(handle.clone()),
        };
        let mut out = Vec::new();
        let result = loop {
            match self
                .call(&Request::Readdir {
                    handle: handle.clone(),
                })
                .await
            {
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
        let handle = guard.disarm();
        let _ = self.call(&Request::Close { handle }).await;
        result.map(|_| out)
    }

    pub async fn mkdir(&self, path: &str, mode: u32) -> Result<(), Error> {
        let p = self.path(path);
        let attrs = Attrs {
            permissions: Some(mode),
            ..Default::default()
        };
        let r = self
            .call(&Request::Mkdir {
                path: p.clone(),
                attrs,
            })
            .await?;
        check_status(r, "mkdir", &p)
    }

    pub async fn rmdir(&self, path: &str) -> Result<(), Error> {
        let p = self.path(path);
        let r = self.call(&Request::Rmdir { path: p.clone() }).await?;
        check_status(r, "rmdir", &p)
    }

    // ------------------------------------------------------------- paths

    pub async fn remove(&self, path: &str) -> Result<(), Error> {
        let p = self.path(path);
        let r = self.call(&Request::Remove { path: p.clone() }).await?;
        check_status(r, "remove", &p)
    }

    /// Renames, replacing `new` when the server offers
    /// `posix-rename@openssh.com` (plain SFTP rename fails if it exists).
    pub async fn rename(&self, old: &str, new: &str) -> Result<(), Error> {
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
        check_status(self.call(&req).await?, "rename", &old)
    }

    /// Creates `link` pointing at `target`.
    pub async fn symlink(&self, target: &str, link: &str) -> Result<(), Error> {
        let l = self.path(link);
        let r = self
            .call(&Request::Symlink {
                target: target.to_string(),
                link: l.clone(),
            })
            .await?;
        check_status(r, "symlink", &l)
    }

    pub async fn readlink(&self, path: &str) -> Result<String, Error> {
        let p = self.path(path);
        match self.call(&Request::Readlink { path: p.clone() }).await? {
            Response::Name(mut v) if !v.is_empty() => Ok(v.swap_remove(0).filename),
            r => Err(status_or(r, &p)),
        }
    }

    pub async fn hardlink(&self, old: &str, new: &str) -> Result<(), Error> {
        let (o, n) = (self.path(old), self.path(new));
        let r = self
            .call(&Request::Hardlink {
                old: o.clone(),
                new: n,
            })
            .await?;
        check_status(r, "hardlink", &o)
    }

    // -------------------------------------------------------- attributes

    async fn attrs_call(&self, req: Request, p: &str) -> Result<Attrs, Error> {
        match self.call(&req).await? {
            Response::Attrs(a) => Ok(a),
            r => Err(status_or(r, p)),
        }
    }

    pub async fn stat(&self, path: &str) -> Result<Attrs, Error> {
        let p = self.path(path);
        self.attrs_call(Request::Stat { path: p.clone() }, &p).await
    }

    pub async fn lstat(&self, path: &str) -> Result<Attrs, Error> {
        let p = self.path(path);
        self.attrs_call(Request::Lstat { path: p.clone() }, &p)
            .await
    }

    pub async fn setstat(&self, path: &str, attrs: Attrs) -> Result<(), Error> {
        let p = self.path(path);
        let r = self
            .call(&Request::Setstat {
                path: p.clone(),
                attrs,
            })
            .await?;
        check_status(r, "setstat", &p)
    }

    pub async fn chmod(&self, path: &str, mode: u32) -> Result<(), Error> {
        self.setstat(
            path,
            Attrs {
                permissions: Some(mode),
                ..Default::default()
            },
        )
        .await
    }

    pub async fn chown(&self, path: &str, uid: u32, gid: u32) -> Result<(), Error> {
        self.setstat(
            path,
            Attrs {
                uid_gid: Some((uid, gid)),
                ..Default::default()
            },
        )
        .await
    }

    /// Sets access and modification times (seconds since the epoch).
    pub async fn set_times(&self, path: &str, atime: u32, mtime: u32) -> Result<(), Error> {
        self.setstat(
            path,
            Attrs {
                times: Some((atime, mtime)),
                ..Default::default()
            },
        )
        .await
    }

    pub async fn truncate(&self, path: &str, size: u64) -> Result<(), Error> {
        self.setstat(
            path,
            Attrs {
                size: Some(size),
                ..Default::default()
            },
        )
        .await
    }

    pub async fn statvfs(&self, path: &str) -> Result<StatVfs, Error> {
        let p = self.path(path);
        match self.call(&Request::Statvfs { path: p.clone() }).await? {
            Response::ExtendedReply(d) => StatVfs::decode(&d),
            r => Err(status_or(r, &p)),
        }
    }

    /// paramiko's `check()`: the server hashes the file (`check-file-name`).
    /// Returns (algorithm used, hash bytes).
    pub async fn check(&self, path: &str, algorithms: &str) -> Result<(String, Vec<u8>), Error> {
        let p = self.path(path);
        let r = self
            .call(&Request::CheckFile {
                target: CheckTarget::Name(p.clone()),
                algorithms: algorithms.to_string(),
                offset: 0,
                len: 0,
                block_size: 0,
            })
            .await?;
        match r {
            Response::ExtendedReply(d) => {
                let mut r = ssh_proto::wire::Reader::new(&d);
                let alg = String::from_utf8_lossy(r.string()?).into_owned();
                Ok((alg, r.rest().to_vec()))
            }
            r => Err(status_or(r, &p)),
        }
    }

    // ------------------------------------------------------------- files

    pub async fn open(&self, path: &str, opts: OpenOptions) -> Result<File, Error> {
        let p = self.path(path);
        let attrs = Attrs {
            permissions: opts.mode,
            ..Default::default()
        };
        let r = self
            .call(&Request::Open {
                path: p.clone(),
                flags: flags_of(&opts),
                attrs,
            })
            .await?;
        let handle = match r {
            Response::Handle(h) => h,
            r => return Err(status_or(r, &p)),
        };
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
        // id -> (offset, length asked)
        let mut inflight: Vec<(u32, u64, u32)> = Vec::with_capacity(requests);
        let mut next = 0u64;
        let mut eof_at: Option<u64> = None;
        let mut done = 0u64;
        // Gaps left by short reads, fetched again.
        let mut holes: Vec<(u64, u32)> = Vec::new();
        loop {
            {
                let mut st = self.lock();
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
                        handle: src.handle.to_vec(),
                        offset: off,
                        len,
                    })?;
                    g.ids.push(id);
                    inflight.push((id, off, len));
                }
            }
            if inflight.is_empty() {
                break;
            }
            let replies = poll_fn(|cx| {
                self.lock()
                    .poll_until(cx, |m| take_any(m, inflight.iter().map(|r| r.0)))
            })
            .await?;
            for (id, r) in replies {
                g.forget(id);
                let i = inflight.iter().position(|x| x.0 == id).unwrap_or(0);
                let (_, off, len) = inflight.swap_remove(i);
                match r {
                    Response::Data(d) => {
                        if d.is_empty() || d.len() > len as usize {
                            return Err(Error::protocol(format!(
                                "SFTP read of {len} bytes at {off} returned {}",
                                d.len()
                            )));
                        }
                        let n = d.len();
                        if tx.send((off, d)).await.is_err() {
                            // The writer failed; get() reports its error.
                            return Err(Error::new(ErrorKind::Io, "local write failed"));
                        }
                        done += n as u64;
                        if (n as u32) < len {
                            holes.push((off + n as u64, len - n as u32));
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
        }
        Ok(done)
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
        let mut inflight: VecDeque<(u32, u64)> = VecDeque::new();
        let mut off = 0u64;
        let mut acked = 0u64;
        let mut eof = false;
        loop {
            while !eof && inflight.len() < requests {
                let piece = if inflight.is_empty() {
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
                        let id = self.lock().machine.send_write(&dst.handle, off, &d)?;
                        g.ids.push(id);
                        inflight.push_back((id, d.len() as u64));
                        off += d.len() as u64;
                    }
                }
            }
            if inflight.is_empty() {
                break;
            }
            let replies = poll_fn(|cx| {
                self.lock()
                    .poll_until(cx, |m| take_any(m, inflight.iter().map(|r| r.0)))
            })
            .await?;
            for (id, r) in replies {
                g.forget(id);
                let i = inflight.iter().position(|x| x.0 == id).unwrap_or(0);
                let (_, n) = inflight.remove(i).unwrap_or((id, 0));
                check_status(r, "write", &dst.path)?;
                acked += n;
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
        let Pipeline { chunk, requests } = self.pipeline();
        let chunk = chunk as usize;
        let mut g = Outstanding::new(self);
        let mut reqs = Vec::new();
        let mut at = 0usize;
        {
            let mut st = self.lock();
            while at < len && reqs.len() < requests {
                let n = chunk.min(len - at);
                let id = st.machine.send(&Request::Read {
                    handle: handle.to_vec(),
                    offset: offset + at as u64,
                    len: n as u32,
                })?;
                g.ids.push(id);
                reqs.push((id, at, n));
                at += n;
            }
        }
        // In order; stop at the first short read (replies still to come
        // are discarded by the guard).
        let mut out = Vec::new();
        for (id, at, n) in reqs {
            match self.wait_reply(&mut g, id).await? {
                Response::Data(d) if d.len() <= n && at == out.len() => {
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
                Response::Data(_) => break,
                Response::Status { code, .. } if code == status::EOF => break,
                r if out.is_empty() => return Err(status_or(r, path)),
                _ => break,
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
        self.attrs_call(
            Request::Fstat {
                handle: handle.to_vec(),
            },
            path,
        )
        .await
    }
}

fn read_full(r: &mut impl io::Read, buf: &mut [u8]) -> io::Result<usize> {
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

    pub async fn setstat(&mut self, attrs: Attrs) -> Result<(), Error> {
        self.flush_writes().await?;
        let r = self
            .sftp
            .call(&Request::Fsetstat {
                handle: self.handle.to_vec(),
                attrs,
            })
            .await?;
        check_status(r, "fsetstat", &self.path)
    }

    /// `fsync@openssh.com` (after sending the bytes written so far).
    pub async fn sync(&mut self) -> Result<(), Error> {
        self.flush_writes().await?;
        let r = self
            .sftp
            .call(&Request::Fsync {
                handle: self.handle.to_vec(),
            })
            .await?;
        check_status(r, "fsync", &self.path)
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
        let r = self
            .sftp
            .call(&Request::Close {
                handle: self.handle.to_vec(),
            })
            .await;
        flushed?;
        check_status(r?, "close", &self.path)
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
