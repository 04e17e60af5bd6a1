//! A client session's forwarding: global requests matched to their
//! replies by ticket (several threads or tasks may each wait for their
//! own), and the forwarded channels the server opens for them, accepted
//! and queued for the application (bounded).

use std::collections::{HashMap, HashSet, VecDeque};

use crate::forward::ChannelKind;
use crate::{ChannelId, ChannelOpenFailureReason, Error, ErrorKind, GlobalRequest};

use super::state::Session;

/// Forwarded channels accepted and not yet taken by the application; more
/// are refused (resource shortage) until it takes some.
pub const MAX_QUEUED_FORWARDED: usize = 64;

/// The reply to one of our global requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalReply {
    /// True for `REQUEST_SUCCESS`.
    pub success: bool,
    /// Response-specific data.
    pub data: Vec<u8>,
    /// For a granted `tcpip-forward`: the port the server listens on.
    pub bound_port: Option<u32>,
}

/// Made at the first global request the session sends.
#[derive(Debug, Default)]
pub(super) struct Book {
    /// Tickets handed out (one per request that wants a reply).
    sent: u64,
    /// Replies received so far; reply k answers ticket k.
    received: u64,
    replies: HashMap<u64, GlobalReply>,
    /// Tickets whose waiter gave up before the reply came: their replies
    /// are dropped on arrival.
    abandoned: HashSet<u64>,
    incoming: VecDeque<(ChannelId, ChannelKind)>,
}

impl Session {
    /// Sends a global request that wants a reply (typed forward requests
    /// are tracked by the core, see [`crate::Connection::send_global_request`]);
    /// returns the ticket to wait on with [`Session::poll_global_reply`].
    /// Send every global request that wants a reply through here, so the
    /// tickets match the replies' order.
    pub fn send_global_request(&mut self, req: &GlobalRequest) -> Result<u64, Error> {
        self.conn_mut().send_global_request(req, true)?;
        let book = self.book.get_or_insert_with(Default::default);
        let ticket = book.sent;
        book.sent += 1;
        Ok(ticket)
    }

    /// The reply to the request of `ticket`, once it came; an error when
    /// the connection ended first.
    pub fn poll_global_reply(&mut self, ticket: u64) -> Option<Result<GlobalReply, Error>> {
        if let Some(r) = self.book.as_mut().and_then(|b| b.replies.remove(&ticket)) {
            return Some(Ok(r));
        }
        self.closed().cloned().map(Err)
    }

    /// The next forwarded connection (`forwarded-tcpip`,
    /// `forwarded-streamlocal@openssh.com`, or an `x11` or agent channel
    /// asked for on a session): its channel, already accepted, and what
    /// it is for. An error when the connection ended.
    ///
    /// A queued connection is confirmed to the peer only here, when the
    /// application takes it: until then the peer may send nothing on it,
    /// so the queue holds no data (at most [`MAX_QUEUED_FORWARDED`] opens).
    pub fn poll_forwarded(&mut self) -> Option<Result<(ChannelId, ChannelKind), Error>> {
        while let Some((id, kind)) = self.book.as_mut().and_then(|b| b.incoming.pop_front()) {
            // A channel the connection no longer has is skipped.
            if self.accept_channel(id).is_ok() {
                return Some(Ok((id, kind)));
            }
        }
        self.closed().cloned().map(Err)
    }

    /// The waiter of `ticket` gives up (a dropped future, a timeout): its
    /// reply, come or coming, is not kept.
    pub fn abandon_global_reply(&mut self, ticket: u64) {
        if let Some(b) = self.book.as_mut() {
            if b.replies.remove(&ticket).is_none() && ticket >= b.received && ticket < b.sent {
                b.abandoned.insert(ticket);
            }
        }
    }

    /// Records a reply the core reported.
    pub(super) fn global_reply(&mut self, reply: GlobalReply) {
        // A reply to a request sent around the session has no ticket.
        if let Some(b) = self.book.as_mut() {
            if b.received < b.sent {
                if !b.abandoned.remove(&b.received) {
                    b.replies.insert(b.received, reply);
                }
                b.received += 1;
            }
        }
    }

    /// A client's answer to a channel the server opens: the core passed up
    /// only kinds this side asked for; they are queued (confirmed when the
    /// application takes them) while there is room, everything else refused.
    pub(super) fn forwarded_open(&mut self, channel: ChannelId, kind: &str, data: &[u8]) {
        let typed = ChannelKind::parse(kind, data).ok().filter(|k| {
            matches!(
                k,
                ChannelKind::ForwardedTcpip { .. }
                    | ChannelKind::ForwardedStreamlocal { .. }
                    | ChannelKind::X11 { .. }
                    | ChannelKind::AuthAgent
            )
        });
        let room = |s: &mut Session| {
            let b = s.book.get_or_insert_with(Default::default);
            b.incoming.len() < MAX_QUEUED_FORWARDED
        };
        match typed {
            Some(k) if room(self) => {
                if let Some(b) = self.book.as_mut() {
                    b.incoming.push_back((channel, k));
                }
            }
            Some(_) => {
                let _ = self.conn_mut().reject_channel(
                    channel,
                    ChannelOpenFailureReason::ResourceShortage,
                    "too many forwarded connections waiting",
                );
            }
            _ => {
                let _ = self.conn_mut().reject_channel(
                    channel,
                    ChannelOpenFailureReason::AdministrativelyProhibited,
                    "not accepted by this client",
                );
            }
        }
    }
}

/// The port a granted `tcpip-forward` reply gives, or the refusal as an
/// error naming the forward.
pub fn forward_result(reply: GlobalReply, what: &str) -> Result<Option<u32>, Error> {
    if reply.success {
        Ok(reply.bound_port)
    } else {
        Err(Error::new(
            ErrorKind::GlobalRequest,
            format!("{what} refused by the server"),
        ))
    }
}
