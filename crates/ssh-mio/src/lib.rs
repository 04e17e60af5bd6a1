//! mio adapter for `ssh-proto`: one thread drives many connections.
//!
//! A [`Reactor`] owns the sockets of any number of client and server
//! connections and moves their bytes from a single thread, with no thread
//! or task per connection. It either runs its own `mio::Poll`
//! ([`Reactor::run`], [`Server`], [`Runtime`]) or lives inside a caller's
//! mio loop ([`Reactor::embedded`]): it registers its sockets with the
//! caller's `Registry` under tokens from a base the caller picks, and the
//! caller hands it readiness events ([`Reactor::handle_event`]), asks for
//! its next deadline ([`Reactor::next_timeout`]) and lets it run
//! ([`Reactor::process`]).
//!
//! The objects an application holds are `ssh-std`'s, as in `ssh-blocking`: [`Client`],
//! [`Channel`], [`Sftp`],
//! [`ServerHandle`] and the same server [`Handler`] trait. Only the owner of
//! the socket differs: here the reactor's thread reads, writes and runs
//! timers for every connection, and a handle used from another thread wakes
//! it. Server handler methods do not run on the reactor's thread: a
//! decision may block (a slow password hash, an `authorized_keys` read, a
//! database) without stalling other connections. They run on a small pool
//! of worker threads (made on demand, at most [`MAX_HANDLER_THREADS`]), one
//! method at a time per connection, in the order the client asked; the
//! answers go back to the reactor through its waker.
//!
//! Memory per idle connection is the core's state plus what its buffers
//! hold; reading goes through one scratch buffer shared by all connections.
//!
//! A client on a [`Runtime`] (one reactor thread; more connections on the
//! same runtime share it):
//!
//! ```no_run
//! use ssh_mio::{HostKeyCheck, Runtime};
//! let rt = Runtime::new()?;
//! let client = rt.connect(
//!     "127.0.0.1:22",
//!     HostKeyCheck::KnownHostsFile("/home/me/.ssh/known_hosts".into()),
//! )?;
//! client.auth_password("me", "secret")?;
//! let out = client.exec("uname -a")?;
//! println!("{} (exit {:?})", String::from_utf8_lossy(&out.stdout), out.status);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(unreachable_pub, missing_docs)]

use std::cell::Cell;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream as StdTcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use ssh_proto::{Connection, Refusal};
use ssh_std::driver::{Output, Shared};
use ssh_std::{ConnectionInfo, Dispatcher, Gate, UnauthGuard};

pub use ssh_proto::sftp::Attrs;
pub use ssh_proto::{Auth, ChannelOpenFailure, Config, Error, ErrorKind, ExitSignal, KbdInt};
pub use ssh_std::{
    Channel, ChannelStderr, Client, ExecOutput, Handler, HostKeyCheck, ServerHandle, Sftp,
    SftpFile, ToHostPort,
};

/// Bytes of output a connection takes from the core before the socket has
/// written them (beyond this, writers wait for room).
const MAX_OUT: usize = 1 << 20;
/// Socket reads per connection per turn, so one busy peer cannot starve
/// the others.
const READS_PER_TURN: usize = 16;
const SCRATCH: usize = 256 * 1024;
/// Worker threads that may run server handlers at once (per reactor); more
/// connections with decisions pending wait for a free one.
pub const MAX_HANDLER_THREADS: usize = 16;
/// A worker thread with nothing to do for this long ends.
const WORKER_IDLE: Duration = Duration::from_secs(10);

thread_local! {
    /// Set while this thread runs a reactor's processing: wakeups raised
    /// then are picked up before the reactor sleeps, with no system call.
    static IN_REACTOR: Cell<bool> = const { Cell::new(false) };
}

/// Connections that need a turn, and the means to wake the loop.
struct WakeQueue {
    dirty: Mutex<Vec<usize>>,
    waker: Waker,
    /// Commands from other threads (new connections, shutdown).
    commands: Mutex<VecDeque<Command>>,
    /// Server handlers back from a worker.
    returned: Mutex<Vec<Returned>>,
    stop: AtomicBool,
}

impl WakeQueue {
    /// The slots queued for a turn (a poisoned lock is taken over).
    fn dirty(&self) -> std::sync::MutexGuard<'_, Vec<usize>> {
        self.dirty.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `slot` for a turn.
    fn push_dirty(&self, slot: usize) {
        self.dirty().push(slot);
    }

    fn wake_loop(&self) {
        if !IN_REACTOR.with(Cell::get) {
            let _ = self.waker.wake();
        }
    }
}

/// One connection's wake-up: queues its slot once until it is serviced.
struct ConnWake {
    queue: Arc<WakeQueue>,
    slot: AtomicUsize,
    pending: AtomicBool,
}

impl ConnWake {
    fn wake(&self) {
        if !self.pending.swap(true, Ordering::AcqRel) {
            let slot = self.slot.load(Ordering::Acquire);
            if slot != usize::MAX {
                self.queue.push_dirty(slot);
            }
            self.queue.wake_loop();
        }
    }
}

enum Command {
    Add(Box<NewConn>),
}

struct NewConn {
    sock: StdTcpStream,
    shared: Arc<Shared>,
    wake: Arc<ConnWake>,
}

type ServerFactory =
    Box<dyn FnMut(Arc<Shared>, ConnectionInfo, Box<dyn Fn() + Send>) -> Box<dyn ServerConn> + Send>;

/// A server connection's decisions, whatever its handler type.
trait ServerConn: Send {
    fn process(&mut self) -> Option<Result<(), Error>>;
    fn handle(&self) -> &ServerHandle;
}

impl<H: Handler> ServerConn for Dispatcher<H> {
    fn process(&mut self) -> Option<Result<(), Error>> {
        Dispatcher::process(self)
    }
    fn handle(&self) -> &ServerHandle {
        Dispatcher::handle(self)
    }
}

/// A server handler back from a worker: (slot, connection id, handler).
type Returned = (usize, u64, Box<dyn ServerConn>);

/// One turn of a server connection's handler, for a worker thread.
struct Job {
    slot: usize,
    id: u64,
    server: Box<dyn ServerConn>,
    shared: Arc<Shared>,
    /// The connection is gone: run the handler once more (it learns the
    /// end) and drop it.
    last: bool,
}

#[derive(Default)]
struct WorkState {
    jobs: VecDeque<Job>,
    idle: usize,
    threads: usize,
}

/// The worker threads that run server handlers off the reactor's thread.
struct Workers {
    queue: Arc<WakeQueue>,
    state: Mutex<WorkState>,
    cond: Condvar,
}

impl Workers {
    fn submit(self: &Arc<Self>, job: Job) {
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        st.jobs.push_back(job);
        if st.jobs.len() > st.idle && st.threads < MAX_HANDLER_THREADS {
            let w = self.clone();
            let spawned = std::thread::Builder::new()
                .name("ssh-mio-handler".into())
                .spawn(move || w.work());
            match spawned {
                Ok(_) => st.threads += 1,
                Err(e) if st.threads == 0 => {
                    // No thread at all: run it here rather than never.
                    tracing::warn!("cannot start a handler thread: {e}");
                    let job = st.jobs.pop_back();
                    drop(st);
                    if let Some(job) = job {
                        self.run(job);
                    }
                    return;
                }
                Err(e) => tracing::warn!("cannot start a handler thread: {e}"),
            }
        }
        self.cond.notify_one();
    }

    fn work(self: Arc<Self>) {
        loop {
            let job = {
                let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if let Some(j) = st.jobs.pop_front() {
                        break Some(j);
                    }
                    st.idle += 1;
                    let (g, t) = self
                        .cond
                        .wait_timeout(st, WORKER_IDLE)
                        .unwrap_or_else(|p| p.into_inner());
                    st = g;
                    st.idle -= 1;
                    if t.timed_out() && st.jobs.is_empty() {
                        st.threads -= 1;
                        break None;
                    }
                }
            };
            match job {
                Some(job) => self.run(job),
                None => return,
            }
        }
    }

    fn run(&self, mut job: Job) {
        run_handler(job.server.as_mut(), &job.shared);
        if job.last {
            return;
        }
        self.queue
            .returned
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((job.slot, job.id, job.server));
        self.queue.wake_loop();
    }
}

struct Listener {
    sock: TcpListener,
    config: Arc<Config>,
    factory: ServerFactory,
    gate: Arc<Gate>,
}

struct Conn {
    sock: TcpStream,
    shared: Arc<Shared>,
    wake: Arc<ConnWake>,
    /// Tells this connection from a later one in the same slot.
    id: u64,
    /// The server handler, unless a worker is running it (then None).
    server: Option<Box<dyn ServerConn>>,
    /// The handler was run after the connection ended.
    server_told_end: bool,
    /// Received bytes the core has no room for yet.
    held: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    readable: bool,
    writable: bool,
    eof: bool,
    failed: bool,
    deadline: Option<Instant>,
}

impl Conn {
    /// A worker job running this connection's (taken out) `server`.
    fn job(&self, slot: usize, server: Box<dyn ServerConn>, last: bool) -> Job {
        Job {
            slot,
            id: self.id,
            server,
            shared: self.shared.clone(),
            last,
        }
    }
}

enum Entry {
    Listener(Listener),
    Conn(Conn),
}

/// Drives many SSH connections from one thread. See the crate docs.
pub struct Reactor {
    poll: Option<Poll>,
    registry: Registry,
    base: usize,
    queue: Arc<WakeQueue>,
    entries: Vec<Option<Entry>>,
    free: Vec<usize>,
    conns: usize,
    listeners: usize,
    scratch: Vec<u8>,
    workers: Arc<Workers>,
    next_id: u64,
}

/// Sends work to a reactor from any thread: new client connections,
/// shutdown. Cheap to clone.
#[derive(Clone)]
pub struct ReactorHandle {
    queue: Arc<WakeQueue>,
}

impl ReactorHandle {
    /// Connects over TCP and completes the handshake (host key check
    /// included) on the calling thread, while the reactor moves the bytes.
    /// Must not be called from the reactor's own thread. The host key is
    /// looked up under the host as `addr` names it (not the address it
    /// resolved to), as OpenSSH does.
    pub fn connect(&self, addr: impl ToHostPort, check: HostKeyCheck) -> Result<Client, Error> {
        self.connect_with(addr, Arc::new(Config::default()), check, None)
    }

    /// Connects over TCP with `config`; `timeout` bounds the TCP connect
    /// and the handshake (see [`ReactorHandle::connect`]).
    pub fn connect_with(
        &self,
        addr: impl ToHostPort,
        config: Arc<Config>,
        check: HostKeyCheck,
        timeout: Option<Duration>,
    ) -> Result<Client, Error> {
        let (host, port) = addr
            .to_host_port()
            .map_err(ssh_std::ConnectAttempts::resolve_failed)?;
        let (s, _) = ssh_std::connect_tcp((host.as_str(), port), timeout)?;
        self.handshake(s, &host, port, config, check, timeout)
    }

    /// Runs the client handshake on a connected stream handed to the
    /// reactor. `host` and `port` name the server for known_hosts lookups.
    pub fn handshake(
        &self,
        sock: StdTcpStream,
        host: &str,
        port: u16,
        config: Arc<Config>,
        check: HostKeyCheck,
        timeout: Option<Duration>,
    ) -> Result<Client, Error> {
        let conn = Connection::client(config, ssh_proto::os_rng(), Instant::now())?;
        conn.set_peer(&format_args!("{host}:{port}"));
        let (shared, wake) = new_shared(conn, &self.queue);
        self.queue
            .commands
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(Command::Add(Box::new(NewConn {
                sock,
                shared: shared.clone(),
                wake,
            })));
        let _ = self.queue.waker.wake();
        Client::handshake_loop(shared, host, port, check, timeout)
    }

    /// Stops accepting; the reactor's `run` returns once every connection
    /// has ended.
    pub fn shutdown(&self) {
        self.queue.stop.store(true, Ordering::SeqCst);
        let _ = self.queue.waker.wake();
    }
}

fn new_shared(conn: Connection, queue: &Arc<WakeQueue>) -> (Arc<Shared>, Arc<ConnWake>) {
    let wake = Arc::new(ConnWake {
        queue: queue.clone(),
        slot: AtomicUsize::new(usize::MAX),
        pending: AtomicBool::new(true),
    });
    let w = wake.clone();
    let shared = Shared::with_output(conn, Output::Loop(Box::new(move || w.wake())));
    (shared, wake)
}

impl Reactor {
    /// A reactor with its own `mio::Poll`: run it with [`Reactor::run`].
    pub fn new() -> io::Result<Reactor> {
        let poll = Poll::new()?;
        let registry = poll.registry().try_clone()?;
        let mut r = Self::build(registry, 0)?;
        r.poll = Some(poll);
        Ok(r)
    }

    /// A reactor inside the caller's mio loop. It registers its sockets and
    /// one `mio::Waker` with `registry`, under tokens from `first_token`
    /// up (the caller keeps the tokens below). Only one `Waker` may be
    /// registered per `Poll`: the caller must not have one of its own.
    pub fn embedded(registry: &Registry, first_token: Token) -> io::Result<Reactor> {
        Self::build(registry.try_clone()?, first_token.0)
    }

    fn build(registry: Registry, base: usize) -> io::Result<Reactor> {
        let waker = Waker::new(&registry, Token(base))?;
        let queue = Arc::new(WakeQueue {
            dirty: Mutex::new(Vec::new()),
            waker,
            commands: Mutex::new(VecDeque::new()),
            returned: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        Ok(Reactor {
            poll: None,
            registry,
            base,
            workers: Arc::new(Workers {
                queue: queue.clone(),
                state: Mutex::new(WorkState::default()),
                cond: Condvar::new(),
            }),
            queue,
            entries: Vec::new(),
            free: Vec::new(),
            conns: 0,
            listeners: 0,
            scratch: vec![0; SCRATCH],
            next_id: 0,
        })
    }

    /// A `Send + Sync` handle that queues work for this reactor (connect,
    /// serve, stop) from any thread and wakes it.
    pub fn handle(&self) -> ReactorHandle {
        ReactorHandle {
            queue: self.queue.clone(),
        }
    }

    /// Live connections (client and server).
    pub fn connection_count(&self) -> usize {
        self.conns
    }

    /// Whether a token belongs to this reactor.
    pub fn owns(&self, token: Token) -> bool {
        token.0 >= self.base && token.0 <= self.base + self.entries.len()
    }

    fn token(&self, slot: usize) -> Token {
        Token(self.base + 1 + slot)
    }

    /// The slot the next `alloc` will use.
    fn next_slot(&self) -> usize {
        self.free.last().copied().unwrap_or(self.entries.len())
    }

    fn alloc(&mut self, e: Entry) -> usize {
        match self.free.pop() {
            Some(i) => {
                self.entries[i] = Some(e);
                i
            }
            None => {
                self.entries.push(Some(e));
                self.entries.len() - 1
            }
        }
    }

    /// Serves SSH on `listener`: one handler per connection from
    /// `make_handler`, run on the reactor's thread (see the crate docs).
    /// `config.admission` says which connections are refused right after
    /// accept (sshd's `MaxStartups`, `PerSourceMaxStartups` and
    /// `PerSourceNetBlockSize`; see [`ssh_proto::Admission`]).
    pub fn listen<H, F>(
        &mut self,
        listener: std::net::TcpListener,
        config: Arc<Config>,
        mut make_handler: F,
    ) -> io::Result<SocketAddr>
    where
        H: Handler + 'static,
        F: FnMut(&ServerHandle) -> H + Send + 'static,
    {
        ssh_std::require_host_key(&config)?;
        let gate = Gate::new(config.admission);
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let mut sock = TcpListener::from_std(listener);
        let token = self.token(self.next_slot());
        self.registry
            .register(&mut sock, token, Interest::READABLE)?;
        self.alloc(Entry::Listener(Listener {
            sock,
            config,
            factory: Box::new(move |shared, info, on_auth| {
                Box::new(Dispatcher::new(
                    shared,
                    None,
                    info,
                    &mut make_handler,
                    on_auth,
                ))
            }),
            gate,
        }));
        self.listeners += 1;
        Ok(addr)
    }

    /// Hands a readiness event for one of this reactor's tokens over.
    /// Call [`Reactor::process`] after a batch of events.
    pub fn handle_event(&mut self, event: &mio::event::Event) {
        let t = event.token().0;
        if t <= self.base {
            return; // the waker: process() looks at the queues
        }
        let slot = t - self.base - 1;
        match self.entries.get_mut(slot) {
            Some(Some(Entry::Conn(c))) => {
                if event.is_readable() || event.is_read_closed() || event.is_error() {
                    c.readable = true;
                }
                if event.is_writable() || event.is_write_closed() || event.is_error() {
                    c.writable = true;
                }
                c.wake.pending.store(true, Ordering::Release);
                self.queue.push_dirty(slot);
            }
            Some(Some(Entry::Listener(_))) => self.accept(slot, Instant::now()),
            _ => {}
        }
    }

    /// How long the caller's loop may sleep before [`Reactor::process`]
    /// must run again (None: until an event).
    pub fn next_timeout(&self, now: Instant) -> Option<Duration> {
        if !self.queue.dirty().is_empty() {
            return Some(Duration::ZERO);
        }
        self.entries
            .iter()
            .filter_map(|e| match e {
                Some(Entry::Conn(c)) => c.deadline,
                _ => None,
            })
            .min()
            .map(|d| d.saturating_duration_since(now))
    }

    /// Runs what is due: new connections, connections woken by events or
    /// by their handles, and timers.
    pub fn process(&mut self, now: Instant) {
        IN_REACTOR.with(|f| f.set(true));
        self.process_inner(now);
        IN_REACTOR.with(|f| f.set(false));
    }

    fn process_inner(&mut self, now: Instant) {
        // Handlers back from the workers.
        let back = std::mem::take(
            &mut *self
                .queue
                .returned
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for (slot, id, server) in back {
            match self.entries.get_mut(slot) {
                Some(Some(Entry::Conn(c))) if c.id == id => {
                    c.server = Some(server);
                    // More may have queued meanwhile.
                    c.wake.pending.store(true, Ordering::Release);
                    self.queue.push_dirty(slot);
                }
                _ => {
                    // The connection ended while its handler was out.
                    let shared = server.handle().conn().shared().clone();
                    self.workers.submit(Job {
                        slot,
                        id,
                        server,
                        shared,
                        last: true,
                    });
                }
            }
        }
        loop {
            let cmd = self
                .queue
                .commands
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front();
            match cmd {
                Some(Command::Add(n)) => self.add_conn(*n, None),
                None => break,
            }
        }
        if self.queue.stop.load(Ordering::SeqCst) && self.listeners > 0 {
            self.close_listeners();
        }
        // Timers.
        let due: Vec<usize> = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| match e {
                Some(Entry::Conn(c)) if c.deadline.is_some_and(|d| d <= now) => Some(i),
                _ => None,
            })
            .collect();
        for slot in due {
            if let Some(Some(Entry::Conn(c))) = self.entries.get(slot) {
                c.shared.loop_timeout(now);
                self.queue.push_dirty(slot);
            }
        }
        // Woken connections; a turn may queue more (its own handles
        // writing from the handler), so go round until quiet.
        for _ in 0..64 {
            let batch = std::mem::take(&mut *self.queue.dirty());
            if batch.is_empty() {
                break;
            }
            for slot in batch {
                self.service(slot, now);
            }
        }
    }

    fn close_listeners(&mut self) {
        for i in 0..self.entries.len() {
            if matches!(self.entries[i], Some(Entry::Listener(_))) {
                if let Some(Entry::Listener(mut l)) = self.entries[i].take() {
                    let _ = self.registry.deregister(&mut l.sock);
                }
                self.free.push(i);
                self.listeners -= 1;
            }
        }
    }

    fn accept(&mut self, slot: usize, now: Instant) {
        loop {
            let Some(Some(Entry::Listener(l))) = self.entries.get_mut(slot) else {
                return;
            };
            let (sock, peer) = match l.sock.accept() {
                Ok(x) => x,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors and the like: the next readiness
                    // event tries again.
                    tracing::warn!("accept failed: {e}");
                    return;
                }
            };
            let guard = match l.gate.admit(peer, sock.local_addr().ok()) {
                Ok(g) => Arc::new(g),
                Err(_) => {
                    let _ = (&sock).write(Refusal::NOTICE);
                    let _ = sock.shutdown(std::net::Shutdown::Both);
                    continue;
                }
            };
            let conn = match Connection::server(l.config.clone(), ssh_proto::os_rng(), now) {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(peer = %peer, "cannot start connection: {e}");
                    continue;
                }
            };
            conn.set_peer(&peer);
            let (shared, wake) = new_shared(conn, &self.queue);
            let info = ConnectionInfo {
                peer: Some(peer),
                local: sock.local_addr().ok(),
            };
            let on_auth = {
                let g = guard.clone();
                Box::new(move || g.authenticated()) as Box<dyn Fn() + Send>
            };
            let server = (l.factory)(shared.clone(), info, on_auth);
            let _ = sock.set_nodelay(true);
            self.add_mio_conn(sock, shared, wake, Some((server, guard)));
        }
    }

    fn add_conn(&mut self, n: NewConn, server: Option<(Box<dyn ServerConn>, Arc<UnauthGuard>)>) {
        let _ = n.sock.set_nodelay(true);
        if let Err(e) = n.sock.set_nonblocking(true) {
            n.shared.loop_io_error(e, "socket setup failed");
            return;
        }
        self.add_mio_conn(TcpStream::from_std(n.sock), n.shared, n.wake, server);
    }

    fn add_mio_conn(
        &mut self,
        mut sock: TcpStream,
        shared: Arc<Shared>,
        wake: Arc<ConnWake>,
        server: Option<(Box<dyn ServerConn>, Arc<UnauthGuard>)>,
    ) {
        let (server, guard) = match server {
            Some((s, g)) => (Some(s), Some(g)),
            None => (None, None),
        };
        let token = self.token(self.next_slot());
        if let Err(e) =
            self.registry
                .register(&mut sock, token, Interest::READABLE | Interest::WRITABLE)
        {
            shared.loop_io_error(e, "cannot register socket");
            return;
        }
        self.next_id += 1;
        let slot = self.alloc(Entry::Conn(Conn {
            sock,
            shared: shared.clone(),
            wake: wake.clone(),
            id: self.next_id,
            server_told_end: false,
            server: server.map(|s| {
                Box::new(GuardedServer {
                    inner: s,
                    _guard: guard,
                }) as Box<dyn ServerConn>
            }),
            held: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
            readable: true,
            writable: true,
            eof: false,
            failed: false,
            deadline: None,
        }));
        self.conns += 1;
        wake.slot.store(slot, Ordering::Release);
        wake.pending.store(true, Ordering::Release);
        self.queue.push_dirty(slot);
    }

    /// One turn for one connection: input, server decisions, output.
    fn service(&mut self, slot: usize, now: Instant) {
        let scratch = &mut self.scratch;
        let workers = &self.workers;
        let Some(Some(Entry::Conn(c))) = self.entries.get_mut(slot) else {
            return;
        };
        c.wake.pending.store(false, Ordering::Release);
        let mut more = false;
        // Input: first what the core held back, then the socket.
        let mut reads = 0;
        loop {
            if !c.held.is_empty() {
                let n = c.shared.loop_recv(now, &c.held);
                c.held.drain(..n);
                if !c.held.is_empty() {
                    break;
                }
            }
            if !c.readable || c.eof || c.failed {
                break;
            }
            if reads == READS_PER_TURN {
                more = true;
                break;
            }
            reads += 1;
            match c.sock.read(scratch) {
                Ok(0) => {
                    c.eof = true;
                    c.shared.loop_eof(now);
                }
                Ok(n) => {
                    let took = c.shared.loop_recv(now, &scratch[..n]);
                    if took < n {
                        c.held.extend_from_slice(&scratch[took..n]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.readable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    c.failed = true;
                    c.shared.loop_io_error(e, "read from peer failed");
                }
            }
        }
        if c.held.capacity() > 0 && c.held.is_empty() {
            c.held = Vec::new();
        }
        // Server decisions, on a worker thread (they may block).
        if c.server.is_some() {
            let work = {
                let g = c.shared.lock();
                g.has_request() || (g.closed().is_some() && !c.server_told_end)
            };
            if work {
                if c.shared.lock().closed().is_some() {
                    c.server_told_end = true;
                }
                if let Some(server) = c.server.take() {
                    workers.submit(c.job(slot, server, false));
                }
            }
        }
        // Output.
        let mut closed;
        loop {
            if c.out_pos == c.out.len() {
                c.out.clear();
                c.out_pos = 0;
            }
            let (_, cl) = if c.out.len() < MAX_OUT {
                c.shared.loop_take_output(&mut c.out, MAX_OUT)
            } else {
                (false, c.shared.lock().closed().is_some())
            };
            closed = cl;
            if c.out_pos == c.out.len() || !c.writable || c.failed {
                break;
            }
            match c.sock.write(&c.out[c.out_pos..]) {
                Ok(n) => c.out_pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => c.writable = false,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    c.failed = true;
                    c.shared.loop_io_error(e, "write to peer failed");
                }
            }
        }
        if c.out.is_empty() && c.out.capacity() > 64 * 1024 {
            // An idle connection keeps no large buffer.
            c.out = Vec::new();
        }
        c.deadline = c.shared.loop_deadline();
        let done = closed && (c.out_pos == c.out.len() || c.failed);
        if done {
            if let Some(server) = c.server.take() {
                // The handler learns the end on a worker; a busy one does
                // when it comes back.
                workers.submit(c.job(slot, server, true));
            }
            if let Some(Entry::Conn(mut c)) = self.entries[slot].take() {
                let _ = self.registry.deregister(&mut c.sock);
                let _ = c.sock.shutdown(std::net::Shutdown::Both);
                c.wake.slot.store(usize::MAX, Ordering::Release);
                // The server's handle (and handler) go here; the
                // application may still hold channel handles, which now
                // fail.
                drop(c);
            }
            self.free.push(slot);
            self.conns -= 1;
        } else if more {
            c.wake.pending.store(true, Ordering::Release);
            self.queue.push_dirty(slot);
        }
    }

    /// Runs this reactor's own loop until [`ReactorHandle::shutdown`] and
    /// the end of every connection. Only for reactors made with
    /// [`Reactor::new`].
    pub fn run(&mut self) -> io::Result<()> {
        let mut poll = self.poll.take().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                "an embedded reactor is driven by its caller's loop",
            )
        })?;
        let mut events = Events::with_capacity(1024);
        let r = loop {
            let now = Instant::now();
            self.process(now);
            if self.queue.stop.load(Ordering::SeqCst) && self.conns == 0 && self.listeners == 0 {
                break Ok(());
            }
            let timeout = self.next_timeout(Instant::now());
            match poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            }
            for ev in events.iter() {
                self.handle_event(ev);
            }
        };
        self.poll = Some(poll);
        r
    }
}

/// Lets a server connection's handler decide what is queued. A handler
/// that panics ends its own connection only, not the reactor's others.
fn run_handler(s: &mut dyn ServerConn, shared: &Shared) {
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.process()));
    match r {
        Ok(Some(r)) => {
            tracing::debug!(peer = ?s.handle().peer_addr(), result = ?r, "connection ended")
        }
        Ok(None) => {}
        Err(_) => {
            tracing::error!(peer = ?s.handle().peer_addr(), "handler panicked: connection closed");
            shared.loop_io_error(
                io::Error::other("the server's handler panicked"),
                "connection closed",
            );
            let mut g = shared.lock();
            g.conn_mut()
                .disconnect(ssh_proto::disconnect::BY_APPLICATION, "internal error");
            g.absorb();
        }
    }
}

/// A server connection, counted as unauthenticated until it authenticates
/// or ends.
struct GuardedServer {
    inner: Box<dyn ServerConn>,
    _guard: Option<Arc<UnauthGuard>>,
}

impl Drop for GuardedServer {
    fn drop(&mut self) {
        if let Some(g) = &self._guard {
            g.authenticated();
        }
    }
}

impl ServerConn for GuardedServer {
    fn process(&mut self) -> Option<Result<(), Error>> {
        self.inner.process()
    }
    fn handle(&self) -> &ServerHandle {
        self.inner.handle()
    }
}

/// A listening server on its own reactor, like the blocking adapter's `Server` but
/// with every connection on one thread.
pub struct Server {
    reactor: Reactor,
    listener: Option<std::net::TcpListener>,
    config: Arc<Config>,
    addr: SocketAddr,
}

impl Server {
    /// Binds a listener at `addr`. Fails when `config` has no host key or
    /// the address cannot be bound.
    pub fn bind(addr: impl ToSocketAddrs, config: Arc<Config>) -> io::Result<Server> {
        Self::from_listener(std::net::TcpListener::bind(addr)?, config)
    }

    /// A server on an already bound listener. Fails when `config` has no
    /// host key.
    pub fn from_listener(
        listener: std::net::TcpListener,
        config: Arc<Config>,
    ) -> io::Result<Server> {
        ssh_std::require_host_key(&config)?;
        Ok(Server {
            reactor: Reactor::new()?,
            addr: listener.local_addr()?,
            listener: Some(listener),
            config,
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the listener from any thread; `run` returns when live
    /// connections end.
    pub fn shutdown_handle(&self) -> ReactorHandle {
        self.reactor.handle()
    }

    /// Accepts and serves connections on the calling thread (the
    /// reactor's) until shutdown; blocks until then. Handler methods run on
    /// the reactor's worker threads (see the crate docs) and may block.
    /// Fails when the listener cannot be registered or polling fails, or
    /// when the server already ran.
    pub fn run<H, F>(mut self, make_handler: F) -> io::Result<()>
    where
        H: Handler + 'static,
        F: FnMut(&ServerHandle) -> H + Send + 'static,
    {
        let listener = self
            .listener
            .take()
            .ok_or_else(|| io::Error::other("server already ran"))?;
        self.reactor
            .listen(listener, self.config.clone(), make_handler)?;
        self.reactor.run()
    }
}

/// A reactor on a thread of its own, for client connections: `connect`
/// gives ordinary [`Client`] handles whose bytes this one thread moves.
/// Dropping the runtime stops the thread once its connections have ended.
pub struct Runtime {
    handle: ReactorHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Runtime {
    /// Starts the reactor's thread. Fails when the poller or the thread
    /// cannot be created.
    pub fn new() -> io::Result<Runtime> {
        let mut reactor = Reactor::new()?;
        let handle = reactor.handle();
        let thread = std::thread::Builder::new()
            .name("ssh-mio".into())
            .spawn(move || {
                if let Err(e) = reactor.run() {
                    tracing::warn!("ssh-mio reactor stopped: {e}");
                }
            })?;
        Ok(Runtime {
            handle,
            thread: Some(thread),
        })
    }

    /// The handle of the runtime's reactor (to serve connections or stop it).
    pub fn handle(&self) -> &ReactorHandle {
        &self.handle
    }

    /// Connects with the default configuration: see
    /// [`ReactorHandle::connect_with`].
    pub fn connect(&self, addr: impl ToHostPort, check: HostKeyCheck) -> Result<Client, Error> {
        self.handle.connect(addr, check)
    }

    /// See [`ReactorHandle::connect_with`].
    pub fn connect_with(
        &self,
        addr: impl ToHostPort,
        config: Arc<Config>,
        check: HostKeyCheck,
        timeout: Option<Duration>,
    ) -> Result<Client, Error> {
        self.handle.connect_with(addr, config, check, timeout)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.handle.shutdown();
        // The thread ends with the last connection; do not wait for the
        // application's live handles here.
        drop(self.thread.take());
    }
}
