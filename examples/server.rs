//! An SSH server that OpenSSH, PuTTY, paramiko, AsyncSSH and Dropbear
//! clients use as they would use sshd, built on `ssh_blocking::Server`.
//!
//! ```text
//! server [-p PORT] [-b ADDR] [-h HOSTKEY_FILE]... [--authorized-keys FILE]
//!        [--password-file FILE] [--sftp-root DIR] [-o Key=Value]... [-v]
//!        [--runtime mio|tokio|blocking]
//! ```
//!
//! `--runtime` picks the adapter (default mio: one thread moves every
//! connection's bytes; handler decisions run on it and never block, and
//! commands' I/O is pumped by threads of their own as under the others).
//!
//! Commands run as the server process's own user: `exec` runs `sh -c CMD`,
//! `shell` runs the user's login shell (on a pseudo-terminal when one was
//! requested). Public keys come from an OpenSSH `authorized_keys` file
//! (`command=`, `no-pty`, `from=`, `environment=` and `restrict` are
//! honoured); passwords from `user:HASH` lines, HASH as `openssl passwd -6`
//! writes it. `--sftp-root DIR` serves the `sftp` subsystem from DIR (as
//! `/`, nothing outside it reachable). SFTP starts in the user's home
//! directory (from the password database), or in the home's path inside
//! DIR when that exists there, else at DIR. `-o 'Subsystem sftp
//! internal-sftp [-R] [-P LIST] [-p LIST] [-u UMASK] [-d DIR]'` takes
//! OpenSSH's sftp-server options for it (see the `sftp-server` example;
//! `-d` expands `~`, `%d`, `%u`, `%U`, `%%` for the authenticated user, and
//! the process umask applies on top of `-u`); without `--sftp-root` it
//! serves `/`. SIGINT/SIGTERM close the listener and let live sessions end.

#[path = "common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::runtime::{tokio_rt, RuntimeKind};
use common::{apply_transport_option, parse_time, split_option, yes};
use ssh_blocking::proto::keys::authorized_keys::{AuthorizedKeys, KeyOptions};
use ssh_blocking::proto::keys::known_hosts::glob_match;
use ssh_blocking::proto::sftp::{draft_symlink_peer, SftpServerConfig};
use ssh_blocking::proto::{
    ChannelId, ChannelRequest, Config, Prompt, PtyRequest, PublicKey, Stream,
};
use ssh_blocking::sftp_server::{serve as serve_sftp, LocalFs, ServerArgs};
use ssh_blocking::{os_rng, Auth, Channel, Handler, KbdInt, PrivateKey, Server, ServerHandle};

const USAGE: &str =
    "usage: server [-p PORT] [-b ADDR] [-h HOSTKEY_FILE]... [--authorized-keys FILE]
              [--password-file FILE] [--sftp-root DIR] [-o Key=Value]... [-v]
              [--runtime mio|tokio|blocking]";

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
    authorized_keys: Option<PathBuf>,
    password_file: Option<PathBuf>,
    accept_env: Vec<String>,
    verbose: bool,
    /// Serve the `sftp` subsystem from this directory (as `/`).
    sftp_root: Option<PathBuf>,
    /// The sftp-server options of `-o 'Subsystem sftp internal-sftp ...'`.
    sftp_args: ServerArgs,
}

fn main() {
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
        match ssh_blocking::load_private_key(path, None) {
            Ok(k) => config.transport.host_keys.push(Arc::new(k)),
            Err(e) => die(&format!("host key: {e}")),
        }
    }
    let mut methods = Vec::new();
    if o.authorized_keys.is_some() {
        methods.push("publickey".to_string());
    }
    if o.password_file.is_some() {
        methods.push("password".to_string());
        methods.push("keyboard-interactive".to_string());
    }
    if methods.is_empty() {
        eprintln!("server: warning: no --authorized-keys or --password-file: nobody can log in");
    }
    config.auth_methods = methods;

    let mut accept_env: Vec<String> = vec!["LANG".into(), "LC_*".into()];
    let mut sftp_args: Option<ServerArgs> = None;
    let mut max_startups = Server::DEFAULT_MAX_STARTUPS;
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
            "maxauthtries" => {
                config.max_auth_tries = v.parse().unwrap_or_else(|_| bad("MaxAuthTries"))
            }
            "logingracetime" => {
                let t = parse_time(&v).unwrap_or_else(|| bad("LoginGraceTime"));
                config.login_grace_time = (!t.is_zero()).then_some(t);
            }
            "maxsessions" => config.max_sessions = v.parse().unwrap_or_else(|_| bad("MaxSessions")),
            "maxstartups" => {
                // "start:rate:full" — the start value is the hard limit here.
                let first = v.split(':').next().unwrap_or("");
                max_startups = first.parse().unwrap_or_else(|_| bad("MaxStartups"));
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
    let sftp_root = match (&o.sftp_root, &sftp_args) {
        (None, Some(_)) => Some(PathBuf::from("/")),
        (r, _) => r.clone(),
    };

    for k in &config.transport.host_keys {
        let p = k.public_key();
        println!("host key: {} {}", p.key_type(), p.fingerprint());
    }
    let settings = Arc::new(Settings {
        authorized_keys: o.authorized_keys.clone(),
        password_file: o.password_file.clone(),
        accept_env,
        verbose: o.verbose,
        sftp_root,
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
    let config = Arc::new(config);
    let announce = || {
        println!("listening on {local}");
        let _ = std::io::stdout().flush();
    };
    let r = match o.runtime {
        RuntimeKind::Blocking => {
            let mut server =
                Server::from_listener(listener, config).unwrap_or_else(|e| die(&e.to_string()));
            server.set_max_startups(max_startups);
            let stop = server.shutdown_handle();
            on_signal(sigs, move || stop.shutdown());
            announce();
            server.run(|h| Session::new(settings.clone(), h))
        }
        RuntimeKind::Mio => {
            let mut server = ssh_mio::Server::from_listener(listener, config)
                .unwrap_or_else(|e| die(&e.to_string()));
            server.set_max_startups(max_startups);
            let stop = server.shutdown_handle();
            on_signal(sigs, move || stop.shutdown());
            announce();
            server.run(move |h| Session::new(settings.clone(), h))
        }
        RuntimeKind::Tokio => tokio_rt().block_on(async {
            let _ = listener.set_nonblocking(true);
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let mut server = ssh_tokio::Server::from_listener(listener, config)?;
            server.set_max_startups(max_startups);
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

fn read_authorized_keys(path: &Path) -> Option<AuthorizedKeys> {
    match std::fs::read_to_string(path) {
        Ok(t) => Some(AuthorizedKeys::parse(&t)),
        Err(e) => {
            tracing::warn!("cannot read {}: {e}", path.display());
            None
        }
    }
}

fn check_password(path: &Path, user: &str, password: &str) -> bool {
    use sha_crypt::{PasswordVerifier, ShaCrypt};
    let Ok(text) = std::fs::read_to_string(path) else {
        tracing::warn!("cannot read {}", path.display());
        return false;
    };
    for line in text.lines() {
        let Some((u, hash)) = line.trim().split_once(':') else {
            continue;
        };
        if u == user {
            return ShaCrypt::default()
                .verify_password(password.as_bytes(), hash.trim())
                .is_ok();
        }
    }
    false
}

// -------------------------------------------------------------- sessions

/// One connection's handler.
struct Session {
    settings: Arc<Settings>,
    handle: ServerHandle,
    peer: String,
    user: Option<String>,
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

    /// The authorized_keys options for `key`, if the key may log in from here.
    fn key_allowed(&self, key: &PublicKey) -> Option<KeyOptions> {
        let path = self.settings.authorized_keys.as_deref()?;
        let ak = read_authorized_keys(path)?;
        // As sshd: the first line for this key whose from= lets us in.
        let entry = ak
            .find_all(key)
            .find(|e| e.options.from_allows(&self.peer_ip(), None));
        match entry {
            Some(e) => Some(e.options.clone()),
            None => {
                if ak.find(key).is_some() {
                    tracing::debug!(
                        "{}: key {} refused by from= restriction",
                        self.peer,
                        key.fingerprint()
                    );
                }
                None
            }
        }
    }

    fn password_ok(&self, user: &str, password: &str) -> bool {
        match &self.settings.password_file {
            Some(p) => check_password(p, user, password),
            None => false,
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
        let Some(ch) = self.chans.get_mut(&id) else {
            return false;
        };
        if ch.proc.is_some() {
            return false;
        }
        let Some(channel) = ch.channel.take() else {
            return false;
        };
        let (shell, home, user) = login_user();
        let mut cmd;
        let original = command
            .as_ref()
            .map(|c| String::from_utf8_lossy(c).into_owned());
        match (&forced, &original) {
            (Some(f), _) => {
                cmd = Command::new("/bin/sh");
                cmd.arg("-c").arg(f);
            }
            (None, Some(c)) => {
                cmd = Command::new("/bin/sh");
                cmd.arg("-c").arg(c);
            }
            (None, None) => {
                cmd = Command::new(&shell);
                if ch.pty.is_some() {
                    let base = Path::new(&shell)
                        .file_name()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_else(|| "sh".into());
                    cmd.arg0(format!("-{base}"));
                }
            }
        }
        cmd.env_clear()
            .env("HOME", &home)
            .env("USER", &user)
            .env("LOGNAME", &user)
            .env("SHELL", &shell)
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .current_dir(if Path::new(&home).is_dir() {
                home.as_str()
            } else {
                "/"
            });
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
            Some(pty) => spawn_pty(cmd, pty, channel),
            None => spawn_pipes(cmd, channel),
        };
        match r {
            Ok(p) => {
                tracing::debug!("{}: {label} (pid {})", self.peer, p.pgid);
                ch.proc = Some(p);
                true
            }
            Err(e) => {
                tracing::debug!("{}: {label} failed: {e}", self.peer);
                false
            }
        }
    }

    /// Serves SFTP from `root` on the channel, on a thread of its own.
    fn start_sftp(&mut self, id: ChannelId, root: PathBuf) -> bool {
        let Some(ch) = self.chans.get_mut(&id) else {
            return false;
        };
        if ch.proc.is_some() {
            return false;
        }
        let Some(channel) = ch.channel.take() else {
            return false;
        };
        let args = &self.settings.sftp_args;
        let fs = match sftp_fs(&root, args, self.user.as_deref().unwrap_or("")) {
            Ok(fs) => fs,
            Err(e) => {
                tracing::info!("{}: sftp root {}: {e}", self.peer, root.display());
                return false;
            }
        };
        let peer = self.peer.clone();
        tracing::debug!(
            "{peer}: sftp subsystem from {}, starting in {}",
            root.display(),
            fs.start()
        );
        let config = args.config(SftpServerConfig {
            draft_symlink: self
                .handle
                .client_version()
                .is_some_and(|v| draft_symlink_peer(&v)),
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
        if self.password_ok(user, password) {
            self.method = "password";
            Auth::Accept
        } else {
            tracing::debug!("{}: wrong password for {user}", self.peer);
            self.failures += 1;
            Auth::Reject
        }
    }

    fn auth_publickey_offered(&mut self, _user: &str, key: &PublicKey) -> bool {
        let ok = self.key_allowed(key).is_some();
        if !ok {
            self.failures += 1;
        }
        ok
    }

    fn auth_publickey(&mut self, user: &str, key: &PublicKey) -> Auth {
        match self.key_allowed(key) {
            Some(opts) => {
                tracing::debug!(
                    "{}: publickey {} {} accepted for {user}",
                    self.peer,
                    key.key_type(),
                    key.fingerprint()
                );
                self.key_options = opts;
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
        if self.settings.password_file.is_none() {
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
        match responses {
            [pw] if self.password_ok(user, pw) => {
                self.method = "keyboard-interactive";
                KbdInt::Accept
            }
            _ => {
                tracing::debug!("{}: wrong password for {user}", self.peer);
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
                match open_pty(&req) {
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
                match (&self.settings.sftp_root, name.as_str()) {
                    (Some(root), "sftp") => self.start_sftp(id, root.clone()),
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
        Err(ssh_blocking::sftp_server::ArgsError::Usage(m))
        | Err(ssh_blocking::sftp_server::ArgsError::Fatal(m)) => {
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
    use ssh_blocking::passwd::Passwd;
    use ssh_blocking::sftp_server::expand_start_dir;
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

/// The server process's own user: (login shell, home, name).
fn login_user() -> (String, String, String) {
    // SAFETY: getpwuid returns a pointer to static storage or null; the
    // fields are copied out at once (connection threads only read).
    unsafe {
        let pw = libc::getpwuid(libc::getuid());
        if pw.is_null() {
            return ("/bin/sh".into(), "/".into(), "unknown".into());
        }
        let s = |p: *const libc::c_char| {
            if p.is_null() {
                String::new()
            } else {
                std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        };
        let mut shell = s((*pw).pw_shell);
        if shell.is_empty() {
            shell = "/bin/sh".into();
        }
        (shell, s((*pw).pw_dir), s((*pw).pw_name))
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

fn spawn_pipes(mut cmd: Command, channel: SChan) -> std::io::Result<Arc<Proc>> {
    new_session_pre_exec(&mut cmd, false);
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

fn spawn_pty(mut cmd: Command, pty: &mut Pty, channel: SChan) -> std::io::Result<Arc<Proc>> {
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

fn open_pty(req: &PtyRequest) -> std::io::Result<Pty> {
    let (mut master, mut slave) = (-1, -1);
    let ws = libc::winsize {
        ws_row: req.rows.min(10_000) as u16,
        ws_col: req.cols.min(10_000) as u16,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty fills two descriptors; null name and termios are allowed.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &ws,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just opened and are owned here.
    let (master, slave) = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) };
    for fd in [master.as_raw_fd(), slave.as_raw_fd()] {
        // SAFETY: fcntl on descriptors we own.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
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
    async fn auth_publickey_offered(&mut self, user: &str, key: &PublicKey) -> bool {
        Handler::auth_publickey_offered(&mut self.0, user, key)
    }
    async fn auth_publickey(&mut self, user: &str, key: &PublicKey) -> Auth {
        Handler::auth_publickey(&mut self.0, user, key)
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
