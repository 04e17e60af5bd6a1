//! Pipelined transfers: `get` and `put` between local and remote files,
//! and the ranges a [`File`](super::File) reads and writes with many
//! requests in flight.

use std::future::poll_fn;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

use ssh_proto::session::sftp::{self as shared, check_status, take_any, Download, Upload};
use ssh_proto::sftp::Request;
use ssh_proto::{Error, ErrorKind};
use ssh_std::read_full;
use tokio::sync::mpsc;

use super::{File, OpenOptions, Outstanding, Pipeline, Sftp};

/// A progress callback for `get`/`put`: `(done, total)`. As in
/// ssh-blocking, plus `Send` so the transfer's future can be spawned.
pub type Progress<'a> = &'a mut (dyn FnMut(u64, u64) + Send);

fn local_error(what: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::new(ErrorKind::Io, format!("{what} {}: {e}", path.display()))
}

fn join_error(e: tokio::task::JoinError) -> Error {
    Error::new(ErrorKind::Io, format!("local file task failed: {e}"))
}

impl Sftp {
    /// Downloads `remote` to `local`, pipelined. `progress(done, total)`
    /// is called as data arrives. Returns the bytes copied.
    pub async fn get(
        &self,
        remote: &str,
        local: impl AsRef<Path>,
        progress: Option<Progress<'_>>,
    ) -> Result<u64, Error> {
        let local = local.as_ref();
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
        local: impl AsRef<Path>,
        remote: &str,
        progress: Option<Progress<'_>>,
    ) -> Result<u64, Error> {
        let local = local.as_ref();
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
    pub(super) async fn read_range(
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
    pub(super) async fn write_range(
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
}
