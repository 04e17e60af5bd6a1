//! An SSH server that OpenSSH, PuTTY, paramiko, AsyncSSH and Dropbear
//! clients use as they would use sshd, built on `ssh_blocking::Server`.
//!
//! ```text
//! server [-p PORT] [-b ADDR] [-h HOSTKEY_FILE]... [--authorized-keys FILE]
//!        [--password-file FILE] [--sftp-root DIR] [-o Key=Value]... [-v]
//!        [--runtime mio|tokio|blocking]
//! ```
//!
//! Admission as sshd's: `-o MaxStartups=start:rate:full` (default
//! `10:30:100`, random early drop of unauthenticated connections),
//! `-o PerSourceMaxStartups=N|none` (default none) and
//! `-o PerSourceNetBlockSize=v4:v6` (default `32:128`). A client that
//! sends no version line is dropped after `-o IdentificationTimeout=TIME`
//! (default 10s; 0 leaves only LoginGraceTime), so idle sockets cannot
//! hold the unauthenticated slots for the whole grace time.
//!
//! `--runtime` picks the adapter (default mio: one thread moves every
//! connection's bytes; handler decisions run on a small worker pool, and
//! commands' I/O is pumped by threads of their own as under the others).
//!
//! Who logs in, as sshd decides it:
//!
//! - Started as root, the users are the system's accounts. Each session's
//!   commands and SFTP run as the user who logged in (groups, gid and uid
//!   set in the child before it executes; HOME, USER, LOGNAME, SHELL, PATH
//!   and MAIL set, started in the home directory). Unknown users, users
//!   whose shell is not a login shell listed in `/etc/shells` (nologin,
//!   false), locked (`!` hash) or expired accounts are refused, with a log
//!   line. Root logs in as `-o PermitRootLogin=` allows (`yes`, `no`,
//!   `forced-commands-only`, default `prohibit-password`: keys only).
//! - Started as any other user, it serves only that user's name (and
//!   refuses the rest with a log line); commands run as that user.
//!
//! Public keys come from each user's `~/.ssh/authorized_keys` and
//! `~/.ssh/authorized_keys2` (`-o AuthorizedKeysFile=PATTERN...`: space
//! separated, `%h` home, `%u` user name, `%U` uid, `%%` a `%`, relative to
//! the home; `none` for no file), or from one file for every user with
//! `--authorized-keys FILE`; `command=`, `no-pty`, `from=`, `expiry-time=`,
//! `environment=` and `restrict` are honoured (forwarding is never offered,
//! so the forwarding options hold trivially; a line with `cert-authority`,
//! `principals=` or `tunnel=` is skipped with a log line, as sshd skips a
//! bad line); `-o PubkeyAcceptedAlgorithms=` sets the accepted signature
//! algorithms (default OpenSSH's, without SHA-1 `ssh-rsa`). Passwords come from `user:HASH` lines of
//! `--password-file FILE` (HASH as `openssl passwd -6` writes it) or, when
//! started as root without it, from the shadow database; `$6$` and `$5$`
//! hashes are checked, anything else refuses. `exec` runs `SHELL -c CMD`
//! with the user's shell, `shell` the login shell (on a pseudo-terminal
//! when one was requested). The `sftp` subsystem serves the file system
//! starting in the user's home, or `--sftp-root DIR` as `/` (nothing
//! outside it reachable), starting in the home's path inside DIR when that
//! exists there, else at DIR; as root it runs in a child process as the
//! user (this program with `--sftp-subsystem [-r ROOT] [OPTIONS]`, which
//! serves SFTP on stdin/stdout). `-o 'Subsystem sftp internal-sftp [-R]
//! [-P LIST] [-p LIST] [-u UMASK] [-d DIR]'` takes OpenSSH's sftp-server
//! options for it (see the `sftp-server` example; `-d` expands `~`, `%d`,
//! `%u`, `%U`, `%%` for the user, and in-process the server's umask
//! applies on top of `-u`). SIGINT/SIGTERM close the listener and let live
//! sessions end.

#[path = "common/mod.rs"]
mod common;
#[path = "common/sys.rs"]
mod sys;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::runtime::{tokio_rt, RuntimeKind};
use common::{apply_transport_option, parse_time, split_option, yes};
use ssh_blocking::proto::keys::authorized_keys::{AuthorizedKeys, ExpiryTime, KeyOptions};
use ssh_blocking::proto::keys::known_hosts::glob_match;
use ssh_blocking::proto::session::admission::parse_per_source_max_startups;
use ssh_blocking::proto::sftp::{draft_symlink_peer, SftpServerConfig};
use ssh_blocking::proto::{
    AdmissionConfig, ChannelId, ChannelRequest, Config, Prompt, PtyRequest, PublicKey, Stream,
};
use ssh_blocking::{Auth, Channel, Handler, KbdInt, PrivateKey, Server, ServerHandle};
use ssh_proto::os_rng;
use ssh_std::sftp_server::{serve as serve_sftp, LocalFs, ServerArgs};
use sys::Passwd;

const USAGE: &str =
    "usage: server [-p PORT] [-b ADDR] [-h HOSTKEY_FILE]... [--authorized-keys FILE]
              [--password-file FILE] [--sftp-root DIR] [-o Key=Value]... [-v]
              [--runtime mio|tokio|blocking]
       server --sftp-subsystem [-r ROOT] [-d DIR] [--draft-symlink]";

struct Opts {
    port: u16,
    bind: String,
    host_keys: Vec<PathBuf>,
    authorized_keys: Option<PathBuf>,
    password_file: Option<PathBuf>,
    sftp_root: Option<PathBuf>,
    options: Vec<String>,
    verbose: bool,
    runtime: RuntimeKind,
}

fn die(msg: &str) -> ! {
    eprintln!("server: {msg}");
    std::process::exit(255)
}

fn parse_args() -> Opts {
    let mut o = Opts {
        port: 2222,
        bind: "127.0.0.1".into(),
        host_keys: Vec::new(),
        authorized_keys: None,
        password_file: None,
        sftp_root: None,
        options: Vec::new(),
        verbose: false,
        runtime: RuntimeKind::Mio,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    let value = |i: &mut usize, flag: &str| -> String {
        *i += 1;
        match args.get(*i) {
            Some(v) => v.clone(),
            None => die(&format!("option {flag} needs a value\n{USAGE}")),
        }
    };
    while i < args.len() {
        let a = args[i].clone();
        match a.as_str() {
            "-p" => {
                o.port = value(&mut i, "-p")
                    .parse()
                    .unwrap_or_else(|_| die("bad port"))
            }
            "-b" => o.bind = value(&mut i, "-b"),
            "-h" => o.host_keys.push(value(&mut i, "-h").into()),
            "--authorized-keys" => o.authorized_keys = Some(value(&mut i, &a).into()),
            "--password-file" => o.password_file = Some(value(&mut i, &a).into()),
            "--sftp-root" => o.sftp_root = Some(value(&mut i, &a).into()),
            "-o" => o.options.push(value(&mut i, "-o")),
            "-v" => o.verbose = true,
            "--runtime" => {
                o.runtime = RuntimeKind::parse(&value(&mut i, &a)).unwrap_or_else(|e| die(&e))
            }
            "--help" => {
                println!("{USAGE}");
                std::process::exit(0)
            }
            _ if a.starts_with("-o") && a.len() > 2 => o.options.push(a[2..].to_string()),
            _ if a.starts_with("-p") && a.len() > 2 => {
                o.port = a[2..].parse().unwrap_or_else(|_| die("bad port"))
            }
            _ => die(&format!("unknown argument {a:?}\n{USAGE}")),
        }
        i += 1;
    }
    o
}

/// What every connection's handler shares.
struct Settings {
    /// Started as root: the users are the system's accounts, and each
    /// session's processes run as the user who logged in.
    privileged: bool,
    /// Not root: the one user served, the server's own.
    own_user: Option<Passwd>,
    /// Where public keys come from.
    keys_files: KeysFiles,
    password_file: Option<PathBuf>,
    /// What a password is checked against when the user or the hash is
    /// unusable (a hash with the parameters of the shadow database's first
    /// usable one), so both cost the same.
    shadow_dummy: String,
    /// `PermitRootLogin` (sshd's default: prohibit-password).
    root_login: RootLogin,
    accept_env: Vec<String>,
    verbose: bool,
    /// Serve the `sftp` subsystem from this directory (as `/`).
    sftp_root: Option<PathBuf>,
    /// The sftp-server options of `-o 'Subsystem sftp internal-sftp ...'`.
    sftp_args: ServerArgs,
}

/// The authorized_keys files of a user.
#[derive(Clone, Debug)]
enum KeysFiles {
    /// `--authorized-keys FILE`: one file for every user.
    Explicit(PathBuf),
    /// `AuthorizedKeysFile` patterns (`%h`, `%u`, `%U`, `%%`; relative to
    /// the home).
    Patterns(Vec<String>),
}

/// sshd's `PermitRootLogin`: how root may log in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RootLogin {
    Yes,
    /// Public keys only (`prohibit-password`, `without-password`).
    ProhibitPassword,
    /// Public keys with a `command=` option only.
    ForcedCommandsOnly,
    No,
}

/// sshd's default `AuthorizedKeysFile`.
const DEFAULT_KEYS_FILES: &str = ".ssh/authorized_keys .ssh/authorized_keys2";

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--sftp-subsystem") {
        sftp_subsystem_main();
    }
    let o = parse_args();
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(if o.verbose {
            tracing::Level::DEBUG
        } else {
            tracing::Level::INFO
        })
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    if let Some(root) = &o.sftp_root {
        if let Err(e) = LocalFs::new(root, None) {
            die(&format!("--sftp-root {}: {e}", root.display()));
        }
    }

    let mut config = Config::default();
    // sshd's default: compression offered, off unless the client asks.
    config.transport.algorithms.compression = vec!["none".into(), "zlib@openssh.com".into()];
    if o.host_keys.is_empty() {
        let k = PrivateKey::generate_ed25519(&mut *os_rng());
        config.transport.host_keys.push(Arc::new(k));
    }
    for path in &o.host_keys {
        match ssh_std::load_private_key(path, None) {
            Ok(k) => config.transport.host_keys.push(Arc::new(k)),
            Err(e) => die(&format!("host key: {e}")),
        }
    }
    let privileged = sys::euid() == 0;
    let own_user = if privileged {
        None
    } else {
        match sys::passwd_by_uid(sys::euid()) {
            Ok(Some(pw)) => Some(pw),
            Ok(None) => die(&format!("uid {} has no passwd entry", sys::euid())),
            Err(e) => die(&format!("cannot look up uid {}: {e}", sys::euid())),
        }
    };
    let mut methods = vec!["publickey".to_string()];
    // Without a password file, passwords are the shadow database's, which
    // only root reads.
    if o.password_file.is_some() || privileged {
        methods.push("password".to_string());
        methods.push("keyboard-interactive".to_string());
    }
    config.auth_methods = methods;
    let mut keys_patterns: Option<Vec<String>> = None;
    let mut root_login = RootLogin::ProhibitPassword;

    let mut accept_env: Vec<String> = vec!["LANG".into(), "LC_*".into()];
    let mut sftp_args: Option<ServerArgs> = None;
    let mut admission = AdmissionConfig::default();
    for kv in &o.options {
        let (key, v) = split_option(kv).unwrap_or_else(|e| die(&e.to_string()));
        let bad = |what: &str| -> ! { die(&format!("bad {what} value {v:?}")) };
        match apply_transport_option(&mut config, &key, &v) {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => die(&e.to_string()),
        }
        match key.as_str() {
            "compression" => {
                config.transport.algorithms.compression = if yes(&v) {
                    vec!["none".into(), "zlib@openssh.com".into()]
                } else {
                    vec!["none".into()]
                }
            }
            // The signature algorithms publickey authentication accepts, with
            // OpenSSH's list syntax (a,b / +a / -a / ^a); SHA-1 ssh-rsa only
            // when added.
            "pubkeyacceptedalgorithms" => {
                let all = ssh_blocking::proto::algorithms::PUBKEY_ALGORITHMS_ALL;
                ssh_blocking::proto::Algorithms::apply(
                    &mut config.transport.pubkey_accepted_algorithms,
                    &v,
                    all,
                    "publickey signature",
                )
                .unwrap_or_else(|e| die(&e.to_string()))
            }
            "maxauthtries" => {
                config.max_auth_tries = v.parse().unwrap_or_else(|_| bad("MaxAuthTries"))
            }
            "logingracetime" => {
                let t = parse_time(&v).unwrap_or_else(|| bad("LoginGraceTime"));
                config.login_grace_time = (!t.is_zero()).then_some(t);
            }
            "maxsessions" => config.max_sessions = v.parse().unwrap_or_else(|_| bad("MaxSessions")),
            "maxstartups" => {
                admission.max_startups = v.parse().unwrap_or_else(|e| die(&format!("{e}")))
            }
            "persourcemaxstartups" => {
                admission.per_source_max_startups =
                    parse_per_source_max_startups(&v).unwrap_or_else(|e| die(&format!("{e}")))
            }
            "persourcenetblocksize" => {
                admission.per_source_net_block_size =
                    v.parse().unwrap_or_else(|e| die(&format!("{e}")))
            }
            "identificationtimeout" => {
                let t = parse_time(&v).unwrap_or_else(|| bad("IdentificationTimeout"));
                config.identification_timeout = (!t.is_zero()).then_some(t);
            }
            "permitrootlogin" => {
                root_login = match v.to_ascii_lowercase().as_str() {
                    "yes" => RootLogin::Yes,
                    "prohibit-password" | "without-password" => RootLogin::ProhibitPassword,
                    "forced-commands-only" => RootLogin::ForcedCommandsOnly,
                    "no" => RootLogin::No,
                    _ => bad("PermitRootLogin"),
                }
            }
            "authorizedkeysfile" => {
                let list: Vec<String> = v.split_whitespace().map(str::to_string).collect();
                if let Some(bad) = list.iter().find_map(|p| check_tokens(p).err()) {
                    die(&format!("AuthorizedKeysFile {v:?}: {bad}"));
                }
                keys_patterns = Some(if list == ["none"] { Vec::new() } else { list });
            }
            "acceptenv" => accept_env.extend(
                v.split(|c: char| c == ',' || c.is_whitespace())
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            ),
            "subsystem" => sftp_args = Some(subsystem_option(&v)),
            _ => die(&format!("unsupported option {key:?}")),
        }
    }

    for k in &config.transport.host_keys {
        let p = k.public_key();
        println!("host key: {} {}", p.key_type(), p.fingerprint());
    }
    let keys_files = match (&o.authorized_keys, keys_patterns) {
        (Some(_), Some(_)) => die("--authorized-keys and -o AuthorizedKeysFile both given"),
        (Some(f), None) => KeysFiles::Explicit(f.clone()),
        (None, Some(p)) => KeysFiles::Patterns(p),
        (None, None) => {
            KeysFiles::Patterns(DEFAULT_KEYS_FILES.split(' ').map(str::to_string).collect())
        }
    };
    let settings = Arc::new(Settings {
        privileged,
        own_user,
        keys_files,
        password_file: o.password_file.clone(),
        root_login,
        shadow_dummy: if privileged {
            shadow_dummy_hash()
        } else {
            dummy_hash(None)
        },
        accept_env,
        verbose: o.verbose,
        sftp_root: o.sftp_root.clone(),
        sftp_args: sftp_args.unwrap_or_default(),
    });

    // Signals are taken by one thread with sigwait; every other thread
    // (made after this) inherits the blocked mask. Children get a clean
    // mask from std's spawn.
    let sigs = block_signals(&[libc::SIGINT, libc::SIGTERM]);
    let addr = format!("{}:{}", o.bind, o.port);
    let listener = match std::net::TcpListener::bind(addr.as_str()) {
        Ok(l) => l,
        Err(e) => die(&format!("cannot listen on {addr}: {e}")),
    };
    let local = listener
        .local_addr()
        .unwrap_or_else(|e| die(&e.to_string()));
    config.admission = admission;
    let config = Arc::new(config);
    let announce = || {
        println!("listening on {local}");
        let _ = std::io::stdout().flush();
    };
    let r = match o.runtime {
        RuntimeKind::Blocking => {
            let server =
                Server::from_listener(listener, config).unwrap_or_else(|e| die(&e.to_string()));
            let stop = server.shutdown_handle();
            on_signal(sigs, move || stop.shutdown());
            announce();
            server.run(|h| Session::new(settings.clone(), h))
        }
        RuntimeKind::Mio => {
            let server = ssh_mio::Server::from_listener(listener, config)
                .unwrap_or_else(|e| die(&e.to_string()));
            let stop = server.shutdown_handle();
            on_signal(sigs, move || stop.shutdown());
            announce();
            server.run(move |h| Session::new(settings.clone(), h))
        }
        RuntimeKind::Tokio => tokio_rt().block_on(async {
            let _ = listener.set_nonblocking(true);
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let server = ssh_tokio::Server::from_listener(listener, config)?;
            let stop = server.shutdown_handle();
            on_signal(sigs, move || stop.shutdown());
            announce();
            server
                .run(|h| TokioSession(Session::new(settings.clone(), h)))
                .await
        }),
    };
    if let Err(e) = r {
        die(&format!("{e}"));
    }
}

/// Runs `stop` on the first SIGINT or SIGTERM (taken by a thread of its own).
fn on_signal(sigs: libc::sigset_t, stop: impl FnOnce() + Send + 'static) {
    std::thread::spawn(move || {
        let sig = wait_signal(&sigs);
        tracing::info!("signal {sig}: closing the listener, live sessions go on");
        stop();
    });
}

fn block_signals(sigs: &[i32]) -> libc::sigset_t {
    // SAFETY: plain libc signal-set calls on a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_signal(set: &libc::sigset_t) -> i32 {
    let mut sig = 0;
    // SAFETY: `set` is a valid signal set, `sig` a valid out pointer.
    unsafe { libc::sigwait(set, &mut sig) };
    sig
}

// ------------------------------------------------------------------ auth

/// Largest authorized_keys file read (a user's file is theirs to fill).
const MAX_KEYS_FILE: u64 = 4 << 20;

/// Reads an authorized_keys file: a regular file only (a FIFO a user put
/// there must not stall the server), at most [`MAX_KEYS_FILE`] bytes.
fn read_authorized_keys(path: &Path) -> Option<AuthorizedKeys> {
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
fn local_utc_offset(e: &ExpiryTime) -> i64 {
    match sys::mktime_local(e.year, e.month, e.day, e.hour, e.minute, e.second) {
        Some(t) => e.unix_time(0) - t,
        None => 0,
    }
}

/// `AuthorizedKeysFile` tokens sshd knows: `%%`, `%h`, `%u`, `%U`.
fn check_tokens(pattern: &str) -> Result<(), String> {
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
fn expand_keys_file(pattern: &str, pw: &Passwd) -> PathBuf {
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
fn hash_prefix(hash: &str) -> Option<&str> {
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
fn dummy_hash(prefix: Option<&str>) -> String {
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
fn shadow_dummy_hash() -> String {
    let text = std::fs::read_to_string("/etc/shadow").unwrap_or_default();
    let first = text
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .find_map(hash_prefix);
    dummy_hash(first)
}

/// Checks `password` against `hash` if it is a usable SHA-crypt hash, else
/// against `dummy` (same cost, never matches), in constant time.
fn verify_password(password: &str, hash: Option<&str>, dummy: &str) -> bool {
    use sha_crypt::{PasswordVerifier, ShaCrypt};
    let usable = hash.filter(|h| hash_prefix(h).is_some());
    let ok = ShaCrypt::default()
        .verify_password(password.as_bytes(), usable.unwrap_or(dummy))
        .is_ok();
    ok && usable.is_some()
}

/// `user`'s hash in a `user:HASH` file, and the dummy for that file (the
/// cost of its first usable hash).
fn password_file_entry(path: &Path, user: &str) -> (Option<String>, String) {
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
fn check_shell(shell: &str) -> Result<(), String> {
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
fn today() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| (d.as_secs() / 86_400) as i64)
        .unwrap_or(0)
}

impl Settings {
    /// The account `user` logs in to, if it may (sshd's `allowed_user`);
    /// logs why not.
    fn allowed_user(&self, user: &str, peer: &str) -> Option<Passwd> {
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
fn printable(s: &str) -> String {
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
fn login_shell(pw: &Passwd) -> &str {
    if pw.shell.is_empty() {
        "/bin/sh"
    } else {
        &pw.shell
    }
}

/// `server --sftp-subsystem [-r ROOT] [-d DIR] [--draft-symlink]`: SFTP on
/// stdin/stdout, what a session's SFTP child runs as its user.
fn sftp_subsystem_main() -> ! {
    let mut args: Vec<String> = std::env::args().skip(2).collect();
    let draft = args.iter().any(|a| a == "--draft-symlink");
    args.retain(|a| a != "--draft-symlink");
    let a = match ServerArgs::parse(&args, "r") {
        Ok(a) => a,
        Err(ssh_std::sftp_server::ArgsError::Usage(m))
        | Err(ssh_std::sftp_server::ArgsError::Fatal(m)) => die(&format!("--sftp-subsystem: {m}")),
    };
    if let Some(extra) = a.operands.first() {
        die(&format!("unknown --sftp-subsystem argument {extra:?}"));
    }
    let root = a
        .extra
        .iter()
        .rev()
        .find(|(c, _)| *c == 'r')
        .map_or_else(|| PathBuf::from("/"), |(_, v)| PathBuf::from(v));
    // This process runs as the user: its home comes from its own uid.
    let user = ssh_std::passwd::Passwd::current()
        .ok()
        .flatten()
        .map(|p| p.name)
        .unwrap_or_default();
    let fs = sftp_fs(&root, &a, &user)
        .unwrap_or_else(|e| die(&format!("cannot serve {}: {e}", root.display())));
    let config = a.config(SftpServerConfig {
        draft_symlink: draft,
        ..Default::default()
    });
    let r = serve_sftp(
        std::io::stdin().lock(),
        std::io::stdout().lock(),
        fs,
        config,
    );
    std::process::exit(if r.is_ok() { 0 } else { 1 })
}

// -------------------------------------------------------------- sessions

/// One connection's handler.
struct Session {
    settings: Arc<Settings>,
    handle: ServerHandle,
    peer: String,
    user: Option<String>,
    /// The account of the user who logged in (set on success).
    account: Option<Passwd>,
    /// The last user name asked for, and its account if it may log in
    /// (looked up and logged once per name).
    looked_up: Option<(String, Option<Passwd>)>,
    method: &'static str,
    /// Refused auth attempts (reported in the connection's log line).
    failures: u32,
    /// Options of the authorized_keys line that let the client in.
    key_options: KeyOptions,
    chans: HashMap<ChannelId, Chan>,
    started: Instant,
}

/// A session channel's state until (and while) its command runs.
struct Chan {
    channel: Option<SChan>,
    env: Vec<(String, String)>,
    pty: Option<Pty>,
    proc: Option<Arc<Proc>>,
}

/// Channel `id`'s state and its handle, taken out to run a command: None
/// if there is no such channel or it runs one already.
fn idle_chan(chans: &mut HashMap<ChannelId, Chan>, id: ChannelId) -> Option<(&mut Chan, SChan)> {
    let ch = chans.get_mut(&id)?;
    if ch.proc.is_some() {
        return None;
    }
    let channel = ch.channel.take()?;
    Some((ch, channel))
}

struct Pty {
    master: OwnedFd,
    slave: Option<OwnedFd>,
    term: String,
}

/// A running command: its process group, and whether it has been reaped.
struct Proc {
    pgid: i32,
    reaped: AtomicBool,
}

impl Proc {
    fn kill(&self, sig: i32) {
        if !self.reaped.load(Ordering::SeqCst) {
            // SAFETY: sends a signal to our own child's process group.
            unsafe { libc::kill(-self.pgid, sig) };
        }
    }

    /// Hang up, then kill for good if it is still there after a moment.
    fn hang_up(self: &Arc<Self>) {
        if self.reaped.load(Ordering::SeqCst) {
            return;
        }
        self.kill(libc::SIGHUP);
        let p = self.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(2));
            p.kill(libc::SIGKILL);
        });
    }
}

impl Session {
    fn new(settings: Arc<Settings>, handle: &ServerHandle) -> Session {
        let peer = handle
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_else(|| "?".into());
        tracing::debug!("connection from {peer}");
        Session {
            settings,
            handle: handle.clone(),
            peer,
            user: None,
            account: None,
            looked_up: None,
            method: "none",
            failures: 0,
            key_options: KeyOptions::default(),
            chans: HashMap::new(),
            started: Instant::now(),
        }
    }

    fn peer_ip(&self) -> String {
        self.handle
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default()
    }

    /// `user`'s account if it may log in (looked up once per name).
    fn account(&mut self, user: &str) -> Option<Passwd> {
        if let Some((name, acct)) = &self.looked_up {
            if name == user {
                return acct.clone();
            }
        }
        let acct = self.settings.allowed_user(user, &self.peer);
        self.looked_up = Some((user.to_string(), acct.clone()));
        acct
    }

    /// The authorized_keys options for `key`, if `user` may log in with it
    /// from here.
    fn key_allowed(&mut self, user: &str, key: &PublicKey) -> Option<(Passwd, KeyOptions)> {
        let pw = self.account(user)?;
        let files = match &self.settings.keys_files {
            KeysFiles::Explicit(p) => vec![p.clone()],
            KeysFiles::Patterns(l) => l.iter().map(|p| expand_keys_file(p, &pw)).collect(),
        };
        for path in files {
            let Some(ak) = read_authorized_keys(&path) else {
                continue;
            };
            for w in &ak.warnings {
                tracing::info!("{}: {w}; line skipped", path.display());
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            // As sshd: the first line for this key whose from= and
            // expiry-time= let it in.
            match ak.authorize(key, &self.peer_ip(), None, now, local_utc_offset) {
                Ok(e) => {
                    let allowed = pw.uid != 0
                        || match self.settings.root_login {
                            RootLogin::Yes | RootLogin::ProhibitPassword => true,
                            RootLogin::ForcedCommandsOnly => e.options.command.is_some(),
                            RootLogin::No => false,
                        };
                    if !allowed {
                        tracing::info!("ROOT LOGIN REFUSED FROM {}", self.peer);
                        return None;
                    }
                    return Some((pw, e.options.clone()));
                }
                Err(refusals) => {
                    for r in refusals {
                        tracing::info!("{}: {}: {r}", self.peer, path.display());
                    }
                }
            }
        }
        None
    }

    /// Checks `user`'s password. Every refusal (unknown or refused user,
    /// locked or unsupported hash) costs one SHA-crypt run like a wrong
    /// password, so the time taken tells nothing about the account.
    fn password_ok(&mut self, user: &str, password: &str) -> Option<Passwd> {
        let mut acct = self.account(user);
        if acct.as_ref().is_some_and(|pw| pw.uid == 0) && self.settings.root_login != RootLogin::Yes
        {
            // Checked all the same below, against the dummy.
            tracing::info!("ROOT LOGIN REFUSED FROM {}", self.peer);
            acct = None;
        }
        let (hash, dummy) = match &self.settings.password_file {
            Some(p) => password_file_entry(p, user),
            None if self.settings.privileged && acct.is_some() => (
                sys::shadow_by_name(user).ok().flatten().map(|sp| sp.hash),
                self.settings.shadow_dummy.clone(),
            ),
            None => (None, self.settings.shadow_dummy.clone()),
        };
        if acct.is_some() {
            if let Some(h) = hash.as_deref().filter(|h| hash_prefix(h).is_none()) {
                if !h.starts_with(['!', '*']) && !h.is_empty() {
                    tracing::info!(
                        "{}: password hash of {user} is not SHA-crypt ($6$/$5$): refused",
                        self.peer
                    );
                }
            }
        }
        let ok = verify_password(password, hash.as_deref(), &dummy);
        if ok {
            acct
        } else {
            None
        }
    }

    fn accept_env(&self, name: &str) -> bool {
        self.settings
            .accept_env
            .iter()
            .any(|p| glob_match(p.as_bytes(), name.as_bytes()))
    }

    /// Starts `command` (None: the login shell) on the channel.
    fn start(&mut self, id: ChannelId, command: Option<Vec<u8>>) -> bool {
        let forced = self.key_options.command.clone();
        let conn_env = self.connection_env();
        let key_env = self.key_options.environment.clone();
        let Some(pw) = self.account.clone() else {
            return false;
        };
        let shell = login_shell(&pw).to_string();
        let mut cmd = Command::new(&shell);
        let original = command
            .as_ref()
            .map(|c| String::from_utf8_lossy(c).into_owned());
        match (&forced, &original) {
            (Some(f), _) => {
                cmd.arg("-c").arg(f);
            }
            (None, Some(c)) => {
                cmd.arg("-c").arg(c);
            }
            (None, None) => {
                // A login shell, as sshd starts it.
                let base = Path::new(&shell)
                    .file_name()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "sh".into());
                cmd.arg0(format!("-{base}"));
            }
        }
        self.user_env(&mut cmd, &pw);
        let cred = self.settings.privileged.then(|| credentials(&pw));
        let Some((ch, channel)) = idle_chan(&mut self.chans, id) else {
            return false;
        };
        for (k, v) in &conn_env {
            cmd.env(k, v);
        }
        if forced.is_some() {
            if let Some(o) = &original {
                cmd.env("SSH_ORIGINAL_COMMAND", o);
            }
        }
        for (k, v) in &ch.env {
            cmd.env(k, v);
        }
        // environment= from the authorized_keys line (this server's own
        // file, so honoured as with sshd's PermitUserEnvironment yes).
        for (k, v) in &key_env {
            cmd.env(k, v);
        }
        let label = match (&forced, &original) {
            (Some(f), _) => format!("forced command {f:?}"),
            (None, Some(c)) => format!("exec {c:?}"),
            (None, None) => "shell".to_string(),
        };
        let r = match &mut ch.pty {
            Some(pty) => spawn_pty(cmd, pty, channel, cred),
            None => spawn_pipes(cmd, channel, cred),
        };
        match r {
            Ok(p) => {
                tracing::debug!("{}: {label} as {} (pid {})", self.peer, pw.name, p.pgid);
                ch.proc = Some(p);
                true
            }
            Err(e) => {
                tracing::debug!("{}: {label} failed: {e}", self.peer);
                false
            }
        }
    }

    /// The environment and directory a user's process starts with, as
    /// sshd sets them (the directory is entered after the privilege drop
    /// when the server is root, see [`sys::run_as`]).
    fn user_env(&self, cmd: &mut Command, pw: &Passwd) {
        let path = if pw.uid == 0 {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        } else {
            "/usr/local/bin:/usr/bin:/bin:/usr/games"
        };
        cmd.env_clear()
            .env("HOME", &pw.dir)
            .env("USER", &pw.name)
            .env("LOGNAME", &pw.name)
            .env("SHELL", login_shell(pw))
            .env("PATH", path)
            .env("MAIL", format!("/var/mail/{}", pw.name));
        if !self.settings.privileged {
            cmd.current_dir(if pw.dir.is_dir() {
                pw.dir.as_path()
            } else {
                Path::new("/")
            });
        }
    }

    /// Serves the `sftp` subsystem on the channel: from `--sftp-root` (as
    /// `/`) or from `/` starting in the user's home. As root, in a child
    /// process running as the user; otherwise on a thread of its own.
    fn start_sftp(&mut self, id: ChannelId) -> bool {
        let Some(pw) = self.account.clone() else {
            return false;
        };
        let draft_symlink = self
            .handle
            .client_version()
            .is_some_and(|v| draft_symlink_peer(&v));
        // The start is the home (inside the root), or -d's directory.
        let root = self
            .settings
            .sftp_root
            .clone()
            .unwrap_or_else(|| PathBuf::from("/"));
        let peer = self.peer.clone();
        tracing::debug!(
            "{peer}: sftp subsystem for {} from {}",
            pw.name,
            root.display()
        );
        if self.settings.privileged {
            let mut cmd = Command::new("/proc/self/exe");
            cmd.arg0("server-sftp")
                .arg("--sftp-subsystem")
                .arg("-r")
                .arg(&root)
                .args(self.settings.sftp_args.to_args());
            if draft_symlink {
                cmd.arg("--draft-symlink");
            }
            self.user_env(&mut cmd, &pw);
            let cred = credentials(&pw);
            let Some((ch, channel)) = idle_chan(&mut self.chans, id) else {
                return false;
            };
            return match spawn_pipes(cmd, channel, Some(cred)) {
                Ok(p) => {
                    ch.proc = Some(p);
                    true
                }
                Err(e) => {
                    tracing::info!("{peer}: sftp subsystem failed: {e}");
                    false
                }
            };
        }
        let Some(ch) = self.chans.get_mut(&id) else {
            return false;
        };
        if ch.proc.is_some() {
            return false;
        }
        let args = &self.settings.sftp_args;
        let fs = match sftp_fs(&root, args, &pw.name) {
            Ok(fs) => fs,
            Err(e) => {
                tracing::info!("{}: sftp root {}: {e}", self.peer, root.display());
                return false;
            }
        };
        let Some(channel) = ch.channel.take() else {
            return false;
        };
        tracing::debug!("{peer}: sftp starting in {}", fs.start());
        let config = args.config(SftpServerConfig {
            draft_symlink,
            ..Default::default()
        });
        std::thread::spawn(move || {
            let r = serve_sftp(&channel, &channel, fs, config);
            if let Err(e) = &r {
                tracing::debug!("{peer}: sftp session ended: {e}");
            }
            let _ = channel.send_exit_status(if r.is_ok() { 0 } else { 1 });
            let _ = channel.send_eof();
            let _ = channel.close();
        });
        true
    }

    /// SSH_CLIENT / SSH_CONNECTION, as sshd sets them.
    fn connection_env(&self) -> Vec<(String, String)> {
        let (Some(p), Some(l)) = (self.handle.peer_addr(), self.handle.local_addr()) else {
            return Vec::new();
        };
        vec![
            (
                "SSH_CLIENT".into(),
                format!("{} {} {}", p.ip(), p.port(), l.port()),
            ),
            (
                "SSH_CONNECTION".into(),
                format!("{} {} {} {}", p.ip(), p.port(), l.ip(), l.port()),
            ),
        ]
    }
}

impl Handler for Session {
    fn auth_password(&mut self, user: &str, password: &str) -> Auth {
        if let Some(pw) = self.password_ok(user, password) {
            self.method = "password";
            self.account = Some(pw);
            Auth::Accept
        } else {
            tracing::debug!("{}: wrong password for {}", self.peer, printable(user));
            self.failures += 1;
            Auth::Reject
        }
    }

    fn auth_publickey_offered(&mut self, user: &str, key: &PublicKey, _algorithm: &str) -> bool {
        let ok = self.key_allowed(user, key).is_some();
        if !ok {
            self.failures += 1;
        }
        ok
    }

    fn auth_publickey(&mut self, user: &str, key: &PublicKey, algorithm: &str) -> Auth {
        match self.key_allowed(user, key) {
            Some((pw, opts)) => {
                tracing::debug!(
                    "{}: publickey {} {} (signature {algorithm}) accepted for {user}",
                    self.peer,
                    key.key_type(),
                    key.fingerprint()
                );
                self.key_options = opts;
                self.account = Some(pw);
                self.method = "publickey";
                Auth::Accept
            }
            None => {
                self.failures += 1;
                Auth::Reject
            }
        }
    }

    fn auth_keyboard_interactive(&mut self, _user: &str, _submethods: &str) -> KbdInt {
        if self.settings.password_file.is_none() && !self.settings.privileged {
            return KbdInt::Reject;
        }
        KbdInt::Prompt {
            name: String::new(),
            instruction: String::new(),
            prompts: vec![Prompt {
                text: "Password: ".into(),
                echo: false,
            }],
        }
    }

    fn auth_keyboard_interactive_response(&mut self, user: &str, responses: &[String]) -> KbdInt {
        let acct = match responses {
            [pw] => self.password_ok(user, pw),
            _ => None,
        };
        match acct {
            Some(pw) => {
                self.method = "keyboard-interactive";
                self.account = Some(pw);
                KbdInt::Accept
            }
            _ => {
                tracing::debug!("{}: wrong password for {}", self.peer, printable(user));
                self.failures += 1;
                KbdInt::Reject
            }
        }
    }

    fn authenticated(&mut self, user: &str) {
        self.user = Some(user.to_string());
        if let Some(n) = self.handle.negotiated() {
            tracing::debug!(
                "{}: {user} authenticated by {}; kex {} host key {} cipher {}/{} mac {}/{} compression {}/{}",
                self.peer,
                self.method,
                n.kex,
                n.host_key,
                n.cipher_c2s,
                n.cipher_s2c,
                n.mac_c2s.as_deref().unwrap_or("-"),
                n.mac_s2c.as_deref().unwrap_or("-"),
                n.compression_c2s,
                n.compression_s2c
            );
        }
    }

    fn channel_opened(&mut self, channel: Channel, _kind: &str) {
        self.opened(SChan::Std(channel));
    }

    fn channel_request(&mut self, id: ChannelId, request: ChannelRequest) -> bool {
        self.request(id, request)
    }

    fn channel_closed(&mut self, id: ChannelId) {
        self.closed(id)
    }

    fn disconnected(&mut self, reason: &ssh_blocking::Error) {
        self.ended(reason)
    }
}

impl Session {
    fn opened(&mut self, channel: SChan) {
        self.chans.insert(
            channel.id(),
            Chan {
                channel: Some(channel),
                env: Vec::new(),
                pty: None,
                proc: None,
            },
        );
    }

    fn request(&mut self, id: ChannelId, request: ChannelRequest) -> bool {
        match request {
            ChannelRequest::Pty(req) => {
                if self.key_options.no_pty {
                    tracing::debug!("{}: pty refused (no-pty)", self.peer);
                    return false;
                }
                let Some(ch) = self.chans.get_mut(&id) else {
                    return false;
                };
                if ch.pty.is_some() || ch.proc.is_some() {
                    return false;
                }
                let owner = match (&self.account, self.settings.privileged) {
                    (Some(pw), true) => Some((pw.uid, pw.gid)),
                    _ => None,
                };
                let Some(ch) = self.chans.get_mut(&id) else {
                    return false;
                };
                match open_pty(&req, owner) {
                    Ok(p) => {
                        ch.pty = Some(p);
                        true
                    }
                    Err(e) => {
                        tracing::debug!("{}: openpty failed: {e}", self.peer);
                        false
                    }
                }
            }
            ChannelRequest::Env { name, value } => {
                if !self.accept_env(&name) {
                    tracing::debug!("{}: env {name} not accepted", self.peer);
                    return false;
                }
                match self.chans.get_mut(&id) {
                    Some(ch) if ch.env.len() < 256 => {
                        ch.env.push((name, value));
                        true
                    }
                    _ => false,
                }
            }
            ChannelRequest::Exec { command } => self.start(id, Some(command)),
            ChannelRequest::Shell => self.start(id, None),
            ChannelRequest::Subsystem { name } => {
                if self.key_options.command.is_some() {
                    // A forced command runs instead, as with sshd.
                    return self.start(id, Some(format!("subsystem {name}").into_bytes()));
                }
                match name.as_str() {
                    "sftp" => self.start_sftp(id),
                    _ => {
                        tracing::debug!("{}: subsystem {name:?} is not served", self.peer);
                        false
                    }
                }
            }
            ChannelRequest::WindowChange { cols, rows, .. } => {
                match self.chans.get(&id).and_then(|c| c.pty.as_ref()) {
                    Some(p) => set_winsize(p.master.as_raw_fd(), cols, rows).is_ok(),
                    None => false,
                }
            }
            ChannelRequest::Signal { name } => {
                let (Some(sig), Some(p)) = (
                    signal_number(&name),
                    self.chans.get(&id).and_then(|c| c.proc.as_ref()),
                ) else {
                    return false;
                };
                p.kill(sig);
                true
            }
            _ => false,
        }
    }

    fn closed(&mut self, id: ChannelId) {
        if let Some(ch) = self.chans.remove(&id) {
            if let Some(p) = &ch.proc {
                p.hang_up();
            }
        }
    }

    fn ended(&mut self, reason: &ssh_blocking::Error) {
        for (_, ch) in self.chans.drain() {
            if let Some(p) = &ch.proc {
                p.hang_up();
            }
        }
        let user = self.user.as_deref().unwrap_or("-");
        let secs = self.started.elapsed().as_secs_f64();
        if self.settings.verbose {
            tracing::debug!("{}: ended after {secs:.1}s: {reason}", self.peer);
        }
        tracing::info!(
            "connection {} user {user} auth {} ({} failed) {secs:.1}s: {reason}",
            self.peer,
            self.method,
            self.failures
        );
    }
}

/// `-o 'Subsystem sftp internal-sftp [OPTIONS]'`: OpenSSH's sftp-server
/// options for the in-process SFTP server; anything else is refused.
fn subsystem_option(v: &str) -> ServerArgs {
    let words: Vec<String> = v.split_whitespace().map(str::to_string).collect();
    match words.first().map(String::as_str) {
        Some("sftp") => {}
        _ => die(&format!(
            "Subsystem {v:?}: only the sftp subsystem is served"
        )),
    }
    match words.get(1).map(String::as_str) {
        Some("internal-sftp") => {}
        Some(c) => die(&format!(
            "Subsystem sftp {c}: only internal-sftp is supported (run other programs with sshd)"
        )),
        None => die("Subsystem sftp: no command"),
    }
    let rest = &words[2..];
    let a = match ServerArgs::parse(rest, "") {
        Ok(a) => a,
        Err(ssh_std::sftp_server::ArgsError::Usage(m))
        | Err(ssh_std::sftp_server::ArgsError::Fatal(m)) => {
            die(&format!("Subsystem sftp internal-sftp: {m}"))
        }
    };
    if let Some(extra) = a.operands.first() {
        die(&format!(
            "Subsystem sftp internal-sftp: unexpected argument {extra:?}"
        ));
    }
    for (set, flag) in [
        (a.query.is_some(), "-Q"),
        (a.help, "-h"),
        (a.log_stderr, "-e"),
        (a.log_level.is_some(), "-l"),
        (a.log_facility.is_some(), "-f"),
    ] {
        if set {
            die(&format!(
                "Subsystem sftp internal-sftp: {flag} is not supported here (the server logs to stderr; -v for more)"
            ));
        }
    }
    a
}

/// The SFTP backend for `user`: from `root`, starting in `-d`'s directory
/// (expanded for the user) when given and usable, else in the user's home
/// (inside the root when it exists there), else at the root.
fn sftp_fs(root: &Path, args: &ServerArgs, user: &str) -> std::io::Result<LocalFs> {
    use ssh_std::passwd::Passwd;
    use ssh_std::sftp_server::expand_start_dir;
    let pw = Passwd::by_name(user).ok().flatten();
    let mut fs = match &pw {
        Some(pw) => LocalFs::at_home(root, &pw.dir)?,
        None => LocalFs::new(root, None)?,
    };
    if let Some(spec) = &args.start_dir {
        let entry = pw
            .as_ref()
            .ok_or_else(|| format!("no password database entry for {user:?}"));
        match entry
            .and_then(|pw| expand_start_dir(spec, pw))
            .and_then(|d| {
                LocalFs::new(root, Some(&d)).map_err(|e| format!("chdir to \"{d}\" failed: {e}"))
            }) {
            Ok(mut f) => {
                if let Some(pw) = &pw {
                    f.set_home(&pw.dir);
                }
                fs = f
            }
            Err(e) => tracing::error!("sftp for {user}: {e}"),
        }
    }
    if let Some(mask) = args.umask {
        fs.set_umask(mask);
    }
    Ok(fs)
}

/// What a child needs to become `pw`'s user (groups looked up here, in
/// the server, not between fork and exec).
fn credentials(pw: &Passwd) -> sys::Credentials {
    sys::Credentials {
        uid: pw.uid,
        gid: pw.gid,
        groups: sys::group_list(&pw.name, pw.gid),
        home: std::ffi::CString::new(pw.dir.as_os_str().as_encoded_bytes())
            .unwrap_or_else(|_| c"/".into()),
    }
}

fn signal_number(name: &str) -> Option<i32> {
    Some(match name {
        "ABRT" => libc::SIGABRT,
        "ALRM" => libc::SIGALRM,
        "FPE" => libc::SIGFPE,
        "HUP" => libc::SIGHUP,
        "ILL" => libc::SIGILL,
        "INT" => libc::SIGINT,
        "KILL" => libc::SIGKILL,
        "PIPE" => libc::SIGPIPE,
        "QUIT" => libc::SIGQUIT,
        "SEGV" => libc::SIGSEGV,
        "TERM" => libc::SIGTERM,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        _ => return None,
    })
}

fn signal_name(sig: i32) -> String {
    let n = [
        (libc::SIGABRT, "ABRT"),
        (libc::SIGALRM, "ALRM"),
        (libc::SIGFPE, "FPE"),
        (libc::SIGHUP, "HUP"),
        (libc::SIGILL, "ILL"),
        (libc::SIGINT, "INT"),
        (libc::SIGKILL, "KILL"),
        (libc::SIGPIPE, "PIPE"),
        (libc::SIGQUIT, "QUIT"),
        (libc::SIGSEGV, "SEGV"),
        (libc::SIGTERM, "TERM"),
        (libc::SIGUSR1, "USR1"),
        (libc::SIGUSR2, "USR2"),
    ];
    n.iter()
        .find(|(s, _)| *s == sig)
        .map(|(_, n)| n.to_string())
        .unwrap_or_else(|| format!("SIG{sig}@sshlib"))
}

// ------------------------------------------------------- running commands

/// Bytes moved per read between a command and its channel: large reads
/// mean fewer wake-ups and full-size packets.
const PUMP_BUF: usize = 256 * 1024;

/// Copies until EOF or an error (std's `io::copy` uses 8 KiB reads).
fn pump(r: &mut impl Read, w: &mut impl Write) -> std::io::Result<()> {
    let mut buf = vec![0u8; PUMP_BUF];
    loop {
        match r.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => w.write_all(&buf[..n])?,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Sends how the command ended, then EOF and close.
fn finish(channel: &SChan, status: std::io::Result<std::process::ExitStatus>) {
    match status {
        Ok(st) => {
            if let Some(code) = st.code() {
                let _ = channel.send_exit_status(code as u32);
            } else if let Some(sig) = st.signal() {
                let _ = channel.send_exit_signal(&signal_name(sig), st.core_dumped(), "");
            }
        }
        Err(_) => {
            let _ = channel.send_exit_status(255);
        }
    }
    let _ = channel.send_eof();
    let _ = channel.close();
}

fn new_session_pre_exec(cmd: &mut Command, controlling_tty: bool) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // The server blocks SIGINT/SIGTERM for its sigwait thread;
            // the command starts with nothing blocked.
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if controlling_tty && libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn spawn_pipes(
    mut cmd: Command,
    channel: SChan,
    cred: Option<sys::Credentials>,
) -> std::io::Result<Arc<Proc>> {
    new_session_pre_exec(&mut cmd, false);
    if let Some(c) = cred {
        sys::run_as(&mut cmd, c);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let proc = Arc::new(Proc {
        pgid: child.id() as i32,
        reaped: AtomicBool::new(false),
    });
    let channel = Arc::new(channel);
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let ch = channel.clone();
    std::thread::spawn(move || {
        // Client's stdin to the command; EOF closes the command's stdin.
        let mut buf = vec![0u8; PUMP_BUF];
        loop {
            match (&*ch).read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    let Some(w) = stdin.as_mut() else { continue };
                    if w.write_all(&buf[..n]).is_err() {
                        // The command stopped reading: drop what follows.
                        stdin = None;
                    }
                }
            }
        }
    });
    let ch = channel.clone();
    let err_pump = std::thread::spawn(move || {
        if let Some(e) = stderr.as_mut() {
            let _ = pump(e, &mut ch.stderr());
        }
    });
    let p = proc.clone();
    std::thread::spawn(move || {
        if let Some(o) = stdout.as_mut() {
            let _ = pump(o, &mut &*channel);
        }
        let _ = err_pump.join();
        let st = child.wait();
        p.reaped.store(true, Ordering::SeqCst);
        finish(&channel, st);
    });
    Ok(proc)
}

fn spawn_pty(
    mut cmd: Command,
    pty: &mut Pty,
    channel: SChan,
    cred: Option<sys::Credentials>,
) -> std::io::Result<Arc<Proc>> {
    let slave = pty
        .slave
        .take()
        .ok_or_else(|| std::io::Error::other("pty already used"))?;
    cmd.env("TERM", &pty.term);
    if let Ok(name) = tty_name(&slave) {
        cmd.env("SSH_TTY", name);
    }
    cmd.stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave));
    new_session_pre_exec(&mut cmd, true);
    if let Some(c) = cred {
        sys::run_as(&mut cmd, c);
    }
    let mut child = cmd.spawn()?;
    drop(cmd); // closes our copies of the slave side
    let proc = Arc::new(Proc {
        pgid: child.id() as i32,
        reaped: AtomicBool::new(false),
    });
    let mut master_r = File::from(pty.master.try_clone()?);
    let mut master_w = File::from(pty.master.try_clone()?);
    let channel = Arc::new(channel);
    let ch = channel.clone();
    std::thread::spawn(move || {
        let _ = pump(&mut &*ch, &mut master_w);
    });
    let ch = channel.clone();
    // Ends with EIO once every process holding the slave side is gone.
    let out_pump = std::thread::spawn(move || {
        let _ = pump(&mut master_r, &mut &*ch);
    });
    let p = proc.clone();
    std::thread::spawn(move || {
        let st = child.wait();
        p.reaped.store(true, Ordering::SeqCst);
        let _ = out_pump.join();
        finish(&channel, st);
    });
    Ok(proc)
}

fn tty_name(fd: &OwnedFd) -> std::io::Result<String> {
    let mut buf = [0 as libc::c_char; 128];
    // SAFETY: buf is a valid buffer of the given length.
    let r = unsafe { libc::ttyname_r(fd.as_raw_fd(), buf.as_mut_ptr(), buf.len()) };
    if r != 0 {
        return Err(std::io::Error::from_raw_os_error(r));
    }
    // SAFETY: ttyname_r wrote a NUL-terminated string.
    Ok(unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) }
        .to_string_lossy()
        .into_owned())
}

fn set_winsize(fd: i32, cols: u32, rows: u32) -> std::io::Result<()> {
    let ws = libc::winsize {
        ws_row: rows.min(u16::MAX as u32) as u16,
        ws_col: cols.min(u16::MAX as u32) as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct.
    if unsafe { libc::ioctl(fd, libc::TIOCSWINSZ, &ws) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A pseudo-terminal for `req`; as root, its slave side is given to
/// `owner` (uid, gid) with group tty and mode 620, as sshd does.
fn open_pty(req: &PtyRequest, owner: Option<(u32, u32)>) -> std::io::Result<Pty> {
    let (master, slave) = sys::open_pty(req.rows.min(10_000) as u16, req.cols.min(10_000) as u16)?;
    if let Some((uid, gid)) = owner {
        use std::os::unix::fs::PermissionsExt;
        let gid = sys::group_id("tty").unwrap_or(gid);
        std::os::unix::fs::fchown(&slave, Some(uid), Some(gid))?;
        let f = File::from(slave.try_clone()?);
        f.set_permissions(std::fs::Permissions::from_mode(0o620))?;
    }
    apply_modes(slave.as_raw_fd(), &req.modes);
    let term = if req.term.is_empty()
        || req.term.len() > 64
        || !req
            .term
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.+".contains(&b))
    {
        "vt100".to_string()
    } else {
        req.term.clone()
    };
    Ok(Pty {
        master,
        slave: Some(slave),
        term,
    })
}

/// Applies the client's encoded terminal modes (RFC 4254 §8).
fn apply_modes(fd: i32, modes: &[(u8, u32)]) {
    // SAFETY: tcgetattr/tcsetattr on a terminal descriptor we own.
    unsafe {
        let mut t: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(fd, &mut t) != 0 {
            return;
        }
        for &(op, v) in modes {
            let on = v != 0;
            let cc = |t: &mut libc::termios, i: usize| t.c_cc[i] = v as libc::cc_t;
            let flag = |f: &mut libc::tcflag_t, bit: libc::tcflag_t| {
                if on {
                    *f |= bit
                } else {
                    *f &= !bit
                }
            };
            match op {
                1 => cc(&mut t, libc::VINTR),
                2 => cc(&mut t, libc::VQUIT),
                3 => cc(&mut t, libc::VERASE),
                4 => cc(&mut t, libc::VKILL),
                5 => cc(&mut t, libc::VEOF),
                6 => cc(&mut t, libc::VEOL),
                7 => cc(&mut t, libc::VEOL2),
                8 => cc(&mut t, libc::VSTART),
                9 => cc(&mut t, libc::VSTOP),
                10 => cc(&mut t, libc::VSUSP),
                12 => cc(&mut t, libc::VREPRINT),
                13 => cc(&mut t, libc::VWERASE),
                14 => cc(&mut t, libc::VLNEXT),
                18 => cc(&mut t, libc::VDISCARD),
                30 => flag(&mut t.c_iflag, libc::IGNPAR),
                31 => flag(&mut t.c_iflag, libc::PARMRK),
                32 => flag(&mut t.c_iflag, libc::INPCK),
                33 => flag(&mut t.c_iflag, libc::ISTRIP),
                34 => flag(&mut t.c_iflag, libc::INLCR),
                35 => flag(&mut t.c_iflag, libc::IGNCR),
                36 => flag(&mut t.c_iflag, libc::ICRNL),
                38 => flag(&mut t.c_iflag, libc::IXON),
                39 => flag(&mut t.c_iflag, libc::IXANY),
                40 => flag(&mut t.c_iflag, libc::IXOFF),
                41 => flag(&mut t.c_iflag, libc::IMAXBEL),
                42 => flag(&mut t.c_iflag, libc::IUTF8),
                50 => flag(&mut t.c_lflag, libc::ISIG),
                51 => flag(&mut t.c_lflag, libc::ICANON),
                53 => flag(&mut t.c_lflag, libc::ECHO),
                54 => flag(&mut t.c_lflag, libc::ECHOE),
                55 => flag(&mut t.c_lflag, libc::ECHOK),
                56 => flag(&mut t.c_lflag, libc::ECHONL),
                57 => flag(&mut t.c_lflag, libc::NOFLSH),
                58 => flag(&mut t.c_lflag, libc::TOSTOP),
                59 => flag(&mut t.c_lflag, libc::IEXTEN),
                60 => flag(&mut t.c_lflag, libc::ECHOCTL),
                61 => flag(&mut t.c_lflag, libc::ECHOKE),
                62 => flag(&mut t.c_lflag, libc::PENDIN),
                70 => flag(&mut t.c_oflag, libc::OPOST),
                72 => flag(&mut t.c_oflag, libc::ONLCR),
                73 => flag(&mut t.c_oflag, libc::OCRNL),
                74 => flag(&mut t.c_oflag, libc::ONOCR),
                75 => flag(&mut t.c_oflag, libc::ONLRET),
                90 => flag(&mut t.c_cflag, libc::CS7),
                91 => flag(&mut t.c_cflag, libc::CS8),
                92 => flag(&mut t.c_cflag, libc::PARENB),
                93 => flag(&mut t.c_cflag, libc::PARODD),
                _ => {}
            }
        }
        libc::tcsetattr(fd, libc::TCSANOW, &t);
    }
}

/// A session channel under either kind of adapter. The tokio adapter's
/// channel is used from the pump threads through `block_on`.
enum SChan {
    Std(Channel),
    Tokio(ssh_tokio::Channel),
}

impl SChan {
    fn id(&self) -> ChannelId {
        match self {
            SChan::Std(c) => c.id(),
            SChan::Tokio(c) => c.id(),
        }
    }
    fn send_exit_status(&self, status: u32) -> Result<(), ssh_blocking::Error> {
        match self {
            SChan::Std(c) => c.send_exit_status(status),
            SChan::Tokio(c) => c.send_exit_status(status),
        }
    }
    fn send_exit_signal(
        &self,
        sig: &str,
        core: bool,
        msg: &str,
    ) -> Result<(), ssh_blocking::Error> {
        match self {
            SChan::Std(c) => c.send_exit_signal(sig, core, msg),
            SChan::Tokio(c) => c.send_exit_signal(sig, core, msg),
        }
    }
    fn send_eof(&self) -> Result<(), ssh_blocking::Error> {
        match self {
            SChan::Std(c) => c.send_eof(),
            SChan::Tokio(c) => c.send_eof(),
        }
    }
    fn close(&self) -> Result<(), ssh_blocking::Error> {
        match self {
            SChan::Std(c) => c.close(),
            SChan::Tokio(c) => c.close(),
        }
    }
    fn stderr(&self) -> SChanStderr<'_> {
        SChanStderr(self)
    }
    fn write_stream(&self, stream: Stream, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            SChan::Std(c) => c.write_data(stream, buf),
            SChan::Tokio(c) => tokio_rt().block_on(c.write_data(stream, buf)),
        }
        .map_err(std::io::Error::other)
    }
}

impl Read for &SChan {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            SChan::Std(c) => c.read_stream(Stream::Stdout, buf),
            SChan::Tokio(c) => tokio_rt().block_on(c.read_stream(Stream::Stdout, buf)),
        }
        .map_err(std::io::Error::other)
    }
}

impl Write for &SChan {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.write_stream(Stream::Stdout, buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct SChanStderr<'a>(&'a SChan);

impl Write for SChanStderr<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_stream(Stream::Stderr, buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The same session behind the tokio adapter's async handler: the
/// decisions are the blocking ones (none of them waits on I/O).
struct TokioSession(Session);

impl ssh_tokio::Handler for TokioSession {
    async fn auth_password(&mut self, user: &str, password: &str) -> Auth {
        Handler::auth_password(&mut self.0, user, password)
    }
    async fn auth_publickey_offered(&mut self, user: &str, key: &PublicKey, alg: &str) -> bool {
        Handler::auth_publickey_offered(&mut self.0, user, key, alg)
    }
    async fn auth_publickey(&mut self, user: &str, key: &PublicKey, alg: &str) -> Auth {
        Handler::auth_publickey(&mut self.0, user, key, alg)
    }
    async fn auth_keyboard_interactive(&mut self, user: &str, submethods: &str) -> KbdInt {
        Handler::auth_keyboard_interactive(&mut self.0, user, submethods)
    }
    async fn auth_keyboard_interactive_response(
        &mut self,
        user: &str,
        responses: &[String],
    ) -> KbdInt {
        Handler::auth_keyboard_interactive_response(&mut self.0, user, responses)
    }
    async fn authenticated(&mut self, user: &str) {
        Handler::authenticated(&mut self.0, user)
    }
    async fn channel_opened(&mut self, channel: ssh_tokio::Channel, _kind: &str) {
        self.0.opened(SChan::Tokio(channel))
    }
    async fn channel_request(&mut self, id: ChannelId, request: ChannelRequest) -> bool {
        self.0.request(id, request)
    }
    async fn channel_closed(&mut self, id: ChannelId) {
        self.0.closed(id)
    }
    async fn disconnected(&mut self, reason: &ssh_blocking::Error) {
        self.0.ended(reason)
    }
}
