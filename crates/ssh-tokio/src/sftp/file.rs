//! [`File`]: an open remote file, `AsyncRead + AsyncWrite + AsyncSeek`,
//! and opening one.

use std::future::{poll_fn, Future};
use std::io::{self, SeekFrom};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use ssh_proto::session::sftp as shared;
use ssh_proto::sftp::{Attrs, Request};
use ssh_proto::Error;
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

use super::{OpenOptions, Pipeline, Sftp};

fn to_io(e: Error) -> io::Error {
    io::Error::from(e)
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + Sync>>;

impl Sftp {
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
    pub(super) handle: Arc<[u8]>,
    pub(super) path: Arc<str>,
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

    pub(super) async fn close_inner(&mut self) -> Result<(), Error> {
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
