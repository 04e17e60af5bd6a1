//! Connecting and authenticating as OpenSSH's clients do, shared by the
//! `client` and `sftp` examples: `-o` options, known_hosts with
//! StrictHostKeyChecking, identities, keyboard-interactive and passwords
//! (SSH_ASKPASS when forced or when there is no terminal).

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use super::apply_transport_option;
use super::config;
use super::runtime::{AnyClient, RuntimeKind};
use super::sys;
use ssh_blocking::proto::config::ResolvedConfig;
use ssh_blocking::proto::keys::known_hosts::{known_hosts_line, HostKeyStatus, KnownHosts};
use ssh_blocking::proto::Config;
use ssh_blocking::{Error, ErrorKind, HostKeyCheck, PrivateKey};

/// What to connect to and how.
pub struct ConnectOpts {
    /// Program name for messages.
    pub prog: &'static str,
    /// The destination's evaluated ssh_config (command line included).
    pub cfg: ResolvedConfig,
    /// `-i` identities: tried before the configuration's.
    pub identities: Vec<PathBuf>,
    pub verbose: bool,
    /// Which adapter moves the bytes.
    pub runtime: RuntimeKind,
    /// ProxyJump hops, in order, each with its own evaluated
    /// configuration: each is reached through the one before, the host
    /// last.
    pub jump: Vec<(Hop, ResolvedConfig)>,
}

/// One ProxyJump hop: `[user@]host[:port]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hop {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

/// Parses ProxyJump's `[user@]host[:port][,...]` (or `ssh://` URIs);
/// `none` is no hops. None when malformed.
pub fn parse_jump(s: &str) -> Option<Vec<Hop>> {
    if s.eq_ignore_ascii_case("none") {
        return Some(Vec::new());
    }
    s.split(',').map(parse_hop).collect()
}

fn parse_hop(h: &str) -> Option<Hop> {
    let h = h.trim();
    let h = h.strip_prefix("ssh://").unwrap_or(h);
    let (user, rest) = match h.rsplit_once('@') {
        Some((u, r)) if !u.is_empty() => (Some(u.to_string()), r),
        Some(_) => return None,
        None => (None, h),
    };
    let (host, port) = if let Some(r) = rest.strip_prefix('[') {
        let (host, after) = r.split_once(']')?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match rest.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (rest, None),
        }
    };
    if host.is_empty() || host.contains(['/', ' ']) {
        return None;
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().ok().filter(|&p| p != 0)?),
        None => None,
    };
    Some(Hop {
        user,
        host: host.to_string(),
        port,
    })
}

/// Connects (through the ProxyJump hops, if any, or the ProxyCommand),
/// checks the host key, authenticates. Each hop is connected and
/// authenticated with its own configuration (the command line's options
/// with the hop's user and port) and its host key checked under its own
/// name; the next connection runs over a `direct-tcpip` channel of the one
/// before.
pub fn connect(o: ConnectOpts) -> Result<AnyClient, Error> {
    let mut via: Option<AnyClient> = None;
    for (_, cfg) in &o.jump {
        via = Some(connect_one(&o, cfg, true, via.as_ref())?);
    }
    connect_one(&o, &o.cfg, false, via.as_ref())
}

/// The ProxyJump hops and their configurations: `cli` (`-J`) when given,
/// else the configuration's ProxyJump. The message is ssh's when the
/// configuration's value is malformed.
pub fn hops(
    file: Option<&str>,
    options: &[(String, String)],
    cfg: &ResolvedConfig,
    cli: Option<Vec<Hop>>,
) -> Result<Vec<(Hop, ResolvedConfig)>, String> {
    let list = match (cli, &cfg.proxy_jump) {
        (Some(l), _) => l,
        (None, Some(j)) => parse_jump(j).ok_or_else(|| format!("Invalid ProxyJump \"{j}\""))?,
        (None, None) => Vec::new(),
    };
    Ok(list
        .into_iter()
        .map(|h| {
            let c = hop_config(file, options, &h);
            (h, c)
        })
        .collect())
}

/// The configuration for a ProxyJump hop: the same files and `-o`
/// options (but for those naming the destination), the hop's user and
/// port.
pub fn hop_config(file: Option<&str>, options: &[(String, String)], hop: &Hop) -> ResolvedConfig {
    let options: Vec<(String, String)> = options
        .iter()
        .filter(|(k, _)| {
            let k = k.to_ascii_lowercase();
            !matches!(
                k.as_str(),
                "port" | "user" | "hostname" | "proxyjump" | "proxycommand" | "remotecommand"
            )
        })
        .cloned()
        .collect();
    config::resolve(&config::CmdLine {
        file,
        host: &hop.host,
        user: hop.user.clone(),
        port: hop.port,
        options: &options,
        remote_command: None,
    })
}

fn connect_one(
    o: &ConnectOpts,
    cfg: &ResolvedConfig,
    is_hop: bool,
    via: Option<&AnyClient>,
) -> Result<AnyClient, Error> {
    let prog = o.prog;
    config::check_supported(cfg, o.verbose, o.prog == "client" && !is_hop).map_err(Error::usage)?;
    let host = cfg.hostname.clone();
    let user = cfg.user.clone();
    let port = cfg.port;
    let mut identities = o.identities.clone();
    identities.extend(cfg.identity_files.iter().map(PathBuf::from));
    let mut config = Config::default();
    for (key, v) in [
        ("kexalgorithms", &cfg.kex_algorithms),
        ("hostkeyalgorithms", &cfg.host_key_algorithms),
        ("ciphers", &cfg.ciphers),
        ("macs", &cfg.macs),
    ] {
        if let Some(v) = v {
            apply_transport_option(&mut config, key, v)?;
        }
    }
    if let Some(v) = cfg.get("rekeylimit") {
        apply_transport_option(&mut config, "rekeylimit", &v.join(" "))?;
    }
    let host_key_algs_set = cfg.host_key_algorithms.is_some();
    let known_hosts: Vec<PathBuf> = match cfg.user_known_hosts_files.as_slice() {
        [] => vec![
            home().join(".ssh/known_hosts"),
            home().join(".ssh/known_hosts2"),
        ],
        [one] if one.eq_ignore_ascii_case("none") => Vec::new(),
        files => files.iter().map(|f| expand_tilde(f)).collect(),
    };
    let global_known_hosts: Vec<PathBuf> = match cfg.global_known_hosts_files.as_slice() {
        [] => vec![
            PathBuf::from("/etc/ssh/ssh_known_hosts"),
            PathBuf::from("/etc/ssh/ssh_known_hosts2"),
        ],
        [one] if one.eq_ignore_ascii_case("none") => Vec::new(),
        files => files.iter().map(PathBuf::from).collect(),
    };
    let strict = cfg
        .strict_host_key_checking
        .as_deref()
        .unwrap_or("ask")
        .to_ascii_lowercase();
    let batch = cfg.batch_mode.unwrap_or(false);
    let methods = AuthMethods {
        pubkey: cfg.pubkey_authentication.unwrap_or(true),
        kbd: cfg.kbd_interactive_authentication.unwrap_or(true),
        password: cfg.password_authentication.unwrap_or(true),
        preferred: cfg
            .preferred_authentications
            .as_deref()
            .unwrap_or("publickey,keyboard-interactive,password")
            .split(',')
            .map(|m| m.trim().to_string())
            .collect(),
    };
    let connect_timeout = cfg
        .connect_timeout
        .filter(|&n| n > 0)
        .map(Duration::from_secs);
    config.keepalive_interval = cfg
        .server_alive_interval
        .filter(|&n| n > 0)
        .map(Duration::from_secs);
    config.keepalive_count_max = cfg.server_alive_count_max.unwrap_or(3);
    if cfg.compression.unwrap_or(false) {
        config.transport.algorithms.compression =
            vec!["zlib@openssh.com".into(), "zlib".into(), "none".into()];
    }
    // HostKeyAlias: the name the host key is looked up and saved under.
    let key_host = cfg.host_key_alias.clone().unwrap_or_else(|| host.clone());

    // Prefer host key types already known for this host (as OpenSSH does).
    let kh_text: String = known_hosts
        .iter()
        .chain(&global_known_hosts)
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .collect::<Vec<_>>()
        .join("\n");
    let kh = KnownHosts::parse(&kh_text);
    if !host_key_algs_set {
        let known = kh.known_key_types(&key_host, port);
        if !known.is_empty() {
            let hk = &mut config.transport.algorithms.host_key;
            let (mut front, back): (Vec<String>, Vec<String>) = hk.drain(..).partition(|a| {
                let kt = match a.as_str() {
                    "rsa-sha2-256" | "rsa-sha2-512" => "ssh-rsa",
                    x => x,
                };
                known.contains(&kt)
            });
            front.extend(back);
            *hk = front;
        }
    }

    let host_label = if port == 22 {
        key_host.clone()
    } else {
        format!("[{key_host}]:{port}")
    };
    let kh_path = known_hosts.first().cloned();
    let verbose = o.verbose;
    let strict2 = strict.clone();
    let check = HostKeyCheck::Callback(Box::new(move |key| {
        match kh.check(&host_label_host(&host_label), port, key) {
            HostKeyStatus::Match => true,
            HostKeyStatus::Revoked => {
                eprintln!("{prog}: host key for {host_label} is REVOKED");
                false
            }
            HostKeyStatus::Mismatch => {
                eprintln!(
                    "{prog}: REMOTE HOST IDENTIFICATION HAS CHANGED for {host_label}: {} key {} not in known hosts",
                    key.key_type(),
                    key.fingerprint()
                );
                false
            }
            _ => {
                let add = match strict2.as_str() {
                    "no" | "off" | "accept-new" => true,
                    "yes" | "true" => false,
                    _ => {
                        if batch || !std::io::stdin().is_terminal() {
                            false
                        } else {
                            let ans = ask_line(&format!(
                                "The authenticity of host '{host_label}' can't be established.\n{} key fingerprint is {}.\nAre you sure you want to continue connecting (yes/no)? ",
                                key.key_type(),
                                key.fingerprint()
                            ));
                            ans.as_deref() == Some("yes")
                        }
                    }
                };
                if !add {
                    eprintln!(
                        "{prog}: no {} host key is known for {host_label} ({}) and StrictHostKeyChecking is {}",
                        key.key_type(),
                        key.fingerprint(),
                        strict2
                    );
                    return false;
                }
                if let Some(p) = &kh_path {
                    let line = known_hosts_line(&host_label_host(&host_label), port, key);
                    if let Some(dir) = p.parent() {
                        let _ = std::fs::create_dir_all(dir);
                    }
                    if let Ok(mut f) = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(p)
                    {
                        let _ = writeln!(f, "{line}");
                        if verbose {
                            eprintln!("Warning: Permanently added '{host_label}' ({}) to the list of known hosts.", key.key_type());
                        }
                    }
                }
                true
            }
        }
    }));

    let config = Arc::new(config);
    let proxy = cfg
        .proxy_command
        .as_deref()
        .filter(|_| !is_hop && via.is_none());
    let client = match (via, proxy) {
        (Some(via), _) => AnyClient::connect_via(via, &host, port, config, check, connect_timeout),
        (None, Some(cmd)) => proxy_connect(cmd, &host, port, config, check),
        (None, None) => AnyClient::connect(
            o.runtime,
            host.as_str(),
            port,
            config,
            check,
            connect_timeout,
        ),
    }
    .map_err(|e| {
        Error::new(
            e.kind(),
            format!("connect to {host} port {port}: {}", e.detail()),
        )
    })?;
    if o.verbose {
        if let Some(n) = client.negotiated() {
            eprintln!(
                "debug1: remote software version {}",
                client.server_version().unwrap_or_default()
            );
            eprintln!("debug1: kex: algorithm: {}", n.kex);
            eprintln!("debug1: kex: host key algorithm: {}", n.host_key);
            eprintln!(
                "debug1: kex: server->client cipher: {} MAC: {} compression: {}",
                n.cipher_s2c,
                n.mac_s2c.as_deref().unwrap_or("<implicit>"),
                n.compression_s2c
            );
            eprintln!(
                "debug1: kex: client->server cipher: {} MAC: {} compression: {}",
                n.cipher_c2s,
                n.mac_c2s.as_deref().unwrap_or("<implicit>"),
                n.compression_c2s
            );
        }
    }

    authenticate(
        prog,
        &client,
        &user,
        &host,
        &identities,
        o.identities.len(),
        &methods,
        batch,
    )?;
    Ok(client)
}

/// ProxyCommand: the command (tokens already expanded) run with `sh -c`,
/// the connection over its stdin and stdout; its stderr is ours.
fn proxy_connect(
    cmd: &str,
    host: &str,
    port: u16,
    config: Arc<Config>,
    check: HostKeyCheck,
) -> Result<AnyClient, Error> {
    let mut child = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("exec {cmd}"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::usage(format!("proxy command {cmd:?}: {e}")))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(Error::usage("proxy command: no pipes"));
    };
    // The command ends when its pipes close (with this process).
    ssh_blocking::Client::handshake((stdout, stdin), host, port, config, check).map(AnyClient::Std)
}

/// Which authentication methods may be tried, and in what order.
struct AuthMethods {
    pubkey: bool,
    kbd: bool,
    password: bool,
    /// PreferredAuthentications, in order.
    preferred: Vec<String>,
}

fn home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/"))
}

fn expand_tilde(p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        home().join(rest)
    } else {
        PathBuf::from(p)
    }
}

/// Reads a secret: SSH_ASKPASS when forced or when there is no terminal,
/// otherwise a prompt on the terminal.
fn ask_secret(prompt: &str, batch: bool) -> Option<String> {
    let askpass = std::env::var("SSH_ASKPASS").ok().filter(|s| !s.is_empty());
    let require = std::env::var("SSH_ASKPASS_REQUIRE").unwrap_or_default();
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok();
    let use_askpass = match require.as_str() {
        "force" => askpass.is_some(),
        "never" => false,
        _ => askpass.is_some() && tty.is_none() && std::env::var_os("DISPLAY").is_some(),
    };
    if use_askpass {
        let out = std::process::Command::new(askpass?)
            .arg(prompt)
            .stdin(std::process::Stdio::null())
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let s = String::from_utf8_lossy(&out.stdout);
        return Some(s.trim_end_matches(['\n', '\r']).to_string());
    }
    if batch {
        return None;
    }
    let mut tty = tty?;
    let _ = write!(tty, "{prompt}");
    let _ = tty.flush();
    let line = with_echo_off(&tty, || {
        let mut s = String::new();
        let mut b = [0u8; 1];
        while let Ok(1) = (&tty).read(&mut b) {
            if b[0] == b'\n' {
                break;
            }
            s.push(b[0] as char);
        }
        s
    });
    let _ = writeln!(tty);
    Some(line.trim_end_matches('\r').to_string())
}

fn with_echo_off<T>(tty: &std::fs::File, f: impl FnOnce() -> T) -> T {
    use std::os::fd::AsRawFd;
    let fd = tty.as_raw_fd();
    let saved = sys::tcgetattr(fd);
    if let Some(mut t) = saved {
        t.c_lflag &= !libc::ECHO;
        let _ = sys::tcsetattr(fd, libc::TCSANOW, &t);
    }
    let r = f();
    if let Some(saved) = saved {
        let _ = sys::tcsetattr(fd, libc::TCSANOW, &saved);
    }
    r
}

fn host_label_host(label: &str) -> String {
    label
        .strip_prefix('[')
        .and_then(|s| s.split_once("]:"))
        .map_or(label.to_string(), |(h, _)| h.to_string())
}

fn ask_line(prompt: &str) -> Option<String> {
    let mut tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .ok()?;
    let _ = write!(tty, "{prompt}");
    let _ = tty.flush();
    let mut s = String::new();
    let mut b = [0u8; 1];
    while let Ok(1) = tty.read(&mut b) {
        if b[0] == b'\n' {
            break;
        }
        s.push(b[0] as char);
    }
    Some(s.trim().to_string())
}

#[allow(clippy::too_many_arguments)]
fn authenticate(
    prog: &str,
    client: &AnyClient,
    user: &str,
    host: &str,
    identities: &[PathBuf],
    explicit: usize,
    methods: &AuthMethods,
    batch: bool,
) -> Result<(), Error> {
    let mut last_err = None;
    // Learn the methods first (as OpenSSH does with "none").
    if client.auth_none(user)? {
        return Ok(());
    }
    let allowed = |m: &str| {
        client
            .auth_methods_left()
            .is_none_or(|l| l.iter().any(|x| x == m))
    };
    for method in &methods.preferred {
        match method.as_str() {
            "publickey" if methods.pubkey && allowed("publickey") => {
                let mut ids: Vec<PathBuf> = identities.to_vec();
                if ids.is_empty() {
                    for n in ["id_ed25519", "id_ecdsa", "id_rsa"] {
                        let p = home().join(".ssh").join(n);
                        if p.exists() {
                            ids.push(p);
                        }
                    }
                }
                for (n, path) in ids.into_iter().enumerate() {
                    let data = match std::fs::read(&path) {
                        Ok(d) => d,
                        Err(e) => {
                            if n < explicit {
                                eprintln!(
                                    "{prog}: warning: identity file {} not accessible: {e}",
                                    path.display()
                                );
                            }
                            continue;
                        }
                    };
                    let key = if PrivateKey::is_encrypted(&data) {
                        let Some(pass) = ask_secret(
                            &format!("Enter passphrase for key '{}': ", path.display()),
                            batch,
                        ) else {
                            continue;
                        };
                        PrivateKey::from_bytes(&data, Some(pass.as_bytes()))
                    } else {
                        PrivateKey::from_bytes(&data, None)
                    };
                    let key = match key {
                        Ok(k) => k,
                        Err(e) => {
                            eprintln!("{prog}: warning: {}: {}", path.display(), e.detail());
                            continue;
                        }
                    };
                    match client.auth_publickey(user, Arc::new(key)) {
                        Ok(()) => return Ok(()),
                        Err(e) if e.kind() == ErrorKind::AuthFailed => last_err = Some(e),
                        Err(e) => return Err(e),
                    }
                    if !allowed("publickey") {
                        break;
                    }
                }
            }
            "keyboard-interactive" if methods.kbd && allowed("keyboard-interactive") => {
                let r = client.auth_keyboard_interactive(user, |name, instruction, prompts| {
                    if !name.is_empty() {
                        eprintln!("{name}");
                    }
                    if !instruction.is_empty() {
                        eprintln!("{instruction}");
                    }
                    prompts
                        .iter()
                        .map(|p| {
                            let text = if p.text.is_empty() {
                                format!("({user}@) Password: ")
                            } else {
                                p.text.clone()
                            };
                            ask_secret(&text, batch).unwrap_or_default()
                        })
                        .collect()
                });
                match r {
                    Ok(()) => return Ok(()),
                    Err(e) if e.kind() == ErrorKind::AuthFailed => last_err = Some(e),
                    Err(e) => return Err(e),
                }
            }
            "password" if methods.password && allowed("password") => {
                for _ in 0..3 {
                    let Some(pw) = ask_secret(&format!("{user}@{host}'s password: "), batch) else {
                        break;
                    };
                    match client.auth_password(user, &pw) {
                        Ok(()) => return Ok(()),
                        Err(e) if e.kind() == ErrorKind::AuthFailed => last_err = Some(e),
                        Err(e) => return Err(e),
                    }
                    if std::env::var("SSH_ASKPASS_REQUIRE").as_deref() == Ok("force") {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    let methods = client
        .auth_methods_left()
        .map(|m| m.join(","))
        .unwrap_or_default();
    Err(Error::new(
        ErrorKind::AuthFailed,
        format!(
            "{user}: permission denied ({methods}){}",
            last_err
                .map(|e| format!(": {}", e.detail()))
                .unwrap_or_default()
        ),
    ))
}
