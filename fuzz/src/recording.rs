//! The recorded session the packet targets splice their input into.

use std::sync::OnceLock;

use super::plumbing::{feed, Duo, Policy};
use super::setup::{new_client, new_server};

/// The byte streams of one real in-memory session (client authenticates
/// with a password right away, the server accepts), with the offsets where
/// the fuzz input may be spliced in.
pub struct Recording {
    /// Everything the client sent, in order.
    pub client_stream: Vec<u8>,
    /// Everything the server sent, in order.
    pub server_stream: Vec<u8>,
    /// Cut points into `client_stream`: 0, after the version line, after
    /// each plaintext packet (through NEWKEYS), and the whole stream.
    pub client_cuts: Vec<usize>,
    pub server_cuts: Vec<usize>,
}

/// Offsets of the version line end and of each plaintext packet end up to
/// and including NEWKEYS, then the end of the stream.
pub(crate) fn cuts(stream: &[u8]) -> Vec<usize> {
    let mut v = vec![0];
    // Lines before the version line (a server may send some), then it.
    let mut pos = 0;
    while pos < stream.len() {
        let Some(nl) = stream[pos..].iter().position(|&b| b == b'\n') else {
            break;
        };
        let line = &stream[pos..pos + nl];
        pos += nl + 1;
        if line.starts_with(b"SSH-") {
            v.push(pos);
            break;
        }
    }
    while pos + 6 <= stream.len() {
        let len = u32::from_be_bytes([
            stream[pos],
            stream[pos + 1],
            stream[pos + 2],
            stream[pos + 3],
        ]) as usize;
        let ty = stream[pos + 5];
        pos += 4 + len;
        if pos > stream.len() {
            break;
        }
        v.push(pos);
        if ty == 21 {
            break;
        }
    }
    if *v.last().unwrap_or(&0) != stream.len() {
        v.push(stream.len());
    }
    v
}

pub fn recording() -> &'static Recording {
    static R: OnceLock<Recording> = OnceLock::new();
    R.get_or_init(|| {
        let mut client_stream = Vec::new();
        let mut server_stream = Vec::new();
        if let Some(mut d) = Duo::new() {
            d.record = true;
            let _ = d.client.auth_password("alice", "secret");
            d.settle(Policy::Agreeable, Policy::Agreeable, 1000);
            client_stream = std::mem::take(&mut d.client_log);
            server_stream = std::mem::take(&mut d.server_log);
        }
        Recording {
            client_cuts: cuts(&client_stream),
            server_cuts: cuts(&server_stream),
            client_stream,
            server_stream,
        }
    })
}

/// Self-check for the replay test: replaying each full recorded stream into
/// a fresh connection with the same seed reaches authentication.
pub fn recording_replays() -> (bool, bool) {
    let r = recording();
    let client_ok = new_client().is_some_and(|mut c| {
        let _ = c.auth_password("alice", "secret");
        feed(&mut c, &r.server_stream, Policy::Agreeable);
        c.is_authenticated() && c.error().is_none()
    });
    let server_ok = new_server().is_some_and(|mut s| {
        feed(&mut s, &r.client_stream, Policy::Agreeable);
        s.is_authenticated() && s.error().is_none()
    });
    (client_ok, server_ok)
}

/// `data[0]` picks a cut point; the recorded stream up to it, then the rest
/// of `data`, is what the fresh connection receives.
pub(crate) fn spliced(stream: &[u8], cuts: &[usize], data: &[u8]) -> Vec<u8> {
    let (sel, rest) = match data.split_first() {
        Some((&b, rest)) => (b as usize, rest),
        None => (0, data),
    };
    let cut = cuts.get(sel % cuts.len().max(1)).copied().unwrap_or(0);
    let mut v = stream[..cut].to_vec();
    v.extend_from_slice(rest);
    v
}
