//! [`ReactorHandle`]: work for a reactor from any thread.

use std::net::TcpStream as StdTcpStream;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ssh_proto::Connection;

use crate::wake::{new_shared, Command, NewConn, WakeQueue};
use crate::{Client, Config, Error, HostKeyCheck, ToHostPort};

/// Sends work to a reactor from any thread: new client connections,
/// shutdown. Cheap to clone.
#[derive(Clone)]
pub struct ReactorHandle {
    pub(crate) queue: Arc<WakeQueue>,
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
