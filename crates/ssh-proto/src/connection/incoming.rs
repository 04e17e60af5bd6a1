//! Connection-protocol messages from the peer (RFC 4254): channel opens,
//! confirmations, data, window adjustments, EOF, close, channel and global
//! requests and their replies.

use crate::error::{Error, ErrorKind, Result};
use crate::event::{
    ChannelId, ChannelOpenFailureReason, ChannelRequest, Event, PtyRequest, Stream,
};
use crate::transport::Role;
use crate::wire::{msg, Put, Reader};

use super::channel::{Channel, ReplySlot, State};
use super::channels::open_failure;
use super::forward::{self, ChannelKind, Outstanding};
use super::{
    Connection, MAX_GLOBAL_REQUEST_DATA, MAX_PENDING_CHANNEL_REQUESTS, MAX_PENDING_GLOBAL_REQUESTS,
};

impl Connection {
    // ------------------------------------------------------ incoming (4254)

    pub(super) fn on_connection_msg(&mut self, payload: &[u8]) -> Result<()> {
        let t = payload[0];
        let mut r = Reader::new(&payload[1..]);
        match t {
            msg::GLOBAL_REQUEST => {
                let name = r.utf8()?.to_string();
                let want_reply = r.bool()?;
                let data = r.rest();
                // OpenSSH's keepalives and host-key announcements are ours
                // to answer; everything else is the application's decision.
                let ours = name.starts_with("hostkeys-") || name == "keepalive@openssh.com";
                if want_reply {
                    if self.global_replies.len() >= MAX_PENDING_GLOBAL_REQUESTS {
                        return Err(Error::new(
                            ErrorKind::Limit,
                            format!(
                                "more than {MAX_PENDING_GLOBAL_REQUESTS} global requests await a reply"
                            ),
                        ));
                    }
                    self.global_replies.push_back(if ours {
                        Some((false, Vec::new()))
                    } else {
                        None
                    });
                    self.flush_global_replies()?;
                }
                if !ours {
                    if data.len() > MAX_GLOBAL_REQUEST_DATA {
                        return Err(Error::new(
                            ErrorKind::Limit,
                            format!(
                                "global request {} carries {} bytes (limit {MAX_GLOBAL_REQUEST_DATA})",
                                crate::transport::sanitize(&name),
                                data.len()
                            ),
                        ));
                    }
                    if !want_reply && self.role() == Role::Server {
                        self.unhandled_requests += 1;
                    }
                    tracing::debug!(request = %crate::transport::sanitize(&name), want_reply, "global request received");
                    self.events.push_back(Event::GlobalRequest {
                        name: crate::transport::sanitize(&name),
                        want_reply,
                        data: data.to_vec(),
                    });
                }
                Ok(())
            }
            msg::REQUEST_SUCCESS | msg::REQUEST_FAILURE => {
                let Some(out) = self.global_out.pop_front() else {
                    return Err(Error::protocol("global request reply without a request"));
                };
                if matches!(out, Outstanding::Keepalive) {
                    return Ok(());
                }
                let success = t == msg::REQUEST_SUCCESS;
                let data = r.rest().to_vec();
                let bound_port = self.forwards.replied(&out, success, &data);
                tracing::debug!(success, ?bound_port, "global request reply received");
                self.events.push_back(Event::GlobalRequestReply {
                    success,
                    data,
                    bound_port,
                });
                Ok(())
            }
            msg::CHANNEL_OPEN => self.on_channel_open(&mut r),
            _ => {
                let id = r.u32()?;
                let Some(c) = self.channels.get_mut(&id) else {
                    // A window adjust may cross our CLOSE (paramiko sends
                    // one as its read races the close): dropped, as
                    // OpenSSH drops it. Anything else is an error.
                    if t == msg::CHANNEL_WINDOW_ADJUST {
                        tracing::debug!(
                            channel = id,
                            "window adjust for a channel no longer open dropped"
                        );
                        return Ok(());
                    }
                    return Err(Error::protocol(format!(
                        "{} for channel {id}, which is not open",
                        msg::name(t)
                    )));
                };
                let cid = ChannelId(id);
                match t {
                    msg::CHANNEL_OPEN_CONFIRMATION => {
                        if c.state != State::Opening {
                            return Err(Error::protocol(format!(
                                "unexpected open confirmation for channel {id}"
                            )));
                        }
                        c.remote_id = r.u32()?;
                        c.remote_window = r.u32()?;
                        c.remote_window_peak = c.remote_window;
                        c.remote_max_packet = r.u32()?;
                        c.state = State::Open;
                        tracing::debug!(parent: &c.span, remote = c.remote_id, window = c.remote_window, max_packet = c.remote_max_packet, "channel open confirmed");
                        self.events.push_back(Event::ChannelOpened { channel: cid });
                        self.run_queued(cid)?;
                        Ok(())
                    }
                    msg::CHANNEL_OPEN_FAILURE => {
                        if c.state != State::Opening {
                            return Err(Error::protocol(format!(
                                "unexpected open failure for channel {id}"
                            )));
                        }
                        let reason = ChannelOpenFailureReason::from_code(r.u32()?);
                        let description = crate::transport::sanitize(r.utf8().unwrap_or(""));
                        c.state = State::Failed;
                        tracing::debug!(parent: &c.span, %reason, %description, "channel open failed");
                        self.events.push_back(Event::ChannelOpenFailed {
                            channel: cid,
                            reason,
                            description,
                        });
                        Ok(())
                    }
                    _ if c.state != State::Open => Err(Error::protocol(format!(
                        "{} for channel {id} before it was open",
                        msg::name(t)
                    ))),
                    msg::CHANNEL_WINDOW_ADJUST => {
                        let add = r.u32()?;
                        c.remote_window = c.remote_window.checked_add(add).ok_or_else(|| {
                            Error::protocol(format!("window adjust of {add} overflows channel {id}'s window past 2^32-1"))
                        })?;
                        c.remote_window_peak = c.remote_window_peak.max(c.remote_window);
                        self.events.push_back(Event::ChannelWindow { channel: cid });
                        Ok(())
                    }
                    msg::CHANNEL_DATA | msg::CHANNEL_EXTENDED_DATA => {
                        let stream = if t == msg::CHANNEL_DATA {
                            Stream::Stdout
                        } else {
                            let code = r.u32()?;
                            if code != msg::EXTENDED_DATA_STDERR {
                                // Unknown extended data types are dropped, but
                                // they use window like any data, and the window
                                // they used is granted back as if read.
                                let d = r.string()?;
                                if c.eof_received || c.close_received {
                                    let after = if c.close_received { "CLOSE" } else { "EOF" };
                                    return Err(Error::protocol(format!(
                                        "channel {id}: data after {after}"
                                    )));
                                }
                                if d.len() > c.local_window as usize {
                                    return Err(Error::protocol(format!(
                                        "channel {id}: peer sent {} bytes with only {} left in the window",
                                        d.len(),
                                        c.local_window
                                    )));
                                }
                                c.local_window -= d.len() as u32;
                                let n = d.len();
                                return self.grant(cid, n);
                            }
                            Stream::Stderr
                        };
                        let data = r.string()?;
                        if c.eof_received || c.close_received {
                            let after = if c.close_received { "CLOSE" } else { "EOF" };
                            return Err(Error::protocol(format!(
                                "channel {id}: data after {after}"
                            )));
                        }
                        if data.len() > c.local_window as usize {
                            return Err(Error::protocol(format!(
                                "channel {id}: peer sent {} bytes with only {} left in the window",
                                data.len(),
                                c.local_window
                            )));
                        }
                        if data.len() > c.local_max_packet as usize + 1024 {
                            return Err(Error::protocol(format!(
                                "channel {id}: data packet of {} bytes exceeds maximum {}",
                                data.len(),
                                c.local_max_packet
                            )));
                        }
                        c.local_window -= data.len() as u32;
                        if data.is_empty() {
                            return Ok(());
                        }
                        let (buf, flag) = match stream {
                            Stream::Stdout => (&mut c.stdout, &mut c.stdout_event),
                            Stream::Stderr => (&mut c.stderr, &mut c.stderr_event),
                        };
                        buf.push(data);
                        if !*flag {
                            *flag = true;
                            self.events.push_back(Event::ChannelData {
                                channel: cid,
                                stream,
                            });
                        }
                        Ok(())
                    }
                    msg::CHANNEL_EOF => {
                        c.eof_received = true;
                        tracing::debug!(parent: &c.span, "channel EOF received");
                        self.events.push_back(Event::ChannelEof { channel: cid });
                        Ok(())
                    }
                    msg::CHANNEL_CLOSE => {
                        if c.close_received {
                            return Err(Error::protocol(format!("channel {id} closed twice")));
                        }
                        c.close_received = true;
                        tracing::debug!(parent: &c.span, "channel close received");
                        c.replies.clear();
                        c.queued.clear();
                        if !c.close_sent {
                            c.close_sent = true;
                            let remote = c.remote_id;
                            self.tr.send(&mut *self.rng, |b| {
                                b.push(msg::CHANNEL_CLOSE);
                                b.put_u32(remote);
                            })?;
                        }
                        self.events.push_back(Event::ChannelClosed { channel: cid });
                        Ok(())
                    }
                    msg::CHANNEL_REQUEST => self.on_channel_request(cid, &mut r),
                    msg::CHANNEL_SUCCESS | msg::CHANNEL_FAILURE => {
                        if c.our_requests == 0 {
                            return Err(Error::protocol(format!(
                                "channel {id}: reply without a request"
                            )));
                        }
                        c.our_requests -= 1;
                        tracing::debug!(parent: &c.span, success = t == msg::CHANNEL_SUCCESS, "channel request reply received");
                        self.events.push_back(Event::ChannelRequestReply {
                            channel: cid,
                            success: t == msg::CHANNEL_SUCCESS,
                        });
                        Ok(())
                    }
                    _ => Err(Error::protocol(format!("unknown connection message {t}"))),
                }
            }
        }
    }

    fn on_channel_open(&mut self, r: &mut Reader<'_>) -> Result<()> {
        let kind = r.utf8()?.to_string();
        let sender = r.u32()?;
        let window = r.u32()?;
        let max_packet = r.u32()?;
        let data = r.rest().to_vec();
        let refuse = |this: &mut Self, reason: ChannelOpenFailureReason, text: &str| {
            this.tr
                .send(&mut *this.rng, |b| open_failure(b, sender, reason, text))
        };
        if max_packet == 0 {
            return Err(Error::protocol("channel open with maximum packet size 0"));
        }
        // Kinds only this side opens are unknown to it, as in OpenSSH; a
        // known kind with malformed data is a protocol error; a client
        // refuses what it never asked for.
        if forward::foreign(self.role(), &kind) {
            tracing::debug!(kind = %crate::transport::sanitize(&kind), "channel open refused: not a kind this side accepts");
            return refuse(
                self,
                ChannelOpenFailureReason::UnknownChannelType,
                "unknown channel type",
            );
        }
        let typed = ChannelKind::parse(&kind, &data)?;
        let refusal = match self.role() {
            Role::Client => self.forwards.refusal(&typed),
            Role::Server => None,
        };
        if let Some(why) = refusal {
            tracing::debug!(kind = %crate::transport::sanitize(&kind), "channel open refused: {why}");
            return refuse(
                self,
                ChannelOpenFailureReason::AdministrativelyProhibited,
                &why,
            );
        }
        if self.channels.len() >= self.config.max_channels {
            return refuse(
                self,
                ChannelOpenFailureReason::ResourceShortage,
                "too many channels",
            );
        }
        if kind == "session" {
            let sessions = self
                .channels
                .values()
                .filter(|c| c.is_session && !c.close_sent)
                .count();
            if sessions >= self.config.max_sessions {
                return refuse(
                    self,
                    ChannelOpenFailureReason::AdministrativelyProhibited,
                    "too many sessions (MaxSessions)",
                );
            }
        }
        let mut ch = Channel::new(
            &kind,
            State::PeerOpening,
            self.config.window_size,
            self.config.max_packet,
        );
        ch.remote_id = sender;
        ch.remote_window = window;
        ch.remote_window_peak = window;
        ch.remote_max_packet = max_packet;
        let id = self.alloc_channel(ch)?;
        tracing::debug!(parent: &self.chan_span(id.0), remote = sender, window, max_packet, "channel open request from the peer");
        self.events.push_back(Event::ChannelOpenRequest {
            channel: id,
            kind: crate::transport::sanitize(&kind),
            data,
        });
        Ok(())
    }

    fn on_channel_request(&mut self, id: ChannelId, r: &mut Reader<'_>) -> Result<()> {
        let name = r.utf8()?.to_string();
        let want_reply = r.bool()?;
        tracing::debug!(parent: &self.chan_span(id.0), request = %crate::transport::sanitize(&name), want_reply, "channel request received");
        let is_server = self.role() == Role::Server;
        let request = match name.as_str() {
            "exit-status" => {
                let status = r.u32()?;
                self.events.push_back(Event::ExitStatus {
                    channel: id,
                    status,
                });
                return Ok(());
            }
            "exit-signal" => {
                let signal = crate::transport::sanitize(r.utf8()?);
                let core_dumped = r.bool()?;
                let message = crate::transport::sanitize(r.utf8().unwrap_or(""));
                self.events.push_back(Event::ExitSignal {
                    channel: id,
                    signal,
                    core_dumped,
                    message,
                });
                return Ok(());
            }
            "eow@openssh.com" => return Ok(()),
            "pty-req" if is_server => {
                let term = r.utf8()?.to_string();
                let cols = r.u32()?;
                let rows = r.u32()?;
                let width_px = r.u32()?;
                let height_px = r.u32()?;
                let modes_raw = r.string()?;
                let mut modes = Vec::new();
                let mut m = Reader::new(modes_raw);
                while let Ok(op) = m.u8() {
                    if op == crate::pty::TTY_OP_END || op >= crate::pty::FIRST_UNDEFINED {
                        break;
                    }
                    let Ok(v) = m.u32() else { break };
                    if modes.len() < 256 {
                        modes.push((op, v));
                    }
                }
                ChannelRequest::Pty(PtyRequest {
                    term,
                    cols,
                    rows,
                    width_px,
                    height_px,
                    modes,
                })
            }
            "env" if is_server => ChannelRequest::Env {
                name: r.utf8()?.to_string(),
                value: r.utf8()?.to_string(),
            },
            "exec" if is_server => ChannelRequest::Exec {
                command: r.string()?.to_vec(),
            },
            "shell" if is_server => ChannelRequest::Shell,
            "subsystem" if is_server => ChannelRequest::Subsystem {
                name: r.utf8()?.to_string(),
            },
            "window-change" if is_server => ChannelRequest::WindowChange {
                cols: r.u32()?,
                rows: r.u32()?,
                width_px: r.u32()?,
                height_px: r.u32()?,
            },
            "signal" if is_server => ChannelRequest::Signal {
                name: r.utf8()?.to_string(),
            },
            _ if is_server && name != "keepalive@openssh.com" => ChannelRequest::Other {
                name: name.clone(),
                data: r.rest().to_vec(),
            },
            _ => {
                // Client side: keepalive@openssh.com and anything unknown.
                if want_reply {
                    let c = self.chan(id)?;
                    let remote = c.remote_id;
                    if c.replies.is_empty() {
                        self.tr.send(&mut *self.rng, |b| {
                            b.push(msg::CHANNEL_FAILURE);
                            b.put_u32(remote);
                        })?;
                    } else {
                        // Queued behind an unanswered request: counts
                        // toward the same cap.
                        if c.replies.len() >= MAX_PENDING_CHANNEL_REQUESTS {
                            return Err(Error::new(
                                ErrorKind::Limit,
                                format!(
                                    "more than {MAX_PENDING_CHANNEL_REQUESTS} requests on {id} await a reply"
                                ),
                            ));
                        }
                        c.replies.push_back(ReplySlot::Answered(false));
                    }
                }
                return Ok(());
            }
        };
        if want_reply {
            let c = self.chan(id)?;
            if c.replies.len() >= MAX_PENDING_CHANNEL_REQUESTS {
                return Err(Error::new(
                    ErrorKind::Limit,
                    format!(
                        "more than {MAX_PENDING_CHANNEL_REQUESTS} requests on {id} await a reply"
                    ),
                ));
            }
            c.replies.push_back(ReplySlot::Waiting);
        } else if is_server {
            self.unhandled_requests += 1;
        }
        self.events.push_back(Event::ChannelRequest {
            channel: id,
            request,
            want_reply,
        });
        Ok(())
    }
}
