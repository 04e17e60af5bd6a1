//! Waking the reactor: the queue of connections that need a turn, each
//! connection's wake-up, and the commands other threads send.

use std::cell::Cell;
use std::collections::VecDeque;
use std::net::TcpStream as StdTcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use mio::Waker;
use ssh_proto::Connection;
use ssh_std::driver::{Output, Shared};

use crate::workers::Returned;

thread_local! {
    /// Set while this thread runs a reactor's processing: wakeups raised
    /// then are picked up before the reactor sleeps, with no system call.
    pub(crate) static IN_REACTOR: Cell<bool> = const { Cell::new(false) };
}

/// Connections that need a turn, and the means to wake the loop.
pub(crate) struct WakeQueue {
    pub(crate) dirty: Mutex<Vec<usize>>,
    pub(crate) waker: Waker,
    /// Commands from other threads (new connections, shutdown).
    pub(crate) commands: Mutex<VecDeque<Command>>,
    /// Server handlers back from a worker.
    pub(crate) returned: Mutex<Vec<Returned>>,
    pub(crate) stop: AtomicBool,
}

impl WakeQueue {
    /// The slots queued for a turn (a poisoned lock is taken over).
    pub(crate) fn dirty(&self) -> std::sync::MutexGuard<'_, Vec<usize>> {
        self.dirty.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `slot` for a turn.
    pub(crate) fn push_dirty(&self, slot: usize) {
        self.dirty().push(slot);
    }

    pub(crate) fn wake_loop(&self) {
        if !IN_REACTOR.with(Cell::get) {
            let _ = self.waker.wake();
        }
    }
}

/// One connection's wake-up: queues its slot once until it is serviced.
pub(crate) struct ConnWake {
    queue: Arc<WakeQueue>,
    pub(crate) slot: AtomicUsize,
    pub(crate) pending: AtomicBool,
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

pub(crate) enum Command {
    Add(Box<NewConn>),
}

pub(crate) struct NewConn {
    pub(crate) sock: StdTcpStream,
    pub(crate) shared: Arc<Shared>,
    pub(crate) wake: Arc<ConnWake>,
}

pub(crate) fn new_shared(conn: Connection, queue: &Arc<WakeQueue>) -> (Arc<Shared>, Arc<ConnWake>) {
    let wake = Arc::new(ConnWake {
        queue: queue.clone(),
        slot: AtomicUsize::new(usize::MAX),
        pending: AtomicBool::new(true),
    });
    let w = wake.clone();
    let shared = Shared::with_output(conn, Output::Loop(Box::new(move || w.wake())));
    (shared, wake)
}
