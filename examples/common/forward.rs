//! The client's forwarding as OpenSSH's ssh(1) does it: `-L`, `-R`, `-D`
//! and `-W` specifications parsed with ssh's rules (fields split at `:`,
//! `[...]` taken literally, a field with a `/` a socket path), local
//! listeners (loopback unless GatewayPorts), remote forward requests with
//! their incoming connections matched to the spec and connected to its
//! target, and ssh's messages for each failure.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use super::runtime::{AnyChannel, AnyClient, AnyLocalForward};
use ssh_blocking::proto::ChannelKind;
use ssh_blocking::{Error, ErrorKind, ForwardTarget};

/// Where a forward listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// `[bind_address:]port` (no address given: None).
    Tcp { host: Option<String>, port: u16 },
    /// A Unix socket path.
    Path(String),
}

/// Where a forward's connections go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connect {
    Tcp {
        host: String,
        port: u16,
    },
    Path(String),
    /// Wherever each connection asks (SOCKS).
    Socks,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    pub listen: Listen,
    pub connect: Connect,
}

impl Connect {
    /// As ssh names a target in its messages: `host:port`, or the path
    /// with ssh's port number for sockets (`/path:-2`).
    fn label(&self) -> String {
        match self {
            Connect::Tcp { host, port } => format!("{host}:{port}"),
            Connect::Path(p) => format!("{p}:-2"),
            Connect::Socks => "socks".into(),
        }
    }
}

/// One field of a spec and whether it names a path.
fn fields(spec: &str) -> Option<Vec<(String, bool)>> {
    let mut out = Vec::new();
    let mut rest = spec.trim_start();
    while !rest.is_empty() && out.len() < 4 {
        if let Some(r) = rest.strip_prefix('[') {
            // Used literally up to the matching `]`, which ends the field.
            let end = r.find(']')?;
            let after = &r[end + 1..];
            if !after.is_empty() && !after.starts_with(':') {
                return None;
            }
            out.push((r[..end].to_string(), r[..end].contains('/')));
            rest = after.strip_prefix(':').unwrap_or(after);
            continue;
        }
        let mut field = String::new();
        let mut ispath = false;
        let mut chars = rest.char_indices();
        let mut next = "";
        loop {
            match chars.next() {
                None => break,
                Some((_, '\\')) => match chars.next() {
                    Some((_, c)) => field.push(c),
                    None => return None,
                },
                Some((i, ':')) => {
                    next = &rest[i + 1..];
                    break;
                }
                Some((_, c)) => {
                    ispath |= c == '/';
                    field.push(c);
                }
            }
        }
        out.push((field, ispath));
        rest = next;
    }
    // Trailing garbage (a fifth field) is an error.
    rest.is_empty().then_some(out)
}

fn port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a `-L`, `-R` (`remote`) or `-D`/`-W` (`dynamic`) specification
/// as ssh's `parse_forward` does. None when malformed.
pub fn parse_forward(spec: &str, dynamic: bool, remote: bool) -> Option<Forward> {
    let f = fields(spec)?;
    let tcp = |host: Option<&str>, p: &str| -> Option<Listen> {
        Some(Listen::Tcp {
            host: host.map(str::to_string),
            port: port(p)?,
        })
    };
    let to = |h: &str, p: &str| -> Option<Connect> {
        Some(Connect::Tcp {
            host: h.to_string(),
            port: port(p).filter(|&p| p != 0)?,
        })
    };
    let fwd = match f.as_slice() {
        [(a, pa)] => Forward {
            listen: if *pa {
                Listen::Path(a.clone())
            } else {
                tcp(None, a)?
            },
            connect: Connect::Socks,
        },
        [(a, pa), (b, pb)] => match (pa, pb) {
            (true, true) => Forward {
                listen: Listen::Path(a.clone()),
                connect: Connect::Path(b.clone()),
            },
            (_, true) => Forward {
                listen: tcp(None, a)?,
                connect: Connect::Path(b.clone()),
            },
            _ => Forward {
                listen: tcp(Some(a), b)?,
                connect: Connect::Socks,
            },
        },
        [(a, pa), (b, _), (c, pc)] => {
            if *pa {
                Forward {
                    listen: Listen::Path(a.clone()),
                    connect: to(b, c)?,
                }
            } else if *pc {
                Forward {
                    listen: tcp(Some(a), b)?,
                    connect: Connect::Path(c.clone()),
                }
            } else {
                Forward {
                    listen: tcp(None, a)?,
                    connect: to(b, c)?,
                }
            }
        }
        [(a, _), (b, _), (c, _), (d, _)] => Forward {
            listen: tcp(Some(a), b)?,
            connect: to(c, d)?,
        },
        _ => return None,
    };
    let socks = fwd.connect == Connect::Socks;
    if dynamic != socks && !(remote && socks) {
        return None;
    }
    if let Listen::Tcp { port: 0, .. } = fwd.listen {
        if !remote {
            return None;
        }
    }
    Some(fwd)
}

/// The forwarding wanted for one connection.
#[derive(Default)]
pub struct FwdOpts {
    pub local: Vec<Forward>,
    pub remote: Vec<Forward>,
    pub dynamic: Vec<Forward>,
    pub gateway_ports: bool,
    pub exit_on_failure: bool,
}

/// ssh's channel numbers for messages: listeners, the session and each
/// channel opened take the next one, as ssh counts them.
static CHANNEL_NUMBER: AtomicU32 = AtomicU32::new(0);

pub fn next_channel_number() -> u32 {
    CHANNEL_NUMBER.fetch_add(1, Ordering::SeqCst)
}

/// Unix sockets we listen on, removed at exit.
static SOCKET_PATHS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes the Unix sockets our listeners made (before exiting).
pub fn cleanup() {
    if let Ok(paths) = SOCKET_PATHS.lock() {
        for p in paths.iter() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Prints `msg` as ssh's fatal() does and exits 255.
pub fn fatal(msg: &str) -> ! {
    eprintln!("{msg}");
    cleanup();
    std::process::exit(255);
}

/// ssh's line for a refused channel open: `channel N: open failed:
/// REASON: DESCRIPTION` (RFC 4254 reason codes).
pub fn open_failed_line(number: u32, e: &Error) -> String {
    if e.kind() != ErrorKind::ChannelOpen {
        return format!("channel {number}: open failed: {}", e.detail());
    }
    let reason = match e.code() {
        Some(1) => "administratively prohibited",
        Some(2) => "connect failed",
        Some(3) => "unknown channel type",
        Some(4) => "resource shortage",
        _ => "unknown reason",
    };
    // The library appends " (reason N)" to the server's description.
    let desc = e
        .detail()
        .rsplit_once(" (reason ")
        .map_or(e.detail(), |(d, _)| d);
    if desc.is_empty() {
        format!("channel {number}: open failed: {reason}")
    } else {
        format!("channel {number}: open failed: {reason}: {desc}")
    }
}

/// An OS error as strerror() words it (no " (os error N)").
fn strerror(e: &dyn std::fmt::Display) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The addresses a local listener binds, as ssh's channel_fwd_bind_addr
/// decides for a client: no address is loopback, or all addresses with
/// GatewayPorts; an explicit `*` or empty address is all addresses,
/// `localhost` loopback, any other the address given.
fn bind_addrs(host: Option<&str>, port: u16, gateway: bool) -> Vec<SocketAddr> {
    let loopback = vec![
        SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
    ];
    let any = vec![
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
    ];
    match host {
        None if gateway => any,
        None | Some("localhost") => loopback,
        Some("" | "*") => any,
        Some(h) => (h, port)
            .to_socket_addrs()
            .map(|a| a.collect())
            .unwrap_or_default(),
    }
}

/// Binds each address with `bind` as ssh's
/// channel_setup_fwd_listener_tcpip does: the last address's failure is
/// an error line (earlier ones are quiet), and none bound is "cannot listen
/// to port". A listener on `[::]` takes IPv4 too (no IPV6_V6ONLY here), so
/// `0.0.0.0` is only tried when it fails.
fn bind_each<T>(
    addrs: &[SocketAddr],
    port: u16,
    mut bind: impl FnMut(SocketAddr) -> Result<T, String>,
) -> Vec<T> {
    let mut out = Vec::new();
    for (i, a) in addrs.iter().enumerate() {
        match bind(*a) {
            Ok(l) => {
                out.push(l);
                if a.ip() == IpAddr::V6(Ipv6Addr::UNSPECIFIED) {
                    break;
                }
            }
            Err(e) if i + 1 == addrs.len() => {
                eprintln!("bind [{}]:{}: {e}", a.ip(), a.port())
            }
            Err(_) => {}
        }
    }
    if out.is_empty() {
        eprintln!("channel_setup_fwd_listener_tcpip: cannot listen to port: {port}");
    }
    out
}

/// The running local side of the forwarding (listeners stop on drop).
pub struct Running {
    _socks: Vec<AnyLocalForward>,
}

/// Sets up the `-L` and `-D` listeners, as ssh does before the session:
/// a failed one is an error message and, with ExitOnForwardFailure, exit
/// 255 with "Could not request local forwarding.".
pub fn start_local(client: &AnyClient, o: &FwdOpts) -> Running {
    let mut socks = Vec::new();
    let total = o.local.len() + o.dynamic.len();
    let mut ok = 0;
    for f in o.local.iter().chain(&o.dynamic) {
        let up = match (&f.listen, &f.connect) {
            // Refused with the arguments.
            (Listen::Path(_), Connect::Socks) => false,
            (Listen::Path(p), _) => match UnixListener::bind(p) {
                Ok(l) => {
                    if let Ok(mut v) = SOCKET_PATHS.lock() {
                        v.push(PathBuf::from(p));
                    }
                    next_channel_number();
                    let (c, t) = (client.clone(), f.connect.clone());
                    let _ = std::thread::Builder::new().spawn(move || accept_unix(l, c, t));
                    true
                }
                Err(e) => {
                    eprintln!("unix_listener: cannot bind to path {p}: {}", strerror(&e));
                    false
                }
            },
            (Listen::Tcp { host, port }, Connect::Socks) => {
                let addrs = bind_addrs(host.as_deref(), *port, o.gateway_ports);
                let ls = bind_each(&addrs, *port, |a| {
                    client.forward_local(a, ForwardTarget::Socks).map_err(|e| {
                        let why = e.detail().strip_prefix("cannot listen: ");
                        strerror(&why.unwrap_or(e.detail()))
                    })
                });
                let any = !ls.is_empty();
                for l in ls {
                    next_channel_number();
                    socks.push(l);
                }
                any
            }
            (Listen::Tcp { host, port }, _) => {
                let addrs = bind_addrs(host.as_deref(), *port, o.gateway_ports);
                let ls = bind_each(&addrs, *port, |a| {
                    TcpListener::bind(a).map_err(|e| strerror(&e))
                });
                let any = !ls.is_empty();
                for l in ls {
                    next_channel_number();
                    let (c, t) = (client.clone(), f.connect.clone());
                    let _ = std::thread::Builder::new().spawn(move || accept_tcp(l, c, t));
                }
                any
            }
        };
        ok += usize::from(up);
    }
    if ok != total && o.exit_on_failure {
        fatal("Could not request local forwarding.");
    }
    if total > 0 && ok == 0 {
        eprintln!("Could not request local forwarding.");
    }
    Running { _socks: socks }
}

/// Opens the channel for one local connection; ssh's line when refused.
fn open_for(client: &AnyClient, target: &Connect, origin: (&str, u16)) -> Option<AnyChannel> {
    let number = next_channel_number();
    let r = match target {
        Connect::Tcp { host, port } => client.direct_tcpip(host, *port, origin),
        Connect::Path(p) => client.direct_streamlocal(p),
        Connect::Socks => return None,
    };
    match r {
        Ok(ch) => Some(ch),
        Err(e) if e.kind() == ErrorKind::ChannelOpen => {
            eprintln!("{}", open_failed_line(number, &e));
            None
        }
        Err(_) => None,
    }
}

fn accept_tcp(l: TcpListener, client: AnyClient, target: Connect) {
    loop {
        let Ok((s, peer)) = l.accept() else {
            std::thread::sleep(std::time::Duration::from_millis(10));
            continue;
        };
        let (client, target) = (client.clone(), target.clone());
        // Out of threads: the connection is dropped, the forward goes on.
        let _ = std::thread::Builder::new().spawn(move || {
            let ip = peer.ip().to_string();
            if let Some(ch) = open_for(&client, &target, (&ip, peer.port())) {
                ch.splice_tcp(s);
            }
        });
    }
}

fn accept_unix(l: UnixListener, client: AnyClient, target: Connect) {
    loop {
        let Ok((s, _)) = l.accept() else {
            std::thread::sleep(std::time::Duration::from_millis(10));
            continue;
        };
        let (client, target) = (client.clone(), target.clone());
        let _ = std::thread::Builder::new().spawn(move || {
            if let Some(ch) = open_for(&client, &target, ("127.0.0.1", 0)) {
                ch.splice_unix(s);
            }
        });
    }
}

/// An accepted remote forward: what the server's opens name, and where
/// their connections go.
#[derive(Clone, Debug)]
pub enum RemoteKey {
    Tcp(String, u16),
    Path(String),
}

/// The remote forwards the server accepted.
pub type Remotes = Arc<Vec<(RemoteKey, Connect)>>;

/// Asks the server for each `-R` forward, as ssh does: "Allocated port N
/// for remote forward to host:port" for port 0; a refusal is a warning,
/// or with ExitOnForwardFailure exit 255 with ssh's "Error: ..." line.
pub fn start_remote(client: &AnyClient, o: &FwdOpts) -> Result<Remotes, Error> {
    let mut table = Vec::new();
    for f in &o.remote {
        let (r, what) = match &f.listen {
            Listen::Path(p) => (
                client
                    .forward_streamlocal(p)
                    .map(|()| RemoteKey::Path(p.clone())),
                format!("listen path {p}"),
            ),
            Listen::Tcp { host, port } => {
                // ssh's channel_rfwd_bind_host.
                let addr = match host.as_deref() {
                    None => "localhost",
                    Some("" | "*") => "",
                    Some(h) => h,
                };
                let r = client.forward_tcpip(addr, *port).map(|bound| {
                    if *port == 0 {
                        eprintln!(
                            "Allocated port {bound} for remote forward to {}",
                            f.connect.label()
                        );
                    }
                    RemoteKey::Tcp(addr.to_string(), bound)
                });
                (r, format!("listen port {port}"))
            }
        };
        match r {
            Ok(k) => table.push((k, f.connect.clone())),
            Err(e) if e.kind() == ErrorKind::GlobalRequest => {
                if o.exit_on_failure {
                    fatal(&format!("Error: remote port forwarding failed for {what}"));
                }
                eprintln!("Warning: remote port forwarding failed for {what}");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(Arc::new(table))
}

/// Takes the connections the server forwards until the connection ends:
/// each is matched to its `-R` spec and connected to the spec's target.
pub fn serve_remote(client: &AnyClient, remotes: &Remotes) {
    while let Ok((ch, kind)) = client.accept_forwarded() {
        let remotes = remotes.clone();
        let _ = std::thread::Builder::new().spawn(move || carry_remote(ch, kind, &remotes));
    }
}

fn carry_remote(ch: AnyChannel, kind: ChannelKind, remotes: &Remotes) {
    let target = match &kind {
        ChannelKind::ForwardedTcpip { address, port, .. } => {
            let port = u16::try_from(*port).unwrap_or(0);
            let by_port = |exact: bool| {
                remotes.iter().find(|(k, _)| match k {
                    RemoteKey::Tcp(a, p) => *p == port && (!exact || a == address),
                    RemoteKey::Path(_) => false,
                })
            };
            match by_port(true).or_else(|| by_port(false)) {
                Some((_, t)) => t.clone(),
                None => {
                    eprintln!("WARNING: Server requests forwarding for unknown listen_port {port}");
                    return ch.close();
                }
            }
        }
        ChannelKind::ForwardedStreamlocal { path } => {
            match remotes
                .iter()
                .find(|(k, _)| matches!(k, RemoteKey::Path(p) if p == path))
            {
                Some((_, t)) => t.clone(),
                None => {
                    eprintln!("WARNING: Server requests forwarding for unknown path {path}");
                    return ch.close();
                }
            }
        }
        _ => return ch.close(),
    };
    match target {
        Connect::Tcp { host, port } => match TcpStream::connect((host.as_str(), port)) {
            Ok(s) => ch.splice_tcp(s),
            Err(_) => {
                eprintln!("connect_to {host} port {port}: failed.");
                ch.close()
            }
        },
        Connect::Path(p) => match UnixStream::connect(&p) {
            Ok(s) => ch.splice_unix(s),
            Err(e) => {
                eprintln!("connect to {p}: {}", strerror(&e));
                ch.close()
            }
        },
        Connect::Socks => ch.close(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        let l = parse_forward("8080:localhost:80", false, false).unwrap();
        assert_eq!(
            l.listen,
            Listen::Tcp {
                host: None,
                port: 8080
            }
        );
        assert!(parse_forward("[::1]:8080:[::1]:80", false, false).is_some());
        assert!(parse_forward("/a.sock:/b.sock", false, false).is_some());
        assert!(parse_forward("0:h:1", false, false).is_none());
        assert!(parse_forward("0:h:1", false, true).is_some());
        assert!(parse_forward("1080", true, false).is_some());
        assert!(parse_forward("1080:h:1", true, false).is_none());
        assert!(parse_forward("[::1]:22", true, false).is_some());
        let r = parse_forward("*:0:/tmp/s", false, true).unwrap();
        assert_eq!(r.connect, Connect::Path("/tmp/s".into()));
    }

    #[test]
    fn bind_addresses() {
        let lo = |p| bind_addrs(None, p, false);
        assert!(lo(1).iter().all(|a| a.ip().is_loopback()));
        assert_eq!(bind_addrs(Some("localhost"), 1, true), lo(1));
        for (h, g) in [(None, true), (Some("*"), false), (Some(""), false)] {
            assert!(bind_addrs(h, 1, g).iter().all(|a| a.ip().is_unspecified()));
        }
        let one = bind_addrs(Some("127.0.0.1"), 1, false);
        assert_eq!(one, vec![SocketAddr::from(([127, 0, 0, 1], 1))]);
    }
}
