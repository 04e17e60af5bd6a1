//! Port forwarding as sshd allows it: `AllowTcpForwarding`, `PermitOpen`,
//! `PermitListen`, `GatewayPorts`, `AllowStreamLocalForwarding`,
//! `StreamLocalBindUnlink`, `DisableForwarding`, and the authorized_keys
//! options `no-port-forwarding`, `restrict`, `permitopen=` and
//! `permitlisten=`.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::Duration;

use ssh_blocking::proto::keys::authorized_keys::KeyOptions;
use ssh_blocking::proto::keys::known_hosts::glob_match;
use ssh_blocking::proto::Stream;
use ssh_blocking::{ChannelOpenFailure, ChannelOpener, LocalForward};

use crate::chan::SChan;
use crate::common::sys::Passwd;

/// `AllowTcpForwarding` / `AllowStreamLocalForwarding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Allow {
    Yes,
    No,
    Local,
    Remote,
}

impl Allow {
    pub(crate) fn parse(v: &str) -> Option<Allow> {
        Some(match v.to_ascii_lowercase().as_str() {
            "yes" | "all" => Allow::Yes,
            "no" => Allow::No,
            "local" => Allow::Local,
            "remote" => Allow::Remote,
            _ => return None,
        })
    }
    fn local(self) -> bool {
        matches!(self, Allow::Yes | Allow::Local)
    }
    fn remote(self) -> bool {
        matches!(self, Allow::Yes | Allow::Remote)
    }
}

/// `GatewayPorts`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gateway {
    No,
    Yes,
    ClientSpecified,
}

impl Gateway {
    pub(crate) fn parse(v: &str) -> Option<Gateway> {
        Some(match v.to_ascii_lowercase().as_str() {
            "no" => Gateway::No,
            "yes" => Gateway::Yes,
            "clientspecified" => Gateway::ClientSpecified,
            _ => return None,
        })
    }
}

/// One `host:port` entry of `PermitOpen` / `PermitListen` (or the key
/// options); `None` port is `*`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Permit {
    host: String,
    port: Option<u16>,
}

/// A list of permits: `any` (no list), or entries (`none` is the empty
/// list: nothing matches).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Permits {
    Any,
    Only(Vec<Permit>),
}

impl Permits {
    /// `PermitOpen` / `PermitListen` values: `any`, `none`, or
    /// whitespace-separated `host:port` entries (`[v6]:port`; for
    /// `PermitListen` a bare port means any host).
    pub(crate) fn parse(v: &str, listen: bool) -> Result<Permits, String> {
        let words: Vec<&str> = v.split_whitespace().collect();
        match words.as_slice() {
            ["any"] => return Ok(Permits::Any),
            ["none"] => return Ok(Permits::Only(Vec::new())),
            [] => return Err("missing value".into()),
            _ => {}
        }
        let mut out = Vec::new();
        for w in words {
            if w == "any" || w == "none" {
                return Err(format!("\"{w}\" must be the only value"));
            }
            out.push(parse_permit(w, listen).ok_or_else(|| format!("bad entry {w:?}"))?);
        }
        Ok(Permits::Only(out))
    }

    /// From an authorized_keys option list (empty: no restriction).
    fn from_key(list: &[String], listen: bool) -> Permits {
        if list.is_empty() {
            return Permits::Any;
        }
        // The key file parser validated the entries; one that still does
        // not parse matches nothing.
        Permits::Only(
            list.iter()
                .filter_map(|w| parse_permit(w, listen))
                .collect(),
        )
    }

    /// An open of `host`:`port`: the host compared exactly (or `*`).
    fn allows_open(&self, host: &str, port: u32) -> bool {
        match self {
            Permits::Any => true,
            Permits::Only(l) => l.iter().any(|p| {
                p.port.is_none_or(|pp| u32::from(pp) == port)
                    && (p.host == "*" || p.host.eq_ignore_ascii_case(host))
            }),
        }
    }

    /// A listen on `host`:`port`: the host matched as a pattern.
    fn allows_listen(&self, host: &str, port: u32) -> bool {
        match self {
            Permits::Any => true,
            Permits::Only(l) => l.iter().any(|p| {
                p.port.is_none_or(|pp| u32::from(pp) == port)
                    && glob_match(
                        p.host.to_ascii_lowercase().as_bytes(),
                        host.to_ascii_lowercase().as_bytes(),
                    )
            }),
        }
    }
}

fn parse_permit(w: &str, listen: bool) -> Option<Permit> {
    let (host, port) = if let Some(rest) = w.strip_prefix('[') {
        let (h, p) = rest.split_once("]:")?;
        (h.to_string(), p)
    } else {
        match w.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), p),
            None if listen => ("*".to_string(), w),
            None => return None,
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        "*" => None,
        p => Some(p.parse::<u16>().ok().filter(|&n| n > 0 || listen)?),
    };
    Some(Permit { host, port })
}

/// The server's forwarding settings.
#[derive(Clone, Debug)]
pub(crate) struct ForwardSettings {
    pub(crate) tcp: Allow,
    pub(crate) streamlocal: Allow,
    pub(crate) permit_open: Permits,
    pub(crate) permit_listen: Permits,
    pub(crate) gateway: Gateway,
    pub(crate) bind_unlink: bool,
    pub(crate) disabled: bool,
}

impl Default for ForwardSettings {
    /// sshd's defaults.
    fn default() -> Self {
        ForwardSettings {
            tcp: Allow::Yes,
            streamlocal: Allow::Yes,
            permit_open: Permits::Any,
            permit_listen: Permits::Any,
            gateway: Gateway::No,
            bind_unlink: false,
            disabled: false,
        }
    }
}

/// What one logged-in user may forward: the server's settings narrowed by
/// the options of the key that let them in.
pub(crate) struct Policy<'a> {
    pub(crate) settings: &'a ForwardSettings,
    pub(crate) key: &'a KeyOptions,
    pub(crate) account: Option<&'a Passwd>,
    pub(crate) peer: &'a str,
}

/// How long connecting to a forward's destination may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

impl Policy<'_> {
    fn forwarding_allowed(&self) -> bool {
        !self.settings.disabled && !self.key.no_port_forwarding
    }

    /// A `direct-tcpip` open: connects when allowed.
    pub(crate) fn open_tcp(&self, host: &str, port: u32) -> Result<TcpStream, ChannelOpenFailure> {
        let allowed = self.forwarding_allowed()
            && self.settings.tcp.local()
            && self.settings.permit_open.allows_open(host, port)
            && Permits::from_key(&self.key.permitopen, false).allows_open(host, port);
        if !allowed {
            tracing::info!(
                "Received request from {} to connect to host {host} port {port}, but the request was denied.",
                self.peer
            );
            return Err(ChannelOpenFailure::prohibited("open failed"));
        }
        let port16 = u16::try_from(port)
            .map_err(|_| ChannelOpenFailure::connect_failed("port out of range"))?;
        let addrs: Vec<SocketAddr> = (host, port16)
            .to_socket_addrs()
            .map_err(|e| ChannelOpenFailure::connect_failed(format!("name lookup failed: {e}")))?
            .collect();
        let mut last = None;
        for a in addrs {
            match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    tracing::debug!("{}: direct-tcpip to {host} port {port}", self.peer);
                    return Ok(s);
                }
                Err(e) => last = Some(e),
            }
        }
        let msg = last.map_or_else(|| "no address".to_string(), |e| os_message(&e));
        tracing::debug!("{}: connect to {host} port {port} failed: {msg}", self.peer);
        Err(ChannelOpenFailure::connect_failed(msg))
    }

    /// A `direct-streamlocal@openssh.com` open: connects (as the user)
    /// when allowed.
    pub(crate) fn open_unix(&self, path: &str) -> Result<UnixStream, ChannelOpenFailure> {
        if !(self.forwarding_allowed() && self.settings.streamlocal.local()) {
            tracing::info!(
                "Received request from {} to connect to path {path}, but the request was denied.",
                self.peer
            );
            return Err(ChannelOpenFailure::prohibited("open failed"));
        }
        as_user(self.account, || UnixStream::connect(path))
            .map_err(|e| ChannelOpenFailure::connect_failed(os_message(&e)))
    }

    /// A `tcpip-forward`: the listeners, bound as sshd binds them.
    pub(crate) fn listen_tcp(&self, address: &str, port: u32) -> Option<(Vec<TcpListener>, u16)> {
        let denied = || {
            tracing::info!(
                "Received request from {} to remote forward to host {address} port {port}, but the request was denied.",
                self.peer
            );
            None
        };
        let uid = self.account.map_or(0, |a| a.uid);
        let Ok(port16) = u16::try_from(port) else {
            return denied();
        };
        if !(self.forwarding_allowed()
            && self.settings.tcp.remote()
            && self.settings.permit_listen.allows_listen(address, port)
            && Permits::from_key(&self.key.permitlisten, true).allows_listen(address, port))
            || (port16 != 0 && port16 < 1024 && uid != 0)
        {
            return denied();
        }
        let hosts = bind_hosts(address, self.settings.gateway);
        let mut listeners = Vec::new();
        let mut bound = port16;
        for (i, h) in hosts.iter().enumerate() {
            match TcpListener::bind((h.as_str(), bound)) {
                Ok(l) => {
                    if bound == 0 {
                        bound = l.local_addr().map(|a| a.port()).unwrap_or(0);
                    }
                    listeners.push(l);
                }
                // The first address must bind; loopback's IPv6 twin may be
                // missing.
                Err(e) if i == 0 => {
                    tracing::info!(
                        "{}: bind [{h}]:{port16} for remote forward failed: {}",
                        self.peer,
                        os_message(&e)
                    );
                    return None;
                }
                Err(_) => {}
            }
        }
        (!listeners.is_empty()).then_some((listeners, bound))
    }

    /// A `streamlocal-forward@openssh.com`: the listener, made as the user.
    pub(crate) fn listen_unix(&self, path: &str) -> Option<UnixListener> {
        if !(self.forwarding_allowed() && self.settings.streamlocal.remote()) {
            tracing::info!(
                "Received request from {} to remote forward to path \"{path}\", but the request was denied.",
                self.peer
            );
            return None;
        }
        let unlink = self.settings.bind_unlink;
        let r = as_user(self.account, || {
            if unlink {
                let _ = std::fs::remove_file(path);
            }
            let l = UnixListener::bind(path)?;
            // sshd's StreamLocalBindMask 0177.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            Ok(l)
        });
        match r {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::info!("{}: bind {path}: {}", self.peer, os_message(&e));
                None
            }
        }
    }
}

/// The addresses a remote forward listens on (sshd's
/// `channel_fwd_bind_addr` for the server): every address with
/// `GatewayPorts yes`; with `clientspecified` every address for `""` or
/// `*`, loopback for `localhost`, else the address asked for; with `no`
/// loopback, or `127.0.0.1` / `::1` when asked for exactly.
fn bind_hosts(address: &str, gateway: Gateway) -> Vec<String> {
    let loopback = || vec!["127.0.0.1".to_string(), "::1".to_string()];
    match gateway {
        Gateway::Yes => vec!["0.0.0.0".into()],
        Gateway::ClientSpecified => match address {
            "" | "*" => vec!["0.0.0.0".into()],
            "localhost" => loopback(),
            a => vec![a.to_string()],
        },
        Gateway::No => match address {
            "127.0.0.1" | "::1" => vec![address.to_string()],
            _ => loopback(),
        },
    }
}

/// The text of an OS error without Rust's "(os error N)" suffix, as ssh
/// prints strerror.
fn os_message(e: &std::io::Error) -> String {
    let s = e.to_string();
    s.split(" (os error").next().unwrap_or(&s).to_string()
}

/// Runs `f` with the file-system identity of `account` (when the server
/// is root and the user is not), so socket files are made and opened with
/// the user's rights, never the server's. On a thread of its own: the
/// file-system ids are per thread.
fn as_user<T: Send>(
    account: Option<&Passwd>,
    f: impl FnOnce() -> std::io::Result<T> + Send,
) -> std::io::Result<T> {
    let Some(acct) = account.filter(|a| crate::common::sys::euid() == 0 && a.uid != 0) else {
        return f();
    };
    let (uid, gid) = (acct.uid, acct.gid);
    std::thread::scope(|s| {
        s.spawn(move || {
            crate::common::sys::set_fs_ids(uid, gid)?;
            f()
        })
        .join()
        .unwrap_or_else(|_| Err(std::io::Error::other("forwarding thread failed")))
    })
}

/// A remote forward the server keeps: its listeners stop when it is
/// dropped (cancelled, or the connection ended).
pub(crate) struct RemoteForward {
    pub(crate) address: String,
    pub(crate) port: u32,
    pub(crate) bound: u16,
    pub(crate) path: Option<String>,
    pub(crate) _listeners: Vec<LocalForward>,
}

/// Serves a remote forward's listeners through `opener`.
pub(crate) fn serve_remote(
    opener: &ChannelOpener,
    listeners: Vec<TcpListener>,
    address: &str,
    port: u32,
    bound: u16,
) -> Option<RemoteForward> {
    let mut running = Vec::new();
    for l in listeners {
        running.push(opener.forward_remote(l, address, bound).ok()?);
    }
    Some(RemoteForward {
        address: address.to_string(),
        port,
        bound,
        path: None,
        _listeners: running,
    })
}

/// A connected destination waiting for its channel.
pub(crate) enum Dest {
    Tcp(TcpStream),
    Unix(UnixStream),
}

/// Carries `dest` over `chan` both ways on two threads; each direction
/// ends with a half-close, the channel closes when both are done.
pub(crate) fn pump(dest: Dest, chan: SChan) {
    std::thread::spawn(move || {
        let (mut rd, mut wr): (Box<dyn Read + Send>, Box<dyn Write + Send>) = match &dest {
            Dest::Tcp(s) => match (s.try_clone(), s.try_clone()) {
                (Ok(a), Ok(b)) => (Box::new(a), Box::new(b)),
                _ => return,
            },
            Dest::Unix(s) => match (s.try_clone(), s.try_clone()) {
                (Ok(a), Ok(b)) => (Box::new(a), Box::new(b)),
                _ => return,
            },
        };
        let shut = |how| match &dest {
            Dest::Tcp(s) => {
                let _ = s.shutdown(how);
            }
            Dest::Unix(s) => {
                let _ = s.shutdown(how);
            }
        };
        std::thread::scope(|sc| {
            let chan = &chan;
            sc.spawn(|| {
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match (&*chan).read(&mut buf) {
                        Ok(0) => return shut(Shutdown::Write),
                        Err(_) => return shut(Shutdown::Both),
                        Ok(n) => {
                            if wr.write_all(&buf[..n]).is_err() {
                                return shut(Shutdown::Both);
                            }
                        }
                    }
                }
            });
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                match rd.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let mut off = 0;
                        while off < n {
                            match chan.write_stream(Stream::Stdout, &buf[off..n]) {
                                Ok(m) => off += m,
                                Err(_) => return,
                            }
                        }
                    }
                }
            }
            let _ = chan.send_eof();
        });
        let _ = chan.close();
    });
}
