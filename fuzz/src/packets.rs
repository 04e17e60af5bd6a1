//! Targets that feed raw bytes to a fresh connection: `client_packets`,
//! `server_packets` and `kex_messages`.

use std::time::Duration;

use ssh_proto::Connection;

use super::plumbing::{feed, Policy};
use super::recording::{recording, spliced};
use super::setup::{
    all_configs, new_client, new_server, now, rng, CLIENT_SEED, PEER_VERSION, SERVER_SEED,
};

/// A fresh client fed the recorded server stream (cut where `data[0]` says)
/// and then `data`.
pub fn client_packets(data: &[u8]) {
    let r = recording();
    let Some(mut c) = new_client() else { return };
    let _ = c.auth_password("alice", "secret");
    let bytes = spliced(&r.server_stream, &r.server_cuts, data);
    feed(&mut c, &bytes, Policy::Agreeable);
    c.recv_eof(now());
    while c.poll_event().is_some() {}
}

/// A fresh server fed the recorded client stream (cut where `data[0]` says)
/// and then `data`.
pub fn server_packets(data: &[u8]) {
    let r = recording();
    let Some(mut s) = new_server() else { return };
    let bytes = spliced(&r.client_stream, &r.client_cuts, data);
    feed(&mut s, &bytes, Policy::Agreeable);
    s.handle_timeout(now() + Duration::from_secs(1000));
    while s.poll_event().is_some() {}
}

/// Both roles, offering every algorithm, fed a valid version line and then
/// `data` (the plaintext KEXINIT / kex phase).
pub fn kex_messages(data: &[u8]) {
    let (cc, sc) = all_configs();
    let mut bytes = PEER_VERSION.to_vec();
    bytes.extend_from_slice(data);
    if let Ok(mut c) = Connection::client(cc, rng(CLIENT_SEED), now()) {
        feed(&mut c, &bytes, Policy::Agreeable);
    }
    if let Ok(mut s) = Connection::server(sc, rng(SERVER_SEED), now()) {
        feed(&mut s, &bytes, Policy::Agreeable);
    }
}
