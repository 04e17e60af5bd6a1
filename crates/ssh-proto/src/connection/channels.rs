//! `Connection` commands of the connection protocol (RFC 4254): opening,
//! answering and closing channels, channel requests, data and windows, and
//! global requests.

use crate::error::{Error, Result};
use crate::event::{ChannelId, ChannelOpenFailureReason, Event, PtyRequest, Stream};
use crate::transport::Role;
use crate::wire::{msg, Put};

use super::channel::{Channel, QueuedOp, ReplySlot, State};
use super::forward::ChannelKind;
use super::{Connection, MAX_UNHANDLED_REQUESTS};

impl Connection {
    // -------------------------------------------------------------- channels

    pub(super) fn alloc_channel(&mut self, ch: Channel) -> Result<ChannelId> {
        if self.channels.len() >= self.config.max_channels {
            return Err(Error::limit(format!(
                "channel limit of {} reached",
                self.config.max_channels
            )));
        }
        let mut id = self.next_channel;
        while self.channels.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.next_channel = id.wrapping_add(1);
        let mut ch = ch;
        ch.span = tracing::debug_span!(parent: &self.span, "channel", id, kind = %crate::transport::sanitize(&ch.kind));
        self.channels.insert(id, ch);
        Ok(ChannelId(id))
    }

    /// The span of a channel (none when it is gone).
    pub(super) fn chan_span(&self, id: u32) -> tracing::Span {
        self.channels
            .get(&id)
            .map_or_else(tracing::Span::none, |c| c.span.clone())
    }

    pub(super) fn chan(&mut self, id: ChannelId) -> Result<&mut Channel> {
        self.channels
            .get_mut(&id.0)
            .ok_or_else(|| Error::usage(format!("{id} does not exist")))
    }

    /// Opens a session channel; [`Event::ChannelOpened`] follows. Requests
    /// (exec, pty, …) may be made right away: they go out once it is open.
    pub fn open_session(&mut self) -> Result<ChannelId> {
        let _span = self.span.clone().entered();
        self.open_channel("session", &[])
    }

    /// Opens a channel of a typed kind: `direct-tcpip` and
    /// `direct-streamlocal@openssh.com` from a client; `forwarded-tcpip`,
    /// `forwarded-streamlocal@openssh.com`, `x11` and
    /// `auth-agent@openssh.com` from a server. [`Event::ChannelOpened`] or
    /// [`Event::ChannelOpenFailed`] follows.
    pub fn open(&mut self, kind: &ChannelKind) -> Result<ChannelId> {
        let ours = match self.role() {
            Role::Client => !matches!(
                kind,
                ChannelKind::ForwardedTcpip { .. }
                    | ChannelKind::ForwardedStreamlocal { .. }
                    | ChannelKind::X11 { .. }
                    | ChannelKind::AuthAgent
            ),
            Role::Server => !matches!(
                kind,
                ChannelKind::Session
                    | ChannelKind::DirectTcpip { .. }
                    | ChannelKind::DirectStreamlocal { .. }
            ),
        };
        if !ours {
            return Err(Error::usage(format!(
                "a {:?} does not open {} channels",
                self.role(),
                kind.name()
            )));
        }
        self.open_channel(kind.name(), &kind.data())
    }

    /// Opens a channel of any type with type-specific data.
    pub fn open_channel(&mut self, kind: &str, data: &[u8]) -> Result<ChannelId> {
        let _span = self.span.clone().entered();
        self.check_open()?;
        if !self.authenticated {
            return Err(Error::usage("open a channel after authentication"));
        }
        let ch = Channel::new(
            kind,
            State::Opening,
            self.config.window_size,
            self.config.max_packet,
        );
        let id = self.alloc_channel(ch)?;
        let (w, p) = (self.config.window_size, self.config.max_packet);
        tracing::debug!(parent: &self.chan_span(id.0), window = w, max_packet = p, "channel open sent");
        let r = self.tr.send(&mut *self.rng, |b| {
            b.push(msg::CHANNEL_OPEN);
            b.put_str(kind);
            b.put_u32(id.0);
            b.put_u32(w);
            b.put_u32(p);
            b.put_raw(data);
        });
        self.after(r)?;
        Ok(id)
    }

    /// Answers a [`Event::ChannelOpenRequest`] with success.
    pub fn accept_channel(&mut self, id: ChannelId) -> Result<()> {
        let _span = self.span.clone().entered();
        self.check_open()?;
        let (w, p) = (self.config.window_size, self.config.max_packet);
        let c = self.chan(id)?;
        if c.state != State::PeerOpening {
            return Err(Error::usage(format!("{id} is not waiting to be accepted")));
        }
        c.state = State::Open;
        tracing::debug!(parent: &c.span, "channel open accepted");
        let remote = c.remote_id;
        let r = self.tr.send(&mut *self.rng, |b| {
            b.push(msg::CHANNEL_OPEN_CONFIRMATION);
            b.put_u32(remote);
            b.put_u32(id.0);
            b.put_u32(w);
            b.put_u32(p);
        });
        self.after(r)
    }

    /// Answers a [`Event::ChannelOpenRequest`] with failure.
    pub fn reject_channel(
        &mut self,
        id: ChannelId,
        reason: ChannelOpenFailureReason,
        description: &str,
    ) -> Result<()> {
        let _span = self.span.clone().entered();
        self.check_open()?;
        let c = self.chan(id)?;
        if c.state != State::PeerOpening {
            return Err(Error::usage(format!("{id} is not waiting to be accepted")));
        }
        tracing::debug!(parent: &c.span, %reason, description, "channel open refused");
        let remote = c.remote_id;
        self.channels.remove(&id.0);
        let r = self.tr.send(&mut *self.rng, |b| {
            open_failure(b, remote, reason, description)
        });
        self.after(r)
    }

    /// Sends a channel request. With `want_reply`, a
    /// [`Event::ChannelRequestReply`] follows.
    pub fn channel_request(
        &mut self,
        id: ChannelId,
        name: &str,
        want_reply: bool,
        data: &[u8],
    ) -> Result<()> {
        let _span = self.span.clone().entered();
        self.check_open()?;
        let c = self.chan(id)?;
        if c.close_sent || c.state == State::Failed {
            return Err(Error::usage(format!("{id} is closed")));
        }
        if want_reply {
            c.our_requests += 1;
        }
        tracing::debug!(parent: &c.span, request = name, want_reply, "channel request sent");
        match name {
            "x11-req" => self.forwards.x11 = true,
            "auth-agent-req@openssh.com" => self.forwards.agent = true,
            _ => {}
        }
        let c = self.chan(id)?;
        if c.state == State::Opening || c.reply_owed() {
            c.queued.push(QueuedOp::Request {
                name: name.into(),
                want_reply,
                data: data.to_vec(),
            });
            return Ok(());
        }
        let remote = c.remote_id;
        let r = self.tr.send(&mut *self.rng, |b| {
            b.push(msg::CHANNEL_REQUEST);
            b.put_u32(remote);
            b.put_str(name);
            b.put_bool(want_reply);
            b.put_raw(data);
        });
        self.after(r)
    }

    /// `exec` request (want_reply).
    pub fn exec(&mut self, id: ChannelId, command: &str) -> Result<()> {
        let _span = self.span.clone().entered();
        let mut d = Vec::new();
        d.put_str(command);
        self.channel_request(id, "exec", true, &d)
    }
    /// `shell` request (want_reply).
    pub fn shell(&mut self, id: ChannelId) -> Result<()> {
        let _span = self.span.clone().entered();
        self.channel_request(id, "shell", true, &[])
    }
    /// `subsystem` request (want_reply).
    pub fn subsystem(&mut self, id: ChannelId, name: &str) -> Result<()> {
        let _span = self.span.clone().entered();
        let mut d = Vec::new();
        d.put_str(name);
        self.channel_request(id, "subsystem", true, &d)
    }
    /// `pty-req` (want_reply).
    pub fn request_pty(&mut self, id: ChannelId, pty: &PtyRequest) -> Result<()> {
        let _span = self.span.clone().entered();
        let mut d = Vec::new();
        d.put_str(&pty.term);
        d.put_u32(pty.cols);
        d.put_u32(pty.rows);
        d.put_u32(pty.width_px);
        d.put_u32(pty.height_px);
        let mut modes = Vec::new();
        for (op, v) in &pty.modes {
            modes.push(*op);
            modes.put_u32(*v);
        }
        modes.push(0);
        d.put_string(&modes);
        self.channel_request(id, "pty-req", true, &d)
    }
    /// `env` request (no reply asked, as OpenSSH does).
    pub fn set_env(&mut self, id: ChannelId, name: &str, value: &str) -> Result<()> {
        let _span = self.span.clone().entered();
        let mut d = Vec::new();
        d.put_str(name);
        d.put_str(value);
        self.channel_request(id, "env", false, &d)
    }
    /// `window-change` request (RFC 4254 §6.7): the terminal is now `cols` x `rows` characters, `width_px` x `height_px` pixels (0 if unknown).
    pub fn window_change(
        &mut self,
        id: ChannelId,
        cols: u32,
        rows: u32,
        width_px: u32,
        height_px: u32,
    ) -> Result<()> {
        let _span = self.span.clone().entered();
        let mut d = Vec::new();
        d.put_u32(cols);
        d.put_u32(rows);
        d.put_u32(width_px);
        d.put_u32(height_px);
        self.channel_request(id, "window-change", false, &d)
    }
    /// `signal` request, e.g. "TERM", "INT".
    pub fn signal(&mut self, id: ChannelId, name: &str) -> Result<()> {
        let _span = self.span.clone().entered();
        let mut d = Vec::new();
        d.put_str(name);
        self.channel_request(id, "signal", false, &d)
    }
    /// Server: `exit-status`.
    pub fn send_exit_status(&mut self, id: ChannelId, status: u32) -> Result<()> {
        let _span = self.span.clone().entered();
        let mut d = Vec::new();
        d.put_u32(status);
        self.channel_request(id, "exit-status", false, &d)
    }
    /// Server: `exit-signal` (signal name without "SIG").
    pub fn send_exit_signal(
        &mut self,
        id: ChannelId,
        signal: &str,
        core_dumped: bool,
        message: &str,
    ) -> Result<()> {
        let _span = self.span.clone().entered();
        let mut d = Vec::new();
        d.put_str(signal);
        d.put_bool(core_dumped);
        d.put_str(message);
        d.put_str("");
        self.channel_request(id, "exit-signal", false, &d)
    }

    /// Sends what was queued on a channel while it was opening or while a
    /// reply to the peer was owed, then wakes writers.
    pub(super) fn run_queued(&mut self, cid: ChannelId) -> Result<()> {
        let id = cid.0;
        let Some(c) = self.channels.get_mut(&id) else {
            return Ok(());
        };
        let queued = std::mem::take(&mut c.queued);
        for op in queued {
            match op {
                QueuedOp::Request {
                    name,
                    want_reply,
                    data,
                } => {
                    if let Some(c) = self.channels.get_mut(&id) {
                        c.our_requests -= want_reply as u32;
                    }
                    self.channel_request(cid, &name, want_reply, &data)?;
                }
                QueuedOp::Eof => {
                    if let Some(c) = self.channels.get_mut(&id) {
                        c.eof_sent = false;
                    }
                    self.send_eof(cid)?;
                }
                QueuedOp::Close => self.close_channel(cid)?,
            }
        }
        if self.channels.get(&id).is_some_and(|c| c.remote_window > 0) {
            self.events.push_back(Event::ChannelWindow { channel: cid });
        }
        Ok(())
    }

    /// Server: the application has handled one [`Event::ChannelRequest`] or
    /// [`Event::GlobalRequest`] that wanted no reply. Call it once per such
    /// event, when done with it: while 64 are not,
    /// the core holds input back.
    pub fn request_handled(&mut self) {
        let _span = self.span.clone().entered();
        if self.unhandled_requests == 0 {
            return;
        }
        self.unhandled_requests -= 1;
        if self.unhandled_requests + 1 == MAX_UNHANDLED_REQUESTS {
            // Input held back may go on now.
            self.process();
        }
    }

    /// Server: want-no-reply requests reported and not yet
    /// [handled](Self::request_handled).
    pub fn unhandled_requests(&self) -> usize {
        self.unhandled_requests
    }

    /// Answers the oldest unanswered want-reply request on the channel.
    pub fn channel_request_reply(&mut self, id: ChannelId, success: bool) -> Result<()> {
        let _span = self.span.clone().entered();
        self.check_open()?;
        let c = self.chan(id)?;
        let Some(slot) = c.replies.iter_mut().find(|s| **s == ReplySlot::Waiting) else {
            return Ok(()); // nothing wanted a reply
        };
        *slot = ReplySlot::Answered(success);
        tracing::debug!(parent: &c.span, success, "channel request answered");
        let remote = c.remote_id;
        let mut out = Vec::new();
        while let Some(ReplySlot::Answered(ok)) = c.replies.front().copied() {
            c.replies.pop_front();
            out.push(ok);
        }
        let closed = c.close_sent;
        if closed {
            return Ok(());
        }
        for ok in out {
            let r = self.tr.send(&mut *self.rng, |b| {
                b.push(if ok {
                    msg::CHANNEL_SUCCESS
                } else {
                    msg::CHANNEL_FAILURE
                });
                b.put_u32(remote);
            });
            self.after(r)?;
        }
        if !self.chan(id)?.reply_owed() {
            self.run_queued(id)?;
        }
        Ok(())
    }

    /// How many bytes [`send_data`](Self::send_data) would take now.
    pub fn send_window(&self, id: ChannelId) -> usize {
        match self.channels.get(&id.0) {
            Some(c)
                if c.state == State::Open && !c.eof_sent && !c.close_sent && !c.reply_owed() =>
            {
                (c.remote_window as usize).min(self.tr.send_buffer_room())
            }
            _ => 0,
        }
    }

    /// The largest send window the peer has granted on this channel: with
    /// [`send_window`](Self::send_window), lets an adapter wait until a
    /// useful amount of window is back instead of waking for every adjust.
    pub fn send_window_peak(&self, id: ChannelId) -> usize {
        self.channels
            .get(&id.0)
            .map_or(0, |c| c.remote_window_peak as usize)
    }

    /// Sends channel data; returns how much the peer's window (and our send
    /// buffer) took. 0 means wait for [`Event::ChannelWindow`] or for the
    /// output to drain.
    pub fn send_data(&mut self, id: ChannelId, data: &[u8]) -> Result<usize> {
        let _span = self.span.clone().entered();
        self.send_stream(id, None, data)
    }

    /// Sends extended data type 1 (stderr).
    pub fn send_stderr(&mut self, id: ChannelId, data: &[u8]) -> Result<usize> {
        let _span = self.span.clone().entered();
        self.send_stream(id, Some(msg::EXTENDED_DATA_STDERR), data)
    }

    fn send_stream(&mut self, id: ChannelId, ext: Option<u32>, data: &[u8]) -> Result<usize> {
        self.check_open()?;
        let room = self.tr.send_buffer_room();
        let send_packet = self.config.send_packet;
        let c = self.chan(id)?;
        if c.eof_sent || c.close_sent {
            return Err(Error::usage(format!("{id}: data after EOF or close")));
        }
        // A request's reply goes out before anything its command writes.
        if c.state != State::Open || c.reply_owed() {
            return Ok(0);
        }
        let n = data.len().min(c.remote_window as usize).min(room);
        let chunk = (c.remote_max_packet.min(send_packet) as usize).max(1);
        c.remote_window -= n as u32;
        let remote = c.remote_id;
        let mut off = 0;
        while off < n {
            let m = chunk.min(n - off);
            let piece = &data[off..off + m];
            let r = self.tr.send(&mut *self.rng, |b| {
                match ext {
                    None => {
                        b.push(msg::CHANNEL_DATA);
                        b.put_u32(remote);
                    }
                    Some(code) => {
                        b.push(msg::CHANNEL_EXTENDED_DATA);
                        b.put_u32(remote);
                        b.put_u32(code);
                    }
                }
                b.put_string(piece);
            });
            self.after(r)?;
            off += m;
        }
        if n > 0 {
            let r = self.tr.check_rekey(&mut *self.rng, self.now);
            self.after(r)?;
        }
        Ok(n)
    }

    /// Sends EOF on the channel (no more data from us).
    pub fn send_eof(&mut self, id: ChannelId) -> Result<()> {
        let _span = self.span.clone().entered();
        self.check_open()?;
        let c = self.chan(id)?;
        if c.eof_sent || c.close_sent {
            return Ok(());
        }
        c.eof_sent = true;
        tracing::debug!(parent: &c.span, "channel EOF sent");
        if c.state == State::Opening || c.reply_owed() {
            c.queued.push(QueuedOp::Eof);
            return Ok(());
        }
        if c.state != State::Open {
            return Ok(());
        }
        let remote = c.remote_id;
        let r = self.tr.send(&mut *self.rng, |b| {
            b.push(msg::CHANNEL_EOF);
            b.put_u32(remote);
        });
        self.after(r)
    }

    /// Closes the channel; [`Event::ChannelClosed`] follows when the peer
    /// closes too.
    pub fn close_channel(&mut self, id: ChannelId) -> Result<()> {
        let _span = self.span.clone().entered();
        self.check_open()?;
        let c = self.chan(id)?;
        if c.close_sent {
            return Ok(());
        }
        tracing::debug!(parent: &c.span, "channel close sent");
        if c.state == State::Opening || (c.reply_owed() && !c.close_received) {
            c.queued.push(QueuedOp::Close);
            return Ok(());
        }
        if c.state != State::Open {
            return Ok(());
        }
        c.close_sent = true;
        let remote = c.remote_id;
        let done = c.close_received;
        let r = self.tr.send(&mut *self.rng, |b| {
            b.push(msg::CHANNEL_CLOSE);
            b.put_u32(remote);
        });
        self.after(r)?;
        if done {
            self.maybe_remove(id.0);
        }
        Ok(())
    }

    pub(super) fn maybe_remove(&mut self, id: u32) {
        if self.channels.get(&id).is_some_and(|c| c.finished()) {
            self.channels.remove(&id);
        }
    }

    /// Bytes buffered on a channel stream.
    pub fn channel_buffered(&self, id: ChannelId, stream: Stream) -> usize {
        self.channels.get(&id.0).map_or(0, |c| match stream {
            Stream::Stdout => c.stdout.len(),
            Stream::Stderr => c.stderr.len(),
        })
    }

    /// Borrows buffered data of a channel stream (call
    /// [`channel_consume`](Self::channel_consume) after using it).
    pub fn channel_peek(&self, id: ChannelId, stream: Stream) -> &[u8] {
        self.channels.get(&id.0).map_or(&[], |c| match stream {
            Stream::Stdout => c.stdout.pending(),
            Stream::Stderr => c.stderr.pending(),
        })
    }

    /// Marks `n` buffered bytes as read; the window is re-granted to the
    /// peer as data is consumed.
    pub fn channel_consume(&mut self, id: ChannelId, stream: Stream, n: usize) -> Result<()> {
        let _span = self.span.clone().entered();
        let Some(c) = self.channels.get_mut(&id.0) else {
            return Ok(());
        };
        let n = match stream {
            Stream::Stdout => c.stdout.consume(n),
            Stream::Stderr => c.stderr.consume(n),
        };
        self.consumed(id, n)
    }

    /// Copies buffered data into `out`; returns the count (0: nothing buffered).
    pub fn channel_read(&mut self, id: ChannelId, stream: Stream, out: &mut [u8]) -> Result<usize> {
        let _span = self.span.clone().entered();
        let Some(c) = self.channels.get_mut(&id.0) else {
            return Ok(0);
        };
        let n = match stream {
            Stream::Stdout => c.stdout.read(out),
            Stream::Stderr => c.stderr.read(out),
        };
        self.consumed(id, n)?;
        Ok(n)
    }

    fn consumed(&mut self, id: ChannelId, n: usize) -> Result<()> {
        self.grant(id, n)?;
        // Input held back for lack of room may fit now.
        if self.tr.buffered_input() > 0 {
            self.process();
        }
        Ok(())
    }

    /// Counts `n` bytes as consumed and re-grants window once half of it is.
    pub(super) fn grant(&mut self, id: ChannelId, n: usize) -> Result<()> {
        let Some(c) = self.channels.get_mut(&id.0) else {
            return Ok(());
        };
        c.unacked = c.unacked.saturating_add(n as u32);
        let mut adjust = None;
        if c.state == State::Open
            && !c.close_sent
            && !c.eof_received
            && c.unacked >= c.local_window_max / 2
        {
            adjust = Some((c.remote_id, c.unacked));
            c.local_window = c.local_window.saturating_add(c.unacked);
            c.unacked = 0;
        }
        if c.finished() {
            self.channels.remove(&id.0);
        }
        if let Some((remote, amount)) = adjust {
            if self.error.is_none() {
                let r = self.tr.send(&mut *self.rng, |b| {
                    b.push(msg::CHANNEL_WINDOW_ADJUST);
                    b.put_u32(remote);
                    b.put_u32(amount);
                });
                self.after(r)?;
            }
        }
        Ok(())
    }

    /// Whether the channel still exists (not fully closed and drained).
    pub fn channel_exists(&self, id: ChannelId) -> bool {
        self.channels.contains_key(&id.0)
    }
    /// Whether the peer sent EOF (or closed) on the channel.
    pub fn channel_eof_received(&self, id: ChannelId) -> bool {
        self.channels
            .get(&id.0)
            .is_none_or(|c| c.eof_received || c.close_received)
    }
    /// Number of channels in the table.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }
}

pub(super) fn open_failure(
    b: &mut Vec<u8>,
    remote: u32,
    reason: ChannelOpenFailureReason,
    description: &str,
) {
    b.push(msg::CHANNEL_OPEN_FAILURE);
    b.put_u32(remote);
    b.put_u32(reason.code());
    b.put_str(description);
    b.put_str("");
}
