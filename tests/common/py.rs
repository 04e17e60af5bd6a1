//! paramiko and AsyncSSH servers as peers.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::daemon::{write_known_hosts_file, Daemon, Target};
use super::keys::{keys, public_key_line, ssh_keygen};
use super::scratch::{free_port, mkdir_mode, scratch_dir, TempDir};
use super::util::require_peer;
use super::{INSTALL_HINT, PASSWORD, USER};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PyKind {
    Paramiko,
    AsyncSsh,
}

pub(crate) fn py_host_key() -> &'static PathBuf {
    static K: OnceLock<PathBuf> = OnceLock::new();
    K.get_or_init(|| {
        let dir = scratch_dir().join("py-host-key");
        mkdir_mode(&dir, 0o700);
        let p = dir.join("ssh_host_ed25519_key");
        let _ = std::fs::remove_file(&p);
        let _ = std::fs::remove_file(p.with_extension("pub"));
        ssh_keygen(&p, &["-t", "ed25519"], "", "py-host");
        p
    })
}

pub(crate) fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// `tests/peers/paramiko_server.py` or `tests/peers/asyncssh_server.py` on
/// 127.0.0.1:PORT with an ssh-keygen ed25519 host key; killed on drop.
pub struct PyServer {
    // Fields drop in order: the daemon is killed before its directory goes.
    pub daemon: Daemon,
    pub kind: PyKind,
    pub port: u16,
    pub known_hosts: PathBuf,
    pub dir: TempDir,
}

impl PyServer {
    pub fn paramiko() -> PyServer {
        PyServer::start(PyKind::Paramiko)
    }

    pub fn asyncssh() -> PyServer {
        PyServer::start(PyKind::AsyncSsh)
    }

    pub fn start(kind: PyKind) -> PyServer {
        PyServer::start_with(kind, &[])
    }

    /// `extra`: more arguments for the server script (e.g. paramiko's
    /// `--pubkey-algs rsa-sha2-256`).
    pub fn start_with(kind: PyKind, extra: &[&str]) -> PyServer {
        let py = require_peer(&python());
        let (module, script) = match kind {
            PyKind::Paramiko => ("paramiko", "paramiko_server.py"),
            PyKind::AsyncSsh => ("asyncssh", "asyncssh_server.py"),
        };
        let check = Command::new(&py)
            .args(["-c", &format!("import {module}")])
            .stdin(Stdio::null())
            .output();
        match check {
            Ok(o) if o.status.success() => {}
            _ => panic!(
                "python module `{module}` is not importable by {}: {INSTALL_HINT}",
                py.display()
            ),
        }
        let keys = keys();
        let host_key = py_host_key();
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/peers")
            .join(script);
        assert!(script.exists(), "{} is missing", script.display());
        let dir = TempDir::new(module);
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(&py);
            cmd.arg("-u")
                .arg(&script)
                .arg(port.to_string())
                .arg(host_key)
                .arg(&keys.authorized_keys);
            cmd.args(["--user", USER, "--password", PASSWORD])
                .args(extra);
            let mut daemon = Daemon::start(module, cmd);
            if daemon.wait_ready(port, Some("READY"), Duration::from_secs(30)) {
                let known_hosts = dir.join("known_hosts");
                let pubs = vec![public_key_line(&host_key.with_extension("pub"))];
                write_known_hosts_file(&known_hosts, port, &pubs);
                return PyServer {
                    kind,
                    port,
                    known_hosts,
                    dir,
                    daemon,
                };
            }
            last_log = daemon.log();
            if !last_log.contains("in use") {
                break;
            }
        }
        panic!("{module} server did not start; its log:\n{last_log}");
    }

    pub fn target(&self) -> Target {
        Target {
            port: self.port,
            known_hosts: self.known_hosts.clone(),
        }
    }
}
