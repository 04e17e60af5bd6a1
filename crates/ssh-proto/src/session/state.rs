//! [`Session`]: a [`Connection`] plus what the application learned from
//! its events, so that "has the reply come?", "is there data?", "did the
//! command exit?" have answers without I/O.

use std::collections::{HashMap, VecDeque};

use crate::{ChannelId, Connection, Error, ErrorKind, Event, PublicKey, Role, Stream};

/// How a remote command was ended by a signal (RFC 4254 §6.10).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExitSignal {
    /// The signal name without the `SIG` prefix (`TERM`, `KILL`, …).
    pub signal: String,
    /// Whether the process dumped core.
    pub core_dumped: bool,
    /// The peer's error message (often empty).
    pub message: String,
}

/// What the session knows about one channel from the core's events.
#[derive(Debug, Default)]
pub struct ChannelFacts {
    opened: Option<Result<(), Error>>,
    replies: VecDeque<bool>,
    exit_status: Option<u32>,
    exit_signal: Option<ExitSignal>,
    eof: bool,
    closed: bool,
    /// The application dropped its handle: forget the channel once closed.
    dropped: bool,
}

impl ChannelFacts {
    /// The outcome of the open: `None` while the peer has not answered.
    pub fn open_result(&self) -> Option<&Result<(), Error>> {
        self.opened.as_ref()
    }
    /// The exit status the peer sent, if any.
    pub fn exit_status(&self) -> Option<u32> {
        self.exit_status
    }
    /// The signal that ended the remote command, if one did.
    pub fn exit_signal(&self) -> Option<&ExitSignal> {
        self.exit_signal.as_ref()
    }
    /// The peer sent EOF (or closed).
    pub fn eof(&self) -> bool {
        self.eof
    }
    /// The channel is closed in both directions.
    pub fn closed(&self) -> bool {
        self.closed
    }
}

/// A [`Connection`] with the bookkeeping every adapter needs: per-channel
/// facts (open result, request replies, exit status or signal, EOF and
/// close), the refusal of what nobody asked for, the auth events of the
/// attempt in progress, a server's queue of decisions, and the reason the
/// connection ended.
///
/// An adapter keeps one `Session` per connection (behind a lock when
/// several threads or tasks use it), calls [`Session::absorb`] after every
/// input or command, and asks the `poll_*` methods whether an operation is
/// finished: each returns `None` while the caller must wait for more
/// events, the outcome otherwise.
///
/// ```
/// use std::sync::Arc;
/// use std::time::Instant;
/// use ssh_proto::{Config, Connection, Session};
///
/// let conn = Connection::client(Arc::new(Config::default()), ssh_proto::os_rng(), Instant::now())?;
/// let mut session = Session::new(conn);
/// session.absorb();
/// assert!(session.take_host_key().is_none()); // nothing received yet
/// # Ok::<(), ssh_proto::Error>(())
/// ```
pub struct Session {
    conn: Connection,
    server: bool,
    requests: VecDeque<Event>,
    chans: HashMap<ChannelId, ChannelFacts>,
    host_key: Option<PublicKey>,
    auth_events: VecDeque<Event>,
    kex_done: u32,
    banner: Option<String>,
    closed: Option<Error>,
    events_seen: u64,
    room_event: bool,
    touched: Vec<ChannelId>,
    touched_all: bool,
    /// Global requests and forwarded channels, once the first is sent.
    pub(super) book: Option<Box<super::forwarding::Book>>,
}

impl Session {
    /// Wraps a connection made with [`Connection::client`] or
    /// [`Connection::server`].
    pub fn new(conn: Connection) -> Session {
        let server = conn.role() == Role::Server;
        Session {
            conn,
            server,
            requests: VecDeque::new(),
            chans: HashMap::new(),
            host_key: None,
            auth_events: VecDeque::new(),
            kex_done: 0,
            banner: None,
            closed: None,
            events_seen: 0,
            room_event: false,
            touched: Vec::new(),
            touched_all: false,
            book: None,
        }
    }

    /// The connection.
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// The connection, to give it commands (call [`Session::absorb`] after).
    pub fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// Whether this is the server side.
    pub fn is_server(&self) -> bool {
        self.server
    }

    fn touch(&mut self, channel: ChannelId) {
        if !self.touched_all && !self.touched.contains(&channel) {
            if self.touched.len() >= 64 {
                self.touched_all = true;
                self.touched.clear();
            } else {
                self.touched.push(channel);
            }
        }
    }

    /// Pulls every pending event out of the core into the session's
    /// tables, answering what the application never asked for: a client
    /// refuses channel opens and requests it did not ask for.
    pub fn absorb(&mut self) {
        while let Some(e) = self.conn.poll_event() {
            self.events_seen += 1;
            match &e {
                // Writers wake when a useful part of the window is back (a
                // quarter of the most the peer ever granted), not for every
                // small adjust: fewer context switches per GiB.
                Event::ChannelWindow { channel } => {
                    let w = self.conn.send_window(*channel);
                    if w > 0 && w >= (self.conn.send_window_peak(*channel) / 4).min(1 << 20) {
                        self.room_event = true;
                        self.touch(*channel);
                    }
                }
                Event::ChannelClosed { channel } | Event::ChannelOpened { channel } => {
                    self.room_event = true;
                    self.touch(*channel);
                }
                Event::Disconnected(_) => {
                    self.room_event = true;
                    self.touched_all = true;
                }
                Event::ChannelData { channel, .. }
                | Event::ChannelEof { channel }
                | Event::ChannelOpenFailed { channel, .. }
                | Event::ChannelRequestReply { channel, .. }
                | Event::ExitStatus { channel, .. }
                | Event::ExitSignal { channel, .. } => self.touch(*channel),
                _ => self.touched_all = true,
            }
            match e {
                Event::HostKey(k) => self.host_key = Some(k),
                Event::KexDone(_) => self.kex_done += 1,
                Event::AuthBanner(b) => self.banner = Some(b),
                e @ (Event::AuthSuccess
                | Event::AuthFailure { .. }
                | Event::AuthPrompt { .. }
                | Event::PasswordChangeRequired { .. }) => self.auth_events.push_back(e),
                Event::ChannelOpened { channel } => {
                    self.chans.entry(channel).or_default().opened = Some(Ok(()))
                }
                Event::ChannelOpenFailed {
                    channel,
                    reason,
                    description,
                } => {
                    let i = self.chans.entry(channel).or_default();
                    i.opened = Some(Err(Error::with_code(
                        ErrorKind::ChannelOpen,
                        reason.code(),
                        format!("{description} (reason {})", reason.code()),
                    )));
                    i.closed = true;
                }
                Event::ChannelRequestReply { channel, success } => self
                    .chans
                    .entry(channel)
                    .or_default()
                    .replies
                    .push_back(success),
                Event::ExitStatus { channel, status } => {
                    self.chans.entry(channel).or_default().exit_status = Some(status)
                }
                Event::ExitSignal {
                    channel,
                    signal,
                    core_dumped,
                    message,
                } => {
                    self.chans.entry(channel).or_default().exit_signal = Some(ExitSignal {
                        signal,
                        core_dumped,
                        message,
                    })
                }
                Event::ChannelEof { channel } => self.chans.entry(channel).or_default().eof = true,
                Event::ChannelClosed { channel } => {
                    let i = self.chans.entry(channel).or_default();
                    i.closed = true;
                    i.eof = true;
                    if i.dropped {
                        self.chans.remove(&channel);
                    }
                    if self.server {
                        self.requests.push_back(Event::ChannelClosed { channel });
                        self.touched_all = true;
                    }
                }
                e @ (Event::AuthRequest { .. }
                | Event::Authenticated { .. }
                | Event::ChannelOpenRequest { .. }
                | Event::ChannelRequest { .. }
                | Event::GlobalRequest { .. })
                    if self.server =>
                {
                    self.requests.push_back(e)
                }
                Event::ChannelOpenRequest {
                    channel,
                    kind,
                    data,
                } => self.forwarded_open(channel, &kind, &data),
                Event::GlobalRequestReply {
                    success,
                    data,
                    bound_port,
                } => self.global_reply(super::forwarding::GlobalReply {
                    success,
                    data,
                    bound_port,
                }),
                Event::GlobalRequest {
                    want_reply: true, ..
                } => {
                    let _ = self.conn.global_request_reply(false, &[]);
                }
                Event::ChannelRequest {
                    channel,
                    want_reply: true,
                    ..
                } => {
                    let _ = self.conn.channel_request_reply(channel, false);
                }
                Event::Disconnected(err) if self.closed.is_none() => self.closed = Some(err),
                _ => {}
            }
        }
        if self.closed.is_none() {
            if let Some(e) = self.conn.error() {
                self.closed = Some(e.clone());
                self.touched_all = true;
            }
        }
    }

    /// Ok while the connection lives; the reason it ended otherwise.
    pub fn check(&self) -> Result<(), Error> {
        match &self.closed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// Why the connection ended, once it has.
    pub fn closed(&self) -> Option<&Error> {
        self.closed.as_ref()
    }

    /// Records why the connection ended (an I/O failure seen by the
    /// adapter, the end of the byte stream); the first reason stays.
    pub fn set_closed(&mut self, why: Error) {
        if self.closed.is_none() {
            self.closed = Some(why);
            self.touched_all = true;
        }
    }

    /// Events absorbed so far: a waiter need not wake while it stays put.
    pub fn events_seen(&self) -> u64 {
        self.events_seen
    }

    /// Whether send room appeared (a useful window adjust, an open or a
    /// close) since the last call.
    pub fn take_room_event(&mut self) -> bool {
        std::mem::take(&mut self.room_event)
    }

    /// The channels whose facts changed since the last call, or `None`
    /// when anything may have changed (a connection-wide event): lets an
    /// async adapter wake only the tasks that wait on those channels.
    pub fn take_touched(&mut self, into: &mut Vec<ChannelId>) -> bool {
        into.clear();
        into.extend_from_slice(&self.touched);
        self.touched.clear();
        std::mem::take(&mut self.touched_all)
    }

    /// The host key the server proved it holds, once (client side): answer
    /// it with [`Connection::accept_host_key`] or
    /// [`Connection::reject_host_key`].
    pub fn take_host_key(&mut self) -> Option<PublicKey> {
        self.host_key.take()
    }

    /// Key exchanges finished so far.
    pub fn kex_done(&self) -> u32 {
        self.kex_done
    }

    /// The authentication banner the server sent, if any.
    pub fn banner(&self) -> Option<&str> {
        self.banner.as_deref()
    }

    /// The next auth event of the attempt in progress (client side).
    pub fn pop_auth_event(&mut self) -> Option<Event> {
        self.auth_events.pop_front()
    }

    /// The next decision for the server application, in the order the
    /// client asked: auth requests, channel opens and requests, global
    /// requests, and channel closes.
    pub fn pop_request(&mut self) -> Option<Event> {
        self.requests.pop_front()
    }

    /// Whether a decision waits in [`Session::pop_request`].
    pub fn has_request(&self) -> bool {
        !self.requests.is_empty()
    }

    /// What is known of a channel.
    pub fn channel(&self, id: ChannelId) -> Option<&ChannelFacts> {
        self.chans.get(&id)
    }

    /// The outcome of opening `id`: `None` while the peer has not answered.
    pub fn poll_open(&self, id: ChannelId) -> Option<Result<(), Error>> {
        self.chans.get(&id).and_then(|c| c.opened.clone())
    }

    /// Records that the application accepted the peer's open of `id`.
    pub fn accept_channel(&mut self, id: ChannelId) -> Result<(), Error> {
        self.conn.accept_channel(id)?;
        self.chans.entry(id).or_default().opened = Some(Ok(()));
        Ok(())
    }

    /// The reply to a channel request we sent: Ok if granted, an error if
    /// refused or the channel closed first.
    pub fn poll_reply(&mut self, id: ChannelId, what: &str) -> Option<Result<(), Error>> {
        let c = self.chans.get_mut(&id)?;
        if let Some(ok) = c.replies.pop_front() {
            return Some(if ok {
                Ok(())
            } else {
                Err(Error::new(
                    ErrorKind::ChannelRequest,
                    format!("{what} request refused by the server"),
                ))
            });
        }
        if c.closed {
            return Some(Err(Error::new(
                ErrorKind::ChannelRequest,
                format!("{what}: channel closed"),
            )));
        }
        None
    }

    /// Reads from one stream of a channel; Ok(0) at EOF.
    pub fn poll_read(
        &mut self,
        id: ChannelId,
        stream: Stream,
        buf: &mut [u8],
    ) -> Option<Result<usize, Error>> {
        if self.conn.channel_buffered(id, stream) > 0 {
            return Some(self.conn.channel_read(id, stream, buf));
        }
        let info = self.chans.get(&id);
        if info.is_none_or(|c| c.eof || c.closed) || !self.conn.channel_exists(id) {
            return Some(Ok(0));
        }
        if let Some(e) = &self.closed {
            return Some(Err(e.clone()));
        }
        None
    }

    /// Sends what the window allows of `buf` (at least one byte).
    pub fn poll_write(
        &mut self,
        id: ChannelId,
        stream: Stream,
        buf: &[u8],
    ) -> Option<Result<usize, Error>> {
        if !self.conn.channel_exists(id) || self.chans.get(&id).is_some_and(|c| c.closed) {
            return Some(Err(Error::new(ErrorKind::Closed, "channel is closed")));
        }
        if self.conn.send_window(id) > 0 {
            return Some(match stream {
                Stream::Stdout => self.conn.send_data(id, buf),
                Stream::Stderr => self.conn.send_stderr(id, buf),
            });
        }
        None
    }

    /// Moves both streams of a channel into `out`/`err`; done at EOF.
    pub fn poll_read_all(
        &mut self,
        id: ChannelId,
        out: &mut Vec<u8>,
        err: &mut Vec<u8>,
    ) -> Option<Result<(), Error>> {
        for (stream, dst) in [(Stream::Stdout, &mut *out), (Stream::Stderr, &mut *err)] {
            let n = self.conn.channel_buffered(id, stream);
            if n > 0 {
                dst.extend_from_slice(self.conn.channel_peek(id, stream));
                if let Err(e) = self.conn.channel_consume(id, stream, n) {
                    return Some(Err(e));
                }
            }
        }
        let info = self.chans.get(&id);
        let ended = info.is_none_or(|c| c.eof || c.closed)
            || !self.conn.channel_exists(id)
            || self.closed.is_some();
        let drained = self.conn.channel_buffered(id, Stream::Stdout) == 0
            && self.conn.channel_buffered(id, Stream::Stderr) == 0;
        (ended && drained).then_some(Ok(()))
    }

    /// Feeds `input` to a command's stdin while collecting its stdout and
    /// stderr, so neither side waits on the other (writing everything
    /// before reading deadlocks once the output fills the window).
    /// `input` is advanced past what was sent; EOF follows the last byte
    /// (`eof_sent` records it). Done when the output has ended.
    pub fn poll_exchange(
        &mut self,
        id: ChannelId,
        input: &mut &[u8],
        eof_sent: &mut bool,
        out: &mut Vec<u8>,
        err: &mut Vec<u8>,
    ) -> Option<Result<(), Error>> {
        let open =
            |s: &Self| s.conn.channel_exists(id) && !s.chans.get(&id).is_some_and(|c| c.closed);
        while !input.is_empty() && open(self) && self.conn.send_window(id) > 0 {
            match self.conn.send_data(id, input) {
                Ok(0) => break,
                Ok(n) => *input = &input[n..],
                Err(e) => return Some(Err(e)),
            }
        }
        if input.is_empty() && !*eof_sent {
            if let Err(e) = self.send_eof(id) {
                return Some(Err(e));
            }
            *eof_sent = true;
        }
        self.poll_read_all(id, out, err)
    }

    /// Done when the channel has closed: the exit status if one came.
    /// Unread data is dropped so it cannot stall the close.
    pub fn poll_exit_status(&mut self, id: ChannelId) -> Option<Result<Option<u32>, Error>> {
        let c = self.chans.get(&id);
        if c.is_none_or(|c| c.closed) || self.closed.is_some() {
            return Some(Ok(c.and_then(|c| c.exit_status)));
        }
        for stream in [Stream::Stdout, Stream::Stderr] {
            let n = self.conn.channel_buffered(id, stream);
            if n > 0 {
                let _ = self.conn.channel_consume(id, stream, n);
            }
        }
        None
    }

    /// The signal that ended the command on `id`, if one did.
    pub fn exit_signal(&self, id: ChannelId) -> Option<ExitSignal> {
        self.chans.get(&id).and_then(|c| c.exit_signal.clone())
    }

    /// Sends EOF; a channel the peer has already closed (and the core
    /// forgotten) needs none, so that is not an error.
    pub fn send_eof(&mut self, id: ChannelId) -> Result<(), Error> {
        if !self.conn.channel_exists(id) || self.chans.get(&id).is_some_and(|c| c.closed) {
            return Ok(());
        }
        self.conn.send_eof(id)
    }

    /// Drops the application's interest in a channel: close it, forget it
    /// once closed.
    pub fn release(&mut self, id: ChannelId) {
        let _ = self.conn.close_channel(id);
        if let Some(c) = self.chans.get_mut(&id) {
            c.dropped = true;
            if c.closed {
                self.chans.remove(&id);
            }
        }
    }
}
