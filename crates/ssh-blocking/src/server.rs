//! The blocking server: each connection is served on its own thread, and a
//! [`Handler`] (one per connection, in the spirit of paramiko's
//! `ServerInterface`) makes every decision the core surfaces as an event.
//!
//! ```no_run
//! use std::sync::Arc;
//! use ssh_blocking::{Auth, Channel, Handler, Server, ServerHandle};
//! use ssh_blocking::proto::{ChannelRequest, Config};
//!
//! struct Echo;
//! impl Handler for Echo {
//!     fn auth_password(&mut self, user: &str, password: &str) -> Auth {
//!         if user == "demo" && password == "demo" { Auth::Accept } else { Auth::Reject }
//!     }
//!     fn channel_request(&mut self, channel: &Channel, req: ChannelRequest) -> bool {
//!         if !matches!(req, ChannelRequest::Shell) { return false }
//!         let ch = channel.clone();
//!         std::thread::spawn(move || {
//!             let _ = std::io::copy(&mut &ch, &mut &ch);
//!             let _ = ch.close();
//!         });
//!         true
//!     }
//! }
//!
//! let key = ssh_std::load_private_key("/etc/ssh/ssh_host_ed25519_key", None)?;
//! let mut config = Config::default();
//! config.transport.host_keys.push(Arc::new(key));
//! config.auth_methods = vec!["password".into()];
//! let server = Server::bind("127.0.0.1:2222", Arc::new(config))?;
//! server.run(|_conn: &ServerHandle| Echo)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A handler method may take as long as it likes (ask a database, prompt
//! an operator): it holds up only its own connection, whose core keeps
//! the decision pending meanwhile. Channels handed to the handler are
//! `Read + Write` and may be moved to other threads.

use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use ssh_proto::{Config, Connection, Error, ErrorKind, Refusal};
use ssh_std::driver::{reader_loop, Shared};
use ssh_std::{
    require_host_key, ConnectionInfo, Dispatcher, Gate, Handler, ServerHandle, UnauthGuard,
};

/// Serves one connection on the calling thread until it ends. The reader
/// half runs on a thread of its own. `make_handler` is called once, with
/// the connection's handle, before the handshake starts.
///
/// Returns Ok when the client closed the connection in an orderly way
/// (a disconnect message, or end of stream after authenticating), the
/// reason otherwise.
pub fn serve_connection<H: Handler>(
    stream: TcpStream,
    config: Arc<Config>,
    make_handler: impl FnOnce(&ServerHandle) -> H,
) -> Result<(), Error> {
    start(stream, config, make_handler, Box::new(|| {}))?.run()
}

fn start<H: Handler>(
    stream: TcpStream,
    config: Arc<Config>,
    make_handler: impl FnOnce(&ServerHandle) -> H,
    on_auth: Box<dyn Fn() + Send>,
) -> Result<Dispatcher<H>, Error> {
    let io = |e: io::Error| Error::new(ErrorKind::Io, format!("socket: {e}"));
    let _ = stream.set_nodelay(true);
    let info = ConnectionInfo {
        peer: stream.peer_addr().ok(),
        local: stream.local_addr().ok(),
    };
    let reader = stream.try_clone().map_err(io)?;
    let writer = stream.try_clone().map_err(io)?;
    let timer = stream.try_clone().ok();
    let conn = Connection::server(config, ssh_proto::os_rng(), Instant::now())?;
    if let Some(peer) = info.peer {
        conn.set_peer(&peer);
    }
    let shared = Shared::new(conn, Box::new(writer));
    let dispatcher = Dispatcher::new(shared.clone(), Some(stream), info, make_handler, on_auth);
    std::thread::Builder::new()
        .name("ssh-reader".into())
        .spawn({
            let shared = shared.clone();
            move || reader_loop(shared, Box::new(reader), timer)
        })
        .map_err(|e| Error::new(ErrorKind::Io, format!("spawn reader thread: {e}")))?;
    // Our version line goes out at once.
    shared.flush(shared.lock());
    Ok(dispatcher)
}
/// Stops a running [`Server::run`] from another thread (or a signal
/// handler thread): the listener closes, live sessions finish.
#[derive(Clone)]
pub struct ShutdownHandle {
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
}

impl ShutdownHandle {
    /// Asks the server to stop accepting; returns at once.
    pub fn shutdown(&self) {
        if self.stop.swap(true, Ordering::SeqCst) {
            return;
        }
        // Wake the blocked accept with a connection of our own.
        let mut a = self.addr;
        if a.ip().is_unspecified() {
            a.set_ip(if a.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        let _ = TcpStream::connect_timeout(&a, std::time::Duration::from_secs(1));
    }
}

/// A listening server: accepts connections and serves each on its own
/// thread.
pub struct Server {
    listener: TcpListener,
    config: Arc<Config>,
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
}

/// Counts live connections.
#[derive(Default)]
struct Counts {
    live: Mutex<usize>,
    idle: Condvar,
}

/// One connection's share of [`Counts`], given back when it ends.
struct CountGuard {
    counts: Arc<Counts>,
    unauth: Arc<UnauthGuard>,
}

impl Drop for CountGuard {
    fn drop(&mut self) {
        self.unauth.authenticated();
        let mut live = self.counts.live.lock().unwrap_or_else(|p| p.into_inner());
        *live -= 1;
        self.counts.idle.notify_all();
    }
}

impl Server {
    /// Binds a listener at `addr`. Fails when `config` has no host key or
    /// the address cannot be bound.
    pub fn bind(addr: impl ToSocketAddrs, config: Arc<Config>) -> io::Result<Server> {
        Self::from_listener(TcpListener::bind(addr)?, config)
    }

    /// A server on an already bound listener. Fails when `config` has no
    /// host key.
    pub fn from_listener(listener: TcpListener, config: Arc<Config>) -> io::Result<Server> {
        require_host_key(&config)?;
        Ok(Server {
            addr: listener.local_addr()?,
            listener,
            config,
            stop: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// A handle that stops [`Server::run`] from another thread.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            stop: self.stop.clone(),
            addr: self.addr,
        }
    }

    /// Accepts and serves connections until [`ShutdownHandle::shutdown`],
    /// then waits for live connections to end. `make_handler` makes one
    /// handler per connection.
    pub fn run<H, F>(self, mut make_handler: F) -> io::Result<()>
    where
        H: Handler + 'static,
        F: FnMut(&ServerHandle) -> H,
    {
        let counts = Arc::new(Counts::default());
        let gate = Gate::new(self.config.admission);
        for stream in self.listener.incoming() {
            if self.stop.load(Ordering::SeqCst) {
                break;
            }
            let stream = match stream {
                Ok(s) => s,
                Err(e) => {
                    // Out of descriptors and the like: back off, go on.
                    tracing::warn!("accept failed: {e}");
                    std::thread::sleep(std::time::Duration::from_millis(50));
                    continue;
                }
            };
            let peer = stream.peer_addr().ok();
            let unauth = match peer.map(|p| gate.admit(p, stream.local_addr().ok())) {
                Some(Ok(g)) => g,
                Some(Err(_)) => {
                    let _ = (&stream).write(Refusal::NOTICE);
                    let _ = stream.shutdown(std::net::Shutdown::Both);
                    continue;
                }
                // The peer is gone already.
                None => continue,
            };
            let unauth = Arc::new(unauth);
            let on_auth = {
                let u = unauth.clone();
                Box::new(move || u.authenticated())
            };
            let dispatcher = match start(stream, self.config.clone(), &mut make_handler, on_auth) {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(peer = ?peer, "cannot start connection: {e}");
                    continue;
                }
            };
            *counts.live.lock().unwrap_or_else(|p| p.into_inner()) += 1;
            let guard = CountGuard {
                counts: counts.clone(),
                unauth,
            };
            let spawned = std::thread::Builder::new()
                .name("ssh-conn".into())
                .spawn(move || {
                    // The guard settles the counts even if a handler panics.
                    let guard = guard;
                    let peer = dispatcher.handle().peer_addr();
                    let r = dispatcher.run();
                    tracing::debug!(peer = ?peer, result = ?r, "connection ended");
                    drop(guard);
                });
            if let Err(e) = spawned {
                // The closure (and its guard) was dropped: counts are settled.
                tracing::warn!("cannot spawn a connection thread: {e}");
            }
        }
        drop(self.listener);
        let mut live = counts.live.lock().unwrap_or_else(|p| p.into_inner());
        while *live > 0 {
            live = counts.idle.wait(live).unwrap_or_else(|p| p.into_inner());
        }
        Ok(())
    }
}
