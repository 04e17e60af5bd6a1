//! tokio adapter for `ssh-proto`: the blocking adapter's objects, async.
//!
//! ```no_run
//! # async fn f() -> Result<(), ssh_tokio::Error> {
//! use ssh_tokio::{Client, HostKeyCheck};
//! let client = Client::connect(
//!     "127.0.0.1:22",
//!     HostKeyCheck::KnownHostsFile("/home/me/.ssh/known_hosts".into()),
//! )
//! .await?;
//! client.auth_password("me", "secret").await?;
//! let out = client.exec("uname -a").await?;
//! println!("{}", String::from_utf8_lossy(&out.stdout));
//! # Ok(()) }
//! ```
//!
//! A server: a [`Handler`] that accepts one password and answers `exec`
//! with the command's length as exit status (and no output).
//!
//! ```no_run
//! use std::sync::Arc;
//! use ssh_tokio::proto::ChannelRequest;
//! use ssh_tokio::{Auth, Channel, Config, Handler, Server, ServerHandle};
//!
//! struct Len;
//!
//! impl Handler for Len {
//!     async fn auth_password(&mut self, user: &str, password: &str) -> Auth {
//!         if user == "demo" && password == "demo" { Auth::Accept } else { Auth::Reject }
//!     }
//!     async fn channel_request(&mut self, channel: &Channel, request: ChannelRequest) -> bool {
//!         let ChannelRequest::Exec { command } = request else { return false };
//!         let ch = channel.clone();
//!         tokio::spawn(async move {
//!             let _ = ch.send_exit_status(command.len() as u32);
//!             let _ = ch.send_eof();
//!             let _ = ch.close();
//!         });
//!         true
//!     }
//! }
//!
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! let key = ssh_std::load_private_key("/etc/ssh/ssh_host_ed25519_key", None)?;
//! let mut config = Config::default();
//! config.transport.host_keys.push(Arc::new(key));
//! config.auth_methods = vec!["password".into()];
//! let server = Server::bind("127.0.0.1:2222", Arc::new(config)).await?;
//! server.run(|_conn: &ServerHandle| Len).await?;
//! # Ok(()) }
//! ```
//!
//! Each connection is driven by two tasks (one reads the socket and runs
//! the core's timers, one writes the core's output); handles lock the
//! connection's state briefly and never across an `.await`. Channels are
//! `AsyncRead + AsyncWrite` (stdout; [`Channel::stderr`] for stderr).
//!
//! Back-pressure is per channel: data a channel's reader has not taken
//! stays in that channel's buffer, and the peer stops sending on that
//! channel when its window runs out; other channels go on.
//!
//! The bookkeeping (which replies, exit statuses and EOFs arrived) is the
//! session layer's ([`ssh_proto::Session`]), kept in `ssh-std`'s shared
//! state, so every adapter sees the core's events the same way.

#![forbid(unsafe_code)]
#![warn(unreachable_pub, missing_docs)]

mod channel;
mod forward;
mod server;
pub mod sftp;

use std::collections::HashMap;
use std::future::poll_fn;
use std::io;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use ssh_proto::{ChannelId, Connection, PrivateKey, Prompt};
use ssh_std::driver::{Handle, Output, Shared, State, Wake};
use ssh_std::{ConnectAttempts, PromptFn};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;

pub use channel::{Channel, ChannelStderr};
pub use forward::{ChannelOpener, LocalForward};
pub use server::{serve_connection, Handler, Server, ShutdownHandle};
pub use sftp::{File as SftpFile, Sftp};

pub use ssh_proto::sftp::Attrs;
pub use ssh_proto::{self as proto, Error, ErrorKind, PublicKey};
pub use ssh_proto::{Auth, ChannelOpenFailure, Config, ExitSignal, KbdInt};
pub use ssh_std::{ExecOutput, ForwardTarget, HostKeyCheck, ServerHandle, ToHostPort};

/// Output taken from the core before the socket has written it.
const MAX_OUT: usize = 1 << 20;

/// What a task waits for: decides which wake-ups concern it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Key {
    /// Something of the connection (auth, host key, requests, the end).
    Conn,
    /// Something of one channel (data, EOF, replies, open, close).
    Chan(ChannelId),
    /// Room to write on one channel (window, or output written).
    Write(ChannelId),
}

/// Tasks waiting for something on one connection, by what they wait for:
/// a task waiting on channel 3 is not woken by data on channel 5.
#[derive(Default)]
struct Wakers(Mutex<WakerTable>);

#[derive(Default)]
struct WakerTable {
    conn: Vec<Waker>,
    chans: HashMap<ChannelId, Vec<Waker>>,
    writers: Vec<(ChannelId, Waker)>,
}

fn push_waker(v: &mut Vec<Waker>, w: &Waker) {
    if !v.iter().any(|x| x.will_wake(w)) {
        v.push(w.clone());
    }
}

/// Wakes and forgets every waker of `v`. Draining in place keeps the
/// list's capacity, so the next registration does not allocate (this runs
/// for data packets); `wake` only schedules a task.
fn wake_list(v: &mut Vec<Waker>) {
    for w in v.drain(..) {
        w.wake();
    }
}

impl Wakers {
    fn table(&self) -> std::sync::MutexGuard<'_, WakerTable> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn register(&self, key: Key, w: &Waker) {
        let mut t = self.table();
        match key {
            Key::Conn => push_waker(&mut t.conn, w),
            Key::Chan(id) => push_waker(t.chans.entry(id).or_default(), w),
            Key::Write(id) => {
                push_waker(t.chans.entry(id).or_default(), w);
                if !t.writers.iter().any(|(c, x)| *c == id && x.will_wake(w)) {
                    t.writers.push((id, w.clone()));
                }
            }
        }
    }

    fn wake(&self, wake: Wake<'_>) {
        let mut t = self.table();
        match wake {
            Wake::Channels(ids) => {
                for id in ids {
                    if let Some(v) = t.chans.get_mut(id) {
                        wake_list(v);
                    }
                }
            }
            Wake::Room => {
                for (_, w) in t.writers.drain(..) {
                    w.wake();
                }
            }
            Wake::All => {
                wake_list(&mut t.conn);
                for v in t.chans.values_mut() {
                    wake_list(v);
                }
                for (_, w) in t.writers.drain(..) {
                    w.wake();
                }
                // Bound the table: forget channels nobody waits on now
                // (a few are kept, so steady waits do not allocate).
                if t.chans.len() > 64 {
                    t.chans.retain(|_, v| !v.is_empty());
                }
            }
        }
    }
}

/// One connection as the handles see it.
pub(crate) struct Conn {
    pub(crate) handle: Arc<Handle>,
    wakers: Arc<Wakers>,
}

impl Conn {
    fn shared(&self) -> &Shared {
        self.handle.shared()
    }

    /// Polls `f` against the state; registers the task for a wake-up when
    /// it must wait. The registration happens under the state lock, and the
    /// core's changes wake under the same lock, so no wake-up is lost.
    fn poll_wait<T>(
        &self,
        key: Key,
        cx: &mut Context<'_>,
        f: &mut impl FnMut(&mut State) -> Option<Result<T, Error>>,
    ) -> Poll<Result<T, Error>> {
        let sh = self.shared();
        let mut g = sh.lock();
        let before = g.events_seen();
        if let Some(r) = f(&mut g) {
            g.absorb();
            sh.notify(&mut g, before);
            sh.flush(g);
            return Poll::Ready(r);
        }
        if let Err(e) = g.check() {
            return Poll::Ready(Err(e));
        }
        self.wakers.register(key, cx.waker());
        // What `f` queued (data it sent, a window it re-granted) goes out:
        // the peer may be waiting for it.
        if g.conn().transmit().is_some() {
            g.absorb();
            sh.notify(&mut g, before);
            sh.flush(g);
        }
        Poll::Pending
    }

    async fn wait<T>(
        &self,
        key: Key,
        mut f: impl FnMut(&mut State) -> Option<Result<T, Error>>,
    ) -> Result<T, Error> {
        poll_fn(|cx| self.poll_wait(key, cx, &mut f)).await
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> Result<T, Error>) -> Result<T, Error> {
        self.shared().with(f)
    }
}

/// Makes the shared state of a new connection and starts its two tasks
/// on `stream`.
pub(crate) fn start<S>(conn: Connection, stream: S) -> Arc<Conn>
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let wakers = Arc::new(Wakers::default());
    let io_out = Arc::new(Notify::new());
    let io_in = Arc::new(Notify::new());
    let (o, i) = (io_out.clone(), io_in.clone());
    let w = wakers.clone();
    let shared = Shared::with_hook(
        conn,
        Output::Loop(Box::new(move || {
            o.notify_one();
            i.notify_one();
        })),
        Some(Box::new(move |wake| w.wake(wake))),
    );
    let (rd, wr) = tokio::io::split(stream);
    tokio::spawn(write_task(shared.clone(), wr, io_out));
    tokio::spawn(read_task(shared.clone(), rd, io_in));
    Arc::new(Conn {
        handle: Arc::new(Handle::new(shared, None)),
        wakers,
    })
}

async fn write_task<W: AsyncWrite + Unpin>(shared: Arc<Shared>, mut wr: W, wake: Arc<Notify>) {
    let mut buf = Vec::new();
    loop {
        buf.clear();
        let (_, closed) = shared.loop_take_output(&mut buf, MAX_OUT);
        if !buf.is_empty() {
            if let Err(e) = wr.write_all(&buf).await {
                shared.loop_io_error(e, "write to peer failed");
                return;
            }
            continue;
        }
        if closed {
            let _ = wr.shutdown().await;
            return;
        }
        wake.notified().await;
    }
}

async fn read_task<R: AsyncRead + Unpin>(shared: Arc<Shared>, mut rd: R, wake: Arc<Notify>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut held: Vec<u8> = Vec::new();
    loop {
        if shared.lock().closed().is_some() {
            return;
        }
        let deadline = shared.loop_deadline();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d.into()).await,
                None => std::future::pending().await,
            }
        };
        if !held.is_empty() {
            let n = shared.loop_recv(Instant::now(), &held);
            held.drain(..n);
            if !held.is_empty() {
                // The core waits for the application to read: wait for a
                // wake-up (or a timer).
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = sleep => shared.loop_timeout(Instant::now()),
                }
            }
            continue;
        }
        tokio::select! {
            r = rd.read(&mut buf) => match r {
                Ok(0) => {
                    shared.loop_eof(Instant::now());
                    return;
                }
                Ok(n) => {
                    let took = shared.loop_recv(Instant::now(), &buf[..n]);
                    if took < n {
                        held.extend_from_slice(&buf[took..n]);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    shared.loop_io_error(e, "read from peer failed");
                    return;
                }
            },
            _ = sleep => shared.loop_timeout(Instant::now()),
            // A handle changed something (a timer may have moved).
            _ = wake.notified() => {}
        }
    }
}

/// A client connection. Cloning gives another handle to the same
/// connection; it closes when the last handle (and channel) is dropped.
#[derive(Clone)]
pub struct Client {
    conn: Arc<Conn>,
}

impl Client {
    /// Connects over TCP with the default configuration. The host key is
    /// looked up under the host as `addr` names it (see [`ToHostPort`]).
    pub async fn connect(addr: impl ToHostPort, check: HostKeyCheck) -> Result<Client, Error> {
        Self::connect_with(addr, Arc::new(Config::default()), check, None).await
    }

    /// Connects over TCP; `timeout` bounds the TCP connect and the
    /// handshake. The host key is looked up under the host as `addr` names
    /// it (not the address it resolved to), as OpenSSH does.
    pub async fn connect_with(
        addr: impl ToHostPort,
        config: Arc<Config>,
        check: HostKeyCheck,
        timeout: Option<Duration>,
    ) -> Result<Client, Error> {
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let (host, port) = addr
            .to_host_port()
            .map_err(ConnectAttempts::resolve_failed)?;
        let addrs: Vec<_> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(ConnectAttempts::resolve_failed)?
            .collect();
        let mut tried = ConnectAttempts::default();
        for a in &addrs {
            let c = tokio::net::TcpStream::connect(a);
            let r = match deadline {
                Some(d) => match tokio::time::timeout_at(d, c).await {
                    Ok(r) => r,
                    Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")),
                },
                None => c.await,
            };
            match r {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    let left =
                        deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now()));
                    return Self::handshake(s, &host, port, config, check, left).await;
                }
                Err(e) => tried.failed(a, e),
            }
        }
        Err(tried.into_error())
    }

    /// Runs the handshake over any byte stream. `host` and `port` name the
    /// server for known_hosts lookups.
    pub async fn handshake<S>(
        stream: S,
        host: &str,
        port: u16,
        config: Arc<Config>,
        mut check: HostKeyCheck,
        timeout: Option<Duration>,
    ) -> Result<Client, Error>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let conn = Connection::client(config, ssh_proto::os_rng(), Instant::now())?;
        conn.set_peer(&format_args!("{host}:{port}"));
        let conn = start(conn, stream);
        let client = Client { conn };
        let work = async {
            let sh = client.conn.shared();
            sh.flush(sh.lock());
            let key = client
                .conn
                .wait(Key::Conn, |s| s.take_host_key().map(Ok))
                .await?;
            // The policy may read a known_hosts file or run the
            // application's callback: off the async threads.
            let verdict = {
                let host = host.to_string();
                tokio::task::spawn_blocking(move || check.verdict(&host, port, &key))
                    .await
                    .map_err(|e| Error::new(ErrorKind::HostKey, format!("host key check: {e}")))?
            };
            let mut r = Ok(());
            sh.with(|s| {
                r = s.host_key_verdict(verdict);
                Ok(())
            })?;
            r?;
            client
                .conn
                .wait(Key::Conn, |s| (s.kex_done() > 0).then_some(Ok(())))
                .await
        };
        match timeout {
            Some(t) => tokio::time::timeout(t, work)
                .await
                .map_err(|_| Error::new(ErrorKind::Timeout, "handshake timed out"))??,
            None => work.await?,
        }
        Ok(client)
    }

    /// The server's host key (after the first key exchange).
    pub fn host_key(&self) -> Option<PublicKey> {
        self.conn.shared().lock().conn().host_key().cloned()
    }
    /// Algorithms in use (after the first key exchange).
    pub fn negotiated(&self) -> Option<ssh_proto::Negotiated> {
        self.conn.shared().lock().conn().negotiated().cloned()
    }
    /// The server's version string (e.g. `SSH-2.0-OpenSSH_9.2p1`).
    pub fn server_version(&self) -> Option<String> {
        self.conn
            .shared()
            .lock()
            .conn()
            .peer_version()
            .map(str::to_string)
    }
    /// The server's authentication banner, if it sent one.
    pub fn banner(&self) -> Option<String> {
        self.conn.shared().lock().banner().map(str::to_string)
    }
    /// Whether user authentication has succeeded.
    pub fn is_authenticated(&self) -> bool {
        self.conn.shared().lock().conn().is_authenticated()
    }
    /// Methods the server said may continue after the last failure.
    pub fn auth_methods_left(&self) -> Option<Vec<String>> {
        self.conn
            .shared()
            .lock()
            .conn()
            .auth_methods_left()
            .map(|m| m.to_vec())
    }
    /// How many key exchanges have completed (1 after the handshake).
    pub fn kex_count(&self) -> u32 {
        self.conn.shared().lock().conn().kex_count()
    }
    /// Starts a new key exchange; returns without waiting for it.
    pub fn rekey(&self) -> Result<(), Error> {
        self.conn.with(|s| s.conn_mut().rekey())
    }

    async fn auth_result(
        &self,
        method: &str,
        mut on_prompt: Option<&mut SendPromptFn<'_>>,
    ) -> Result<(), Error> {
        loop {
            let ev = self
                .conn
                .wait(Key::Conn, |s| s.pop_auth_event().map(Ok))
                .await?;
            let prompt = on_prompt.as_deref_mut().map(|f| f as &mut PromptFn<'_>);
            if let Some(r) = ssh_std::auth_event(self.conn.shared(), ev, method, prompt) {
                return r;
            }
        }
    }

    /// Asks with `none`: Ok(true) if the server let us in.
    pub async fn auth_none(&self, user: &str) -> Result<bool, Error> {
        self.conn.with(|s| s.conn_mut().auth_none(user))?;
        ssh_proto::session::auth_none_result(self.auth_result("none", None).await)
    }

    /// Authenticates with a password; awaits the server's answer. Fails
    /// with `AuthFailed` when refused.
    pub async fn auth_password(&self, user: &str, password: &str) -> Result<(), Error> {
        self.conn
            .with(|s| s.conn_mut().auth_password(user, password))?;
        self.auth_result("password", None).await
    }

    /// Authenticates with `key`; awaits the server's answer. Fails with
    /// `AuthFailed` when refused.
    pub async fn auth_publickey(&self, user: &str, key: Arc<PrivateKey>) -> Result<(), Error> {
        let label = format!("publickey {}", key.public_key().key_type());
        self.conn.with(|s| s.conn_mut().auth_publickey(user, key))?;
        self.auth_result(&label, None).await
    }

    /// Loads a private key file (decrypted with `passphrase`, off the async
    /// threads) and authenticates with it as [`Client::auth_publickey`].
    pub async fn auth_key_file(
        &self,
        user: &str,
        path: impl AsRef<std::path::Path>,
        passphrase: Option<&str>,
    ) -> Result<(), Error> {
        // Reading the file and deriving the passphrase's key (bcrypt, by
        // design slow) run off the async threads.
        let (path, passphrase) = (path.as_ref().to_path_buf(), passphrase.map(str::to_string));
        let key = tokio::task::spawn_blocking(move || {
            ssh_std::load_private_key(&path, passphrase.as_deref())
        })
        .await
        .map_err(|e| Error::new(ErrorKind::Key, format!("key file: {e}")))??;
        self.auth_publickey(user, Arc::new(key)).await
    }

    /// Keyboard-interactive: `respond(name, instruction, prompts)` gives
    /// the answers.
    pub async fn auth_keyboard_interactive(
        &self,
        user: &str,
        mut respond: impl FnMut(&str, &str, &[Prompt]) -> Vec<String> + Send,
    ) -> Result<(), Error> {
        self.conn
            .with(|s| s.conn_mut().auth_keyboard_interactive(user, ""))?;
        self.auth_result("keyboard-interactive", Some(&mut respond))
            .await
    }

    /// Opens a session channel; awaits until the server accepts or
    /// refuses it. Servers refuse session channels beyond `MaxSessions`
    /// (10 per connection by default, OpenSSH and this project alike).
    pub async fn channel_session(&self) -> Result<Channel, Error> {
        let id = self.conn.with(|s| s.conn_mut().open_session())?;
        let ch = Channel::new(self.conn.clone(), id);
        self.conn.wait(Key::Chan(id), |s| s.poll_open(id)).await?;
        Ok(ch)
    }

    /// Opens a channel of any kind a client opens (`direct-tcpip`,
    /// `direct-streamlocal@openssh.com`, `session`, or another type);
    /// resolves when the server accepts or refuses it (a
    /// [`ErrorKind::ChannelOpen`] error with the server's reason code).
    pub async fn open_channel(&self, kind: &proto::ChannelKind) -> Result<Channel, Error> {
        open_on(&self.conn, kind).await
    }

    /// A TCP connection from the server to `host`:`port` (ssh's `-W`, one
    /// `-L` connection), as an `AsyncRead + AsyncWrite` byte stream.
    /// `originator` is the address and port the connection is made for
    /// (ssh sends the local peer's; `("127.0.0.1", 0)` when there is none).
    pub async fn direct_tcpip(
        &self,
        host: &str,
        port: u16,
        originator: (&str, u16),
    ) -> Result<Channel, Error> {
        self.open_channel(&proto::ChannelKind::direct_tcpip(
            host,
            port,
            originator.0,
            originator.1,
        ))
        .await
    }

    /// A connection from the server to the Unix socket `path` (OpenSSH's
    /// `direct-streamlocal@openssh.com`), as an `AsyncRead + AsyncWrite`
    /// byte stream.
    pub async fn direct_streamlocal(&self, path: &str) -> Result<Channel, Error> {
        self.open_channel(&proto::ChannelKind::DirectStreamlocal { path: path.into() })
            .await
    }

    async fn global(&self, req: proto::GlobalRequest, what: &str) -> Result<Option<u32>, Error> {
        /// Gives the ticket up when the future is dropped before its reply.
        struct Ticket<'a>(&'a Conn, Option<u64>);
        impl Drop for Ticket<'_> {
            fn drop(&mut self) {
                if let Some(t) = self.1 {
                    let _ = self.0.with(|s| {
                        s.abandon_global_reply(t);
                        Ok(())
                    });
                }
            }
        }
        let t = self.conn.with(|s| s.send_global_request(&req))?;
        let mut ticket = Ticket(&self.conn, Some(t));
        let reply = self.conn.wait(Key::Conn, |s| s.poll_global_reply(t)).await;
        ticket.1 = None;
        proto::session::forward_result(reply?, what)
    }

    /// Asks the server to listen on `address`:`port` and forward each
    /// connection to it back to us (ssh's `-R`); returns the port it
    /// listens on (the one it picked when `port` is 0). `address` as ssh
    /// sends it: `localhost` (loopback), `""` (every address) or an
    /// address. Take the connections with [`Client::accept_forwarded`].
    /// A refusal is an [`ErrorKind::GlobalRequest`] error.
    pub async fn forward_tcpip(&self, address: &str, port: u16) -> Result<u16, Error> {
        let req = proto::GlobalRequest::TcpipForward {
            address: address.into(),
            port: port.into(),
        };
        let what = format!("remote port forwarding on {address}:{port}");
        match self.global(req, &what).await? {
            Some(p) => u16::try_from(p).map_err(|_| Error::protocol("bound port out of range")),
            None => Err(Error::protocol(format!(
                "{what}: the server's reply names no port"
            ))),
        }
    }

    /// Stops a forward made with [`Client::forward_tcpip`] (`port` is the
    /// port it returned).
    pub async fn cancel_forward_tcpip(&self, address: &str, port: u16) -> Result<(), Error> {
        let req = proto::GlobalRequest::CancelTcpipForward {
            address: address.into(),
            port: port.into(),
        };
        self.global(req, &format!("cancelling the forward on {address}:{port}"))
            .await
            .map(drop)
    }

    /// Asks the server to listen on the Unix socket `path` and forward
    /// each connection to it back to us (ssh's `-R /path:…`).
    pub async fn forward_streamlocal(&self, path: &str) -> Result<(), Error> {
        let req = proto::GlobalRequest::StreamlocalForward { path: path.into() };
        self.global(req, &format!("remote forwarding of {path}"))
            .await
            .map(drop)
    }

    /// Stops a forward made with [`Client::forward_streamlocal`].
    pub async fn cancel_forward_streamlocal(&self, path: &str) -> Result<(), Error> {
        let req = proto::GlobalRequest::CancelStreamlocalForward { path: path.into() };
        self.global(req, &format!("cancelling the forward of {path}"))
            .await
            .map(drop)
    }

    /// Resolves with the next connection the server forwards to us (for
    /// a forward asked with [`Client::forward_tcpip`] or
    /// [`Client::forward_streamlocal`]): the channel, already accepted,
    /// and what it is for. Connections wait in a queue of
    /// [`MAX_QUEUED_FORWARDED`](proto::session::MAX_QUEUED_FORWARDED);
    /// beyond it the server's opens are refused.
    pub async fn accept_forwarded(&self) -> Result<(Channel, proto::ChannelKind), Error> {
        let (id, kind) = self.conn.wait(Key::Conn, |s| s.poll_forwarded()).await?;
        Ok((Channel::new(self.conn.clone(), id), kind))
    }

    /// Runs a command with no input; returns its output and exit status.
    /// Uses one session channel for the duration (see `MaxSessions` at
    /// [`Client::channel_session`]).
    pub async fn exec(&self, command: &str) -> Result<ExecOutput, Error> {
        let ch = self.channel_session().await?;
        ch.exec(command).await?;
        ch.send_eof()?;
        let (stdout, stderr) = ch.read_all().await?;
        let status = ch.exit_status().await?;
        let signal = ch.exit_signal();
        Ok(ExecOutput {
            stdout,
            stderr,
            status,
            signal,
        })
    }

    /// Runs a command with `input` as its stdin; returns its output and
    /// exit status. Input and output move at the same time, so any sizes
    /// work (see [`Channel::exchange`]).
    pub async fn exec_with_input(&self, command: &str, input: &[u8]) -> Result<ExecOutput, Error> {
        let ch = self.channel_session().await?;
        ch.exec(command).await?;
        let (stdout, stderr) = ch.exchange(input).await?;
        let status = ch.exit_status().await?;
        let signal = ch.exit_signal();
        Ok(ExecOutput {
            stdout,
            stderr,
            status,
            signal,
        })
    }

    /// Opens an interactive shell on a pseudo-terminal of `cols` x `rows`
    /// characters with terminal type `term` (paramiko's `invoke_shell`).
    pub async fn invoke_shell(&self, term: &str, cols: u32, rows: u32) -> Result<Channel, Error> {
        let ch = self.channel_session().await?;
        ch.request_pty(term, cols, rows, &[]).await?;
        ch.shell().await?;
        Ok(ch)
    }

    /// Starts an SFTP session on a new channel (the `sftp` subsystem).
    pub async fn sftp(&self) -> Result<Sftp, Error> {
        let ch = self.channel_session().await?;
        ch.subsystem("sftp").await?;
        Sftp::new(ch).await
    }

    /// Disconnects now (every later call fails).
    pub fn disconnect(&self) {
        let _ = self.conn.with(|s| {
            s.conn_mut().disconnect(
                ssh_proto::disconnect::BY_APPLICATION,
                "disconnected by user",
            );
            Ok(())
        });
    }

    /// Resolves when the connection has ended, with the reason.
    pub async fn closed(&self) -> Error {
        match self
            .conn
            .wait(Key::Conn, |s| s.closed().cloned().map(Ok))
            .await
        {
            Ok(e) | Err(e) => e,
        }
    }
}

type SendPromptFn<'a> = dyn FnMut(&str, &str, &[Prompt]) -> Vec<String> + Send + 'a;

/// Opens a channel of `kind` on `conn`; resolves when the peer accepts or
/// refuses it.
pub(crate) async fn open_on(conn: &Arc<Conn>, kind: &proto::ChannelKind) -> Result<Channel, Error> {
    let id = conn.with(|s| s.conn_mut().open(kind))?;
    let ch = Channel::new(conn.clone(), id);
    conn.wait(Key::Chan(id), |s| s.poll_open(id)).await?;
    Ok(ch)
}
