//! The worker threads that run server handlers off the reactor's thread.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use ssh_std::driver::Shared;

use crate::server_conn::{run_handler, ServerConn};
use crate::wake::WakeQueue;

/// Worker threads that may run server handlers at once (per reactor); more
/// connections with decisions pending wait for a free one.
pub const MAX_HANDLER_THREADS: usize = 16;
/// A worker thread with nothing to do for this long ends.
const WORKER_IDLE: Duration = Duration::from_secs(10);

/// A server handler back from a worker: (slot, connection id, handler).
pub(crate) type Returned = (usize, u64, Box<dyn ServerConn>);

/// One turn of a server connection's handler, for a worker thread.
pub(crate) struct Job {
    pub(crate) slot: usize,
    pub(crate) id: u64,
    pub(crate) server: Box<dyn ServerConn>,
    pub(crate) shared: Arc<Shared>,
    /// The connection is gone: run the handler once more (it learns the
    /// end) and drop it.
    pub(crate) last: bool,
}

#[derive(Default)]
pub(crate) struct WorkState {
    jobs: VecDeque<Job>,
    idle: usize,
    threads: usize,
}

/// The worker threads that run server handlers off the reactor's thread.
pub(crate) struct Workers {
    pub(crate) queue: Arc<WakeQueue>,
    pub(crate) state: Mutex<WorkState>,
    pub(crate) cond: Condvar,
}

impl Workers {
    pub(crate) fn submit(self: &Arc<Self>, job: Job) {
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
