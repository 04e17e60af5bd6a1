//! Per-channel state: windows, receive buffers, request bookkeeping.

use std::collections::VecDeque;

use crate::wire::byte_queue::ByteQueue;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum State {
    /// We sent CHANNEL_OPEN and wait for confirmation.
    Opening,
    /// The peer asked to open; the application has not answered.
    PeerOpening,
    Open,
    /// Open failed or was refused; kept only until the application is told.
    Failed,
}

/// How an incoming want-reply request has been answered so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ReplySlot {
    Waiting,
    Answered(bool),
}

pub(crate) struct Channel {
    pub remote_id: u32,
    pub state: State,
    pub kind: String,
    /// The channel's tracing span (a child of the connection's), set when
    /// the channel gets its number.
    pub span: tracing::Span,
    /// Window we still grant the peer (bytes it may send).
    pub local_window: u32,
    /// The window size we keep topping up to.
    pub local_window_max: u32,
    /// Bytes the application consumed that we have not re-granted yet.
    pub unacked: u32,
    pub local_max_packet: u32,
    pub remote_window: u32,
    /// The largest send window the peer has granted at once.
    pub remote_window_peak: u32,
    pub remote_max_packet: u32,
    pub stdout: ByteQueue,
    pub stderr: ByteQueue,
    pub stdout_event: bool,
    pub stderr_event: bool,
    pub eof_received: bool,
    pub eof_sent: bool,
    pub close_received: bool,
    pub close_sent: bool,
    pub closed_reported: bool,
    /// Our requests awaiting a reply, in order.
    pub our_requests: u32,
    /// Requests made before the channel was confirmed (encoded payload tails).
    pub queued: Vec<QueuedOp>,
    /// Incoming want-reply requests, answered in order.
    pub replies: VecDeque<ReplySlot>,
    pub is_session: bool,
}

/// Operations the application asked for before the open was confirmed.
pub(crate) enum QueuedOp {
    /// A CHANNEL_REQUEST without the recipient field: name, want_reply, data.
    Request {
        name: String,
        want_reply: bool,
        data: Vec<u8>,
    },
    Eof,
    Close,
}

impl Channel {
    /// A request from the peer still waits for our reply: what we send on
    /// this channel waits too, so the reply comes first.
    pub(crate) fn reply_owed(&self) -> bool {
        self.replies.contains(&ReplySlot::Waiting)
    }

    pub(crate) fn new(kind: &str, state: State, window: u32, max_packet: u32) -> Self {
        Channel {
            remote_id: 0,
            state,
            kind: kind.to_string(),
            span: tracing::Span::none(),
            local_window: window,
            local_window_max: window,
            unacked: 0,
            local_max_packet: max_packet,
            remote_window: 0,
            remote_window_peak: 0,
            remote_max_packet: 0,
            stdout: ByteQueue::default(),
            stderr: ByteQueue::default(),
            stdout_event: false,
            stderr_event: false,
            eof_received: false,
            eof_sent: false,
            close_received: false,
            close_sent: false,
            closed_reported: false,
            our_requests: 0,
            queued: Vec::new(),
            replies: VecDeque::new(),
            is_session: kind == "session",
        }
    }

    /// Fully closed and nothing left to read: the slot can go.
    pub(crate) fn finished(&self) -> bool {
        (self.close_received
            && self.close_sent
            && self.closed_reported
            && self.stdout.is_empty()
            && self.stderr.is_empty())
            || (self.state == State::Failed && self.closed_reported)
    }
}
