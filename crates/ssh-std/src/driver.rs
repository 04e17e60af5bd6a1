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

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ssh_proto::{ChannelId, Connection, Error, ErrorKind, Session};

/// A connection's [`Session`] with what its handles need to share it
/// between threads: the output buffer, who is writing, whether the reader
/// holds input back, and who waits. Dereferences to the [`Session`].
pub struct State {
    session: Session,
    /// The reader holds input the core has no room for yet.
    pub(crate) reader_blocked: bool,
    out: Vec<u8>,
    writing: bool,
    /// Threads waiting on `cond` / `room` (a notify with no waiter would
    /// still cost a system call).
    cond_waiters: usize,
    room_waiters: usize,
    /// Scratch list for [`Wake::Channels`] (kept to avoid allocating).
    touched: Vec<ChannelId>,
}

/// Whom a wake-up concerns, as told to an async adapter's hook.
#[derive(Debug, Clone, Copy)]
pub enum Wake<'a> {
    /// Only these channels' facts changed (data, window, EOF, replies).
    Channels(&'a [ChannelId]),
    /// Output was written: room appeared for writers of every channel.
    Room,
    /// Anything may have changed (a connection-wide event, the end).
    All,
}

impl std::ops::Deref for State {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.session
    }
}

impl std::ops::DerefMut for State {
    fn deref_mut(&mut self) -> &mut Session {
        &mut self.session
    }
}

impl State {
    /// Whether the reader holds input the core had no room for.
    pub fn reader_blocked(&self) -> bool {
        self.reader_blocked
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

/// One connection's state, shared by its handles and its driver (reader
/// thread, event loop or tasks): the [`Session`] behind a mutex, the
/// condition variables its waiters sleep on, and where output goes.
pub struct Shared {
    state: Mutex<State>,
    /// Signalled when events arrive (readers, auth and request waiters).
    pub cond: Condvar,
    /// Signalled when send room appears (window adjust, output written).
    pub room: Condvar,
    output: Output,
    /// Called (with the state locked) whenever `cond` or `room` waiters
    /// would be woken: async adapters wake their tasks from here.
    hook: Option<Hook>,
}

/// An async adapter's wake-up hook (see [`Shared::with_hook`]).
pub type Hook = Box<dyn Fn(Wake<'_>) + Send + Sync>;

fn io_err(e: io::Error, what: &str) -> Error {
    Error::new(ErrorKind::Io, format!("{what}: {e}"))
}

impl Shared {
    /// State for `conn` whose output the calling thread writes straight to
    /// `writer` ([`Output::Direct`]).
    pub fn new(conn: Connection, writer: Box<dyn Write + Send>) -> Arc<Shared> {
        Self::with_output(conn, Output::Direct(Mutex::new(writer)))
    }

    /// State for `conn` with output going where `output` says.
    pub fn with_output(conn: Connection, output: Output) -> Arc<Shared> {
        Self::with_hook(conn, output, None)
    }

    /// Like [`Shared::with_output`], with a hook called whenever waiters
    /// would be woken (events absorbed, send room, the end).
    pub fn with_hook(conn: Connection, output: Output, hook: Option<Hook>) -> Arc<Shared> {
        let direct = matches!(output, Output::Direct(_));
        Arc::new(Shared {
            state: Mutex::new(State {
                session: Session::new(conn),
                reader_blocked: false,
                // A loop keeps its own output buffer.
                out: if direct {
                    Vec::with_capacity(256 * 1024)
                } else {
                    Vec::new()
                },
                writing: false,
                touched: Vec::new(),
                cond_waiters: 0,
                room_waiters: 0,
            }),
            cond: Condvar::new(),
            room: Condvar::new(),
            output,
            hook,
        })
    }

    /// Locks the state (a poisoned lock is taken over: the state stays
    /// consistent between calls). Blocks while another thread holds it.
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a command on the core, then absorbs events, wakes waiters and
    /// writes output.
    pub fn with<T>(&self, f: impl FnOnce(&mut State) -> Result<T, Error>) -> Result<T, Error> {
        let mut g = self.lock();
        g.check()?;
        let before = g.events_seen();
        let r = f(&mut g);
        g.absorb();
        self.notify(&mut g, before);
        self.flush(g);
        r
    }

    /// Wakes waiters that may care about what was absorbed since `before`.
    pub fn notify(&self, g: &mut State, before: u64) {
        let ev = g.events_seen() != before || g.closed().is_some() || g.reader_blocked;
        let room = g.take_room_event() || g.closed().is_some();
        if ev && g.cond_waiters > 0 {
            self.cond.notify_all();
        }
        if room && g.room_waiters > 0 {
            self.room.notify_all();
        }
        if ev || room {
            self.run_hook(g, None);
        }
    }

    /// Calls the async adapter's hook, if any: with `wake` when given,
    /// else with the channels the session saw touched (or all).
    pub(crate) fn run_hook(&self, g: &mut State, wake: Option<Wake<'_>>) {
        let Some(h) = &self.hook else { return };
        if let Some(w) = wake {
            return h(w);
        }
        let mut touched = std::mem::take(&mut g.touched);
        let all = g.session.take_touched(&mut touched);
        if all || g.closed().is_some() || g.reader_blocked {
            h(Wake::All);
        } else if !touched.is_empty() {
            h(Wake::Channels(&touched));
        }
        g.touched = touched;
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
    pub(crate) fn wait_room<T>(
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
            let before = g.events_seen();
            if let Some(r) = f(&mut g) {
                g.absorb();
                self.notify(&mut g, before);
                self.flush(g);
                return r;
            }
            g.check()?;
            // What `f` queued (data it sent, a window it re-granted) goes
            // out before we sleep: the peer may be waiting for it.
            if g.conn().transmit().is_some() {
                match &self.output {
                    // The loop writes it (woken with the state locked, as
                    // its contract says).
                    Output::Loop(wake) => wake(),
                    // One writer at a time: a thread already writing takes
                    // this output too.
                    Output::Direct(_) if g.writing => {}
                    Output::Direct(_) => {
                        g.absorb();
                        self.notify(&mut g, before);
                        self.flush(g);
                        g = self.lock();
                        continue;
                    }
                }
            }
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
            if g.closed().is_some_and(|e| e.kind() == ErrorKind::Io) {
                return;
            }
            if !g.writing && g.out.is_empty() && g.conn_mut().transmit().is_none() {
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
                if g.reader_blocked || g.closed().is_some() || g.conn_mut().transmit().is_some() {
                    wake();
                }
                return;
            }
        };
        loop {
            if g.out.len() < 1024 * 1024 && g.conn_mut().transmit().is_some() {
                let st = &mut *g;
                st.session.conn_mut().take_transmit(&mut st.out);
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
                g.set_closed(io_err(e, "write to peer failed"));
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
        let before = g.events_seen();
        let mut off = 0;
        while off < data.len() && g.closed().is_none() {
            match g.conn_mut().recv(now, &data[off..]) {
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
        g.reader_blocked = off < data.len() && g.closed().is_none();
        self.notify(&mut g, before);
        // Replies the input produced: wake the loop's writer.
        self.flush(g);
        off
    }

    /// The peer closed its end.
    pub fn loop_eof(&self, now: Instant) {
        let mut g = self.lock();
        let before = g.events_seen();
        g.conn_mut().recv_eof(now);
        g.absorb();
        g.set_closed(Error::new(ErrorKind::Closed, "connection closed by peer"));
        self.notify(&mut g, before);
        self.flush(g);
    }

    /// The socket failed.
    pub fn loop_io_error(&self, e: io::Error, what: &str) {
        let mut g = self.lock();
        g.set_closed(io_err(e, what));
        let before = g.events_seen();
        self.notify(&mut g, before);
        if g.room_waiters > 0 {
            self.room.notify_all();
        }
        self.run_hook(&mut g, Some(Wake::All));
    }

    /// Runs the core's timers.
    pub fn loop_timeout(&self, now: Instant) {
        let mut g = self.lock();
        let before = g.events_seen();
        g.conn_mut().handle_timeout(now);
        g.absorb();
        self.notify(&mut g, before);
        self.flush(g);
    }

    /// When the core next wants [`Shared::loop_timeout`].
    pub fn loop_deadline(&self) -> Option<Instant> {
        let g = self.lock();
        if g.closed().is_some() {
            return None;
        }
        g.conn().poll_timeout()
    }

    /// Appends the core's queued output to `buf` (up to about `max` bytes
    /// in `buf`), waking writers blocked on send room. Returns whether the
    /// input the loop holds may be offered again, and whether the
    /// connection has ended.
    pub fn loop_take_output(&self, buf: &mut Vec<u8>, max: usize) -> (bool, bool) {
        let mut g = self.lock();
        let mut took = false;
        while buf.len() < max && g.conn_mut().transmit().is_some() {
            g.conn_mut().take_transmit(buf);
            took = true;
        }
        if took {
            if g.room_waiters > 0 {
                self.room.notify_all();
            }
            self.run_hook(&mut g, Some(Wake::Room));
        }
        (g.reader_blocked, g.closed().is_some())
    }
}

/// Closes a channel and lets its state go when dropped. Every adapter's
/// channel handle holds one in an `Arc` shared by its clones, so the
/// channel closes when the last clone goes.
pub struct ChannelRelease {
    conn: Arc<Handle>,
    id: ChannelId,
}

impl ChannelRelease {
    /// The release of channel `id` of `conn`.
    pub fn new(conn: Arc<Handle>, id: ChannelId) -> Arc<ChannelRelease> {
        Arc::new(ChannelRelease { conn, id })
    }
}

impl Drop for ChannelRelease {
    fn drop(&mut self) {
        let id = self.id;
        let _ = self.conn.shared().with(|s| {
            s.release(id);
            Ok(())
        });
    }
}

/// A server dispatcher's hold on one channel: the channel's release of its
/// own until the handler keeps a handle, then a weak reference, so that
/// from then on the handler's last drop closes the channel as for any
/// channel. Every adapter's dispatcher keeps one per open channel.
pub enum HeldChannel {
    /// The dispatcher keeps the channel open.
    Own(Arc<ChannelRelease>),
    /// The handler's handles keep it open.
    Weak(std::sync::Weak<ChannelRelease>),
}

impl HeldChannel {
    /// The release to build a handle for a handler call; None once the
    /// handler dropped every handle it kept (the channel is closing).
    pub fn get(&self) -> Option<Arc<ChannelRelease>> {
        match self {
            HeldChannel::Own(r) => Some(r.clone()),
            HeldChannel::Weak(w) => w.upgrade(),
        }
    }

    /// After a handler call (with the call's handle dropped): stop holding
    /// the channel open once the handler holds a handle of its own.
    pub fn settle(&mut self) {
        if let HeldChannel::Own(r) = self {
            if Arc::strong_count(r) > 1 {
                *self = HeldChannel::Weak(Arc::downgrade(r));
            }
        }
    }
}

/// Keeps a connection alive: when the last handle (the application's
/// connection object and its channels) goes, the connection is
/// disconnected and the socket shut down.
pub struct Handle {
    shared: Arc<Shared>,
    sock: Option<TcpStream>,
}

impl Handle {
    /// A handle over `shared`; `sock`, when given, is shut down when the
    /// last handle goes (after the disconnect message is flushed).
    pub fn new(shared: Arc<Shared>, sock: Option<TcpStream>) -> Handle {
        Handle { shared, sock }
    }

    /// The connection state this handle keeps alive.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        {
            let mut g = self.shared.lock();
            if g.closed().is_none() {
                g.conn_mut().disconnect(
                    ssh_proto::disconnect::BY_APPLICATION,
                    "disconnected by user",
                );
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
            if g.closed().is_some() {
                return;
            }
            g.conn().poll_timeout()
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
        let before = g.events_seen();
        match r {
            Ok(0) => {
                g.conn_mut().recv_eof(now);
                g.absorb();
                g.set_closed(Error::new(ErrorKind::Closed, "connection closed by peer"));
                shared.notify(&mut g, before);
                shared.flush(g);
                return;
            }
            Ok(n) => {
                let mut off = 0;
                loop {
                    match g.conn_mut().recv(now, &buf[off..n]) {
                        Ok(t) => off += t,
                        Err(_) => {
                            g.absorb();
                            break;
                        }
                    }
                    g.absorb();
                    if off >= n || g.closed().is_some() {
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
                g.conn_mut().handle_timeout(now);
                g.absorb();
                shared.notify(&mut g, before);
                shared.flush(g);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                g.set_closed(io_err(e, "read from peer failed"));
                shared.notify(&mut g, before);
                return;
            }
        }
    }
}
