//! The fixed setup of every target: RNG seeds, the clock, keys and the
//! configurations of the recorded sessions.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use ssh_proto::{Config, Connection, PrivateKey};

/// Seeds of the recorded client and server `Connection`s.
pub const CLIENT_SEED: u64 = 1;
pub const SERVER_SEED: u64 = 2;
pub(crate) const HOST_KEY_SEED: u64 = 99;
pub(crate) const USER_KEY_SEED: u64 = 5;
/// The peer version line fed before `data` in `kex_messages`.
pub const PEER_VERSION: &[u8] = b"SSH-2.0-OpenSSH_9.6\r\n";

/// Bounds that keep one input cheap.
pub(crate) const MAX_OPS: usize = 200;
pub(crate) const MAX_ROUNDS: usize = 64;

pub(crate) fn rng(seed: u64) -> Box<ChaCha20Rng> {
    Box::new(ChaCha20Rng::seed_from_u64(seed))
}

/// One fixed instant for every connection (timeouts are moved explicitly).
pub(crate) fn now() -> Instant {
    static T: OnceLock<Instant> = OnceLock::new();
    *T.get_or_init(Instant::now)
}

pub fn host_key() -> Arc<PrivateKey> {
    static K: OnceLock<Arc<PrivateKey>> = OnceLock::new();
    K.get_or_init(|| {
        Arc::new(PrivateKey::generate_ed25519(
            &mut ChaCha20Rng::seed_from_u64(HOST_KEY_SEED),
        ))
    })
    .clone()
}

pub(crate) fn user_key() -> Arc<PrivateKey> {
    static K: OnceLock<Arc<PrivateKey>> = OnceLock::new();
    K.get_or_init(|| {
        Arc::new(PrivateKey::generate_ed25519(
            &mut ChaCha20Rng::seed_from_u64(USER_KEY_SEED),
        ))
    })
    .clone()
}

pub(crate) fn pinned(mut c: Config) -> Config {
    let a = &mut c.transport.algorithms;
    a.kex = vec!["curve25519-sha256".into()];
    a.host_key = vec!["ssh-ed25519".into()];
    a.cipher = vec!["aes128-ctr".into()];
    a.mac = vec!["hmac-sha2-256".into()];
    a.compression = vec!["none".into()];
    c
}

/// Client configuration of the recorded sessions.
pub fn client_config() -> Arc<Config> {
    static C: OnceLock<Arc<Config>> = OnceLock::new();
    C.get_or_init(|| Arc::new(pinned(Config::default())))
        .clone()
}

/// Server configuration of the recorded sessions.
pub fn server_config() -> Arc<Config> {
    static C: OnceLock<Arc<Config>> = OnceLock::new();
    C.get_or_init(|| {
        let mut c = pinned(Config::default());
        c.transport.host_keys = vec![host_key()];
        Arc::new(c)
    })
    .clone()
}

/// Configurations offering every algorithm (for the plaintext kex target,
/// where the fuzzer's KEXINIT picks one).
pub(crate) fn all_configs() -> (Arc<Config>, Arc<Config>) {
    static C: OnceLock<(Arc<Config>, Arc<Config>)> = OnceLock::new();
    C.get_or_init(|| {
        let mut cc = Config::default();
        cc.transport.algorithms = ssh_proto::Algorithms::all();
        let mut sc = cc.clone();
        sc.transport.host_keys = vec![host_key()];
        (Arc::new(cc), Arc::new(sc))
    })
    .clone()
}

pub(crate) fn new_client() -> Option<Connection> {
    Connection::client(client_config(), rng(CLIENT_SEED), now()).ok()
}

pub(crate) fn new_server() -> Option<Connection> {
    Connection::server(server_config(), rng(SERVER_SEED), now()).ok()
}
