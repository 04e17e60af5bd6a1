//! OpenSSH's `sshd` as a peer.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use super::daemon::{write_known_hosts_file, Daemon, Target};
use super::keys::{keys, public_key_line, ssh_keygen};
use super::scratch::{free_port, mkdir_mode, scratch_dir, TempDir};
use super::user::ensure_user;
use super::util::{require_peer, run_checked};

/// Host keys made once per test process by ssh-keygen (OpenSSH private key
/// files, each with its `.pub` next to it): ed25519, ecdsa P-256, P-384,
/// P-521 and rsa 3072. sshd serves them.
pub fn openssh_host_key_files() -> &'static [PathBuf] {
    static HK: OnceLock<Vec<PathBuf>> = OnceLock::new();
    HK.get_or_init(|| {
        let dir = scratch_dir().join("sshd-host-keys");
        mkdir_mode(&dir, 0o700);
        let mut v = Vec::new();
        for (name, args) in [
            ("ed25519", &["-t", "ed25519"][..]),
            ("ecdsa256", &["-t", "ecdsa", "-b", "256"]),
            ("ecdsa384", &["-t", "ecdsa", "-b", "384"]),
            ("ecdsa521", &["-t", "ecdsa", "-b", "521"]),
            ("rsa", &["-t", "rsa", "-b", "3072"]),
        ] {
            let p = dir.join(format!("ssh_host_{name}_key"));
            let _ = std::fs::remove_file(&p);
            let _ = std::fs::remove_file(p.with_extension("pub"));
            ssh_keygen(&p, args, "", &format!("sshd-host-{name}"));
            v.push(p);
        }
        v
    })
}

/// `ssh -Q WHAT` (kex, cipher, mac, key, HostKeyAlgorithms, ...).
pub fn openssh_query(what: &str) -> Vec<String> {
    let out = run_checked(
        Command::new(require_peer("ssh")).args(["-Q", what]),
        "ssh -Q",
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Signature algorithm names without certificates, security keys or DSA.
pub(crate) fn plain_sig_algs() -> Vec<String> {
    openssh_query("HostKeyAlgorithms")
        .into_iter()
        .filter(|a| {
            !a.contains("cert")
                && !a.starts_with("sk-")
                && !a.contains("webauthn")
                && !a.contains("dss")
        })
        .collect()
}

/// The lines that make sshd offer everything OpenSSH supports.
pub fn sshd_all_algorithms_config() -> Vec<String> {
    vec![
        format!("KexAlgorithms {}", openssh_query("kex").join(",")),
        format!("Ciphers {}", openssh_query("cipher").join(",")),
        format!("MACs {}", openssh_query("mac").join(",")),
        format!("HostKeyAlgorithms {}", plain_sig_algs().join(",")),
        format!("PubkeyAcceptedAlgorithms {}", plain_sig_algs().join(",")),
    ]
}

/// Options for [`Sshd::start_with`].
#[derive(Clone, Debug, Default)]
pub struct SshdOptions {
    /// Extra sshd_config lines. They come before the harness's defaults, and
    /// since sshd keeps the first value of a keyword, they override them.
    pub extra: Vec<String>,
    /// Offer every kex, host key, cipher and MAC OpenSSH supports.
    pub all_algorithms: bool,
    /// `UsePAM yes` and `KbdInteractiveAuthentication yes`.
    pub pam: bool,
    /// `LogLevel` (default VERBOSE; DEBUG1 logs each kex and rekey).
    pub log_level: Option<String>,
    /// The command of `Subsystem sftp` (default `internal-sftp`), e.g.
    /// `/usr/lib/openssh/sftp-server` or `/path/sftp-server -r ROOT`
    /// (sshd splits it at spaces; it runs as the logged-in user).
    pub sftp_subsystem: Option<String>,
}

/// OpenSSH `sshd -D -e` on 127.0.0.1 and a free port, with its own config,
/// host keys and known_hosts file; killed on drop.
pub struct Sshd {
    // Fields drop in order: the daemon is killed before its directory goes.
    pub daemon: Daemon,
    pub port: u16,
    pub known_hosts: PathBuf,
    pub config: PathBuf,
    pub dir: TempDir,
}

impl Sshd {
    pub fn start() -> Sshd {
        Sshd::start_with(SshdOptions::default())
    }

    pub fn start_with(opts: SshdOptions) -> Sshd {
        let sshd = require_peer("/usr/sbin/sshd");
        let _ = ensure_user();
        let keys = keys();
        let host_keys = openssh_host_key_files();
        if !Path::new("/run/sshd").is_dir() {
            let _ = std::fs::create_dir_all("/run/sshd");
            let _ = std::fs::set_permissions("/run/sshd", std::fs::Permissions::from_mode(0o755));
        }
        let dir = TempDir::new("sshd");
        let mut last_log = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut cfg = String::new();
            for l in &opts.extra {
                let _ = writeln!(cfg, "{l}");
            }
            if opts.all_algorithms {
                for l in sshd_all_algorithms_config() {
                    let _ = writeln!(cfg, "{l}");
                }
            }
            let _ = writeln!(cfg, "ListenAddress 127.0.0.1:{port}");
            for k in host_keys {
                let _ = writeln!(cfg, "HostKey {}", k.display());
            }
            let _ = writeln!(
                cfg,
                "LogLevel {}",
                opts.log_level.as_deref().unwrap_or("VERBOSE")
            );
            let _ = writeln!(cfg, "UsePAM {}", if opts.pam { "yes" } else { "no" });
            let _ = writeln!(
                cfg,
                "KbdInteractiveAuthentication {}",
                if opts.pam { "yes" } else { "no" }
            );
            for l in [
                "PidFile none",
                "StrictModes no",
                "PasswordAuthentication yes",
                "PubkeyAuthentication yes",
                "PermitEmptyPasswords no",
                "PrintMotd no",
                "PrintLastLog no",
                "UseDNS no",
                "MaxStartups 100:30:200",
                "X11Forwarding no",
            ] {
                let _ = writeln!(cfg, "{l}");
            }
            let _ = writeln!(
                cfg,
                "Subsystem sftp {}",
                opts.sftp_subsystem.as_deref().unwrap_or("internal-sftp")
            );
            let _ = writeln!(
                cfg,
                "AuthorizedKeysFile {} .ssh/authorized_keys",
                keys.authorized_keys.display()
            );
            let config = dir.join("sshd_config");
            std::fs::write(&config, &cfg).unwrap();

            // Check the config first for a clear message on a bad option.
            let t = Command::new(&sshd)
                .arg("-t")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .output()
                .unwrap();
            if !t.status.success() {
                panic!(
                    "sshd -t rejects the test config:\n{cfg}\n{}",
                    String::from_utf8_lossy(&t.stderr)
                );
            }
            let mut cmd = Command::new(&sshd);
            cmd.args(["-D", "-e", "-f"])
                .arg(&config)
                .args(["-p", &port.to_string()]);
            let mut daemon = Daemon::start("sshd", cmd);
            if daemon.wait_ready(port, None, Duration::from_secs(15)) {
                let known_hosts = dir.join("known_hosts");
                let pubs: Vec<String> = host_keys
                    .iter()
                    .map(|k| public_key_line(&PathBuf::from(format!("{}.pub", k.display()))))
                    .collect();
                write_known_hosts_file(&known_hosts, port, &pubs);
                return Sshd {
                    port,
                    known_hosts,
                    config,
                    dir,
                    daemon,
                };
            }
            last_log = daemon.log();
            if !last_log.contains("Address already in use") {
                break;
            }
        }
        panic!("sshd did not start; its log:\n{last_log}");
    }

    pub fn target(&self) -> Target {
        Target {
            port: self.port,
            known_hosts: self.known_hosts.clone(),
        }
    }
}
