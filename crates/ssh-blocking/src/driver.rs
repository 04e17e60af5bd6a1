//! Moves bytes between a socket and a `Connection`, with threads.
//!
//! One reader thread feeds received bytes to the core and runs its timers.
//! Output is written by whichever thread produced it, one writer at a time
//! (the first thread to find output becomes the writer and keeps writing
//! until nothing is left, so bytes go out in order and no lock is held
//! while the socket blocks).
//!
//! An event loop (the `ssh-mio` adapter) can own the socket instead: the
//! connection is then made with `Output::Loop`, handles wake the loop
//! when output is queued or held input can go on, and the loop moves bytes
//! with `Shared::loop_recv`, `Shared::loop_take_output` and friends.
//! The handle types (`Client`, `Channel`, `Sftp`, `ServerHandle`) are the
//! same either way.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ssh_proto::{ChannelId, Connection, Error, ErrorKind, Event, PublicKey};

use crate::client::ExitSignal;

/// What the adapter keeps per channel, from the core's events.
#[derive(Default)]
pub struct ChanInfo {
    pub opened: Option<Result<(), Error>>,
    pub replies: VecDeque<bool>,
    pub exit_status: Option<u32>,
    pub exit_signal: Option<ExitSignal>,
    pub eof: bool,
    pub closed: bool,
    /// The application dropped its handle: forget the channel once closed.
    pub dropped: bool,
}

pub struct State {
    pub conn: Connection,
    /// Server role: decisions are queued in `requests` for the dispatcher.
    pub server: bool,
    /// Server: auth attempts, channel opens and requests, global requests,
    /// closes — in the order the core reported them.
    pub requests: VecDeque<Event>,
    /// The reader holds input the core has no room for yet.
    pub reader_blocked: bool,
    out: Vec<u8>,
    writing: bool,
    pub chans: HashMap<ChannelId, ChanInfo>,
    pub host_key: Option<PublicKey>,
    pub auth_events: VecDeque<Event>,
    pub kex_done: u32,
    pub banner: Option<String>,
    pub closed: Option<Error>,
    /// Counts events absorbed (waiters are woken only when it moves).
    pub ev_count: u64,
    /// An event writers care about (window, close) was absorbed.
    pub room_event: bool,
    /// Threads waiting on `cond` / `room` (a notify with no waiter would
    /// still cost a system call).
    cond_waiters: usize,
    room_waiters: usize,
}

impl State {
    /// Pulls every pending event out of the core into the adapter's tables.
    pub fn absorb(&mut self) {
        while let Some(e) = self.conn.poll_event() {
            self.ev_count += 1;
            match &e {
                // Writers wake when a useful part of the window is back (a
                // quarter of the most the peer ever granted), not for every
                // small adjust: fewer context switches per GiB.
                Event::ChannelWindow { channel } => {
                    let w = self.conn.send_window(*channel);
                    if w > 0 && w >= (self.conn.send_window_peak(*channel) / 4).min(1 << 20) {
                        self.room_event = true;
                    }
                }
                Event::ChannelClosed { .. }
                | Event::Disconnected(_)
                | Event::ChannelOpened { .. } => self.room_event = true,
                _ => {}
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
                Event::ChannelOpenRequest { channel, .. } => {
                    // A client accepts no channels it did not ask for (yet).
                    let _ = self.conn.reject_channel(
                        channel,
                        ssh_proto::ChannelOpenFailureReason::AdministrativelyProhibited,
                        "not accepted by this client",
                    );
                }
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
            }
        }
    }

    pub fn check(&self) -> Result<(), Error> {
        match &self.closed {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }
}

/// Who writes the core's output to the socket.
pub enum Output {
    /// Whichever thread finds output writes it to this writer.
    Direct(Mutex<Box<dyn Write + Send>>),
    /// An event loop owns the socket: this wakes it (called with the state
    /// locked, so it must not lock it again).
    Loop(Box<dyn Fn() + Send + Sync>),
}

pub struct Shared {
    pub state: Mutex<State>,
    /// Signalled when events arrive (readers, auth and request waiters).
    pub cond: Condvar,
    /// Signalled when send room appears (window adjust, output written).
    pub room: Condvar,
    output: Output,
    /// Called (with the state locked) whenever `cond` or `room` waiters
    /// would be woken: async adapters wake their tasks from here.
    hook: Option<Box<dyn Fn() + Send + Sync>>,
}

fn io_err(e: io::Error, what: &str) -> Error {
    Error::new(ErrorKind::Io, format!("{what}: {e}"))
}

impl Shared {
    pub fn new(conn: Connection, writer: Box<dyn Write + Send>) -> Arc<Shared> {
        Self::with_output(conn, Output::Direct(Mutex::new(writer)))
    }

    pub fn with_output(conn: Connection, output: Output) -> Arc<Shared> {
        Self::with_hook(conn, output, None)
    }

    /// Like [`Shared::with_output`], with a hook called whenever waiters
    /// would be woken (events absorbed, send room, the end).
    pub fn with_hook(
        conn: Connection,
        output: Output,
        hook: Option<Box<dyn Fn() + Send + Sync>>,
    ) -> Arc<Shared> {
        let server = conn.role() == ssh_proto::Role::Server;
        let direct = matches!(output, Output::Direct(_));
        Arc::new(Shared {
            state: Mutex::new(State {
                conn,
                server,
                requests: VecDeque::new(),
                reader_blocked: false,
                // A loop keeps its own output buffer.
                out: if direct {
                    Vec::with_capacity(256 * 1024)
                } else {
                    Vec::new()
                },
                writing: false,
                chans: HashMap::new(),
                host_key: None,
                auth_events: VecDeque::new(),
                kex_done: 0,
                banner: None,
                closed: None,
                ev_count: 0,
                room_event: false,
                cond_waiters: 0,
                room_waiters: 0,
            }),
            cond: Condvar::new(),
            room: Condvar::new(),
            output,
            hook,
        })
    }

    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a command on the core, then absorbs events, wakes waiters and
    /// writes output.
    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> Result<T, Error>) -> Result<T, Error> {
        let mut g = self.lock();
        g.check()?;
        let before = g.ev_count;
        let r = f(&mut g);
        g.absorb();
        self.notify(&mut g, before);
        self.flush(g);
        r
    }

    /// Wakes waiters that may care about what was absorbed since `before`.
    pub fn notify(&self, g: &mut State, before: u64) {
        let ev = g.ev_count != before || g.closed.is_some() || g.reader_blocked;
        let room = std::mem::take(&mut g.room_event) || g.closed.is_some();
        if ev && g.cond_waiters > 0 {
            self.cond.notify_all();
        }
        if room && g.room_waiters > 0 {
            self.room.notify_all();
        }
        if ev || room {
            self.run_hook();
        }
    }

    /// Calls the async adapter's hook, if any.
    pub fn run_hook(&self) {
        if let Some(h) = &self.hook {
            h();
        }
    }

    /// Waits on `cond` (events) or `room` (send room), with an optional
    /// timeout, keeping the waiter counts.
    pub fn sleep<'a>(
        &'a self,
        mut g: MutexGuard<'a, State>,
        room: bool,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, State> {
        let cv = if room { &self.room } else { &self.cond };
        if room {
            g.room_waiters += 1;
        } else {
            g.cond_waiters += 1;
        }
        let mut g = match timeout {
            Some(t) => cv.wait_timeout(g, t).unwrap_or_else(|p| p.into_inner()).0,
            None => cv.wait(g).unwrap_or_else(|p| p.into_inner()),
        };
        if room {
            g.room_waiters -= 1;
        } else {
            g.cond_waiters -= 1;
        }
        g
    }

    /// Waits until `f` gives an answer; fails if the connection ends first.
    pub fn wait<T>(
        &self,
        f: impl FnMut(&mut State) -> Option<Result<T, Error>>,
    ) -> Result<T, Error> {
        self.wait_on(false, f)
    }

    /// Like `wait`, for writers: woken when send room appears.
    pub fn wait_room<T>(
        &self,
        f: impl FnMut(&mut State) -> Option<Result<T, Error>>,
    ) -> Result<T, Error> {
        self.wait_on(true, f)
    }

    fn wait_on<T>(
        &self,
        room: bool,
        mut f: impl FnMut(&mut State) -> Option<Result<T, Error>>,
    ) -> Result<T, Error> {
        let mut g = self.lock();
        loop {
            let before = g.ev_count;
            if let Some(r) = f(&mut g) {
                g.absorb();
                self.notify(&mut g, before);
                self.flush(g);
                return r;
            }
            g.check()?;
            g = self.sleep(g, room, None);
        }
    }

    /// Waits (bounded) until everything queued has been written.
    pub fn drain(&self, limit: Duration) {
        if let Output::Loop(wake) = &self.output {
            // The loop writes what is left before it closes the socket; a
            // handle dropped on the loop's own thread must not wait for it.
            let _g = self.lock();
            wake();
            return;
        }
        let deadline = Instant::now() + limit;
        let mut g = self.lock();
        loop {
            if g.closed.as_ref().is_some_and(|e| e.kind() == ErrorKind::Io) {
                return;
            }
            if !g.writing && g.out.is_empty() && g.conn.transmit().is_none() {
                return;
            }
            if !g.writing {
                self.flush(g);
                g = self.lock();
                continue;
            }
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            g = self.sleep(g, true, Some(deadline - now));
        }
    }

    /// Writes whatever the core has queued (one writer at a time).
    pub fn flush<'a>(&'a self, mut g: MutexGuard<'a, State>) {
        let writer = match &self.output {
            Output::Direct(w) => w,
            Output::Loop(wake) => {
                if g.reader_blocked || g.closed.is_some() || g.conn.transmit().is_some() {
                    wake();
                }
                return;
            }
        };
        loop {
            if g.out.len() < 1024 * 1024 && g.conn.transmit().is_some() {
                let st = &mut *g;
                st.conn.take_transmit(&mut st.out);
            }
            if g.writing || g.out.is_empty() {
                return;
            }
            g.writing = true;
            let mut buf = std::mem::take(&mut g.out);
            drop(g);
            let res = {
                let mut w = writer.lock().unwrap_or_else(|p| p.into_inner());
                w.write_all(&buf).and_then(|_| w.flush())
            };
            g = self.lock();
            g.writing = false;
            buf.clear();
            if g.out.is_empty() {
                // Keep the larger buffer for the next swap.
                g.out = buf;
            }
            if let Err(e) = res {
                if g.closed.is_none() {
                    g.closed = Some(io_err(e, "write to peer failed"));
                }
                g.out.clear();
                if g.cond_waiters > 0 {
                    self.cond.notify_all();
                }
                if g.room_waiters > 0 {
                    self.room.notify_all();
                }
                return;
            }
            // Room opened in the core's send buffer: wake blocked writers.
            if g.room_waiters > 0 {
                self.room.notify_all();
            }
        }
    }
}

/// The event-loop side of a connection made with [`Output::Loop`].
impl Shared {
    /// Feeds received bytes; returns how many the core took. Fewer than
    /// `data.len()` means the core holds back until the application reads:
    /// keep the rest and offer it again when the loop is woken.
    pub fn loop_recv(&self, now: Instant, data: &[u8]) -> usize {
        let mut g = self.lock();
        let before = g.ev_count;
        let mut off = 0;
        while off < data.len() && g.closed.is_none() {
            match g.conn.recv(now, &data[off..]) {
                Ok(0) => break,
                Ok(n) => off += n,
                Err(_) => {
                    g.absorb();
                    break;
                }
            }
            g.absorb();
        }
        g.absorb();
        g.reader_blocked = off < data.len() && g.closed.is_none();
        self.notify(&mut g, before);
        // Replies the input produced: wake the loop's writer.
        self.flush(g);
        off
    }

    /// The peer closed its end.
    pub fn loop_eof(&self, now: Instant) {
        let mut g = self.lock();
        let before = g.ev_count;
        g.conn.recv_eof(now);
        g.absorb();
        if g.closed.is_none() {
            g.closed = Some(Error::new(ErrorKind::Closed, "connection closed by peer"));
        }
        self.notify(&mut g, before);
        self.flush(g);
    }

    /// The socket failed.
    pub fn loop_io_error(&self, e: io::Error, what: &str) {
        let mut g = self.lock();
        if g.closed.is_none() {
            g.closed = Some(io_err(e, what));
        }
        let before = g.ev_count;
        self.notify(&mut g, before);
        if g.room_waiters > 0 {
            self.room.notify_all();
        }
        self.run_hook();
    }

    /// Runs the core's timers.
    pub fn loop_timeout(&self, now: Instant) {
        let mut g = self.lock();
        let before = g.ev_count;
        g.conn.handle_timeout(now);
        g.absorb();
        self.notify(&mut g, before);
        self.flush(g);
    }

    /// When the core next wants [`Shared::loop_timeout`].
    pub fn loop_deadline(&self) -> Option<Instant> {
        let g = self.lock();
        if g.closed.is_some() {
            return None;
        }
        g.conn.poll_timeout()
    }

    /// Appends the core's queued output to `buf` (up to about `max` bytes
    /// in `buf`), waking writers blocked on send room. Returns whether the
    /// input the loop holds may be offered again, and whether the
    /// connection has ended.
    pub fn loop_take_output(&self, buf: &mut Vec<u8>, max: usize) -> (bool, bool) {
        let mut g = self.lock();
        let mut took = false;
        while buf.len() < max && g.conn.transmit().is_some() {
            g.conn.take_transmit(buf);
            took = true;
        }
        if took {
            if g.room_waiters > 0 {
                self.room.notify_all();
            }
            self.run_hook();
        }
        (g.reader_blocked, g.closed.is_some())
    }
}

/// Keeps a connection alive: when the last handle (the application's
/// connection object and its channels) goes, the connection is
/// disconnected and the socket shut down.
pub struct Handle {
    pub shared: Arc<Shared>,
    pub sock: Option<TcpStream>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        {
            let mut g = self.shared.lock();
            if g.closed.is_none() {
                g.conn.disconnect(11, "disconnected by user");
                g.absorb();
            }
            self.shared.flush(g);
        }
        self.shared.drain(Duration::from_secs(2));
        if let Some(s) = &self.sock {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The reader thread: socket to core, plus the core's timers.
pub fn reader_loop(
    shared: Arc<Shared>,
    mut reader: Box<dyn Read + Send>,
    timer_sock: Option<TcpStream>,
) {
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let deadline = {
            let g = shared.lock();
            if g.closed.is_some() {
                return;
            }
            g.conn.poll_timeout()
        };
        if let Some(s) = &timer_sock {
            let t = deadline.map(|d| {
                d.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1))
            });
            let _ = s.set_read_timeout(t);
        }
        let r = reader.read(&mut buf);
        let now = Instant::now();
        let mut g = shared.lock();
        let before = g.ev_count;
        match r {
            Ok(0) => {
                g.conn.recv_eof(now);
                g.absorb();
                if g.closed.is_none() {
                    g.closed = Some(Error::new(ErrorKind::Closed, "connection closed by peer"));
                }
                shared.notify(&mut g, before);
                shared.flush(g);
                return;
            }
            Ok(n) => {
                let mut off = 0;
                loop {
                    match g.conn.recv(now, &buf[off..n]) {
                        Ok(t) => off += t,
                        Err(_) => {
                            g.absorb();
                            break;
                        }
                    }
                    g.absorb();
                    if off >= n || g.closed.is_some() {
                        break;
                    }
                    // The core holds input until the application decides
                    // something (e.g. reads channel data): wait for that.
                    shared.notify(&mut g, before);
                    g.reader_blocked = true;
                    g = shared.sleep(g, false, Some(Duration::from_millis(50)));
                    g.reader_blocked = false;
                }
                shared.notify(&mut g, before);
                shared.flush(g);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                g.conn.handle_timeout(now);
                g.absorb();
                shared.notify(&mut g, before);
                shared.flush(g);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                if g.closed.is_none() {
                    g.closed = Some(io_err(e, "read from peer failed"));
                }
                shared.notify(&mut g, before);
                return;
            }
        }
    }
}

/// The conditions channel operations wait for, shared by this adapter's
/// blocking waits and async adapters' polls: each returns None while the
/// caller must wait, the outcome otherwise.
pub mod ops {
    use super::State;
    use ssh_proto::{ChannelId, Error, ErrorKind, Stream};

    /// The reply to a channel request we sent: Ok if granted, an error if refused or closed first.
    pub fn reply(s: &mut State, id: ChannelId, what: &str) -> Option<Result<(), Error>> {
        let c = s.chans.get_mut(&id)?;
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

    /// Reads from one stream; Ok(0) at EOF.
    pub fn read(
        s: &mut State,
        id: ChannelId,
        stream: Stream,
        buf: &mut [u8],
    ) -> Option<Result<usize, Error>> {
        if s.conn.channel_buffered(id, stream) > 0 {
            return Some(s.conn.channel_read(id, stream, buf));
        }
        let info = s.chans.get(&id);
        if info.is_none_or(|c| c.eof || c.closed) || !s.conn.channel_exists(id) {
            return Some(Ok(0));
        }
        if let Some(e) = &s.closed {
            return Some(Err(e.clone()));
        }
        None
    }

    /// Sends what the window allows (at least one byte).
    pub fn write(
        s: &mut State,
        id: ChannelId,
        stream: Stream,
        buf: &[u8],
    ) -> Option<Result<usize, Error>> {
        if !s.conn.channel_exists(id) || s.chans.get(&id).is_some_and(|c| c.closed) {
            return Some(Err(Error::new(ErrorKind::Closed, "channel is closed")));
        }
        if s.conn.send_window(id) > 0 {
            return Some(match stream {
                Stream::Stdout => s.conn.send_data(id, buf),
                Stream::Stderr => s.conn.send_stderr(id, buf),
            });
        }
        None
    }

    /// Moves both streams into `out`/`err`; done at EOF.
    pub fn read_all(
        s: &mut State,
        id: ChannelId,
        out: &mut Vec<u8>,
        err: &mut Vec<u8>,
    ) -> Option<Result<(), Error>> {
        for (stream, dst) in [(Stream::Stdout, &mut *out), (Stream::Stderr, &mut *err)] {
            let n = s.conn.channel_buffered(id, stream);
            if n > 0 {
                dst.extend_from_slice(s.conn.channel_peek(id, stream));
                if let Err(e) = s.conn.channel_consume(id, stream, n) {
                    return Some(Err(e));
                }
            }
        }
        let info = s.chans.get(&id);
        let ended = info.is_none_or(|c| c.eof || c.closed)
            || !s.conn.channel_exists(id)
            || s.closed.is_some();
        let drained = s.conn.channel_buffered(id, Stream::Stdout) == 0
            && s.conn.channel_buffered(id, Stream::Stderr) == 0;
        (ended && drained).then_some(Ok(()))
    }

    /// Waits for the close; the exit status if one came. Unread data is
    /// dropped so it cannot stall the close.
    pub fn exit_status(s: &mut State, id: ChannelId) -> Option<Result<Option<u32>, Error>> {
        let c = s.chans.get(&id);
        if c.is_none_or(|c| c.closed) || s.closed.is_some() {
            return Some(Ok(c.and_then(|c| c.exit_status)));
        }
        for stream in [Stream::Stdout, Stream::Stderr] {
            let n = s.conn.channel_buffered(id, stream);
            if n > 0 {
                let _ = s.conn.channel_consume(id, stream, n);
            }
        }
        None
    }

    /// Sends EOF; a channel the peer has already closed (and the core
    /// forgotten) needs none, so that is not an error.
    pub fn send_eof(s: &mut State, id: ChannelId) -> Result<(), Error> {
        if !s.conn.channel_exists(id) || s.chans.get(&id).is_some_and(|c| c.closed) {
            return Ok(());
        }
        s.conn.send_eof(id)
    }

    /// Drops the application's interest in a channel: close it, forget it
    /// once closed.
    pub fn release(s: &mut State, id: ChannelId) {
        let _ = s.conn.close_channel(id);
        if let Some(c) = s.chans.get_mut(&id) {
            c.dropped = true;
            if c.closed {
                s.chans.remove(&id);
            }
        }
    }
}
