//! ssh_config for the `client` and `sftp` examples: reading the files
//! (`-F FILE`, or `~/.ssh/config` then `/etc/ssh/ssh_config`), evaluating
//! them with `ssh_proto::config`, and the policy for keywords the examples
//! do not act on.

use std::path::Path;

use ssh_blocking::proto::config::{glob_match, ConfigFile, Context, ResolvedConfig, Resolver};

/// What the command line says about the destination.
pub struct CmdLine<'a> {
    /// `-F FILE` (`none`: no file at all).
    pub file: Option<&'a str>,
    /// The host as given (without `user@`).
    pub host: &'a str,
    /// `-l` or `user@host`.
    pub user: Option<String>,
    /// `-p`.
    pub port: Option<u16>,
    /// `-o` options (and the flags that stand for options), in order.
    pub options: &'a [(String, String)],
    /// The remote command given on the command line, if any.
    pub remote_command: Option<String>,
}

fn home() -> String {
    std::env::var("HOME").unwrap_or_else(|_| "/".into())
}

fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "root".into())
}

/// Files matching an absolute `Include` glob, sorted (each component may
/// hold `*` and `?`).
fn glob(pattern: &str) -> Vec<(String, String)> {
    let mut dirs = vec![String::from("/")];
    let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
    for (i, part) in parts.iter().enumerate() {
        let last = i + 1 == parts.len();
        let mut next = Vec::new();
        for d in &dirs {
            let join = |n: &str| format!("{}/{n}", d.trim_end_matches('/'));
            if !part.contains(['*', '?', '[']) {
                next.push(join(part));
                continue;
            }
            let Ok(rd) = std::fs::read_dir(d) else {
                continue;
            };
            let mut names: Vec<String> = rd
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| glob_match(n, part))
                .collect();
            names.sort();
            next.extend(names.iter().map(|n| join(n)));
        }
        dirs = next;
        if last {
            break;
        }
    }
    dirs.into_iter()
        .filter(|p| Path::new(p).is_file())
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
        .collect()
}

/// Evaluates the configuration for the command line's destination. A
/// configuration error is ssh's lines on stderr and exit 255; warnings are
/// printed and the evaluation goes on.
pub fn resolve(cl: &CmdLine<'_>) -> ResolvedConfig {
    let home = home();
    let mut ctx = Context::new(cl.host, local_user(), home.clone());
    ctx.uid = super::sys::euid();
    ctx.local_hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    ctx.user = cl.user.clone();
    ctx.port = cl.port;
    ctx.remote_command = cl.remote_command.clone();
    ctx.options = cl.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut files = Vec::new();
    match cl.file {
        Some(f) if f.eq_ignore_ascii_case("none") => {}
        Some(f) => match std::fs::read_to_string(f) {
            Ok(t) => files.push(ConfigFile::user(f, t)),
            Err(e) => {
                eprintln!("Can't open user config file {f}: {e}");
                std::process::exit(255);
            }
        },
        None => {
            let user = format!("{home}/.ssh/config");
            if let Ok(t) = std::fs::read_to_string(&user) {
                files.push(ConfigFile::user(user, t));
            }
            let sys = "/etc/ssh/ssh_config";
            if let Ok(t) = std::fs::read_to_string(sys) {
                files.push(ConfigFile::system(sys, t));
            }
        }
    }
    let r = Resolver::new(&ctx)
        .include(glob)
        .exec(|cmd| {
            std::process::Command::new("/bin/sh")
                .arg("-c")
                .arg(cmd)
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .env(|n| std::env::var(n).ok())
        .resolve(&files);
    match r {
        Ok(cfg) => {
            for w in &cfg.warnings {
                eprintln!("{w}");
            }
            cfg
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(255);
        }
    }
}

/// Keywords the examples act on (in `connect`, or in the client's
/// forwarding and session code).
const HANDLED: &[&str] = &[
    "hostname",
    "port",
    "user",
    "identityfile",
    "identitiesonly",
    "userknownhostsfile",
    "globalknownhostsfile",
    "stricthostkeychecking",
    "hostkeyalias",
    "ciphers",
    "macs",
    "kexalgorithms",
    "hostkeyalgorithms",
    "rekeylimit",
    "compression",
    "connecttimeout",
    "serveraliveinterval",
    "serveralivecountmax",
    "batchmode",
    "passwordauthentication",
    "pubkeyauthentication",
    "kbdinteractiveauthentication",
    "preferredauthentications",
    "proxyjump",
    "proxycommand",
    "localforward",
    "remoteforward",
    "dynamicforward",
    "exitonforwardfailure",
    "gatewayports",
    "requesttty",
    "remotecommand",
    "ignoreunknown",
];

/// Keywords not acted on whose setting does not change what a connection
/// does here (or only what it would do with features the examples do not
/// have): passed with a debug message.
const HARMLESS: &[&str] = &[
    "loglevel",
    "logverbose",
    "syslogfacility",
    "forwardagent",
    "forwardx11",
    "forwardx11trusted",
    "forwardx11timeout",
    "xauthlocation",
    "addressfamily",
    "hashknownhosts",
    "updatehostkeys",
    "numberofpasswordprompts",
    "tcpkeepalive",
    "controlmaster",
    "controlpath",
    "controlpersist",
    "visualhostkey",
    "gssapiauthentication",
    "gssapidelegatecredentials",
    "gssapikeyexchange",
    "gssapitrustdns",
    "gssapirenewalforcesrekey",
    "gssapiclientidentity",
    "gssapiserveridentity",
    "hostbasedauthentication",
    "escapechar",
    "enableescapecommandline",
    "fingerprinthash",
    "ipqos",
    "connectionattempts",
    "kbdinteractivedevices",
    "identityagent",
    "addkeystoagent",
    "usekeychain",
    "protocol",
    "obscurekeystroke",
    "warnweakcrypto",
    "canonicalizemaxdots",
    "canonicalizefallbacklocal",
    "canonicaldomains",
    "canonicalizepermittedcnames",
    "stdinnull",
    "hostbasedacceptedalgorithms",
    "casignaturealgorithms",
    "localcommand",
];

/// Keywords whose setting here would change nothing only with this value.
fn harmless_value(key: &str, v: &str) -> bool {
    let v = v.to_ascii_lowercase();
    match key {
        "checkhostip"
        | "verifyhostkeydns"
        | "permitlocalcommand"
        | "clearallforwardings"
        | "forkafterauthentication"
        | "tunnel"
        | "canonicalizehostname"
        | "nohostauthenticationforlocalhost" => {
            matches!(v.as_str(), "no" | "false")
        }
        "sessiontype" => v == "default",
        _ => false,
    }
}

/// Checks every keyword the configuration sets: the handled ones pass,
/// harmless ones pass with a debug message; any other is refused with a
/// message naming it, as the examples refuse what they cannot honour.
///
/// `sends_env`: the connection opens a session that sends SendEnv and
/// SetEnv (the `client` example's destination); elsewhere (a jump hop,
/// the `sftp` example) SendEnv passes as harmless and SetEnv is refused.
pub fn check_supported(cfg: &ResolvedConfig, verbose: bool, sends_env: bool) -> Result<(), String> {
    for (k, v) in &cfg.options {
        let first = v.first().map(String::as_str).unwrap_or("");
        if HANDLED.contains(&k.as_str())
            || (sends_env && matches!(k.as_str(), "sendenv" | "setenv"))
        {
            continue;
        }
        if k == "sendenv" {
            if verbose {
                eprintln!("debug1: {k} {} not acted on", v.join(" "));
            }
            continue;
        }
        if HARMLESS.contains(&k.as_str()) || harmless_value(k, first) {
            if verbose {
                eprintln!("debug1: {k} {} not acted on", v.join(" "));
            }
            continue;
        }
        if k == "checkhostip" {
            return Err(format!(
                "option CheckHostIP={first} is not supported (only CheckHostIP=no)"
            ));
        }
        return Err(format!("unsupported option {k:?}"));
    }
    Ok(())
}

/// The environment a session sends, as ssh sends it: every local variable
/// whose name matches a SendEnv pattern (a `-pattern` removes the patterns
/// before it that it matches), then each SetEnv `NAME=value`.
pub fn session_env(cfg: &ResolvedConfig) -> Vec<(String, String)> {
    use ssh_blocking::proto::keys::known_hosts::glob_match;
    let mut patterns: Vec<&str> = Vec::new();
    for p in cfg.send_env.iter().flat_map(|v| v.split_whitespace()) {
        match p.strip_prefix('-') {
            Some(rm) => patterns.retain(|q| !glob_match(rm.as_bytes(), q.as_bytes())),
            None => patterns.push(p),
        }
    }
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in std::env::vars_os() {
        let (Some(k), Some(v)) = (k.to_str(), v.to_str()) else {
            continue;
        };
        if patterns
            .iter()
            .any(|p| glob_match(p.as_bytes(), k.as_bytes()))
        {
            out.push((k.to_string(), v.to_string()));
        }
    }
    out.sort();
    for kv in &cfg.set_env {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        out.push((k.to_string(), v.to_string()));
    }
    out
}
