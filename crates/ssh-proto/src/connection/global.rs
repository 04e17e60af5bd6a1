//! Global requests (RFC 4254 §4): ours, typed or raw, with the forwards a
//! client asks for; and the replies owed to the peer's, in order.

use crate::error::{Error, ErrorKind, Result};
use crate::transport::Role;
use crate::wire::{msg, Put};

use super::forward::{GlobalRequest, Outstanding};
use super::Connection;

impl Connection {
    /// Sends a global request. With `want_reply`, an
    /// [`Event::GlobalRequestReply`](crate::Event::GlobalRequestReply) follows (replies come in request
    /// order). A forward request sent this way is tracked as with
    /// [`Connection::send_global_request`].
    pub fn global_request(&mut self, name: &str, want_reply: bool, data: &[u8]) -> Result<()> {
        let _span = self.span.clone().entered();
        match GlobalRequest::parse(name, data) {
            Ok(req) => self.send_global_request(&req, want_reply),
            // Malformed by its name's rules: ours to send, untracked.
            Err(_) => self.send_global(name, want_reply.then_some(Outstanding::Other), data),
        }
    }

    /// Sends a typed global request. A client's forward requests
    /// (`tcpip-forward`, `streamlocal-forward@openssh.com`) are noted, so
    /// that the forwarded channels the server opens for them are accepted
    /// (and only those: any other `forwarded-tcpip` is refused); the
    /// [`Event::GlobalRequestReply`](crate::Event::GlobalRequestReply) of a granted `tcpip-forward` carries
    /// the bound port. A forward without `want_reply` counts as granted.
    pub fn send_global_request(&mut self, req: &GlobalRequest, want_reply: bool) -> Result<()> {
        let _span = self.span.clone().entered();
        self.check_open()?;
        let forward = matches!(
            req,
            GlobalRequest::TcpipForward { .. }
                | GlobalRequest::CancelTcpipForward { .. }
                | GlobalRequest::StreamlocalForward { .. }
                | GlobalRequest::CancelStreamlocalForward { .. }
        );
        if forward && self.role() != Role::Client {
            return Err(Error::usage(format!(
                "{} is a client's request",
                req.name()
            )));
        }
        let out = self.forwards.sent(req)?;
        if !want_reply {
            // Nothing will say no: take it as granted now.
            self.forwards.replied(&out, true, &[]);
        }
        self.send_global(req.name(), want_reply.then_some(out), &req.data())
    }

    /// Sends a global request; `out` is what its reply will answer (None:
    /// no reply wanted).
    pub(super) fn send_global(
        &mut self,
        name: &str,
        out: Option<Outstanding>,
        data: &[u8],
    ) -> Result<()> {
        self.check_open()?;
        let want_reply = out.is_some();
        tracing::debug!(request = name, want_reply, "global request sent");
        let r = self.tr.send(&mut *self.rng, |b| {
            b.push(msg::GLOBAL_REQUEST);
            b.put_str(name);
            b.put_bool(want_reply);
            b.put_raw(data);
        });
        if let Some(o) = out {
            self.global_out.push_back(o);
        }
        self.after(r)
    }

    /// Client: asks the server to listen on `address`:`port` and forward
    /// connections to it as `forwarded-tcpip` channels (port 0: the server
    /// picks one; the reply event's `bound_port` says which).
    /// `address` is as ssh sends it: `localhost` for loopback only, `""`
    /// for every address, or an address.
    pub fn forward_tcpip(&mut self, address: &str, port: u32) -> Result<()> {
        self.send_global_request(
            &GlobalRequest::TcpipForward {
                address: address.into(),
                port,
            },
            true,
        )
    }

    /// Client: stops a forward made with [`Connection::forward_tcpip`]
    /// (`port` is the bound port).
    pub fn cancel_forward_tcpip(&mut self, address: &str, port: u32) -> Result<()> {
        self.send_global_request(
            &GlobalRequest::CancelTcpipForward {
                address: address.into(),
                port,
            },
            true,
        )
    }

    /// Client: asks the server to listen on the Unix socket `path` and
    /// forward connections to it as `forwarded-streamlocal@openssh.com`
    /// channels.
    pub fn forward_streamlocal(&mut self, path: &str) -> Result<()> {
        self.send_global_request(
            &GlobalRequest::StreamlocalForward { path: path.into() },
            true,
        )
    }

    /// Client: stops a forward made with
    /// [`Connection::forward_streamlocal`].
    pub fn cancel_forward_streamlocal(&mut self, path: &str) -> Result<()> {
        self.send_global_request(
            &GlobalRequest::CancelStreamlocalForward { path: path.into() },
            true,
        )
    }

    /// Client: the TCP forwards the server has granted, as (address as
    /// requested, bound port).
    pub fn tcpip_forwards(&self) -> &[(String, u32)] {
        self.forwards.tcp()
    }

    /// Client: the Unix socket forwards the server has granted.
    pub fn streamlocal_forwards(&self) -> &[String] {
        self.forwards.streamlocal()
    }

    /// Answers the oldest global request from the peer that asked for a
    /// reply and has none yet (replies go out in request order, RFC 4254
    /// §4). `data` is the request-specific reply payload (empty for most).
    pub fn global_request_reply(&mut self, success: bool, data: &[u8]) -> Result<()> {
        let _span = self.span.clone().entered();
        self.check_open()?;
        let Some(slot) = self.global_replies.iter_mut().find(|s| s.is_none()) else {
            return Err(Error::new(
                ErrorKind::Usage,
                "no global request is waiting for a reply",
            ));
        };
        *slot = Some((success, data.to_vec()));
        let r = self.flush_global_replies();
        self.after(r)
    }

    /// Sends the answered global-request replies at the front of the queue.
    pub(super) fn flush_global_replies(&mut self) -> Result<()> {
        while let Some(Some(_)) = self.global_replies.front() {
            let Some(Some((ok, data))) = self.global_replies.pop_front() else {
                break;
            };
            self.tr.send(&mut *self.rng, |b| {
                b.push(if ok {
                    msg::REQUEST_SUCCESS
                } else {
                    msg::REQUEST_FAILURE
                });
                b.extend_from_slice(&data);
            })?;
        }
        Ok(())
    }
}
