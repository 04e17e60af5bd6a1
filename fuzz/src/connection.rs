//! The `connection_layer` target: channels and requests after
//! authentication.

use std::time::Duration;

use ssh_proto::{ChannelId, Event, PtyRequest, Stream};

use super::input::Input;
use super::plumbing::{Duo, Policy};
use super::setup::{now, MAX_OPS, MAX_ROUNDS};

pub(crate) const REQUESTS: &[&str] = &[
    "exec",
    "shell",
    "subsystem",
    "pty-req",
    "env",
    "window-change",
    "signal",
    "exit-status",
    "exit-signal",
    "xon-xoff",
    "auth-agent-req@openssh.com",
    "x11-req",
];

/// Connection layer after authentication: fuzz-chosen operations from
/// either side, pumped between the two, pending decisions answered by
/// fuzz-chosen operations too.
pub fn connection_layer(data: &[u8]) {
    let Some(mut d) = Duo::authenticated() else {
        return;
    };
    let mut inp = Input::new(data);
    // Channel ids each side knows (its own numbering).
    let mut chans: [Vec<ChannelId>; 2] = [Vec::new(), Vec::new()];
    let mut opens: [Vec<ChannelId>; 2] = [Vec::new(), Vec::new()];
    let mut reqs: [Vec<ChannelId>; 2] = [Vec::new(), Vec::new()];
    let mut globals = [0usize; 2];
    let mut clock = now();
    let mut buf = vec![0u8; 70_000];
    let mut ops = 0;
    while !inp.is_empty() && ops < MAX_OPS && d.alive() {
        ops += 1;
        let op = inp.u8();
        let side = (op & 1) as usize;
        let c = if side == 0 {
            &mut d.client
        } else {
            &mut d.server
        };
        let pick = |inp: &mut Input<'_>, v: &[ChannelId]| -> ChannelId {
            let i = inp.u8() as usize;
            if v.is_empty() || i >= 250 {
                ChannelId(i as u32 % 8)
            } else {
                v[i % v.len()]
            }
        };
        let ch = pick(&mut inp, &chans[side]);
        let _ = match (op >> 1) % 26 {
            0 => c.open_session().map(|id| chans[side].push(id)),
            1 => {
                let kind = inp.word(&["session", "direct-tcpip", "x11", "forwarded-tcpip"]);
                let extra = inp.bytes(64);
                c.open_channel(&kind, extra).map(|id| chans[side].push(id))
            }
            2 => {
                let name = inp.word(REQUESTS);
                let want = inp.bool();
                c.channel_request(ch, &name, want, inp.bytes(128))
            }
            3 => c.exec(ch, &inp.string(32)),
            4 => c.shell(ch),
            5 => c.subsystem(ch, &inp.word(&["sftp"])),
            6 => {
                let pty = PtyRequest {
                    term: inp.string(16),
                    cols: inp.u32(),
                    rows: inp.u32(),
                    width_px: inp.u16() as u32,
                    height_px: inp.u16() as u32,
                    modes: (0..inp.u8() % 4).map(|_| (inp.u8(), inp.u32())).collect(),
                };
                c.request_pty(ch, &pty)
            }
            7 => {
                let n = inp.string(16);
                c.set_env(ch, &n, &inp.string(16))
            }
            8 => c.window_change(ch, inp.u32(), inp.u32(), inp.u32(), inp.u32()),
            9 => c.signal(ch, &inp.word(&["TERM", "INT"])),
            10 => c.send_exit_status(ch, inp.u32()),
            11 => {
                let sig = inp.string(8);
                let core = inp.bool();
                c.send_exit_signal(ch, &sig, core, &inp.string(16))
            }
            12 | 13 => {
                let n = inp.u16() as usize * 2;
                let chunk: Vec<u8> = (0..n).map(|i| i as u8).collect();
                if op >> 1 & 1 == 0 {
                    c.send_data(ch, &chunk).map(drop)
                } else {
                    c.send_stderr(ch, &chunk).map(drop)
                }
            }
            14 => c.send_eof(ch),
            15 => c.close_channel(ch),
            16 => {
                let stream = if inp.bool() {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                };
                let n = inp.u16() as usize % buf.len();
                c.channel_read(ch, stream, &mut buf[..n]).map(drop)
            }
            17 => {
                let stream = if inp.bool() {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                };
                let _ = c.channel_peek(ch, stream).len();
                let _ = c.channel_buffered(ch, stream);
                let _ = c.send_window(ch);
                c.channel_consume(ch, stream, inp.u16() as usize)
            }
            18 => {
                let name = inp.word(&[
                    "tcpip-forward",
                    "cancel-tcpip-forward",
                    "keepalive@openssh.com",
                ]);
                let want = inp.bool();
                c.global_request(&name, want, inp.bytes(64))
            }
            19 => {
                globals[side] = globals[side].saturating_sub(1);
                let ok = inp.bool();
                c.global_request_reply(ok, inp.bytes(16))
            }
            20 => {
                // Answer a pending channel open.
                match opens[side].pop() {
                    Some(id) if inp.bool() => c.accept_channel(id).map(|_| chans[side].push(id)),
                    Some(id) => c.reject_channel(
                        id,
                        ssh_proto::ChannelOpenFailureReason::from_code(inp.u32()),
                        &inp.string(16),
                    ),
                    None => c.accept_channel(ch),
                }
            }
            21 => {
                let id = reqs[side].pop().unwrap_or(ch);
                c.channel_request_reply(id, inp.bool())
            }
            22 => c.rekey(),
            23 => {
                clock += Duration::from_secs(inp.u8() as u64 * 10);
                c.handle_timeout(clock);
                Ok(())
            }
            24 => {
                c.disconnect(inp.u32(), &inp.string(16));
                Ok(())
            }
            _ => Ok(()),
        };
        // Pump a fuzz-chosen number of rounds, collecting decisions.
        let rounds = 1 + inp.u8() as usize % 8;
        for _ in 0..rounds {
            let progressed = d.step(Policy::Passive, Policy::Passive);
            for (side, evs) in [(0, &mut d.client_events), (1, &mut d.server_events)] {
                for e in evs.drain(..) {
                    match e {
                        Event::ChannelOpenRequest { channel, .. } if opens[side].len() < 64 => {
                            opens[side].push(channel)
                        }
                        Event::ChannelRequest {
                            channel,
                            want_reply: true,
                            ..
                        } if reqs[side].len() < 64 => reqs[side].push(channel),
                        Event::GlobalRequest {
                            want_reply: true, ..
                        } => globals[side] += 1,
                        Event::ChannelOpened { channel }
                            if !chans[side].contains(&channel) && chans[side].len() < 64 =>
                        {
                            chans[side].push(channel)
                        }
                        _ => {}
                    }
                }
            }
            if !progressed {
                break;
            }
        }
    }
    d.settle(Policy::Agreeable, Policy::Agreeable, MAX_ROUNDS);
    d.client.recv_eof(clock);
    d.server.recv_eof(clock);
    while d.client.poll_event().is_some() {}
    while d.server.poll_event().is_some() {}
}
