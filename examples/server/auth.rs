//! Who may log in, and how: the settings every connection shares,
//! authorized_keys files, password hashes, login shells and accounts.

use std::io::Read;
use std::path::{Path, PathBuf};

use ssh_blocking::proto::keys::authorized_keys::{AuthorizedKeys, ExpiryTime};
use ssh_std::sftp_server::ServerArgs;

use crate::common::sys;
use crate::common::sys::Passwd;

/// What every connection's handler shares.
pub(crate) struct Settings {
    /// Started as root: the users are the system's accounts, and each
    /// session's processes run as the user who logged in.
    pub(crate) privileged: bool,
    /// Not root: the one user served, the server's own.
    pub(crate) own_user: Option<Passwd>,
    /// Where public keys come from.
    pub(crate) keys_files: KeysFiles,
    pub(crate) password_file: Option<PathBuf>,
    /// What a password is checked against when the user or the hash is
    /// unusable (a hash with the parameters of the shadow database's first
    /// usable one), so both cost the same.
    pub(crate) shadow_dummy: String,
    /// `PermitRootLogin` (sshd's default: prohibit-password).
    pub(crate) root_login: RootLogin,
    pub(crate) accept_env: Vec<String>,
    pub(crate) verbose: bool,
    /// Serve the `sftp` subsystem from this directory (as `/`).
    pub(crate) sftp_root: Option<PathBuf>,
    /// The sftp-server options of `-o 'Subsystem sftp internal-sftp ...'`.
    pub(crate) sftp_args: ServerArgs,
    /// What may be forwarded.
    pub(crate) forwarding: crate::forward::ForwardSettings,
}

/// The authorized_keys files of a user.
#[derive(Clone, Debug)]
pub(crate) enum KeysFiles {
    /// `--authorized-keys FILE`: one file for every user.
    Explicit(PathBuf),
    /// `AuthorizedKeysFile` patterns (`%h`, `%u`, `%U`, `%%`; relative to
    /// the home).
    Patterns(Vec<String>),
}

/// sshd's `PermitRootLogin`: how root may log in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RootLogin {
    Yes,
    /// Public keys only (`prohibit-password`, `without-password`).
    ProhibitPassword,
    /// Public keys with a `command=` option only.
    ForcedCommandsOnly,
    No,
}

/// sshd's default `AuthorizedKeysFile`.
pub(crate) const DEFAULT_KEYS_FILES: &str = ".ssh/authorized_keys .ssh/authorized_keys2";

/// Largest authorized_keys file read (a user's file is theirs to fill).
pub(crate) const MAX_KEYS_FILE: u64 = 4 << 20;

/// Reads an authorized_keys file: a regular file only (a FIFO a user put
/// there must not stall the server), at most [`MAX_KEYS_FILE`] bytes.
pub(crate) fn read_authorized_keys(path: &Path) -> Option<AuthorizedKeys> {
    use std::os::unix::fs::OpenOptionsExt;
    let read = || -> std::io::Result<String> {
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path)?;
        if !f.metadata()?.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        let mut text = String::new();
        f.take(MAX_KEYS_FILE).read_to_string(&mut text)?;
        Ok(text)
    };
    match read() {
        Ok(t) => Some(AuthorizedKeys::parse(&t)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!("no {}", path.display());
            None
        }
        Err(e) => {
            tracing::warn!("cannot read {}: {e}", path.display());
            None
        }
    }
}

/// The local zone's offset east of UTC, in seconds, at the local date and
/// time of an `expiry-time=` written without `Z` (what sshd's `mktime`
/// applies, daylight saving time included).
pub(crate) fn local_utc_offset(e: &ExpiryTime) -> i64 {
    match sys::mktime_local(e.year, e.month, e.day, e.hour, e.minute, e.second) {
        Some(t) => e.unix_time(0) - t,
        None => 0,
    }
}

/// `AuthorizedKeysFile` tokens sshd knows: `%%`, `%h`, `%u`, `%U`.
pub(crate) fn check_tokens(pattern: &str) -> Result<(), String> {
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        if c == '%' {
            match it.next() {
                Some('%' | 'h' | 'u' | 'U') => {}
                Some(t) => return Err(format!("unknown token %{t}")),
                None => return Err("a lone % at the end".into()),
            }
        }
    }
    Ok(())
}

/// An `AuthorizedKeysFile` pattern for `pw`: tokens expanded, a relative
/// path taken from the home directory.
pub(crate) fn expand_keys_file(pattern: &str, pw: &Passwd) -> PathBuf {
    let mut out = String::new();
    let mut it = pattern.chars();
    while let Some(c) = it.next() {
        match (c, c == '%') {
            (_, false) => out.push(c),
            (_, true) => match it.next() {
                Some('h') => out.push_str(&pw.dir.to_string_lossy()),
                Some('u') => out.push_str(&pw.name),
                Some('U') => out.push_str(&pw.uid.to_string()),
                _ => out.push('%'),
            },
        }
    }
    let p = PathBuf::from(out);
    if p.is_absolute() {
        p
    } else {
        pw.dir.join(p)
    }
}

/// `$6$` or `$5$` with its `rounds=N$` if the hash has one: the part of a
/// SHA-crypt hash that sets its cost. None for anything else (locked `!`,
/// `*`, other algorithms, bad rounds).
pub(crate) fn hash_prefix(hash: &str) -> Option<&str> {
    let rest = hash
        .strip_prefix("$6$")
        .or_else(|| hash.strip_prefix("$5$"))?;
    let mut end = 3;
    if let Some(r) = rest.strip_prefix("rounds=") {
        let (n, _) = r.split_once('$')?;
        let n: u32 = n.parse().ok()?;
        if !(1_000..=999_999_999).contains(&n) {
            return None;
        }
        end += "rounds=".len() + r.find('$')? + 1;
    }
    // A salt and a hash must follow.
    hash[end..].split_once('$')?;
    Some(&hash[..end])
}

/// A SHA-crypt hash nobody's password matches, with the cost of `prefix`
/// (default: `$6$`, 5000 rounds).
pub(crate) fn dummy_hash(prefix: Option<&str>) -> String {
    let prefix = prefix.unwrap_or("$6$");
    let digest = if prefix.starts_with("$5$") {
        "1nLmY3eyZpg61kDjxkJr9EiybrXaRR.iiCrLO1fYbrC"
    } else {
        ".YyK8/PacERLHjvoYsPahbs84qAYUaqIA0t/gMO/pJjDqJA8iVQNJgF4UfpAB8VEaJ96GELcq2JBBtR4tZGNS0"
    };
    format!("{prefix}dummysaltdummysa${digest}")
}

/// The dummy for the shadow database: the cost of its first usable hash,
/// as OpenSSH picks its fake salt.
pub(crate) fn shadow_dummy_hash() -> String {
    let text = std::fs::read_to_string("/etc/shadow").unwrap_or_default();
    let first = text
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .find_map(hash_prefix);
    dummy_hash(first)
}

/// Checks `password` against `hash` if it is a usable SHA-crypt hash, else
/// against `dummy` (same cost, never matches), in constant time.
pub(crate) fn verify_password(password: &str, hash: Option<&str>, dummy: &str) -> bool {
    use sha_crypt::{PasswordVerifier, ShaCrypt};
    let usable = hash.filter(|h| hash_prefix(h).is_some());
    let ok = ShaCrypt::default()
        .verify_password(password.as_bytes(), usable.unwrap_or(dummy))
        .is_ok();
    ok && usable.is_some()
}

/// `user`'s hash in a `user:HASH` file, and the dummy for that file (the
/// cost of its first usable hash).
pub(crate) fn password_file_entry(path: &Path, user: &str) -> (Option<String>, String) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("cannot read {}: {e}", path.display());
            String::new()
        }
    };
    let entries = || {
        text.lines()
            .filter_map(|l| l.trim().split_once(':'))
            .map(|(u, h)| (u, h.trim()))
    };
    let hash = entries()
        .find(|(u, _)| *u == user)
        .map(|(_, h)| h.to_string());
    let dummy = dummy_hash(entries().find_map(|(_, h)| hash_prefix(h)));
    (hash, dummy)
}

/// Why `shell` is no login shell (sshd's checks, and `/etc/shells` as
/// login and FTP daemons use it), or Ok.
pub(crate) fn check_shell(shell: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    let base = Path::new(shell)
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if base == "nologin" || base == "false" {
        return Err(format!("shell {shell} is not a login shell"));
    }
    // getusershell(3)'s list when the file is missing.
    let listed = match std::fs::read_to_string("/etc/shells") {
        Ok(t) => t
            .lines()
            .map(str::trim)
            .any(|l| !l.starts_with('#') && l == shell),
        Err(_) => shell == "/bin/sh" || shell == "/bin/csh",
    };
    if !listed {
        return Err(format!("shell {shell} is not listed in /etc/shells"));
    }
    match std::fs::metadata(shell) {
        Err(_) => Err(format!("shell {shell} does not exist")),
        Ok(m) if !m.is_file() || m.permissions().mode() & 0o111 == 0 => {
            Err(format!("shell {shell} is not executable"))
        }
        Ok(_) => Ok(()),
    }
}

/// Days since 1970 (for shadow expiry dates).
pub(crate) fn today() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_secs() / 86_400) as i64)
        .unwrap_or(0)
}

impl Settings {
    /// The account `user` logs in to, if it may (sshd's `allowed_user`);
    /// logs why not.
    pub(crate) fn allowed_user(&self, user: &str, peer: &str) -> Option<Passwd> {
        let name = printable(user);
        let pw = match &self.own_user {
            Some(own) if own.name == user => own.clone(),
            Some(own) => {
                tracing::info!(
                    "refused user {name} from {peer}: the server runs as {} (not root) and serves only that user",
                    own.name
                );
                return None;
            }
            None => match sys::passwd_by_name(user) {
                Ok(Some(pw)) => pw,
                Ok(None) => {
                    tracing::info!("Invalid user {name} from {peer}");
                    return None;
                }
                Err(e) => {
                    tracing::warn!("cannot look up user {name}: {e}");
                    return None;
                }
            },
        };
        if let Err(why) = check_shell(login_shell(&pw)) {
            tracing::info!("User {name} from {peer} not allowed because {why}");
            return None;
        }
        if self.privileged {
            match sys::shadow_by_name(user) {
                Ok(Some(sp)) if sp.hash.starts_with('!') => {
                    tracing::info!("User {name} from {peer} not allowed because account is locked");
                    return None;
                }
                Ok(Some(sp)) if sp.expire_day.is_some_and(|d| today() >= d) => {
                    tracing::info!("Account {name} from {peer} has expired");
                    return None;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("cannot read the shadow entry of {name}: {e}");
                    return None;
                }
            }
        }
        Some(pw)
    }
}

/// A name from the network as a log line shows it: at most 100
/// characters, control characters escaped (no forged log lines).
pub(crate) fn printable(s: &str) -> String {
    s.chars()
        .take(100)
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// The shell of an entry (`/bin/sh` if empty, as sshd).
pub(crate) fn login_shell(pw: &Passwd) -> &str {
    if pw.shell.is_empty() {
        "/bin/sh"
    } else {
        &pw.shell
    }
}
