//! Typed channel kinds and global requests (RFC 4254 §6.1, §7 and
//! OpenSSH's PROTOCOL §2.4 for Unix sockets), and the book of what this
//! side asked for: a client accepts a `forwarded-tcpip` channel only for a
//! forward it requested (on the port the server bound), a
//! `forwarded-streamlocal@openssh.com` only for a socket path it asked to
//! be forwarded, `x11` only after an `x11-req`, `auth-agent@openssh.com`
//! only after an `auth-agent-req@openssh.com`, as OpenSSH's `ssh` does.

use crate::error::{Error, Result};
use crate::wire::{Put, Reader};

/// Channel type names (RFC 4254 §6.1, §7.2, §6.3.2; OpenSSH PROTOCOL).
pub mod kind {
    /// An interactive session, command or subsystem.
    pub const SESSION: &str = "session";
    /// Client to server: a TCP connection the server makes.
    pub const DIRECT_TCPIP: &str = "direct-tcpip";
    /// Server to client: a connection to a port the client asked the
    /// server to listen on.
    pub const FORWARDED_TCPIP: &str = "forwarded-tcpip";
    /// Client to server: a Unix socket connection the server makes.
    pub const DIRECT_STREAMLOCAL: &str = "direct-streamlocal@openssh.com";
    /// Server to client: a connection to a Unix socket the client asked
    /// the server to listen on.
    pub const FORWARDED_STREAMLOCAL: &str = "forwarded-streamlocal@openssh.com";
    /// Server to client: an X11 connection.
    pub const X11: &str = "x11";
    /// Server to client: a connection to the client's agent.
    pub const AUTH_AGENT: &str = "auth-agent@openssh.com";
}

/// Global request names (RFC 4254 §7.1; OpenSSH PROTOCOL §2.4).
pub mod request {
    /// Ask the server to listen on a TCP address and port.
    pub const TCPIP_FORWARD: &str = "tcpip-forward";
    /// Stop a `tcpip-forward`.
    pub const CANCEL_TCPIP_FORWARD: &str = "cancel-tcpip-forward";
    /// Ask the server to listen on a Unix socket path.
    pub const STREAMLOCAL_FORWARD: &str = "streamlocal-forward@openssh.com";
    /// Stop a `streamlocal-forward@openssh.com`.
    pub const CANCEL_STREAMLOCAL_FORWARD: &str = "cancel-streamlocal-forward@openssh.com";
}

/// What a channel is for, with its type-specific data, parsed from or
/// encoded into a `CHANNEL_OPEN`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChannelKind {
    /// `session`.
    Session,
    /// `direct-tcpip`: connect to `host`:`port`, for a connection that
    /// came from `originator`:`originator_port`.
    DirectTcpip {
        /// Host to connect to (a name or an address).
        host: String,
        /// Port to connect to.
        port: u32,
        /// The address the connection came from.
        originator: String,
        /// The port it came from.
        originator_port: u32,
    },
    /// `forwarded-tcpip`: someone connected to `address`:`port`, a listener
    /// made for a `tcpip-forward` request.
    ForwardedTcpip {
        /// The address that was connected (as in the forward request).
        address: String,
        /// The port that was connected (the bound port).
        port: u32,
        /// The address the connection came from.
        originator: String,
        /// The port it came from.
        originator_port: u32,
    },
    /// `direct-streamlocal@openssh.com`: connect to the Unix socket `path`.
    DirectStreamlocal {
        /// The socket path.
        path: String,
    },
    /// `forwarded-streamlocal@openssh.com`: someone connected to the Unix
    /// socket `path`, a listener made for a `streamlocal-forward` request.
    ForwardedStreamlocal {
        /// The socket path (as in the forward request).
        path: String,
    },
    /// `x11`: an X11 client connected from `originator`:`originator_port`.
    X11 {
        /// The address the connection came from.
        originator: String,
        /// The port it came from.
        originator_port: u32,
    },
    /// `auth-agent@openssh.com`: a connection to the client's agent.
    AuthAgent,
    /// Any other type, with its raw type-specific data.
    Other {
        /// The channel type.
        name: String,
        /// Type-specific data after the window and packet sizes.
        data: Vec<u8>,
    },
}

impl ChannelKind {
    /// A `direct-tcpip` channel to `host`:`port` for a connection from
    /// `originator`:`originator_port`.
    pub fn direct_tcpip(
        host: impl Into<String>,
        port: u16,
        originator: impl Into<String>,
        originator_port: u16,
    ) -> ChannelKind {
        ChannelKind::DirectTcpip {
            host: host.into(),
            port: port.into(),
            originator: originator.into(),
            originator_port: originator_port.into(),
        }
    }

    /// The channel type name sent on the wire.
    pub fn name(&self) -> &str {
        match self {
            ChannelKind::Session => kind::SESSION,
            ChannelKind::DirectTcpip { .. } => kind::DIRECT_TCPIP,
            ChannelKind::ForwardedTcpip { .. } => kind::FORWARDED_TCPIP,
            ChannelKind::DirectStreamlocal { .. } => kind::DIRECT_STREAMLOCAL,
            ChannelKind::ForwardedStreamlocal { .. } => kind::FORWARDED_STREAMLOCAL,
            ChannelKind::X11 { .. } => kind::X11,
            ChannelKind::AuthAgent => kind::AUTH_AGENT,
            ChannelKind::Other { name, .. } => name,
        }
    }

    /// The type-specific data of the `CHANNEL_OPEN`.
    pub fn data(&self) -> Vec<u8> {
        let mut b = Vec::new();
        match self {
            ChannelKind::Session | ChannelKind::AuthAgent => {}
            ChannelKind::DirectTcpip {
                host: a,
                port: p,
                originator: o,
                originator_port: op,
            }
            | ChannelKind::ForwardedTcpip {
                address: a,
                port: p,
                originator: o,
                originator_port: op,
            } => {
                b.put_str(a);
                b.put_u32(*p);
                b.put_str(o);
                b.put_u32(*op);
            }
            ChannelKind::DirectStreamlocal { path } => {
                // OpenSSH: path, reserved string, reserved uint32.
                b.put_str(path);
                b.put_str("");
                b.put_u32(0);
            }
            ChannelKind::ForwardedStreamlocal { path } => {
                // OpenSSH: path, reserved string.
                b.put_str(path);
                b.put_str("");
            }
            ChannelKind::X11 {
                originator,
                originator_port,
            } => {
                b.put_str(originator);
                b.put_u32(*originator_port);
            }
            ChannelKind::Other { data, .. } => b.extend_from_slice(data),
        }
        b
    }

    /// Parses a `CHANNEL_OPEN`'s type and data. A known type whose data
    /// is malformed is an error naming the type; an unknown type is
    /// [`ChannelKind::Other`].
    pub fn parse(name: &str, data: &[u8]) -> Result<ChannelKind> {
        let bad = |what: &str| Error::protocol(format!("malformed {name} channel open: {what}"));
        let mut r = Reader::new(data);
        let text = |r: &mut Reader<'_>, what: &str| -> Result<String> {
            r.utf8().map(str::to_string).map_err(|_| bad(what))
        };
        let k = match name {
            kind::SESSION => ChannelKind::Session,
            kind::AUTH_AGENT => ChannelKind::AuthAgent,
            kind::DIRECT_TCPIP | kind::FORWARDED_TCPIP => {
                let a = text(&mut r, "address")?;
                let p = r.u32().map_err(|_| bad("port"))?;
                let o = text(&mut r, "originator address")?;
                let op = r.u32().map_err(|_| bad("originator port"))?;
                if name == kind::DIRECT_TCPIP {
                    ChannelKind::DirectTcpip {
                        host: a,
                        port: p,
                        originator: o,
                        originator_port: op,
                    }
                } else {
                    ChannelKind::ForwardedTcpip {
                        address: a,
                        port: p,
                        originator: o,
                        originator_port: op,
                    }
                }
            }
            kind::DIRECT_STREAMLOCAL => {
                let path = text(&mut r, "socket path")?;
                // The reserved fields, as OpenSSH reads them.
                r.string().map_err(|_| bad("reserved string"))?;
                r.u32().map_err(|_| bad("reserved uint32"))?;
                ChannelKind::DirectStreamlocal { path }
            }
            kind::FORWARDED_STREAMLOCAL => {
                let path = text(&mut r, "socket path")?;
                r.string().map_err(|_| bad("reserved string"))?;
                ChannelKind::ForwardedStreamlocal { path }
            }
            kind::X11 => {
                let originator = text(&mut r, "originator address")?;
                let originator_port = r.u32().map_err(|_| bad("originator port"))?;
                ChannelKind::X11 {
                    originator,
                    originator_port,
                }
            }
            _ => {
                return Ok(ChannelKind::Other {
                    name: name.to_string(),
                    data: data.to_vec(),
                })
            }
        };
        if !r.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(k)
    }
}

/// A global request, typed where the protocol defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GlobalRequest {
    /// `tcpip-forward`: listen on `address`:`port` (port 0: the server
    /// picks one and says which in its reply).
    TcpipForward {
        /// Address to bind (`""` all, `localhost` loopback, or an address).
        address: String,
        /// Port to bind; 0 for any.
        port: u32,
    },
    /// `cancel-tcpip-forward`.
    CancelTcpipForward {
        /// The address of the forward.
        address: String,
        /// Its bound port.
        port: u32,
    },
    /// `streamlocal-forward@openssh.com`: listen on a Unix socket.
    StreamlocalForward {
        /// The socket path.
        path: String,
    },
    /// `cancel-streamlocal-forward@openssh.com`.
    CancelStreamlocalForward {
        /// The socket path.
        path: String,
    },
    /// Any other request, with its raw data.
    Other {
        /// The request name.
        name: String,
        /// Request-specific data after `want reply`.
        data: Vec<u8>,
    },
}

impl GlobalRequest {
    /// The request name sent on the wire.
    pub fn name(&self) -> &str {
        match self {
            GlobalRequest::TcpipForward { .. } => request::TCPIP_FORWARD,
            GlobalRequest::CancelTcpipForward { .. } => request::CANCEL_TCPIP_FORWARD,
            GlobalRequest::StreamlocalForward { .. } => request::STREAMLOCAL_FORWARD,
            GlobalRequest::CancelStreamlocalForward { .. } => request::CANCEL_STREAMLOCAL_FORWARD,
            GlobalRequest::Other { name, .. } => name,
        }
    }

    /// The request-specific data.
    pub fn data(&self) -> Vec<u8> {
        let mut b = Vec::new();
        match self {
            GlobalRequest::TcpipForward { address, port }
            | GlobalRequest::CancelTcpipForward { address, port } => {
                b.put_str(address);
                b.put_u32(*port);
            }
            GlobalRequest::StreamlocalForward { path }
            | GlobalRequest::CancelStreamlocalForward { path } => b.put_str(path),
            GlobalRequest::Other { data, .. } => b.extend_from_slice(data),
        }
        b
    }

    /// Parses a global request's name and data; a known request whose
    /// data is malformed is an error naming it.
    pub fn parse(name: &str, data: &[u8]) -> Result<GlobalRequest> {
        let bad = |what: &str| Error::protocol(format!("malformed {name} request: {what}"));
        let mut r = Reader::new(data);
        let g = match name {
            request::TCPIP_FORWARD | request::CANCEL_TCPIP_FORWARD => {
                let address = r.utf8().map_err(|_| bad("address"))?.to_string();
                let port = r.u32().map_err(|_| bad("port"))?;
                if name == request::TCPIP_FORWARD {
                    GlobalRequest::TcpipForward { address, port }
                } else {
                    GlobalRequest::CancelTcpipForward { address, port }
                }
            }
            request::STREAMLOCAL_FORWARD | request::CANCEL_STREAMLOCAL_FORWARD => {
                let path = r.utf8().map_err(|_| bad("socket path"))?.to_string();
                if name == request::STREAMLOCAL_FORWARD {
                    GlobalRequest::StreamlocalForward { path }
                } else {
                    GlobalRequest::CancelStreamlocalForward { path }
                }
            }
            _ => {
                return Ok(GlobalRequest::Other {
                    name: name.to_string(),
                    data: data.to_vec(),
                })
            }
        };
        if !r.is_empty() {
            return Err(bad("trailing bytes"));
        }
        Ok(g)
    }

    /// The data of a successful `tcpip-forward` reply for a request of
    /// port 0: the port the server bound.
    pub fn bound_port_reply(port: u32) -> Vec<u8> {
        port.to_be_bytes().to_vec()
    }
}

/// A global request of ours waiting for its reply, in the order sent.
#[derive(Clone, Debug)]
pub(crate) enum Outstanding {
    /// `keepalive@openssh.com`: the reply is the core's own.
    Keepalive,
    /// A forward (`tcpip-forward` or `streamlocal-forward`): becomes
    /// active at a success reply.
    Forward(GlobalRequest),
    /// A cancel: the forward ends at a success reply.
    Cancel(GlobalRequest),
    /// Anything else: the reply goes to the application only.
    Other,
}

/// The forwards a client asked for and the server granted, and which
/// other server-opened channels it agreed to receive.
#[derive(Debug, Default)]
pub(crate) struct Forwards {
    /// Granted TCP forwards: (address as requested, bound port).
    tcp: Vec<(String, u32)>,
    /// Granted Unix socket forwards.
    streamlocal: Vec<String>,
    /// Forwards asked for and not answered yet (a channel may arrive
    /// before the reply: OpenSSH accepts it then too for a fixed port).
    pending: Vec<GlobalRequest>,
    /// An `x11-req` went out on some channel.
    pub(crate) x11: bool,
    /// An `auth-agent-req@openssh.com` went out on some channel.
    pub(crate) agent: bool,
}

/// The most forwards one connection may hold at once, granted or pending
/// (sshd allows any number; this bounds what a client keeps).
pub const MAX_FORWARDS: usize = 4096;

impl Forwards {
    /// Notes a forward or cancel request going out; an error when too many
    /// are held.
    pub(crate) fn sent(&mut self, req: &GlobalRequest) -> Result<Outstanding> {
        Ok(match req {
            GlobalRequest::TcpipForward { .. } | GlobalRequest::StreamlocalForward { .. } => {
                if self.tcp.len() + self.streamlocal.len() + self.pending.len() >= MAX_FORWARDS {
                    return Err(Error::new(
                        crate::ErrorKind::Limit,
                        format!("too many forwards (limit {MAX_FORWARDS})"),
                    ));
                }
                self.pending.push(req.clone());
                Outstanding::Forward(req.clone())
            }
            GlobalRequest::CancelTcpipForward { .. }
            | GlobalRequest::CancelStreamlocalForward { .. } => Outstanding::Cancel(req.clone()),
            GlobalRequest::Other { .. } => Outstanding::Other,
        })
    }

    /// Applies the reply to `out`. Returns the port the server bound for a
    /// granted `tcpip-forward` (the one asked for, or the one in the reply
    /// for port 0).
    pub(crate) fn replied(&mut self, out: &Outstanding, success: bool, data: &[u8]) -> Option<u32> {
        match out {
            Outstanding::Forward(req) => {
                if let Some(i) = self.pending.iter().position(|p| p == req) {
                    self.pending.remove(i);
                }
                if !success {
                    return None;
                }
                match req {
                    GlobalRequest::TcpipForward { address, port } => {
                        let bound = if *port == 0 {
                            let mut r = Reader::new(data);
                            r.u32().ok().filter(|&p| p != 0 && p <= 65535)?
                        } else {
                            *port
                        };
                        self.tcp.push((address.clone(), bound));
                        Some(bound)
                    }
                    GlobalRequest::StreamlocalForward { path } => {
                        self.streamlocal.push(path.clone());
                        None
                    }
                    _ => None,
                }
            }
            Outstanding::Cancel(req) if success => {
                match req {
                    GlobalRequest::CancelTcpipForward { address, port } => {
                        self.tcp.retain(|(a, p)| !(a == address && p == port))
                    }
                    GlobalRequest::CancelStreamlocalForward { path } => {
                        self.streamlocal.retain(|p| p != path)
                    }
                    _ => {}
                }
                None
            }
            _ => None,
        }
    }

    /// Whether a client accepts a channel of `kind` from the server: the
    /// refusal text when not.
    pub(crate) fn refusal(&self, kind: &ChannelKind) -> Option<String> {
        match kind {
            ChannelKind::ForwardedTcpip { address, port, .. } => {
                let granted = self.tcp.iter().any(|(a, p)| a == address && p == port);
                let pending = self.pending.iter().any(|r| {
                    matches!(r, GlobalRequest::TcpipForward { address: a, port: p }
                        if a == address && *p == *port && *p != 0)
                });
                (!granted && !pending).then(|| {
                    format!(
                        "forwarded-tcpip for {}:{port}, which was not requested",
                        crate::transport::sanitize(address)
                    )
                })
            }
            ChannelKind::ForwardedStreamlocal { path } => {
                let asked = self.streamlocal.iter().any(|p| p == path)
                    || self.pending.iter().any(
                        |r| matches!(r, GlobalRequest::StreamlocalForward { path: p } if p == path),
                    );
                (!asked).then(|| {
                    format!(
                        "forwarded-streamlocal for {}, which was not requested",
                        crate::transport::sanitize(path)
                    )
                })
            }
            ChannelKind::X11 { .. } if !self.x11 => {
                Some("x11 channel without X11 forwarding requested".into())
            }
            ChannelKind::AuthAgent if !self.agent => {
                Some("agent channel without agent forwarding requested".into())
            }
            _ => None,
        }
    }

    /// The granted TCP forwards: (address as requested, bound port).
    pub(crate) fn tcp(&self) -> &[(String, u32)] {
        &self.tcp
    }

    /// The granted Unix socket forwards.
    pub(crate) fn streamlocal(&self) -> &[String] {
        &self.streamlocal
    }
}

/// Whether `role` never accepts channels of type `name`: the kinds only
/// it opens itself. Refused as "unknown channel type" before their data is
/// read, as OpenSSH's `ssh` and `sshd` do.
pub(crate) fn foreign(role: crate::transport::Role, name: &str) -> bool {
    match role {
        crate::transport::Role::Client => {
            matches!(
                name,
                kind::SESSION | kind::DIRECT_TCPIP | kind::DIRECT_STREAMLOCAL
            )
        }
        crate::transport::Role::Server => matches!(
            name,
            kind::FORWARDED_TCPIP | kind::FORWARDED_STREAMLOCAL | kind::X11 | kind::AUTH_AGENT
        ),
    }
}
