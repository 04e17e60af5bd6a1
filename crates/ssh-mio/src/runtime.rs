//! [`Runtime`]: a reactor on a thread of its own, for clients.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::handle::ReactorHandle;
use crate::reactor::Reactor;
use crate::{Client, Config, Error, HostKeyCheck, ToHostPort};

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
