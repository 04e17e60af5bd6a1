//! The blocking client: connect, verify the host key, authenticate, run
//! channels.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ssh_proto::session::{auth_none_result, forward_result, known_hosts_verdict};
use ssh_proto::{
    AuthStep, ChannelKind, Config, Connection, Error, ErrorKind, Event, ExitSignal, GlobalRequest,
    PrivateKey, Prompt, PublicKey,
};

use crate::addr::{connect_tcp, ConnectAttempts, ToHostPort};
use crate::channel::Channel;
use crate::driver::{reader_loop, Handle, Shared};

/// A byte stream that can be read and written from two threads at once:
/// the reader half goes to the connection's reader thread.
pub trait SplitStream {
    /// Splits into a reader half and a writer half of the same stream.
    #[allow(clippy::type_complexity)]
    fn split(self) -> io::Result<(Box<dyn Read + Send>, Box<dyn Write + Send>)>;
}

impl SplitStream for TcpStream {
    fn split(self) -> io::Result<(Box<dyn Read + Send>, Box<dyn Write + Send>)> {
        let _ = self.set_nodelay(true);
        Ok((Box::new(self.try_clone()?), Box::new(self)))
    }
}

#[cfg(unix)]
impl SplitStream for std::os::unix::net::UnixStream {
    fn split(self) -> io::Result<(Box<dyn Read + Send>, Box<dyn Write + Send>)> {
        Ok((Box::new(self.try_clone()?), Box::new(self)))
    }
}

impl<R: Read + Send + 'static, W: Write + Send + 'static> SplitStream for (R, W) {
    fn split(self) -> io::Result<(Box<dyn Read + Send>, Box<dyn Write + Send>)> {
        Ok((Box::new(self.0), Box::new(self.1)))
    }
}

/// How the server's host key is checked. Verification is mandatory: pick a
/// policy explicitly.
pub enum HostKeyCheck {
    /// The key must be listed for the host in this OpenSSH `known_hosts`
    /// file (plain, hashed `|1|` and `[host]:port` entries are understood).
    KnownHostsFile(PathBuf),
    /// The key must be this one.
    Exact(PublicKey),
    /// The application decides: return true to accept.
    Callback(Box<dyn FnMut(&PublicKey) -> bool + Send>),
    /// Accept any key. Only for tests and demos: it defeats the purpose of
    /// host keys.
    InsecureAcceptAny,
}

impl HostKeyCheck {
    /// Applies the policy to the key the server proved it holds: Ok to go
    /// on, or why not. `host` and `port` name the server for known_hosts.
    pub fn verdict(&mut self, host: &str, port: u16, key: &PublicKey) -> Result<(), String> {
        match self {
            HostKeyCheck::InsecureAcceptAny => Ok(()),
            HostKeyCheck::Exact(k) => {
                if k == key {
                    Ok(())
                } else {
                    Err(format!(
                        "host key {} does not match the expected {}",
                        key.fingerprint(),
                        k.fingerprint()
                    ))
                }
            }
            HostKeyCheck::Callback(f) => {
                if f(key) {
                    Ok(())
                } else {
                    Err(format!(
                        "host key {} {} was rejected",
                        key.key_type(),
                        key.fingerprint()
                    ))
                }
            }
            HostKeyCheck::KnownHostsFile(path) => {
                let known = crate::files::read_known_hosts(&*path);
                known_hosts_verdict(&known, &path.display().to_string(), host, port, key)
            }
        }
    }
}

/// Output of [`Client::exec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Everything the command wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything the command wrote to stderr.
    pub stderr: Vec<u8>,
    /// The exit status, when the server sent one.
    pub status: Option<u32>,
    /// The signal that killed the command, when it was killed.
    pub signal: Option<ExitSignal>,
}

/// A client connection. Cloning gives another handle to the same
/// connection; it closes when the last handle (and channel) is dropped.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Handle>,
}

fn io_err(e: io::Error, what: String) -> Error {
    Error::new(ErrorKind::Io, format!("{what}: {e}"))
}

impl Client {
    /// Connects over TCP with the default configuration. The host key is
    /// looked up under the host as `addr` names it (see [`ToHostPort`]).
    pub fn connect(addr: impl ToHostPort, check: HostKeyCheck) -> Result<Client, Error> {
        Self::connect_with(addr, Arc::new(Config::default()), check, None)
    }

    /// Connects over TCP; `timeout` bounds the TCP connect and the handshake.
    /// The host key is looked up under the host as `addr` names it (not
    /// the address it resolved to), as OpenSSH does.
    pub fn connect_with(
        addr: impl ToHostPort,
        config: Arc<Config>,
        check: HostKeyCheck,
        timeout: Option<Duration>,
    ) -> Result<Client, Error> {
        let (host, port) = addr
            .to_host_port()
            .map_err(ConnectAttempts::resolve_failed)?;
        let (s, _) = connect_tcp((host.as_str(), port), timeout)?;
        let _ = s.set_nodelay(true);
        Self::handshake_tcp(s, &host, port, config, check, timeout)
    }

    /// Runs the handshake on a connected TCP stream. `host` and `port` name
    /// the server for known_hosts lookups.
    fn handshake_tcp(
        sock: TcpStream,
        host: &str,
        port: u16,
        config: Arc<Config>,
        check: HostKeyCheck,
        timeout: Option<Duration>,
    ) -> Result<Client, Error> {
        let r = sock
            .try_clone()
            .map_err(|e| io_err(e, "clone socket".into()))?;
        let w = sock
            .try_clone()
            .map_err(|e| io_err(e, "clone socket".into()))?;
        let timer = sock.try_clone().ok();
        Self::handshake_inner(
            Box::new(r),
            Box::new(w),
            timer,
            Some(sock),
            host,
            port,
            config,
            check,
            timeout,
        )
    }

    /// Runs the handshake over any byte stream that can be split into a
    /// reader and a writer: a `UnixStream`, a `TcpStream`, or a
    /// `(reader, writer)` pair such as a proxy command's stdout and stdin.
    /// `host` and `port` name the server for known_hosts lookups.
    pub fn handshake(
        stream: impl SplitStream,
        host: &str,
        port: u16,
        config: Arc<Config>,
        check: HostKeyCheck,
    ) -> Result<Client, Error> {
        let (reader, writer) = stream
            .split()
            .map_err(|e| io_err(e, "split stream".into()))?;
        Self::handshake_inner(reader, writer, None, None, host, port, config, check, None)
    }

    #[allow(clippy::too_many_arguments)]
    fn handshake_inner(
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
        timer: Option<TcpStream>,
        sock: Option<TcpStream>,
        host: &str,
        port: u16,
        config: Arc<Config>,
        check: HostKeyCheck,
        timeout: Option<Duration>,
    ) -> Result<Client, Error> {
        let conn = Connection::client(config, ssh_proto::os_rng(), Instant::now())?;
        conn.set_peer(&format_args!("{host}:{port}"));
        let shared = Shared::new(conn, writer);
        let inner = Arc::new(Handle::new(shared.clone(), sock));
        {
            let s2 = shared.clone();
            std::thread::Builder::new()
                .name("ssh-reader".into())
                .spawn(move || reader_loop(s2, reader, timer))
                .map_err(|e| io_err(e, "spawn reader thread".into()))?;
        }
        Self::finish_handshake(inner, host, port, check, timeout)
    }

    /// Completes the handshake of a connection whose socket an event loop
    /// owns (the `ssh-mio` adapter): `shared` was made with
    /// `Output::Loop` and is already registered with the loop. For adapters
    /// that drive a connection themselves; blocks the calling thread (not
    /// the loop's) until the handshake ends, `timeout` passes or `check`
    /// refuses the host key.
    pub fn handshake_loop(
        shared: Arc<Shared>,
        host: &str,
        port: u16,
        check: HostKeyCheck,
        timeout: Option<Duration>,
    ) -> Result<Client, Error> {
        let inner = Arc::new(Handle::new(shared, None));
        Self::finish_handshake(inner, host, port, check, timeout)
    }

    fn finish_handshake(
        inner: Arc<Handle>,
        host: &str,
        port: u16,
        mut check: HostKeyCheck,
        timeout: Option<Duration>,
    ) -> Result<Client, Error> {
        let shared = inner.shared().clone();
        let deadline = timeout.map(|t| Instant::now() + t);
        shared.flush(shared.lock());
        // Wait for the host key, let the policy decide.
        let key = wait_deadline(&shared, deadline, |s| s.take_host_key().map(Ok))?;
        check_host_key(&shared, &mut check, host, port, &key)?;
        wait_deadline(&shared, deadline, |s| (s.kex_done() > 0).then_some(Ok(())))?;
        Ok(Client { inner })
    }

    fn shared(&self) -> &Shared {
        self.inner.shared()
    }

    /// The server's host key.
    pub fn host_key(&self) -> Option<PublicKey> {
        self.shared().lock().conn().host_key().cloned()
    }

    /// Algorithms in use.
    pub fn negotiated(&self) -> Option<ssh_proto::Negotiated> {
        self.shared().lock().conn().negotiated().cloned()
    }

    /// The server's version string.
    pub fn server_version(&self) -> Option<String> {
        self.shared()
            .lock()
            .conn()
            .peer_version()
            .map(str::to_string)
    }

    /// The authentication banner the server sent, if any.
    pub fn banner(&self) -> Option<String> {
        self.shared().lock().banner().map(str::to_string)
    }

    /// Whether user authentication has succeeded.
    pub fn is_authenticated(&self) -> bool {
        self.shared().lock().conn().is_authenticated()
    }

    /// Methods the server said may continue after the last failure.
    pub fn auth_methods_left(&self) -> Option<Vec<String>> {
        self.shared()
            .lock()
            .conn()
            .auth_methods_left()
            .map(|m| m.to_vec())
    }

    /// Key exchanges completed so far (1 after the handshake; rekeys add).
    pub fn kex_count(&self) -> u32 {
        self.shared().lock().conn().kex_count()
    }

    /// Starts a key exchange now.
    pub fn rekey(&self) -> Result<(), Error> {
        self.shared().with(|s| s.conn_mut().rekey())
    }

    fn auth_result(
        &self,
        method: &str,
        mut on_prompt: Option<&mut PromptFn<'_>>,
    ) -> Result<(), Error> {
        loop {
            let ev = self.shared().wait(|s| s.pop_auth_event().map(Ok))?;
            if let Some(r) = auth_event(self.shared(), ev, method, on_prompt.as_deref_mut()) {
                return r;
            }
        }
    }

    /// Asks with `none`: Ok(true) if the server let us in without
    /// credentials, Ok(false) otherwise (see [`Client::auth_methods_left`]).
    pub fn auth_none(&self, user: &str) -> Result<bool, Error> {
        self.shared().with(|s| s.conn_mut().auth_none(user))?;
        auth_none_result(self.auth_result("none", None))
    }

    /// Password authentication. Falls back to keyboard-interactive when that
    /// is all the server offers (paramiko's behaviour).
    pub fn auth_password(&self, user: &str, password: &str) -> Result<(), Error> {
        self.shared()
            .with(|s| s.conn_mut().auth_password(user, password))?;
        self.auth_result("password", None)
    }

    /// Public key authentication with a loaded key.
    pub fn auth_publickey(&self, user: &str, key: Arc<PrivateKey>) -> Result<(), Error> {
        let label = format!("publickey {}", key.public_key().key_type());
        self.shared()
            .with(|s| s.conn_mut().auth_publickey(user, key))?;
        self.auth_result(&label, None)
    }

    /// Public key authentication with a key file.
    pub fn auth_key_file(
        &self,
        user: &str,
        path: impl AsRef<std::path::Path>,
        passphrase: Option<&str>,
    ) -> Result<(), Error> {
        let key = crate::load_private_key(path, passphrase)?;
        self.auth_publickey(user, Arc::new(key))
    }

    /// Keyboard-interactive: `respond(name, instruction, prompts)` gives
    /// the answers, one per prompt.
    pub fn auth_keyboard_interactive(
        &self,
        user: &str,
        mut respond: impl FnMut(&str, &str, &[Prompt]) -> Vec<String>,
    ) -> Result<(), Error> {
        self.shared()
            .with(|s| s.conn_mut().auth_keyboard_interactive(user, ""))?;
        self.auth_result("keyboard-interactive", Some(&mut respond))
    }

    /// Opens a session channel; blocks until the server accepts or
    /// refuses it. Servers refuse session channels beyond `MaxSessions`
    /// (10 per connection by default, OpenSSH and this project alike).
    pub fn channel_session(&self) -> Result<Channel, Error> {
        let id = self.shared().with(|s| s.conn_mut().open_session())?;
        self.shared().wait(|s| s.poll_open(id))?;
        Ok(Channel::new(self.inner.clone(), id))
    }

    /// Opens a channel of any kind a client opens (`direct-tcpip`,
    /// `direct-streamlocal@openssh.com`, `session`, or another type);
    /// blocks until the server accepts or refuses it (a
    /// [`ErrorKind::ChannelOpen`] error with the server's reason code).
    pub fn open_channel(&self, kind: &ChannelKind) -> Result<Channel, Error> {
        Client::open_on(&self.inner, kind)
    }

    /// [`Client::open_channel`] on a connection's handle.
    pub(crate) fn open_on(conn: &Arc<Handle>, kind: &ChannelKind) -> Result<Channel, Error> {
        let sh = conn.shared();
        let id = sh.with(|s| s.conn_mut().open(kind))?;
        sh.wait(|s| s.poll_open(id))?;
        Ok(Channel::new(conn.clone(), id))
    }

    /// The connection's handle (kept alive by whoever holds it).
    pub(crate) fn handle(&self) -> &Arc<Handle> {
        &self.inner
    }

    /// A TCP connection from the server to `host`:`port` (ssh's `-W`, one
    /// `-L` connection), as a `Read + Write` byte stream. `originator` is
    /// the address and port the connection is made for (ssh sends the
    /// local peer's; `("127.0.0.1", 0)` when there is none).
    pub fn direct_tcpip(
        &self,
        host: &str,
        port: u16,
        originator: (&str, u16),
    ) -> Result<Channel, Error> {
        self.open_channel(&ChannelKind::direct_tcpip(
            host,
            port,
            originator.0,
            originator.1,
        ))
    }

    /// A connection from the server to the Unix socket `path` (OpenSSH's
    /// `direct-streamlocal@openssh.com`), as a `Read + Write` byte stream.
    pub fn direct_streamlocal(&self, path: &str) -> Result<Channel, Error> {
        self.open_channel(&ChannelKind::DirectStreamlocal { path: path.into() })
    }

    fn global(&self, req: GlobalRequest, what: &str) -> Result<Option<u32>, Error> {
        let t = self.shared().with(|s| s.send_global_request(&req))?;
        let reply = self.shared().wait(|s| s.poll_global_reply(t))?;
        forward_result(reply, what)
    }

    /// Asks the server to listen on `address`:`port` and forward each
    /// connection to it back to us (ssh's `-R`); returns the port it
    /// listens on (the one it picked when `port` is 0). `address` as ssh
    /// sends it: `localhost` (loopback), `""` (every address) or an
    /// address. Take the connections with [`Client::accept_forwarded`].
    /// A refusal is an [`ErrorKind::GlobalRequest`] error.
    pub fn forward_tcpip(&self, address: &str, port: u16) -> Result<u16, Error> {
        let req = GlobalRequest::TcpipForward {
            address: address.into(),
            port: port.into(),
        };
        let what = format!("remote port forwarding on {address}:{port}");
        match self.global(req, &what)? {
            Some(p) => u16::try_from(p).map_err(|_| Error::protocol("bound port out of range")),
            None => Err(Error::protocol(format!(
                "{what}: the server's reply names no port"
            ))),
        }
    }

    /// Stops a forward made with [`Client::forward_tcpip`] (`port` is the
    /// port it returned).
    pub fn cancel_forward_tcpip(&self, address: &str, port: u16) -> Result<(), Error> {
        let req = GlobalRequest::CancelTcpipForward {
            address: address.into(),
            port: port.into(),
        };
        self.global(req, &format!("cancelling the forward on {address}:{port}"))
            .map(drop)
    }

    /// Asks the server to listen on the Unix socket `path` and forward
    /// each connection to it back to us (ssh's `-R /path:…`).
    pub fn forward_streamlocal(&self, path: &str) -> Result<(), Error> {
        let req = GlobalRequest::StreamlocalForward { path: path.into() };
        self.global(req, &format!("remote forwarding of {path}"))
            .map(drop)
    }

    /// Stops a forward made with [`Client::forward_streamlocal`].
    pub fn cancel_forward_streamlocal(&self, path: &str) -> Result<(), Error> {
        let req = GlobalRequest::CancelStreamlocalForward { path: path.into() };
        self.global(req, &format!("cancelling the forward of {path}"))
            .map(drop)
    }

    /// Waits for the next connection the server forwards to us (for a
    /// forward asked with [`Client::forward_tcpip`] or
    /// [`Client::forward_streamlocal`]): the channel, already accepted,
    /// and what it is for ([`ChannelKind::ForwardedTcpip`] names the
    /// listener and the originator). Connections wait in a queue of
    /// [`MAX_QUEUED_FORWARDED`](ssh_proto::session::MAX_QUEUED_FORWARDED);
    /// beyond it the server's opens are refused.
    pub fn accept_forwarded(&self) -> Result<(Channel, ChannelKind), Error> {
        let (id, kind) = self.shared().wait(|s| s.poll_forwarded())?;
        Ok((Channel::new(self.inner.clone(), id), kind))
    }

    /// Starts an SFTP session on a new channel (the `sftp` subsystem).
    pub fn sftp(&self) -> Result<crate::sftp::Sftp, Error> {
        let ch = self.channel_session()?;
        ch.subsystem("sftp")?;
        crate::sftp::Sftp::new(ch)
    }

    /// Runs a command with no input; returns its output and exit status.
    /// Uses one session channel for the duration (see `MaxSessions` at
    /// [`Client::channel_session`]).
    pub fn exec(&self, command: &str) -> Result<ExecOutput, Error> {
        let mut ch = self.channel_session()?;
        ch.exec(command)?;
        ch.send_eof()?;
        let (stdout, stderr) = ch.read_all()?;
        let status = ch.exit_status()?;
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
    pub fn exec_with_input(&self, command: &str, input: &[u8]) -> Result<ExecOutput, Error> {
        let ch = self.channel_session()?;
        ch.exec(command)?;
        let (stdout, stderr) = ch.exchange(input)?;
        let status = ch.exit_status()?;
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
    /// The channel's `Read` gives what the terminal shows.
    pub fn invoke_shell(&self, term: &str, cols: u32, rows: u32) -> Result<Channel, Error> {
        let ch = self.channel_session()?;
        ch.request_pty(term, cols, rows, &[])?;
        ch.shell()?;
        Ok(ch)
    }

    /// Disconnects now (the handles stay usable but every call fails).
    pub fn disconnect(&self) {
        let _ = self.shared().with(|s| {
            s.conn_mut().disconnect(
                ssh_proto::disconnect::BY_APPLICATION,
                "disconnected by user",
            );
            Ok(())
        });
    }
}

/// Answers keyboard-interactive prompts: (name, instruction, prompts) ->
/// answers, one per prompt. Used by [`auth_event`].
pub type PromptFn<'a> = dyn FnMut(&str, &str, &[Prompt]) -> Vec<String> + 'a;

/// Handles one auth event of attempt `method` (prompts go to `on_prompt`):
/// `Some` outcome once known, `None` to keep waiting for events. For
/// adapters that drive a connection themselves and wait for auth events
/// their own way (the `ssh-tokio` client).
pub fn auth_event(
    sh: &Shared,
    ev: Event,
    method: &str,
    on_prompt: Option<&mut PromptFn<'_>>,
) -> Option<Result<(), Error>> {
    match AuthStep::from_event(ev, method) {
        AuthStep::Done(r) => Some(r),
        AuthStep::Prompt(p) => match on_prompt {
            Some(f) => {
                let answers = f(&p.name, &p.instruction, &p.prompts);
                sh.with(|s| s.conn_mut().auth_respond(&answers))
                    .err()
                    .map(Err)
            }
            None => Some(Err(Error::new(
                ErrorKind::AuthFailed,
                "unexpected keyboard-interactive prompt",
            ))),
        },
        AuthStep::Ignore => None,
    }
}

/// Lets `check` judge the server's host key and tells the core: Ok to go
/// on, or the `HostKey` error. For adapters that drive a connection
/// themselves (their handshake loop calls it on `Event::HostKey`).
pub fn check_host_key(
    sh: &Shared,
    check: &mut HostKeyCheck,
    host: &str,
    port: u16,
    key: &PublicKey,
) -> Result<(), Error> {
    let verdict = check.verdict(host, port, key);
    let mut r = Ok(());
    sh.with(|s| {
        r = s.host_key_verdict(verdict);
        Ok(())
    })?;
    r
}

fn wait_deadline<T>(
    shared: &Shared,
    deadline: Option<Instant>,
    mut f: impl FnMut(&mut crate::driver::State) -> Option<Result<T, Error>>,
) -> Result<T, Error> {
    let mut g = shared.lock();
    loop {
        if let Some(r) = f(&mut g) {
            drop(g);
            return r;
        }
        g.check()?;
        match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    return Err(Error::new(ErrorKind::Timeout, "handshake timed out"));
                }
                g = shared.sleep(g, false, Some(d - now));
            }
            None => g = shared.sleep(g, false, None),
        }
    }
}
