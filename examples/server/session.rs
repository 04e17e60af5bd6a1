//! One connection's handler: its channels, their requests and the
//! commands they run.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ssh_blocking::proto::keys::authorized_keys::KeyOptions;
use ssh_blocking::proto::keys::known_hosts::glob_match;
use ssh_blocking::proto::sftp::{draft_symlink_peer, SftpServerConfig};
use ssh_blocking::proto::{ChannelId, ChannelKind, ChannelRequest, Prompt, PublicKey};
use ssh_blocking::{
    Auth, Channel, ChannelOpenFailure, ChannelOpener, Handler, KbdInt, ServerHandle,
};
use ssh_std::sftp_server::serve as serve_sftp;

use crate::auth::{
    expand_keys_file, hash_prefix, local_utc_offset, login_shell, password_file_entry, printable,
    read_authorized_keys, verify_password, KeysFiles, RootLogin, Settings,
};
use crate::chan::SChan;
use crate::common::sys;
use crate::common::sys::Passwd;
use crate::forward::{pump, serve_remote, Dest, Policy, RemoteForward};
use crate::process::{credentials, signal_number, spawn_pipes, spawn_pty};
use crate::pty::open_pty;
use crate::sftp::sftp_fs;

/// The most remote forwards (listeners) one connection may hold; more are
/// refused (each holds sockets and a thread).
pub(crate) const MAX_REMOTE_FORWARDS: usize = 256;

/// One connection's handler.
pub(crate) struct Session {
    pub(crate) settings: Arc<Settings>,
    pub(crate) handle: ServerHandle,
    pub(crate) peer: String,
    pub(crate) user: Option<String>,
    /// The account of the user who logged in (set on success).
    pub(crate) account: Option<Passwd>,
    /// The last user name asked for, and its account if it may log in
    /// (looked up and logged once per name).
    pub(crate) looked_up: Option<(String, Option<Passwd>)>,
    pub(crate) method: &'static str,
    /// Refused auth attempts (reported in the connection's log line).
    pub(crate) failures: u32,
    /// Options of the authorized_keys line that let the client in.
    pub(crate) key_options: KeyOptions,
    pub(crate) chans: HashMap<ChannelId, Chan>,
    pub(crate) started: Instant,
    /// A forward's destination, connected in `channel_open`, waiting for
    /// its channel in `channel_opened`.
    pub(crate) pending: Option<Dest>,
    /// Remote forwards (their listeners stop when removed or dropped).
    pub(crate) remote_forwards: Vec<RemoteForward>,
}

/// A session channel's state until (and while) its command runs.
pub(crate) struct Chan {
    pub(crate) channel: Option<SChan>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) pty: Option<Pty>,
    pub(crate) proc: Option<Arc<Proc>>,
}

/// Channel `id`'s state and its handle, taken out to run a command: None
/// if there is no such channel or it runs one already.
pub(crate) fn idle_chan(
    chans: &mut HashMap<ChannelId, Chan>,
    id: ChannelId,
) -> Option<(&mut Chan, SChan)> {
    let ch = chans.get_mut(&id)?;
    if ch.proc.is_some() {
        return None;
    }
    let channel = ch.channel.take()?;
    Some((ch, channel))
}

pub(crate) struct Pty {
    pub(crate) master: OwnedFd,
    pub(crate) slave: Option<OwnedFd>,
    pub(crate) term: String,
}

/// A running command: its process group, and whether it has been reaped.
pub(crate) struct Proc {
    pub(crate) pgid: i32,
    pub(crate) reaped: AtomicBool,
}

impl Proc {
    pub(crate) fn kill(&self, sig: i32) {
        if !self.reaped.load(Ordering::SeqCst) {
            sys::kill_group(self.pgid, sig);
        }
    }

    /// Hang up, then kill for good if it is still there after a moment.
    pub(crate) fn hang_up(self: &Arc<Self>) {
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
    pub(crate) fn new(settings: Arc<Settings>, handle: &ServerHandle) -> Session {
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
            pending: None,
            remote_forwards: Vec::new(),
        }
    }

    pub(crate) fn peer_ip(&self) -> String {
        self.handle
            .peer_addr()
            .map(|a| a.ip().to_string())
            .unwrap_or_default()
    }

    /// `user`'s account if it may log in (looked up once per name).
    pub(crate) fn account(&mut self, user: &str) -> Option<Passwd> {
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
    pub(crate) fn key_allowed(
        &mut self,
        user: &str,
        key: &PublicKey,
    ) -> Option<(Passwd, KeyOptions)> {
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
    pub(crate) fn password_ok(&mut self, user: &str, password: &str) -> Option<Passwd> {
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

    pub(crate) fn accept_env(&self, name: &str) -> bool {
        self.settings
            .accept_env
            .iter()
            .any(|p| glob_match(p.as_bytes(), name.as_bytes()))
    }

    /// Starts `command` (None: the login shell) on the channel.
    pub(crate) fn start(&mut self, id: ChannelId, command: Option<Vec<u8>>) -> bool {
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
    pub(crate) fn user_env(&self, cmd: &mut Command, pw: &Passwd) {
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
    pub(crate) fn start_sftp(&mut self, id: ChannelId) -> bool {
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
    pub(crate) fn connection_env(&self) -> Vec<(String, String)> {
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

    fn channel_open_direct_tcpip(
        &mut self,
        host: &str,
        port: u32,
        _originator: &str,
        _originator_port: u32,
    ) -> Result<(), ChannelOpenFailure> {
        self.open_direct_tcpip(host, port)
    }

    fn channel_open_direct_streamlocal(&mut self, path: &str) -> Result<(), ChannelOpenFailure> {
        self.open_direct_streamlocal(path)
    }

    fn channel_opened(&mut self, channel: Channel, kind: &ChannelKind) {
        self.opened(SChan::Std(channel), kind);
    }

    fn tcpip_forward(&mut self, address: &str, port: u32, opener: &ChannelOpener) -> Option<u32> {
        self.forward_tcpip(address, port, opener)
    }

    fn cancel_tcpip_forward(&mut self, address: &str, port: u32) -> bool {
        self.cancel_forward(address, port, None)
    }

    fn streamlocal_forward(&mut self, path: &str, opener: &ChannelOpener) -> bool {
        self.forward_streamlocal(path, opener)
    }

    fn cancel_streamlocal_forward(&mut self, path: &str) -> bool {
        self.cancel_forward("", 0, Some(path))
    }

    fn channel_request(&mut self, channel: &Channel, request: ChannelRequest) -> bool {
        self.request(channel.id(), request)
    }

    fn channel_closed(&mut self, id: ChannelId) {
        self.closed(id)
    }

    fn disconnected(&mut self, reason: &ssh_blocking::Error) {
        self.ended(reason)
    }
}

impl Session {
    fn policy(&self) -> Policy<'_> {
        Policy {
            settings: &self.settings.forwarding,
            key: &self.key_options,
            account: self.account.as_ref(),
            peer: &self.peer,
        }
    }

    pub(crate) fn open_direct_tcpip(
        &mut self,
        host: &str,
        port: u32,
    ) -> Result<(), ChannelOpenFailure> {
        let s = self.policy().open_tcp(host, port)?;
        self.pending = Some(Dest::Tcp(s));
        Ok(())
    }

    pub(crate) fn open_direct_streamlocal(&mut self, path: &str) -> Result<(), ChannelOpenFailure> {
        let s = self.policy().open_unix(path)?;
        self.pending = Some(Dest::Unix(s));
        Ok(())
    }

    pub(crate) fn forward_tcpip(
        &mut self,
        address: &str,
        port: u32,
        opener: &ChannelOpener,
    ) -> Option<u32> {
        if self.remote_forwards.len() >= MAX_REMOTE_FORWARDS {
            tracing::info!(
                "{}: remote forward on {address}:{port} refused: {MAX_REMOTE_FORWARDS} already",
                self.peer
            );
            return None;
        }
        let (listeners, bound) = self.policy().listen_tcp(address, port)?;
        let fwd = serve_remote(opener, listeners, address, port, bound)?;
        tracing::debug!("{}: remote forward on {address}:{bound}", self.peer);
        self.remote_forwards.push(fwd);
        Some(u32::from(bound))
    }

    pub(crate) fn forward_streamlocal(&mut self, path: &str, opener: &ChannelOpener) -> bool {
        if self.remote_forwards.len() >= MAX_REMOTE_FORWARDS {
            return false;
        }
        let Some(l) = self.policy().listen_unix(path) else {
            return false;
        };
        let Ok(running) = opener.forward_remote_unix(l, path) else {
            return false;
        };
        self.remote_forwards.push(RemoteForward {
            address: String::new(),
            port: 0,
            bound: 0,
            path: Some(path.to_string()),
            _listeners: vec![running],
        });
        true
    }

    /// Stops the remote forward on `address`:`port` (the port asked for
    /// or the one bound) or on the socket `path`.
    pub(crate) fn cancel_forward(&mut self, address: &str, port: u32, path: Option<&str>) -> bool {
        let pos = self.remote_forwards.iter().position(|f| match path {
            Some(p) => f.path.as_deref() == Some(p),
            None => {
                f.path.is_none()
                    && f.address == address
                    && (f.port == port || u32::from(f.bound) == port)
            }
        });
        match pos {
            Some(i) => {
                self.remote_forwards.remove(i);
                true
            }
            None => false,
        }
    }

    pub(crate) fn opened(&mut self, channel: SChan, kind: &ChannelKind) {
        if *kind != ChannelKind::Session {
            if let Some(dest) = self.pending.take() {
                pump(dest, channel);
            }
            return;
        }
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

    pub(crate) fn request(&mut self, id: ChannelId, request: ChannelRequest) -> bool {
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
                    Some(p) => sys::set_winsize(p.master.as_raw_fd(), cols, rows).is_ok(),
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

    pub(crate) fn closed(&mut self, id: ChannelId) {
        if let Some(ch) = self.chans.remove(&id) {
            if let Some(p) = &ch.proc {
                p.hang_up();
            }
        }
    }

    pub(crate) fn ended(&mut self, reason: &ssh_blocking::Error) {
        // Remote-forward listeners close with the connection.
        self.remote_forwards.clear();
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
