//! Where a client connects: the host as the caller named it, and a port.
//!
//! The host key is looked up in known_hosts under the name the caller gave
//! (`example.org`, `[example.org]:2222`), as OpenSSH does, not under the
//! address the name resolved to: so the name must survive resolution.

use std::io;
use std::net::{
    IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6, TcpStream, ToSocketAddrs,
};
use std::time::Duration;

use ssh_proto::{Error, ErrorKind};

fn io_err(e: io::Error, what: String) -> Error {
    Error::new(ErrorKind::Io, format!("{what}: {e}"))
}

/// A host and port to connect to, as the caller named them.
///
/// Implemented for the forms `std::net::ToSocketAddrs` takes for one
/// destination: `"host:port"` and `"[v6addr]:port"` strings, `(host, port)`
/// tuples, and socket addresses. The host (a name or an address literal,
/// lower-cased when compared) is what known_hosts entries are matched
/// against; the name is resolved only to connect.
pub trait ToHostPort {
    /// The host as given (without brackets) and the port.
    fn to_host_port(&self) -> io::Result<(String, u16)>;
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg.to_string())
}

impl ToHostPort for str {
    /// `host:port`, `v4addr:port` or `[v6addr]:port` (as `ToSocketAddrs`).
    fn to_host_port(&self) -> io::Result<(String, u16)> {
        if let Ok(a) = self.parse::<SocketAddr>() {
            return a.to_host_port();
        }
        let (host, port) = self
            .rsplit_once(':')
            .ok_or_else(|| invalid("invalid socket address"))?;
        let port = port.parse().map_err(|_| invalid("invalid port value"))?;
        if host.is_empty() || host.contains(':') {
            return Err(invalid("invalid socket address"));
        }
        Ok((host.to_string(), port))
    }
}

impl ToHostPort for String {
    fn to_host_port(&self) -> io::Result<(String, u16)> {
        self.as_str().to_host_port()
    }
}

impl ToHostPort for (&str, u16) {
    fn to_host_port(&self) -> io::Result<(String, u16)> {
        if self.0.is_empty() {
            return Err(invalid("empty host name"));
        }
        Ok((self.0.to_string(), self.1))
    }
}

impl ToHostPort for (String, u16) {
    fn to_host_port(&self) -> io::Result<(String, u16)> {
        (self.0.as_str(), self.1).to_host_port()
    }
}

impl ToHostPort for SocketAddr {
    fn to_host_port(&self) -> io::Result<(String, u16)> {
        Ok((self.ip().to_string(), self.port()))
    }
}

impl ToHostPort for SocketAddrV4 {
    fn to_host_port(&self) -> io::Result<(String, u16)> {
        SocketAddr::V4(*self).to_host_port()
    }
}

impl ToHostPort for SocketAddrV6 {
    fn to_host_port(&self) -> io::Result<(String, u16)> {
        SocketAddr::V6(*self).to_host_port()
    }
}

impl ToHostPort for (IpAddr, u16) {
    fn to_host_port(&self) -> io::Result<(String, u16)> {
        Ok((self.0.to_string(), self.1))
    }
}

impl ToHostPort for (Ipv4Addr, u16) {
    fn to_host_port(&self) -> io::Result<(String, u16)> {
        Ok((self.0.to_string(), self.1))
    }
}

impl ToHostPort for (Ipv6Addr, u16) {
    fn to_host_port(&self) -> io::Result<(String, u16)> {
        Ok((self.0.to_string(), self.1))
    }
}

impl<T: ToHostPort + ?Sized> ToHostPort for &T {
    fn to_host_port(&self) -> io::Result<(String, u16)> {
        (**self).to_host_port()
    }
}

#[cfg(test)]
mod tests {
    use super::ToHostPort;

    #[test]
    fn names_survive_and_addresses_print_as_openssh_would() {
        let hp = |a: &dyn ToHostPort| a.to_host_port().unwrap();
        assert_eq!(hp(&"localhost:2222"), ("localhost".into(), 2222));
        assert_eq!(hp(&"Example.ORG:22"), ("Example.ORG".into(), 22));
        assert_eq!(hp(&("example.org", 22)), ("example.org".into(), 22));
        assert_eq!(
            hp(&("example.org".to_string(), 22)),
            ("example.org".into(), 22)
        );
        assert_eq!(hp(&"127.0.0.1:22"), ("127.0.0.1".into(), 22));
        assert_eq!(hp(&"[::1]:2222"), ("::1".into(), 2222));
        let a: std::net::SocketAddr = "[::1]:22".parse().unwrap();
        assert_eq!(hp(&a), ("::1".into(), 22));
        for bad in ["localhost", "localhost:x", ":22", "::1:22", "host:70000"] {
            assert!(bad.to_host_port().is_err(), "{bad}");
        }
    }
}

/// The errors met while trying a resolved address list in turn.
#[derive(Default)]
pub struct ConnectAttempts {
    last: Option<Error>,
}

impl ConnectAttempts {
    /// The error for an address that does not resolve.
    pub fn resolve_failed(e: io::Error) -> Error {
        io_err(e, "cannot resolve address".into())
    }

    /// Records that connecting to `a` failed.
    pub fn failed(&mut self, a: &SocketAddr, e: io::Error) {
        self.last = Some(io_err(e, format!("connect to {a}")));
    }

    /// The error to report when no address connected.
    pub fn into_error(self) -> Error {
        self.last
            .unwrap_or_else(|| Error::new(ErrorKind::Io, "address resolved to nothing"))
    }
}

/// Resolves `addr` and tries each address in turn (each within `timeout`): the first that connects.
pub fn connect_tcp(
    addr: impl ToSocketAddrs,
    timeout: Option<Duration>,
) -> Result<(TcpStream, SocketAddr), Error> {
    let addrs: Vec<_> = addr
        .to_socket_addrs()
        .map_err(ConnectAttempts::resolve_failed)?
        .collect();
    let mut tried = ConnectAttempts::default();
    for a in &addrs {
        let r = match timeout {
            Some(t) => TcpStream::connect_timeout(a, t),
            None => TcpStream::connect(a),
        };
        match r {
            Ok(s) => return Ok((s, *a)),
            Err(e) => tried.failed(a, e),
        }
    }
    Err(tried.into_error())
}
