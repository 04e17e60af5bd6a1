//! The server side of SOCKS4, SOCKS4a and SOCKS5 (RFC 1928; no
//! authentication, CONNECT only), sans-IO: feed the bytes a local client
//! sent, get what to answer and, once the request is complete, where it
//! wants to go. What ssh's `-D` speaks to browsers and `curl`.

use crate::error::{Error, ErrorKind};

/// The longest user id (SOCKS4) or host name (SOCKS4a) accepted.
const MAX_NAME: usize = 255;
/// The most bytes an unfinished request may hold (SOCKS4a's two names
/// and its fixed part; SOCKS5's are shorter).
const MAX_REQUEST: usize = 8 + 2 * (MAX_NAME + 1) + 16;

/// What the handshake asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SocksTarget {
    /// A host name or an address (IPv6 without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
    /// 4 for SOCKS4 and 4a, 5 for SOCKS5: the reply's form.
    pub version: u8,
}

/// The next step of a [`SocksHandshake`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocksStep {
    /// More bytes are needed.
    NeedMore,
    /// Send these bytes to the client (SOCKS5's method choice), then call
    /// [`SocksHandshake::feed`] with an empty slice before reading more:
    /// the request may have come in the same read.
    Reply(Vec<u8>),
    /// The request is complete: open the channel, then answer with
    /// [`SocksTarget::reply`]. Bytes after the request (data the client
    /// sent early) are in [`SocksHandshake::take_rest`].
    Connect(SocksTarget),
    /// The request cannot be served: send these bytes (if any), then
    /// close; the error says why.
    Refuse(Vec<u8>, Error),
}

/// One SOCKS handshake: bytes in, steps out.
#[derive(Debug, Default)]
pub struct SocksHandshake {
    buf: Vec<u8>,
    /// SOCKS5: the method choice was sent; the request comes next.
    chosen: bool,
    done: bool,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::Protocol, format!("SOCKS: {}", msg.into()))
}

impl SocksTarget {
    /// The answer once the channel opened (`ok`) or was refused.
    pub fn reply(&self, ok: bool) -> Vec<u8> {
        if self.version == 4 {
            vec![0, if ok { 0x5a } else { 0x5b }, 0, 0, 0, 0, 0, 0]
        } else {
            // Bound address 0.0.0.0:0, as ssh answers.
            vec![5, if ok { 0 } else { 5 }, 0, 1, 0, 0, 0, 0, 0, 0]
        }
    }
}

impl SocksHandshake {
    /// A handshake waiting for the client's first bytes.
    pub fn new() -> SocksHandshake {
        SocksHandshake::default()
    }

    /// Takes `data` from the client and says what to do next.
    pub fn feed(&mut self, data: &[u8]) -> SocksStep {
        self.buf.extend_from_slice(data);
        if self.done {
            return SocksStep::NeedMore;
        }
        let step = self.parse();
        // Only an unfinished request is bounded: bytes after a complete
        // one are the client's early data.
        if step == SocksStep::NeedMore && self.buf.len() > MAX_REQUEST {
            self.done = true;
            return SocksStep::Refuse(Vec::new(), bad("request too long"));
        }
        step
    }

    fn parse(&mut self) -> SocksStep {
        match self.buf.first() {
            None => SocksStep::NeedMore,
            Some(4) => self.socks4(),
            Some(5) => self.socks5(),
            Some(v) => {
                self.done = true;
                SocksStep::Refuse(Vec::new(), bad(format!("unknown version {v}")))
            }
        }
    }

    /// Bytes the client sent after its request, to forward first.
    pub fn take_rest(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buf)
    }

    fn finish(&mut self, used: usize, target: SocksTarget) -> SocksStep {
        self.buf.drain(..used);
        self.done = true;
        SocksStep::Connect(target)
    }

    fn socks4(&mut self) -> SocksStep {
        let b = &self.buf;
        if b.len() < 9 {
            return SocksStep::NeedMore;
        }
        let refuse = |m: &str| SocksStep::Refuse(vec![0, 0x5b, 0, 0, 0, 0, 0, 0], bad(m));
        if b[1] != 1 {
            self.done = true;
            return refuse("only CONNECT is supported");
        }
        let port = u16::from_be_bytes([b[2], b[3]]);
        let ip = [b[4], b[5], b[6], b[7]];
        // The user id, NUL-terminated (ignored).
        let Some(uid_end) = b[8..].iter().position(|&c| c == 0).map(|i| 8 + i) else {
            if b.len() - 8 > MAX_NAME {
                self.done = true;
                return refuse("user id too long");
            }
            return SocksStep::NeedMore;
        };
        let socks4a = ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0;
        if !socks4a {
            let host = std::net::Ipv4Addr::from(ip).to_string();
            return self.finish(
                uid_end + 1,
                SocksTarget {
                    host,
                    port,
                    version: 4,
                },
            );
        }
        let start = uid_end + 1;
        let Some(end) = b[start..].iter().position(|&c| c == 0).map(|i| start + i) else {
            if b.len() - start > MAX_NAME {
                self.done = true;
                return refuse("host name too long");
            }
            return SocksStep::NeedMore;
        };
        let Ok(host) = std::str::from_utf8(&b[start..end]).map(str::to_string) else {
            self.done = true;
            return refuse("host name is not UTF-8");
        };
        if host.is_empty() {
            self.done = true;
            return refuse("empty host name");
        }
        self.finish(
            end + 1,
            SocksTarget {
                host,
                port,
                version: 4,
            },
        )
    }

    fn socks5(&mut self) -> SocksStep {
        if !self.chosen {
            let b = &self.buf;
            if b.len() < 2 {
                return SocksStep::NeedMore;
            }
            let n = b[1] as usize;
            if b.len() < 2 + n {
                return SocksStep::NeedMore;
            }
            let no_auth = b[2..2 + n].contains(&0);
            self.buf.drain(..2 + n);
            if !no_auth {
                self.done = true;
                return SocksStep::Refuse(
                    vec![5, 0xff],
                    bad("the client offers no method without authentication"),
                );
            }
            self.chosen = true;
            return SocksStep::Reply(vec![5, 0]);
        }
        let b = &self.buf;
        if b.len() < 5 {
            return SocksStep::NeedMore;
        }
        let fail = |code: u8| vec![5, code, 0, 1, 0, 0, 0, 0, 0, 0];
        if b[0] != 5 {
            self.done = true;
            return SocksStep::Refuse(fail(1), bad("version changed mid-handshake"));
        }
        if b[1] != 1 {
            self.done = true;
            return SocksStep::Refuse(fail(7), bad("only CONNECT is supported"));
        }
        let (host, at) = match b[3] {
            1 => {
                if b.len() < 10 {
                    return SocksStep::NeedMore;
                }
                (
                    std::net::Ipv4Addr::new(b[4], b[5], b[6], b[7]).to_string(),
                    8,
                )
            }
            4 => {
                if b.len() < 22 {
                    return SocksStep::NeedMore;
                }
                let mut a = [0u8; 16];
                a.copy_from_slice(&b[4..20]);
                (std::net::Ipv6Addr::from(a).to_string(), 20)
            }
            3 => {
                let n = b[4] as usize;
                if b.len() < 5 + n + 2 {
                    return SocksStep::NeedMore;
                }
                let Ok(h) = std::str::from_utf8(&b[5..5 + n]) else {
                    self.done = true;
                    return SocksStep::Refuse(fail(1), bad("host name is not UTF-8"));
                };
                if h.is_empty() {
                    self.done = true;
                    return SocksStep::Refuse(fail(1), bad("empty host name"));
                }
                (h.to_string(), 5 + n)
            }
            t => {
                self.done = true;
                return SocksStep::Refuse(fail(8), bad(format!("unknown address type {t}")));
            }
        };
        let port = u16::from_be_bytes([b[at], b[at + 1]]);
        self.finish(
            at + 2,
            SocksTarget {
                host,
                port,
                version: 5,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> Vec<SocksStep> {
        // Byte by byte: every split point.
        let mut h = SocksHandshake::new();
        let mut steps = Vec::new();
        for b in input {
            match h.feed(std::slice::from_ref(b)) {
                SocksStep::NeedMore => {}
                s => steps.push(s),
            }
        }
        steps
    }

    #[test]
    fn socks5_domain_ipv4_ipv6() {
        let mut req = vec![5, 2, 2, 0, 5, 1, 0, 3, 11];
        req.extend_from_slice(b"example.org");
        req.extend_from_slice(&443u16.to_be_bytes());
        let s = run(&req);
        assert_eq!(s[0], SocksStep::Reply(vec![5, 0]));
        assert_eq!(
            s[1],
            SocksStep::Connect(SocksTarget {
                host: "example.org".into(),
                port: 443,
                version: 5
            })
        );
        let s = run(&[5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80]);
        assert!(matches!(&s[1], SocksStep::Connect(t) if t.host == "127.0.0.1" && t.port == 80));
        let mut v6 = vec![5, 1, 0, 5, 1, 0, 4];
        v6.extend_from_slice(&std::net::Ipv6Addr::LOCALHOST.octets());
        v6.extend_from_slice(&[0, 22]);
        let s = run(&v6);
        assert!(matches!(&s[1], SocksStep::Connect(t) if t.host == "::1" && t.port == 22));
    }

    #[test]
    fn socks4_and_4a() {
        let s = run(&[4, 1, 0, 80, 10, 0, 0, 1, b'u', 0]);
        assert_eq!(
            s,
            [SocksStep::Connect(SocksTarget {
                host: "10.0.0.1".into(),
                port: 80,
                version: 4
            })]
        );
        let mut a = vec![4, 1, 1, 187, 0, 0, 0, 9, 0];
        a.extend_from_slice(b"host.example\0");
        let s = run(&a);
        assert!(
            matches!(&s[0], SocksStep::Connect(t) if t.host == "host.example" && t.port == 443)
        );
    }

    #[test]
    fn bad_requests_are_refused_with_the_right_answer() {
        // No no-auth method.
        let s = run(&[5, 1, 2]);
        assert!(matches!(&s[0], SocksStep::Refuse(r, _) if r == &vec![5, 0xff]));
        // BIND.
        let s = run(&[5, 1, 0, 5, 2, 0, 1, 1, 2, 3, 4, 0, 80]);
        assert!(matches!(&s[1], SocksStep::Refuse(r, _) if r[1] == 7));
        // Unknown address type.
        let s = run(&[5, 1, 0, 5, 1, 0, 9, 0, 0]);
        assert!(matches!(&s[1], SocksStep::Refuse(r, _) if r[1] == 8));
        // SOCKS4 BIND, unknown version, endless user id.
        assert!(
            matches!(&run(&[4, 2, 0, 80, 1, 2, 3, 4, 0])[0], SocksStep::Refuse(r, _) if r[1] == 0x5b)
        );
        assert!(matches!(&run(&[6])[0], SocksStep::Refuse(..)));
        let mut long = vec![4, 1, 0, 80, 1, 2, 3, 4];
        long.extend(std::iter::repeat_n(b'x', 600));
        assert!(run(&long)
            .iter()
            .any(|s| matches!(s, SocksStep::Refuse(..))));
    }

    #[test]
    fn a_socks5_greeting_and_request_in_one_read() {
        let mut h = SocksHandshake::new();
        let s = h.feed(&[5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80]);
        assert_eq!(s, SocksStep::Reply(vec![5, 0]));
        assert!(matches!(h.feed(&[]), SocksStep::Connect(t) if t.port == 80));
    }

    #[test]
    fn long_early_data_is_not_a_long_request() {
        let mut h = SocksHandshake::new();
        let mut req = vec![4, 1, 0, 80, 1, 2, 3, 4, 0];
        req.extend(std::iter::repeat_n(b'x', 2000));
        assert!(matches!(h.feed(&req), SocksStep::Connect(_)));
        assert_eq!(h.take_rest().len(), 2000);
    }

    #[test]
    fn early_data_after_the_request_is_kept() {
        let mut h = SocksHandshake::new();
        let s = h.feed(&[4, 1, 0, 80, 1, 2, 3, 4, 0, b'G', b'E', b'T']);
        assert!(matches!(s, SocksStep::Connect(_)));
        assert_eq!(h.take_rest(), b"GET");
    }
}
