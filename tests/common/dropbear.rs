//! Dropbear as a peer.

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use super::daemon::{write_known_hosts_file, Daemon, Target};
use super::keys::keys;
use super::scratch::{free_port, mkdir_mode, scratch_dir, TempDir};
use super::user::ensure_user;
use super::util::{is_executable, require_peer, run_checked};
use super::INSTALL_HINT;

pub(crate) fn dropbear_host_keys() -> &'static Vec<(PathBuf, String)> {
    static HK: OnceLock<Vec<(PathBuf, String)>> = OnceLock::new();
    HK.get_or_init(|| {
        let keygen = require_peer("dropbearkey");
        let dir = scratch_dir().join("dropbear-host-keys");
        mkdir_mode(&dir, 0o700);
        let mut v = Vec::new();
        for (t, bits) in [
            ("ed25519", None),
            ("ecdsa", Some("256")),
            ("rsa", Some("2048")),
        ] {
            let p = dir.join(format!("dropbear_{t}_host_key"));
            let _ = std::fs::remove_file(&p);
            let mut c = Command::new(&keygen);
            c.args(["-t", t, "-f"]).arg(&p);
            if let Some(b) = bits {
                c.args(["-s", b]);
            }
            run_checked(&mut c, "dropbearkey");
            let out = run_checked(
                Command::new(&keygen).arg("-y").arg("-f").arg(&p),
                "dropbearkey -y",
            );
            let line = String::from_utf8_lossy(&out.stdout)
                .lines()
                .find(|l| l.starts_with("ssh-") || l.starts_with("ecdsa-"))
                .unwrap_or_else(|| panic!("no public key line in dropbearkey -y output"))
                .to_string();
            v.push((p, line));
        }
        v
    })
}

/// Dropbear (`dropbear -F -E -p 127.0.0.1:PORT -r KEY...`), killed on drop.
/// It reads `~sshtest/.ssh/authorized_keys` (installed by [`keys`]).
pub struct Dropbear {
    // Fields drop in order: the daemon is killed before its directory goes.
    pub daemon: Daemon,
    pub port: u16,
    pub known_hosts: PathBuf,
    pub dir: TempDir,
}

impl Dropbear {
    pub fn start() -> Dropbear {
        Dropbear::start_with(&[])
    }

    /// `extra`: more dropbear flags (e.g. `-s` to refuse passwords).
    pub fn start_with(extra: &[&str]) -> Dropbear {
        let dropbear = require_peer("dropbear");
        let _ = ensure_user();
        let _ = keys();
        let hk = dropbear_host_keys();
        let dir = TempDir::new("dropbear");
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(&dropbear);
            cmd.args(["-F", "-E", "-p", &format!("127.0.0.1:{port}"), "-P"])
                .arg(dir.join("dropbear.pid"));
            for (k, _) in hk {
                cmd.arg("-r").arg(k);
            }
            cmd.args(extra);
            let mut daemon = Daemon::start("dropbear", cmd);
            if daemon.wait_ready(port, None, Duration::from_secs(15)) {
                let known_hosts = dir.join("known_hosts");
                let pubs: Vec<String> = hk.iter().map(|(_, l)| l.clone()).collect();
                write_known_hosts_file(&known_hosts, port, &pubs);
                return Dropbear {
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
        panic!("dropbear did not start; its log:\n{last_log}");
    }

    pub fn target(&self) -> Target {
        Target {
            port: self.port,
            known_hosts: self.known_hosts.clone(),
        }
    }
}

/// The sftp-server program Dropbear runs for the `sftp` subsystem: Dropbear
/// has no option for it, only the path compiled in (`SFTPSERVER_PATH`,
/// `/usr/lib/sftp-server` on Debian, where openssh-sftp-server makes it a
/// symlink to `/usr/lib/openssh/sftp-server`). Found by looking for a
/// NUL-terminated absolute path ending in `sftp-server` in the dropbear
/// binary; fails (with the install hint) if it is not installed.
pub fn dropbear_sftp_server() -> PathBuf {
    let bin = require_peer("dropbear");
    let data = std::fs::read(&bin).unwrap_or_else(|e| panic!("read {}: {e}", bin.display()));
    let compiled = data
        .split(|&b| b == 0)
        .filter(|s| s.starts_with(b"/") && s.ends_with(b"sftp-server") && s.len() < 256)
        .filter_map(|s| std::str::from_utf8(s).ok())
        .map(PathBuf::from)
        .next()
        .unwrap_or_else(|| PathBuf::from("/usr/lib/sftp-server"));
    if !is_executable(&compiled) {
        panic!(
            "Dropbear serves SFTP with {} (its compiled-in SFTPSERVER_PATH), which is missing: \
             install openssh-sftp-server; {INSTALL_HINT}",
            compiled.display()
        );
    }
    compiled
}
