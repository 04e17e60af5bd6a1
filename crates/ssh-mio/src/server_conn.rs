//! A server connection's handler as the reactor holds it: the
//! [`ServerConn`] trait over any handler type, its guard, and one run.

use std::io;
use std::sync::Arc;

use ssh_std::driver::Shared;
use ssh_std::{ConnectionInfo, Dispatcher, UnauthGuard};

use crate::{Error, Handler, ServerHandle};

pub(crate) type ServerFactory =
    Box<dyn FnMut(Arc<Shared>, ConnectionInfo, Box<dyn Fn() + Send>) -> Box<dyn ServerConn> + Send>;

/// A server connection's decisions, whatever its handler type.
pub(crate) trait ServerConn: Send {
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

/// Lets a server connection's handler decide what is queued. A handler
/// that panics ends its own connection only, not the reactor's others.
pub(crate) fn run_handler(s: &mut dyn ServerConn, shared: &Shared) {
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
pub(crate) struct GuardedServer {
    pub(crate) inner: Box<dyn ServerConn>,
    pub(crate) _guard: Option<Arc<UnauthGuard>>,
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
