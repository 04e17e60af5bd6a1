//! The session state behind an [`Sftp`](super::Sftp)'s lock: the SFTP
//! machine, the channel, and the polling that moves bytes between them.

use std::collections::HashSet;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll, Waker};

use ssh_proto::session::sftp::Settings;
use ssh_proto::sftp::{Request, SftpClient};
use ssh_proto::{Error, ErrorKind};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::Channel;

/// Bytes read from the channel at a time.
const READ_BUF: usize = 256 * 1024;

pub(super) struct State {
    pub(super) machine: SftpClient,
    pub(super) channel: Channel,
    /// Output taken from the machine; `out[out_pos..]` is not yet written.
    pub(super) out: Vec<u8>,
    pub(super) out_pos: usize,
    pub(super) buf: Vec<u8>,
    /// Requests whose waiter went away: their replies are dropped.
    pub(super) abandoned: HashSet<u32>,
    /// Tasks waiting for a reply some other task may read.
    pub(super) waiters: Vec<Waker>,
    pub(super) settings: Settings,
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
    pub(super) fn poll_until<T>(
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
    pub(super) fn close_detached(&mut self, handle: Vec<u8>) {
        if let Ok(id) = self.machine.send(&Request::Close { handle }) {
            self.abandoned.insert(id);
        }
        self.flush_now();
    }
}
