//! The [`Reactor`]: its slots, tokens and turns, embedded in a caller's
//! mio loop or running its own.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use mio::{Events, Poll, Registry, Token, Waker};

use crate::conn::Conn;
use crate::handle::ReactorHandle;
use crate::listen::Listener;
use crate::wake::{Command, WakeQueue, IN_REACTOR};
use crate::workers::{Job, WorkState, Workers};

const SCRATCH: usize = 256 * 1024;

pub(crate) enum Entry {
    Listener(Listener),
    Conn(Conn),
}

/// Drives many SSH connections from one thread. See the crate docs.
pub struct Reactor {
    pub(crate) poll: Option<Poll>,
    pub(crate) registry: Registry,
    pub(crate) base: usize,
    pub(crate) queue: Arc<WakeQueue>,
    pub(crate) entries: Vec<Option<Entry>>,
    pub(crate) free: Vec<usize>,
    pub(crate) conns: usize,
    pub(crate) listeners: usize,
    pub(crate) scratch: Vec<u8>,
    pub(crate) workers: Arc<Workers>,
    pub(crate) next_id: u64,
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

    pub(crate) fn token(&self, slot: usize) -> Token {
        Token(self.base + 1 + slot)
    }

    /// The slot the next `alloc` will use.
    pub(crate) fn next_slot(&self) -> usize {
        self.free.last().copied().unwrap_or(self.entries.len())
    }

    pub(crate) fn alloc(&mut self, e: Entry) -> usize {
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
