//! The core's tracing: a span per connection and per channel, debug events
//! for the handshake, authentication and channels, a trace event per packet.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::*;
use ssh_proto::*;

/// A `MakeWriter` collecting everything into one buffer.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

#[test]
fn a_session_logs_its_story() {
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(capture.clone())
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let mut p = Pair::default_pair(7);
        p.client.set_peer(&"192.0.2.1:22");
        p.run_until(|p| p.client.session_id().is_some());
        p.client.auth_password("alice", "secret").unwrap();
        p.run_until(|p| p.client_authenticated());
        let ch = p.client.open_session().unwrap();
        p.client.exec(ch, "true").unwrap();
        p.run_until(|p| {
            p.client_events
                .iter()
                .any(|e| matches!(e, Event::ChannelClosed { .. }))
        });
    });
    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    for needle in [
        "our version line",
        "peer version line",
        "KEXINIT",
        "algorithms chosen",
        "key exchange started",
        "key exchange done",
        "auth attempt",
        "method=\"password\"",
        "auth request from the client",
        "auth succeeded",
        "channel open sent",
        "channel open request from the peer",
        "channel open confirmed",
        "channel request sent",
        "channel request received",
        "channel close",
        "packet sent",
        "packet received",
        "ssh{role=Client peer=192.0.2.1:22}",
        "ssh{role=Server}",
        "channel{id=0 kind=session}",
    ] {
        assert!(log.contains(needle), "no {needle:?} in the log:\n{log}");
    }
}
