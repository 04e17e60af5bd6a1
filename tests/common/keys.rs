//! Client keys made by `ssh-keygen`, their installation for `sshtest`,
//! and askpass scripts.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::sync::OnceLock;

use super::scratch::{mkdir_mode, scratch_dir, with_lock, COUNTER};
use super::user::{ensure_user, passwd_entry, TestUser};
use super::util::{pid_alive, require_peer, run_checked};
use super::{KEY_PASSPHRASE, PASSWORD, USER};

/// Client keys made by `ssh-keygen` in a fresh directory, with an
/// `authorized_keys` file listing all of them, also installed (under a lock)
/// into `~sshtest/.ssh/authorized_keys` for peers that only read that file.
pub struct Keys {
    pub dir: PathBuf,
    pub ed25519: PathBuf,
    pub ecdsa: PathBuf,
    pub rsa: PathBuf,
    /// ed25519, encrypted with [`KEY_PASSPHRASE`].
    pub ed25519_encrypted: PathBuf,
    /// `authorized_keys` file with every public key above.
    pub authorized_keys: PathBuf,
    pub authorized_keys_text: String,
}

pub(crate) fn key_comment_tag() -> String {
    format!("sshlib-test-pid{}-", std::process::id())
}

/// `ssh-keygen -q ARGS -N PASSPHRASE -C COMMENT -f PATH`, replacing any
/// key already at `path`.
pub fn generate_key(path: &Path, args: &[&str], passphrase: &str, comment: &str) {
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(format!("{}.pub", path.display()));
    ssh_keygen(path, args, passphrase, comment);
}

pub(crate) fn ssh_keygen(path: &Path, args: &[&str], passphrase: &str, comment: &str) {
    run_checked(
        Command::new(require_peer("ssh-keygen"))
            .args(["-q"])
            .args(args)
            .args(["-N", passphrase, "-C", comment, "-f"])
            .arg(path),
        "ssh-keygen",
    );
}

/// The `TYPE BASE64 COMMENT` line of a `.pub` file.
pub fn public_key_line(pub_path: &Path) -> String {
    std::fs::read_to_string(pub_path)
        .unwrap_or_else(|e| panic!("read {}: {e}", pub_path.display()))
        .trim()
        .to_string()
}

/// The process-wide client keys (generated once, installed for `sshtest`).
pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let user = ensure_user();
        let dir = scratch_dir().join("client-keys");
        mkdir_mode(&dir, 0o755);
        let tag = key_comment_tag();
        let mk = |name: &str, args: &[&str], pass: &str| {
            let p = dir.join(name);
            let _ = std::fs::remove_file(&p);
            let _ = std::fs::remove_file(p.with_extension("pub"));
            ssh_keygen(&p, args, pass, &format!("{tag}{name}"));
            p
        };
        let ed25519 = mk("id_ed25519", &["-t", "ed25519"], "");
        let ecdsa = mk("id_ecdsa", &["-t", "ecdsa", "-b", "256"], "");
        let rsa = mk("id_rsa", &["-t", "rsa", "-b", "3072"], "");
        let ed25519_encrypted = mk("id_ed25519_enc", &["-t", "ed25519"], KEY_PASSPHRASE);
        let mut text = String::new();
        for k in [&ed25519, &ecdsa, &rsa, &ed25519_encrypted] {
            text.push_str(&public_key_line(&PathBuf::from(format!(
                "{}.pub",
                k.display()
            ))));
            text.push('\n');
        }
        let authorized_keys = dir.join("authorized_keys");
        std::fs::write(&authorized_keys, &text).unwrap();
        std::fs::set_permissions(&authorized_keys, std::fs::Permissions::from_mode(0o644)).unwrap();
        install_authorized_keys(&user, &text);
        Keys {
            dir,
            ed25519,
            ecdsa,
            rsa,
            ed25519_encrypted,
            authorized_keys,
            authorized_keys_text: text,
        }
    })
}

/// Adds `lines` to `~sshtest/.ssh/authorized_keys` (owned by sshtest, mode
/// 600), dropping lines left by test processes that are gone.
pub(crate) fn install_authorized_keys(user: &TestUser, lines: &str) {
    with_lock("authorized_keys", || {
        let path = user.home.join(".ssh/authorized_keys");
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        let mut out = String::new();
        for l in old.lines() {
            if let Some(pid) = test_key_pid(l) {
                if pid == std::process::id() || !pid_alive(pid) {
                    continue;
                }
            }
            out.push_str(l);
            out.push('\n');
        }
        out.push_str(lines);
        write_authorized_keys(user, &path, &out);
    });
}

pub(crate) fn write_authorized_keys(user: &TestUser, path: &Path, text: &str) {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    std::os::unix::fs::chown(&tmp, Some(user.uid), Some(user.gid)).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

pub(crate) fn test_key_pid(line: &str) -> Option<u32> {
    let i = line.find("sshlib-test-pid")?;
    let rest = &line[i + "sshlib-test-pid".len()..];
    rest.split('-').next()?.parse().ok()
}

pub(crate) fn remove_our_authorized_keys() -> Option<()> {
    let (uid, gid, home, _) = passwd_entry(USER)?;
    let path = home.join(".ssh/authorized_keys");
    let old = std::fs::read_to_string(&path).ok()?;
    if !old.contains(&key_comment_tag()) {
        return Some(());
    }
    with_lock("authorized_keys", || {
        let old = std::fs::read_to_string(&path).unwrap_or_default();
        let kept: String = old
            .lines()
            .filter(|l| test_key_pid(l) != Some(std::process::id()))
            .map(|l| format!("{l}\n"))
            .collect();
        let user = TestUser {
            name: USER.into(),
            password: PASSWORD.into(),
            home: home.clone(),
            uid,
            gid,
        };
        write_authorized_keys(&user, &path, &kept);
    });
    Some(())
}

/// A script for `SSH_ASKPASS` that prints `secret` (whatever the prompt).
pub fn askpass_script(secret: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let p = scratch_dir().join(format!("askpass-{n}"));
    let quoted = secret.replace('\'', "'\\''");
    std::fs::write(&p, format!("#!/bin/sh\nprintf '%s\\n' '{quoted}'\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}
