//! The `forwarding` target: the SOCKS handshake fed in fuzz-sized pieces,
//! and the channel-kind and global-request parsers with their encoders.

use ssh_proto::forward::{ChannelKind, GlobalRequest, SocksHandshake, SocksStep};

/// `data[0]` picks the parser; the rest is its input.
pub fn forwarding(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 3 {
        0 => {
            // Pieces of 1..=16 bytes, sizes from the input itself.
            let mut h = SocksHandshake::new();
            let mut i = 0;
            while i < rest.len() {
                let n = 1 + (rest[i] as usize % 16);
                let end = (i + n).min(rest.len());
                match h.feed(&rest[i..end]) {
                    SocksStep::Connect(t) => {
                        assert!(!t.host.is_empty());
                        let r = t.reply(true);
                        assert!(r.len() == 8 || r.len() == 10);
                        let _ = h.take_rest();
                        return;
                    }
                    SocksStep::Refuse(..) => return,
                    SocksStep::NeedMore | SocksStep::Reply(_) => {}
                }
                i = end;
            }
        }
        1 => {
            let names = [
                "session",
                "direct-tcpip",
                "forwarded-tcpip",
                "direct-streamlocal@openssh.com",
                "forwarded-streamlocal@openssh.com",
                "x11",
                "auth-agent@openssh.com",
                "other@example.com",
            ];
            let Some((&k, body)) = rest.split_first() else {
                return;
            };
            let name = names[k as usize % names.len()];
            if let Ok(kind) = ChannelKind::parse(name, body) {
                // What parses encodes back to what parses the same.
                assert_eq!(
                    ChannelKind::parse(kind.name(), &kind.data()).ok(),
                    Some(kind)
                );
            }
        }
        _ => {
            let names = [
                "tcpip-forward",
                "cancel-tcpip-forward",
                "streamlocal-forward@openssh.com",
                "cancel-streamlocal-forward@openssh.com",
                "other@example.com",
            ];
            let Some((&k, body)) = rest.split_first() else {
                return;
            };
            let name = names[k as usize % names.len()];
            if let Ok(req) = GlobalRequest::parse(name, body) {
                assert_eq!(
                    GlobalRequest::parse(req.name(), &req.data()).ok(),
                    Some(req)
                );
            }
        }
    }
}
