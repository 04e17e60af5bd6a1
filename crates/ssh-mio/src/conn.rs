//! One connection on a [`Reactor`]: its socket and buffers, and the turn
//! that moves its bytes.

use std::io::{self, Read, Write};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpStream;
use mio::Interest;
use ssh_std::driver::Shared;
use ssh_std::UnauthGuard;

use crate::reactor::{Entry, Reactor};
use crate::server_conn::{GuardedServer, ServerConn};
use crate::wake::{ConnWake, NewConn};
use crate::workers::Job;

/// Bytes of output a connection takes from the core before the socket has
/// written them (beyond this, writers wait for room).
const MAX_OUT: usize = 1 << 20;
/// Socket reads per connection per turn, so one busy peer cannot starve
/// the others.
const READS_PER_TURN: usize = 16;

pub(crate) struct Conn {
    sock: TcpStream,
    pub(crate) shared: Arc<Shared>,
    pub(crate) wake: Arc<ConnWake>,
    /// Tells this connection from a later one in the same slot.
    pub(crate) id: u64,
    /// The server handler, unless a worker is running it (then None).
    pub(crate) server: Option<Box<dyn ServerConn>>,
    /// The handler was run after the connection ended.
    server_told_end: bool,
    /// Received bytes the core has no room for yet.
    held: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    pub(crate) readable: bool,
    pub(crate) writable: bool,
    eof: bool,
    failed: bool,
    pub(crate) deadline: Option<Instant>,
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

impl Reactor {
    pub(crate) fn add_conn(
        &mut self,
        n: NewConn,
        server: Option<(Box<dyn ServerConn>, Arc<UnauthGuard>)>,
    ) {
        let _ = n.sock.set_nodelay(true);
        if let Err(e) = n.sock.set_nonblocking(true) {
            n.shared.loop_io_error(e, "socket setup failed");
            return;
        }
        self.add_mio_conn(TcpStream::from_std(n.sock), n.shared, n.wake, server);
    }

    pub(crate) fn add_mio_conn(
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
    pub(crate) fn service(&mut self, slot: usize, now: Instant) {
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
}
