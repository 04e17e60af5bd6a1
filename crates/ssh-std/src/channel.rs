//! Channels of either role: `Read + Write` byte streams over one SSH
//! channel, with stderr separate.

use std::io::{self, Read, Write};
use std::sync::Arc;

use ssh_proto::{ChannelId, Connection, Error, ExitSignal, PtyRequest, Stream};

use crate::driver::{ChannelRelease, Handle};

/// A channel: `Read` gives stdout, `Write` sends stdin. Reading and writing
/// may happen from different threads through `&Channel`.
///
/// `exec` with input: write stdin while reading stdout (another thread, or
/// [`Channel::read_all`] after [`Channel::send_eof`] only when the input is
/// small): writing everything before reading deadlocks once the output
/// exceeds the 2 MiB window. A server allows a limited number of session
/// channels per connection (OpenSSH's and this crate's `MaxSessions`:
/// 10 by default); more are refused.
///
/// Clones are handles to the same channel (move one to a reader thread,
/// keep one for writing); the channel closes when the last one is
/// dropped, or at [`Channel::close`]. On a server, the dispatcher keeps
/// the channel open until the handler keeps a handle of its own (from
/// `channel_opened`, or a clone in `channel_request`); from then on the
/// handler's last drop closes it.
#[derive(Clone)]
pub struct Channel {
    conn: Arc<Handle>,
    id: ChannelId,
    _last: Arc<ChannelRelease>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel").field("id", &self.id).finish()
    }
}

impl Channel {
    pub(crate) fn new(conn: Arc<Handle>, id: ChannelId) -> Channel {
        let last = ChannelRelease::new(conn.clone(), id);
        Channel {
            conn,
            id,
            _last: last,
        }
    }

    /// A handle on channel `id` kept open by `last` (a server
    /// dispatcher's [`HeldChannel`](crate::driver::HeldChannel)).
    pub(crate) fn with_release(
        conn: Arc<Handle>,
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

    /// The peer's SSH version string (e.g. `SSH-2.0-OpenSSH_9.2p1`).
    pub fn peer_version(&self) -> Option<String> {
        self.conn
            .shared()
            .lock()
            .conn()
            .peer_version()
            .map(str::to_string)
    }

    fn request(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<(), Error>,
        what: &str,
    ) -> Result<(), Error> {
        let sh = &self.conn.shared();
        sh.with(|s| f(s.conn_mut()))?;
        let id = self.id;
        sh.wait(|s| s.poll_reply(id, what))
    }

    /// Asks the server to run `command` on this channel; blocks until it
    /// accepts or refuses (`ChannelRequestFailed`). Read its output with
    /// `Read` / [`Channel::stderr`] and its status with
    /// [`Channel::exit_status`].
    pub fn exec(&self, command: &str) -> Result<(), Error> {
        let id = self.id;
        self.request(|c| c.exec(id, command), "exec")
    }
    /// Asks for the user's login shell; blocks until the server answers.
    pub fn shell(&self) -> Result<(), Error> {
        let id = self.id;
        self.request(|c| c.shell(id), "shell")
    }
    /// Asks for a subsystem (e.g. `sftp`); blocks until the server answers.
    pub fn subsystem(&self, name: &str) -> Result<(), Error> {
        let id = self.id;
        self.request(|c| c.subsystem(id, name), "subsystem")
    }
    /// Requests a pseudo-terminal.
    pub fn request_pty(
        &self,
        term: &str,
        cols: u32,
        rows: u32,
        modes: &[(u8, u32)],
    ) -> Result<(), Error> {
        let id = self.id;
        let pty = pty_request(term, cols, rows, modes);
        self.request(|c| c.request_pty(id, &pty), "pty-req")
    }
    /// Sends an environment variable (before `exec`/`shell`); the server
    /// may ignore it, and no reply is awaited.
    pub fn set_env(&self, name: &str, value: &str) -> Result<(), Error> {
        let id = self.id;
        self.conn
            .shared()
            .with(|s| s.conn_mut().set_env(id, name, value))
    }
    /// Tells the server the terminal's new size (after
    /// [`Channel::request_pty`]); no reply is awaited.
    pub fn window_change(&self, cols: u32, rows: u32) -> Result<(), Error> {
        let id = self.id;
        self.conn
            .shared()
            .with(|s| s.conn_mut().window_change(id, cols, rows, 0, 0))
    }
    /// Sends a signal (`TERM`, `INT`, ... without `SIG`) to the remote
    /// process; the server may ignore it.
    pub fn signal(&self, name: &str) -> Result<(), Error> {
        let id = self.id;
        self.conn.shared().with(|s| s.conn_mut().signal(id, name))
    }
    /// No more input from us.
    pub fn send_eof(&self) -> Result<(), Error> {
        let id = self.id;
        self.conn.shared().with(|s| s.send_eof(id))
    }
    /// Closes the channel (no more data either way); does not wait for the
    /// peer's close. Dropping the last clone of the `Channel` closes it
    /// too.
    pub fn close(&self) -> Result<(), Error> {
        let id = self.id;
        self.conn.shared().with(|s| s.conn_mut().close_channel(id))
    }

    /// Reads from one stream; Ok(0) at EOF.
    pub fn read_stream(&self, stream: Stream, buf: &mut [u8]) -> Result<usize, Error> {
        read_stream(&self.conn, self.id, stream, buf)
    }
    /// Reads stdout and stderr to the end.
    pub fn read_all(&mut self) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let id = self.id;
        let mut out = Vec::new();
        let mut err = Vec::new();
        let sh = &self.conn.shared();
        sh.wait(|s| s.poll_read_all(id, &mut out, &mut err))?;
        Ok((out, err))
    }

    /// Writes `input` to the command's stdin (then EOF) while reading its
    /// stdout and stderr to the end, so that neither side waits on the
    /// other whatever the sizes.
    pub fn exchange(&self, input: &[u8]) -> Result<(Vec<u8>, Vec<u8>), Error> {
        let id = self.id;
        let (mut input, mut eof) = (input, false);
        let (mut out, mut err) = (Vec::new(), Vec::new());
        self.conn
            .shared()
            .wait(|s| s.poll_exchange(id, &mut input, &mut eof, &mut out, &mut err))?;
        Ok((out, err))
    }

    /// Writes some bytes, waiting for window if there is none.
    pub fn write_data(&self, stream: Stream, buf: &[u8]) -> Result<usize, Error> {
        write_data(&self.conn, self.id, stream, buf)
    }

    /// Waits until the channel closes; returns the exit status if one came.
    pub fn exit_status(&self) -> Result<Option<u32>, Error> {
        let id = self.id;
        let sh = &self.conn.shared();
        sh.wait(|s| s.poll_exit_status(id))
    }

    /// The exit signal, if the command was killed (after [`exit_status`](Self::exit_status)).
    pub fn exit_signal(&self) -> Option<ExitSignal> {
        let g = self.conn.shared().lock();
        g.exit_signal(self.id)
    }

    /// Server side: sends the command's exit status (before EOF and close).
    pub fn send_exit_status(&self, status: u32) -> Result<(), Error> {
        let id = self.id;
        self.conn
            .shared()
            .with(|s| s.conn_mut().send_exit_status(id, status))
    }

    /// Server side: reports that the command was killed by `signal` (a
    /// name without "SIG", such as "TERM").
    pub fn send_exit_signal(
        &self,
        signal: &str,
        core_dumped: bool,
        message: &str,
    ) -> Result<(), Error> {
        let id = self.id;
        self.conn.shared().with(|s| {
            s.conn_mut()
                .send_exit_signal(id, signal, core_dumped, message)
        })
    }

    /// Writes to the stderr stream (extended data), waiting for window.
    pub fn write_stderr(&self, buf: &[u8]) -> Result<usize, Error> {
        self.write_data(Stream::Stderr, buf)
    }

    /// The stderr stream: reading gives the peer's stderr (client side),
    /// writing sends extended data (server side).
    pub fn stderr(&self) -> ChannelStderr {
        ChannelStderr {
            conn: self.conn.clone(),
            id: self.id,
        }
    }
}

/// The pty-req a client sends: terminal type, size in characters (no
/// pixels), modes. For adapters that drive a connection themselves (the
/// `ssh-tokio` channel builds its request with it).
pub fn pty_request(term: &str, cols: u32, rows: u32, modes: &[(u8, u32)]) -> PtyRequest {
    PtyRequest {
        term: term.into(),
        cols,
        rows,
        width_px: 0,
        height_px: 0,
        modes: modes.to_vec(),
    }
}

fn read_stream(
    conn: &Handle,
    id: ChannelId,
    stream: Stream,
    buf: &mut [u8],
) -> Result<usize, Error> {
    if buf.is_empty() {
        return Ok(0);
    }
    let sh = &conn.shared();
    sh.wait(|s| s.poll_read(id, stream, buf))
}

fn write_data(conn: &Handle, id: ChannelId, stream: Stream, buf: &[u8]) -> Result<usize, Error> {
    if buf.is_empty() {
        return Ok(0);
    }
    let sh = &conn.shared();
    let n = sh.wait_room(|s| s.poll_write(id, stream, buf))?;
    Ok(n)
}

fn to_io(e: Error) -> io::Error {
    io::Error::other(e)
}

impl Read for &Channel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_stream(Stream::Stdout, buf).map_err(to_io)
    }
}
impl Read for Channel {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}
impl Write for &Channel {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_data(Stream::Stdout, buf).map_err(to_io)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
impl Write for Channel {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The stderr stream of a channel.
pub struct ChannelStderr {
    conn: Arc<Handle>,
    id: ChannelId,
}

impl Read for ChannelStderr {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        read_stream(&self.conn, self.id, Stream::Stderr, buf).map_err(to_io)
    }
}

impl Write for ChannelStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        write_data(&self.conn, self.id, Stream::Stderr, buf).map_err(to_io)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
