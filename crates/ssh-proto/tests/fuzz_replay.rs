//! Replays the fuzz corpus (and any saved crash inputs) through the fuzz
//! targets on stable Rust, without libFuzzer. The targets live in
//! `fuzz/src/` (`lib.rs` and its modules); see `fuzz/README.md`.

#[path = "../../../fuzz/src/lib.rs"]
mod targets;

use std::path::{Path, PathBuf};

/// A target's name and the function libFuzzer calls.
type Target = (&'static str, fn(&[u8]));

const TARGETS: &[Target] = &[
    ("client_packets", targets::client_packets),
    ("server_packets", targets::server_packets),
    ("kex_messages", targets::kex_messages),
    ("server_auth", targets::server_auth),
    ("client_auth", targets::client_auth),
    ("connection_layer", targets::connection_layer),
    ("sftp_server", targets::sftp_server),
    ("sftp_client", targets::sftp_client),
    ("key_files", targets::key_files),
    ("forwarding", targets::forwarding),
    ("ssh_config", targets::ssh_config),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    v.sort();
    v
}

fn replay(name: &str, f: fn(&[u8])) {
    let corpus = fuzz_dir().join("corpus").join(name);
    let seeds = files(&corpus);
    assert!(
        !seeds.is_empty(),
        "{} is missing or empty (run `cargo run --release --features recorder --bin record_corpus` in fuzz/)",
        corpus.display()
    );
    let crashes = files(&fuzz_dir().join("artifacts").join(name));
    for path in seeds.iter().chain(&crashes) {
        let data = std::fs::read(path).unwrap();
        let r = std::panic::catch_unwind(|| f(&data));
        assert!(r.is_ok(), "{name}: {} panicked", path.display());
    }
    // The empty input too.
    f(&[]);
}

#[test]
fn recorded_prefixes_replay_deterministically() {
    let (client_ok, server_ok) = targets::recording_replays();
    assert!(
        client_ok,
        "a fresh client fed the recorded server stream did not authenticate"
    );
    assert!(
        server_ok,
        "a fresh server fed the recorded client stream did not authenticate"
    );
    let r = targets::recording();
    assert!(r.client_cuts.len() >= 5, "client cuts {:?}", r.client_cuts);
    assert!(r.server_cuts.len() >= 5, "server cuts {:?}", r.server_cuts);
}

#[test]
fn client_packets() {
    replay(TARGETS[0].0, TARGETS[0].1);
}
#[test]
fn server_packets() {
    replay(TARGETS[1].0, TARGETS[1].1);
}
#[test]
fn kex_messages() {
    replay(TARGETS[2].0, TARGETS[2].1);
}
#[test]
fn server_auth() {
    replay(TARGETS[3].0, TARGETS[3].1);
}
#[test]
fn client_auth() {
    replay(TARGETS[4].0, TARGETS[4].1);
}
#[test]
fn connection_layer() {
    replay(TARGETS[5].0, TARGETS[5].1);
}
#[test]
fn sftp_server() {
    replay(TARGETS[6].0, TARGETS[6].1);
}
#[test]
fn sftp_client() {
    replay(TARGETS[7].0, TARGETS[7].1);
}
#[test]
fn key_files() {
    replay(TARGETS[8].0, TARGETS[8].1);
}
#[test]
fn forwarding() {
    replay(TARGETS[9].0, TARGETS[9].1);
}
#[test]
fn ssh_config() {
    replay(TARGETS[10].0, TARGETS[10].1);
}
