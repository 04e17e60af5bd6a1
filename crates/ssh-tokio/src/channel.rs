//! Channels: `AsyncRead + AsyncWrite` byte streams over one SSH channel,
//! with stderr separate.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use ssh_proto::{ChannelId, Connection, Error, ExitSignal, Stream};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use ssh_std::driver::ChannelRelease;

use crate::{Conn, Key};

/// A channel: `AsyncRead` gives stdout, `AsyncWrite` sends stdin (client)
/// or stdout (server). All methods take `&self`, so one task may read while
/// another writes.
///
/// `exec` with input: write stdin while reading stdout (another task, or
/// [`Channel::read_all`] after [`Channel::send_eof`] only when the input is
/// small): writing everything before reading deadlocks once the output
/// exceeds the 2 MiB window. A server allows a limited number of session
/// channels per connection (OpenSSH's and this crate's `MaxSessions`:
/// 10 by default); more are refused.
///
/// Clones are handles to the same channel (move one to a reading task,
/// keep one for writing); the channel closes when the last one is
/// dropped, or at [`Channel::close`]. On a server, the dispatcher keeps
/// the channel open until the handler keeps a handle of its own (from
/// `channel_opened`, or a clone in `channel_request`); from then on the
/// handler's last drop closes it.
#[derive(Clone)]
pub struct Channel {
    conn: Arc<Conn>,
    id: ChannelId,
    _last: Arc<ChannelRelease>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").field("id", &self.id).finish()
    }
}

impl Channel {
    pub(crate) fn new(conn: Arc<Conn>, id: ChannelId) -> Channel {
        let last = ChannelRelease::new(conn.handle.clone(), id);
        Channel {
            conn,
            id,
            _last: last,
        }
    }

    /// A handle on channel `id` kept open by `last` (a server
    /// dispatcher's [`HeldChannel`](ssh_std::driver::HeldChannel)).
    pub(crate) fn with_release(
        conn: Arc<Conn>,
        id: ChannelId,
        last: Arc<ChannelRelease>,
    ) -> Channel {
        Channel {
            conn,
            id,
            _last: last,
        }
    }

    /// What keeps this channel open.
    pub(crate) fn release(&self) -> &Arc<ChannelRelease> {
        &self._last
    }

    /// Our id of this channel.
    pub fn id(&self) -> ChannelId {
        self.id
    }

    /// The peer's SSH version string.
    pub fn peer_version(&self) -> Option<String> {
        self.conn
            .shared()
            .lock()
            .conn()
            .peer_version()
            .map(str::to_string)
    }

    async fn request(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<(), Error>,
        what: &str,
    ) -> Result<(), Error> {
        self.conn.with(|s| f(s.conn_mut()))?;
        let id = self.id;
        self.conn
            .wait(Key::Chan(id), |s| s.poll_reply(id, what))
            .await
    }

    /// Asks the server to run `command` on this channel; awaits its
    /// answer (`ChannelRequestFailed` when refused). See the type's docs on
    /// writing input while reading output.
    pub async fn exec(&self, command: &str) -> Result<(), Error> {
        let id = self.id;
        self.request(|c| c.exec(id, command), "exec").await
    }
    /// Asks for the user's login shell; awaits the server's answer.
    pub async fn shell(&self) -> Result<(), Error> {
        let id = self.id;
        self.request(|c| c.shell(id), "shell").await
    }
    /// Asks for a subsystem (e.g. `sftp`); awaits the server's answer.
    pub async fn subsystem(&self, name: &str) -> Result<(), Error> {
        let id = self.id;
        self.request(|c| c.subsystem(id, name), "subsystem").await
    }
    /// Requests a pseudo-terminal `term` of `cols` x `rows` with terminal
    /// `modes` (opcode, value); awaits the server's answer.
    pub async fn request_pty(
        &self,
        term: &str,
        cols: u32,
        rows: u32,
        modes: &[(u8, u32)],
    ) -> Result<(), Error> {
        let id = self.id;
        let pty = ssh_std::pty_request(term, cols, rows, modes);
        self.request(|c| c.request_pty(id, &pty), "pty-req").await
    }
    /// Sends an environment variable (before `exec`/`shell`); the server
    /// may ignore it, and no reply is awaited.
    pub fn set_env(&self, name: &str, value: &str) -> Result<(), Error> {
        let id = self.id;
        self.conn.with(|s| s.conn_mut().set_env(id, name, value))
    }
    /// Tells the server the terminal's new size; no reply is awaited.
    pub fn window_change(&self, cols: u32, rows: u32) -> Result<(), Error> {
        let id = self.id;
        self.conn
            .with(|s| s.conn_mut().window_change(id, cols, rows, 0, 0))
    }
    /// Sends a signal (`TERM`, `INT`, ... without `SIG`) to the remote
    /// process; the server may ignore it.
    pub fn signal(&self, name: &str) -> Result<(), Error> {
        let id = self.id;
        self.conn.with(|s| s.conn_mut().signal(id, name))
    }
    /// No more data from us.
    pub fn send_eof(&self) -> Result<(), Error> {
        let id = self.id;
        self.conn.with(|s| s.send_eof(id))
    }
    /// Closes the channel; does not wait for the peer's close. Dropping the
    /// `Channel` closes it too.
    pub fn close(&self) -> Result<(), Error> {
        let id = self.id;
        self.conn.with(|s| s.conn_mut().close_channel(id))
    }

    /// Reads from one stream; Ok(0) at EOF.
    pub async fn read_stream(&self, stream: Stream, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        let id = self.id;
        self.conn
            .wait(Key::Chan(id), |s| s.poll_read(id, stream, buf))
            .await
    }

    /// Writes some bytes (at least one), waiting for window.
    pub async fn write_data(&self, stream: Stream, buf: &[u8]) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        let id = self.id;
        self.conn
            .wait(Key::Write(id), |s| s.poll_write(id, stream, buf))
            .await
    }

    /// Writes all of `buf`.
    pub async fn write_all_data(&self, stream: Stream, mut buf: &[u8]) -> Result<(), Error> {
        while !buf.is_empty() {
            let n = self.write_data(stream, buf).await?;
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Writes `input` to the command's stdin (then EOF) while reading its
    /// stdout and stderr to the end, so that neither side waits on the
    /// other whatever the sizes.
    pub async fn exchange(&self, input: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let id = self.id;
        let (mut input, mut eof) = (input, false);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        self.conn
            .wait(Key::Write(id), |s| {
                s.poll_exchange(id, &mut input, &mut eof, &mut out, &mut err)
            })
            .await?;
        Ok((out, err))
    }

    /// Reads stdout and stderr to the end.
    pub async fn read_all(&self) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let id = self.id;
        let mut out = Vec::new();
        let mut err = Vec::new();
        self.conn
            .wait(Key::Chan(id), |s| s.poll_read_all(id, &mut out, &mut err))
            .await?;
        Ok((out, err))
    }

    /// Waits until the channel closes; the exit status if one came.
    pub async fn exit_status(&self) -> Result<Option<u32>, Error> {
        let id = self.id;
        self.conn
            .wait(Key::Chan(id), |s| s.poll_exit_status(id))
            .await
    }

    /// The exit signal, if the command was killed.
    pub fn exit_signal(&self) -> Option<ExitSignal> {
        let g = self.conn.shared().lock();
        g.exit_signal(self.id)
    }

    /// Server side: the command's exit status.
    pub fn send_exit_status(&self, status: u32) -> Result<(), Error> {
        let id = self.id;
        self.conn
            .with(|s| s.conn_mut().send_exit_status(id, status))
    }

    /// Server side: the command was killed by `signal` (no "SIG").
    pub fn send_exit_signal(
        &self,
        signal: &str,
        core_dumped: bool,
        message: &str,
    ) -> Result<(), Error> {
        let id = self.id;
        self.conn.with(|s| {
            s.conn_mut()
                .send_exit_signal(id, signal, core_dumped, message)
        })
    }

    /// The stderr stream: `AsyncRead` of the peer's stderr (client),
    /// `AsyncWrite` of extended data (server).
    pub fn stderr(&self) -> ChannelStderr {
        ChannelStderr {
            conn: self.conn.clone(),
            id: self.id,
        }
    }
}

fn to_io(e: Error) -> io::Error {
    io::Error::other(e)
}

fn poll_read_stream(
    conn: &Conn,
    id: ChannelId,
    stream: Stream,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    if buf.remaining() == 0 {
        return Poll::Ready(Ok(()));
    }
    let dst = buf.initialize_unfilled();
    match conn.poll_wait(Key::Chan(id), cx, &mut |s| s.poll_read(id, stream, dst)) {
        Poll::Ready(Ok(n)) => {
            buf.advance(n);
            Poll::Ready(Ok(()))
        }
        Poll::Ready(Err(e)) => Poll::Ready(Err(to_io(e))),
        Poll::Pending => Poll::Pending,
    }
}

fn poll_write_stream(
    conn: &Conn,
    id: ChannelId,
    stream: Stream,
    cx: &mut Context<'_>,
    buf: &[u8],
) -> Poll<io::Result<usize>> {
    if buf.is_empty() {
        return Poll::Ready(Ok(0));
    }
    conn.poll_wait(Key::Write(id), cx, &mut |s| s.poll_write(id, stream, buf))
        .map_err(to_io)
}

fn poll_eof(conn: &Conn, id: ChannelId) -> Poll<io::Result<()>> {
    Poll::Ready(conn.with(|s| s.send_eof(id)).map_err(to_io))
}

impl AsyncRead for Channel {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read_stream(&self.conn, self.id, Stream::Stdout, cx, buf)
    }
}

impl AsyncWrite for Channel {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write_stream(&self.conn, self.id, Stream::Stdout, cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    /// Sends EOF (the channel stays open for reading).
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        poll_eof(&self.conn, self.id)
    }
}

/// The stderr stream of a channel.
pub struct ChannelStderr {
    conn: Arc<Conn>,
    id: ChannelId,
}

impl AsyncRead for ChannelStderr {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        poll_read_stream(&self.conn, self.id, Stream::Stderr, cx, buf)
    }
}

impl AsyncWrite for ChannelStderr {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        poll_write_stream(&self.conn, self.id, Stream::Stderr, cx, buf)
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
