//! [`Server`]: a listening server on its own reactor.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use crate::handle::ReactorHandle;
use crate::reactor::Reactor;
use crate::{Config, Handler, ServerHandle};

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
