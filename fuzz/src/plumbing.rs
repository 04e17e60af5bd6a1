//! Plumbing: an application's default answers to events, feeding bytes to
//! a connection, and [`Duo`], two connections in memory.

use ssh_proto::{Connection, Event};

use super::setup::{new_client, new_server, now};

/// What an application does with the events it polls.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Policy {
    /// Accept host keys, accept every auth attempt, accept channels and
    /// requests, read all data, answer prompts.
    Agreeable,
    /// Only read data and accept host keys; decisions are left pending
    /// (answered by fuzz-chosen operations).
    Passive,
}

/// Default answers for one event. Errors are ignored: a usage error from a
/// core call is an expected outcome here, never a panic.
pub(crate) fn answer(c: &mut Connection, e: &Event, policy: Policy) {
    let mut buf = [0u8; 4096];
    match e {
        Event::HostKey(_) => {
            let _ = c.accept_host_key();
        }
        Event::ChannelData { channel, stream } => {
            for _ in 0..64 {
                match c.channel_read(*channel, *stream, &mut buf) {
                    Ok(n) if n > 0 => {}
                    _ => break,
                }
            }
        }
        _ if policy == Policy::Passive => {}
        Event::AuthRequest { .. } => {
            let _ = c.auth_accept();
        }
        Event::AuthPrompt { prompts, .. } => {
            let answers: Vec<String> = prompts.iter().map(|_| "secret".to_string()).collect();
            let _ = c.auth_respond(&answers);
        }
        Event::PasswordChangeRequired { .. } => {
            let _ = c.auth_change_password("alice", "secret", "secret2");
        }
        Event::ChannelOpenRequest { channel, .. } => {
            let _ = c.accept_channel(*channel);
        }
        Event::ChannelRequest {
            channel,
            want_reply: true,
            ..
        } => {
            let _ = c.channel_request_reply(*channel, true);
        }
        Event::GlobalRequest {
            want_reply: true, ..
        } => {
            let _ = c.global_request_reply(false, &[]);
        }
        Event::ChannelRequest {
            want_reply: false, ..
        }
        | Event::GlobalRequest {
            want_reply: false, ..
        } => c.request_handled(),
        _ => {}
    }
}

pub(crate) fn drain_events(c: &mut Connection, policy: Policy, seen: &mut Vec<Event>) -> bool {
    let mut any = false;
    for _ in 0..1024 {
        let Some(e) = c.poll_event() else { break };
        any = true;
        answer(c, &e, policy);
        if seen.len() < 256 {
            seen.push(e);
        }
    }
    any
}

/// Feeds `bytes` to `c` (discarding its output), answering events after
/// each `recv`, until all is taken or `c` stops taking input.
pub(crate) fn feed(c: &mut Connection, mut bytes: &[u8], policy: Policy) {
    let mut sink = Vec::new();
    let mut seen = Vec::new();
    for _ in 0..100_000 {
        let n = match c.recv(now(), bytes) {
            Ok(n) => n,
            Err(_) => break,
        };
        bytes = &bytes[n.min(bytes.len())..];
        c.take_transmit(&mut sink);
        sink.clear();
        let any = drain_events(c, policy, &mut seen);
        seen.clear();
        if bytes.is_empty() || (n == 0 && !any) {
            break;
        }
    }
    let _ = c.poll_timeout();
}

/// Moves `from`'s output into `to`; returns how many bytes moved.
pub(crate) fn move_bytes(
    from: &mut Connection,
    to: &mut Connection,
    log: Option<&mut Vec<u8>>,
) -> usize {
    let Some(out) = from.transmit() else { return 0 };
    let out = out.to_vec();
    let taken = to.recv(now(), &out).unwrap_or(0).min(out.len());
    from.advance_transmit(taken);
    if let Some(log) = log {
        log.extend_from_slice(&out[..taken]);
    }
    taken
}

/// Two connections in memory.
pub(crate) struct Duo {
    pub(crate) client: Connection,
    pub(crate) server: Connection,
    pub(crate) client_events: Vec<Event>,
    pub(crate) server_events: Vec<Event>,
    pub(crate) client_log: Vec<u8>,
    pub(crate) server_log: Vec<u8>,
    pub(crate) record: bool,
}

impl Duo {
    pub(crate) fn new() -> Option<Duo> {
        Some(Duo {
            client: new_client()?,
            server: new_server()?,
            client_events: Vec::new(),
            server_events: Vec::new(),
            client_log: Vec::new(),
            server_log: Vec::new(),
            record: false,
        })
    }

    /// One round each way; events answered by the given policies and kept
    /// in `*_events` for the caller. Returns whether anything happened.
    pub(crate) fn step(&mut self, cp: Policy, sp: Policy) -> bool {
        let a = move_bytes(
            &mut self.client,
            &mut self.server,
            self.record.then_some(&mut self.client_log),
        );
        let b = move_bytes(
            &mut self.server,
            &mut self.client,
            self.record.then_some(&mut self.server_log),
        );
        let c = drain_events(&mut self.client, cp, &mut self.client_events);
        let s = drain_events(&mut self.server, sp, &mut self.server_events);
        a + b > 0 || c || s
    }

    pub(crate) fn settle(&mut self, cp: Policy, sp: Policy, rounds: usize) {
        for _ in 0..rounds {
            if !self.step(cp, sp) {
                break;
            }
        }
    }

    pub(crate) fn alive(&self) -> bool {
        !self.client.is_closed() && !self.server.is_closed()
    }

    /// Both sides through key exchange (no authentication yet).
    pub(crate) fn after_kex() -> Option<Duo> {
        let mut d = Duo::new()?;
        d.settle(Policy::Passive, Policy::Passive, 1000);
        (d.client.session_id().is_some() && d.server.session_id().is_some() && d.alive())
            .then_some(d)
    }

    /// Both sides authenticated (password "alice"/"secret").
    pub(crate) fn authenticated() -> Option<Duo> {
        let mut d = Duo::new()?;
        d.client.auth_password("alice", "secret").ok()?;
        d.settle(Policy::Agreeable, Policy::Agreeable, 1000);
        d.client_events.clear();
        d.server_events.clear();
        (d.client.is_authenticated() && d.server.is_authenticated()).then_some(d)
    }
}
