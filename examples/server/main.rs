//! An SSH server that OpenSSH, PuTTY, paramiko, AsyncSSH and Dropbear
//! clients use as they would use sshd, built on `ssh_blocking::Server`.
//!
//! ```text
//! server [-p PORT] [-b ADDR] [-h HOSTKEY_FILE]... [--authorized-keys FILE]
//!        [--password-file FILE] [--sftp-root DIR] [-o Key=Value]... [-v[v[v]]]
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
//! `environment=`, `restrict`, `no-port-forwarding`, `permitopen=` and
//! `permitlisten=` are honoured (a line with `cert-authority`,
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
//! applies on top of `-u`).
//!
//! Port forwarding as sshd's: `direct-tcpip` (ssh `-L`, `-D`, `-W`),
//! `direct-streamlocal` (to a Unix socket, opened as the user),
//! `tcpip-forward` (ssh `-R`, port 0 answered with the port bound) and
//! `streamlocal-forward` (the socket made as the user, mode 0600), with
//! `-o AllowTcpForwarding=yes|no|local|remote`,
//! `-o AllowStreamLocalForwarding=yes|all|no|local|remote`,
//! `-o PermitOpen=any|none|HOST:PORT...`, `-o PermitListen=any|none|[HOST:]PORT...`
//! (`*` for any port; listen hosts are patterns), `-o GatewayPorts=no|yes|clientspecified`
//! (default no: remote forwards listen on loopback), `-o StreamLocalBindUnlink=yes|no`,
//! `-o DisableForwarding=yes|no`; a user who is not root may not listen on a
//! port below 1024; at most 256 remote forwards per connection. A refused
//! open is "administratively prohibited: open failed", a destination that
//! cannot be reached "connect failed: REASON", as from sshd; each refusal is
//! logged. Remote forwards stop with their connection. SIGINT/SIGTERM close the listener and let live
//! sessions end.

#[path = "../common/mod.rs"]
mod common;

mod args;
mod auth;
mod chan;
mod forward;
mod process;
mod pty;
mod session;
mod sftp;

use std::io::Write;
use std::sync::Arc;

use common::runtime::{tokio_rt, RuntimeKind};
use common::sys;
use common::{apply_transport_option, parse_time, split_option, yes};
use ssh_blocking::proto::session::admission::parse_per_source_max_startups;
use ssh_blocking::proto::{AdmissionConfig, Config};
use ssh_blocking::{PrivateKey, Server};
use ssh_proto::os_rng;
use ssh_std::sftp_server::{LocalFs, ServerArgs};

use crate::args::{die, parse_args};
use crate::auth::{
    check_tokens, dummy_hash, shadow_dummy_hash, KeysFiles, RootLogin, Settings, DEFAULT_KEYS_FILES,
};
use crate::chan::TokioSession;
use crate::session::Session;
use crate::sftp::{sftp_subsystem_main, subsystem_option};

fn main() {
    if std::env::args().nth(1).as_deref() == Some("--sftp-subsystem") {
        sftp_subsystem_main();
    }
    let o = parse_args();
    // sshd logs connections and logins at INFO without -d; -v, -vv, -vvv
    // as the clients' levels.
    common::init_tracing(o.verbose, tracing::Level::INFO);
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
    let mut forwarding = forward::ForwardSettings::default();
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
            "allowtcpforwarding" => {
                forwarding.tcp =
                    forward::Allow::parse(&v).unwrap_or_else(|| bad("AllowTcpForwarding"))
            }
            "allowstreamlocalforwarding" => {
                forwarding.streamlocal =
                    forward::Allow::parse(&v).unwrap_or_else(|| bad("AllowStreamLocalForwarding"))
            }
            "gatewayports" => {
                forwarding.gateway =
                    forward::Gateway::parse(&v).unwrap_or_else(|| bad("GatewayPorts"))
            }
            "permitopen" => {
                forwarding.permit_open = forward::Permits::parse(&v, false)
                    .unwrap_or_else(|e| die(&format!("PermitOpen: {e}")))
            }
            "permitlisten" => {
                forwarding.permit_listen = forward::Permits::parse(&v, true)
                    .unwrap_or_else(|e| die(&format!("PermitListen: {e}")))
            }
            "streamlocalbindunlink" => forwarding.bind_unlink = yes_no(&v, "StreamLocalBindUnlink"),
            "disableforwarding" => forwarding.disabled = yes_no(&v, "DisableForwarding"),
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
        verbose: o.verbose > 0,
        sftp_root: o.sftp_root.clone(),
        sftp_args: sftp_args.unwrap_or_default(),
        forwarding,
    });

    // Signals are taken by one thread with sigwait; every other thread
    // (made after this) inherits the blocked mask. Children get a clean
    // mask from std's spawn.
    let sigs = sys::block_signals(&[libc::SIGINT, libc::SIGTERM]);
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
    // The blocking and mio servers have one shape, and hand the handler the
    // same handles.
    macro_rules! serve_std {
        ($server:ty) => {{
            let server =
                <$server>::from_listener(listener, config).unwrap_or_else(|e| die(&e.to_string()));
            let stop = server.shutdown_handle();
            on_signal(sigs, move || stop.shutdown());
            announce();
            server.run(move |h| Session::new(settings.clone(), h))
        }};
    }
    let r = match o.runtime {
        RuntimeKind::Blocking => serve_std!(Server),
        RuntimeKind::Mio => serve_std!(ssh_mio::Server),
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
        let sig = sys::wait_signal(&sigs);
        tracing::info!("signal {sig}: closing the listener, live sessions go on");
        stop();
    });
}

/// A yes/no option's value; anything else is refused, naming the option.
fn yes_no(v: &str, name: &str) -> bool {
    match v.to_ascii_lowercase().as_str() {
        "yes" => true,
        "no" => false,
        _ => die(&format!("bad {name} value {v:?}")),
    }
}
