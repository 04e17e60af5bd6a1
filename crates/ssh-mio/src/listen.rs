//! Serving: the listeners of a [`Reactor`] and the connections they
//! accept.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use mio::net::TcpListener;
use mio::Interest;
use ssh_proto::{Connection, Refusal};
use ssh_std::{ConnectionInfo, Dispatcher, Gate};

use crate::reactor::{Entry, Reactor};
use crate::server_conn::ServerFactory;
use crate::wake::new_shared;
use crate::{Config, Handler, ServerHandle};

pub(crate) struct Listener {
    sock: TcpListener,
    config: Arc<Config>,
    factory: ServerFactory,
    gate: Arc<Gate>,
}

impl Reactor {
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

    pub(crate) fn close_listeners(&mut self) {
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

    pub(crate) fn accept(&mut self, slot: usize, now: Instant) {
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
}
