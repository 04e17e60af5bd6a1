//! Interoperability test harness: real peers (OpenSSH `sshd`, Dropbear, a
//! paramiko server and an AsyncSSH server) started on 127.0.0.1 by the test
//! itself, a real local user `sshtest`, keys made by `ssh-keygen`, and a
//! runner for the `client` example with a hard timeout.
//!
//! Rules this harness keeps:
//! - A missing peer is a failure (a panic telling to run
//!   `scripts/install-peers.sh`), never a skip.
//! - Every daemon runs in its own process group and is killed by its id when
//!   its handle is dropped, also when the test panics (Drop runs on unwind);
//!   it also gets `PR_SET_PDEATHSIG`, so it dies with the test process if that
//!   is killed. On a panic the daemon's log is printed.
//! - Everything lives under `/tmp/sshlib-tests/p<PID>/`, removed at exit;
//!   directories of dead test processes are removed on the next run.
//! - Several test binaries may run at once: the user setup and the shared
//!   `~sshtest/.ssh/authorized_keys` are changed under a lock file.
//!
//! `SSHLIB_TEST_CLIENT=openssh` makes [`run_client`] run OpenSSH's `ssh`
//! (with `-F /dev/null` and options that keep it from reading or writing
//! anything outside the test) instead of our `client` example: the tests then
//! check themselves against the reference implementation.
//!
//! One module per concept: `util` (small helpers), `scratch` (directories,
//! locks, ports), `user` (the test users), `keys` (client keys), `daemon`
//! (peer processes), `sshd`, `dropbear` and `py` (the peers), `client` (the
//! client under test and checks of its output).

#![allow(dead_code)]

pub mod cat_server;
mod client;
mod daemon;
mod dropbear;
mod echo;
mod keys;
mod py;
mod scratch;
mod sshd;
mod user;
mod util;

// Each test binary uses a part of the harness.
#[allow(unused_imports)]
pub use client::*;
#[allow(unused_imports)]
pub use daemon::*;
#[allow(unused_imports)]
pub use dropbear::*;
#[allow(unused_imports)]
pub use echo::*;
#[allow(unused_imports)]
pub use keys::*;
#[allow(unused_imports)]
pub use py::*;
#[allow(unused_imports)]
pub use scratch::*;
#[allow(unused_imports)]
pub use sshd::*;
#[allow(unused_imports)]
pub use user::*;
#[allow(unused_imports)]
pub use util::*;

pub const USER: &str = "sshtest";
pub const PASSWORD: &str = "sshtest-pw";
/// Passphrase of [`Keys::ed25519_encrypted`].
pub const KEY_PASSPHRASE: &str = "sshlib-key-passphrase";

const INSTALL_HINT: &str = "run scripts/install-peers.sh (as root) to install the interop peers";
