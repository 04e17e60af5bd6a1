//! The evaluated configuration for one host.

use super::eval::{parse_hop, parse_port, Options};
use super::expand::{connection_hash, expand, tilde};
use super::{ConfigError, Context};

/// One host's options, evaluated as `ssh -G` would (without DNS
/// canonicalisation). The typed fields cover what a client commonly needs;
/// [`options`](Self::options) has every keyword the files set, raw.
///
/// Algorithm lists (`ciphers`, `macs`, ...) are kept as written, with any
/// leading `+`, `-` or `^` for the caller to apply to its defaults.
/// Path options have `~`, `%` tokens and `${VAR}` expanded as ssh expands
/// them before use; `proxy_command` has `%h %p %r %n %k` expanded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ResolvedConfig {
    /// The host as given on the command line.
    pub host: String,
    /// The host to connect to (`Hostname` with `%h` expanded, lowercased
    /// unless an address), or `host`.
    pub hostname: String,
    /// The remote user (`User`, tokens expanded), or the local user.
    pub user: String,
    /// The port (`Port`), or 22.
    pub port: u16,
    /// `IdentityFile`s, expanded, in order. Empty: use the defaults.
    pub identity_files: Vec<String>,
    /// `CertificateFile`s, expanded, in order.
    pub certificate_files: Vec<String>,
    /// `IdentitiesOnly`.
    pub identities_only: Option<bool>,
    /// `IdentityAgent`, expanded (`none`, `SSH_AUTH_SOCK` or a path).
    pub identity_agent: Option<String>,
    /// `ProxyJump` (unless `none`): the comma-separated hops.
    pub proxy_jump: Option<String>,
    /// `ProxyCommand` (unless `none`), tokens expanded.
    pub proxy_command: Option<String>,
    /// `UserKnownHostsFile`s, expanded. Empty: the defaults; `none` is
    /// kept as the single entry.
    pub user_known_hosts_files: Vec<String>,
    /// `GlobalKnownHostsFile`s, `~` expanded.
    pub global_known_hosts_files: Vec<String>,
    /// `StrictHostKeyChecking` as written (`yes`, `no`, `ask`,
    /// `accept-new`, `off`).
    pub strict_host_key_checking: Option<String>,
    /// `HostKeyAlias`.
    pub host_key_alias: Option<String>,
    /// `Ciphers`, as written.
    pub ciphers: Option<String>,
    /// `MACs`, as written.
    pub macs: Option<String>,
    /// `KexAlgorithms`, as written.
    pub kex_algorithms: Option<String>,
    /// `HostKeyAlgorithms`, as written.
    pub host_key_algorithms: Option<String>,
    /// `PubkeyAcceptedAlgorithms`, as written.
    pub pubkey_accepted_algorithms: Option<String>,
    /// `PreferredAuthentications`.
    pub preferred_authentications: Option<String>,
    /// `PasswordAuthentication`.
    pub password_authentication: Option<bool>,
    /// `PubkeyAuthentication` (`yes`/`no`/`unbound`/`host-bound`: only
    /// `no` is false).
    pub pubkey_authentication: Option<bool>,
    /// `KbdInteractiveAuthentication`.
    pub kbd_interactive_authentication: Option<bool>,
    /// `BatchMode`.
    pub batch_mode: Option<bool>,
    /// `Compression`.
    pub compression: Option<bool>,
    /// `ForwardAgent` as written (`yes`, `no`, a socket path or `$VAR`).
    pub forward_agent: Option<String>,
    /// `ConnectTimeout` in seconds.
    pub connect_timeout: Option<u64>,
    /// `ServerAliveInterval` in seconds.
    pub server_alive_interval: Option<u64>,
    /// `ServerAliveCountMax`.
    pub server_alive_count_max: Option<u32>,
    /// `LocalForward`s: `listen target`, as written.
    pub local_forwards: Vec<String>,
    /// `RemoteForward`s: `listen [target]`, as written.
    pub remote_forwards: Vec<String>,
    /// `DynamicForward`s, as written.
    pub dynamic_forwards: Vec<String>,
    /// `SendEnv` patterns.
    pub send_env: Vec<String>,
    /// `SetEnv` `NAME=value` pairs, values expanded.
    pub set_env: Vec<String>,
    /// `RemoteCommand`, tokens expanded.
    pub remote_command: Option<String>,
    /// `RequestTTY`.
    pub request_tty: Option<String>,
    /// `ControlPath` (unless `none`), expanded.
    pub control_path: Option<String>,
    /// Every keyword set, in the order first set: canonical lowercase
    /// name (aliases folded) and its values as written (one entry per
    /// argument; the command keywords and `ProxyJump` keep their rest of
    /// line as one value).
    pub options: Vec<(String, Vec<String>)>,
    /// Messages ssh prints without stopping (unsupported options, an
    /// `Include` path that could not be expanded).
    pub warnings: Vec<String>,
}

fn flag(v: Option<&str>) -> Option<bool> {
    v.map(|v| !matches!(v.to_ascii_lowercase().as_str(), "no" | "false"))
}

/// An interval as `convtime` reads it: `90`, `1h30m`, `2d`.
pub(super) fn convtime(s: &str) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut total: u64 = 0;
    let mut num: Option<u64> = None;
    for c in s.chars() {
        if let Some(d) = c.to_digit(10) {
            num = Some(
                num.unwrap_or(0)
                    .checked_mul(10)?
                    .checked_add(u64::from(d))?,
            );
            continue;
        }
        let mult = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86400,
            'w' => 604800,
            _ => return None,
        };
        total = total.checked_add(num.take()?.checked_mul(mult)?)?;
    }
    if let Some(n) = num {
        total = total.checked_add(n)?;
    }
    (total <= i32::MAX as u64).then_some(total)
}

impl ResolvedConfig {
    /// The values of `keyword` (lowercase, canonical), if any file set it.
    pub fn get(&self, keyword: &str) -> Option<&[String]> {
        self.options
            .iter()
            .find(|(k, _)| k == keyword)
            .map(|(_, v)| v.as_slice())
    }

    pub(super) fn build(
        ctx: &Context,
        opts: Options,
        hostname: String,
        warnings: Vec<String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let err = |e: String| ConfigError::one(e);
        let first = |k: &str| opts.first(k).map(str::to_string);
        let port = opts.first("port").and_then(parse_port).unwrap_or(22);
        let portstr = port.to_string();
        let jump = first("proxyjump").filter(|j| !j.eq_ignore_ascii_case("none"));
        let jmphost = match opts.first("proxyjump") {
            None => String::new(),
            Some(j) if j.eq_ignore_ascii_case("none") => j.to_string(),
            Some(j) => j
                .split(',')
                .next_back()
                .and_then(parse_hop)
                .map(|h| h.1)
                .unwrap_or_default(),
        };
        let short = ctx
            .local_hostname
            .split('.')
            .next()
            .unwrap_or("")
            .to_string();
        let uid = ctx.uid.to_string();
        let keyalias = first("hostkeyalias").unwrap_or_else(|| ctx.host.clone());
        let mut toks: Vec<(char, &str)> = vec![
            ('L', &short),
            ('i', &uid),
            ('k', &keyalias),
            ('l', &ctx.local_hostname),
            ('n', &ctx.host),
            ('p', &portstr),
            ('d', &ctx.home),
            ('h', &hostname),
            ('u', &ctx.local_user),
            ('j', &jmphost),
        ];
        // User from a file takes the tokens that do not need it.
        let user = match (&ctx.user, opts.first("user")) {
            (Some(u), _) => u.clone(),
            (None, Some(u)) => expand(u, &toks, Some(env)).map_err(err)?,
            (None, None) => ctx.local_user.clone(),
        };
        let hash = connection_hash(&[&ctx.local_hostname, &hostname, &portstr, &user, &jmphost]);
        toks.push(('C', &hash));
        toks.push(('r', &user));
        let path = |v: &str| expand(&tilde(v, &ctx.home), &toks, Some(env)).map_err(err);
        let paths = |k: &str| -> Result<Vec<String>, ConfigError> {
            opts.get(k).unwrap_or(&[]).iter().map(|v| path(v)).collect()
        };
        let user_known_hosts_files = match opts.get("userknownhostsfile") {
            Some([one]) if one.eq_ignore_ascii_case("none") => vec![one.clone()],
            _ => paths("userknownhostsfile")?,
        };
        let identity_agent = match opts.first("identityagent") {
            Some(a) if a.eq_ignore_ascii_case("none") || a == "SSH_AUTH_SOCK" => {
                Some(a.to_string())
            }
            Some(a) => Some(path(a)?),
            None => None,
        };
        let proxy_command = match opts.first("proxycommand") {
            Some(c) if jump.is_none() && !c.eq_ignore_ascii_case("none") => {
                let pt: [(char, &str); 5] = [
                    ('h', &hostname),
                    ('k', opts.first("hostkeyalias").unwrap_or(&ctx.host)),
                    ('n', &ctx.host),
                    ('p', &portstr),
                    ('r', &user),
                ];
                Some(expand(c, &pt, None).map_err(err)?)
            }
            _ => None,
        };
        let remote_command = match opts.first("remotecommand") {
            Some(c) if !c.eq_ignore_ascii_case("none") => {
                Some(expand(c, &toks, None).map_err(err)?)
            }
            _ => None,
        };
        let set_env = opts
            .get("setenv")
            .unwrap_or(&[])
            .iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                Ok(format!("{k}={}", expand(v, &toks, Some(env)).map_err(err)?))
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let control_path = match opts.first("controlpath") {
            Some(c) if !c.eq_ignore_ascii_case("none") => Some(path(c)?),
            _ => None,
        };
        let list = |k: &str| opts.get(k).map(<[String]>::to_vec).unwrap_or_default();
        Ok(Self {
            host: ctx.host.clone(),
            hostname: hostname.clone(),
            port,
            identity_files: paths("identityfile")?,
            certificate_files: paths("certificatefile")?,
            identities_only: flag(opts.first("identitiesonly")),
            identity_agent,
            proxy_jump: jump,
            proxy_command,
            user_known_hosts_files,
            global_known_hosts_files: list("globalknownhostsfile")
                .iter()
                .map(|v| tilde(v, &ctx.home))
                .collect(),
            strict_host_key_checking: first("stricthostkeychecking"),
            host_key_alias: first("hostkeyalias"),
            ciphers: first("ciphers"),
            macs: first("macs"),
            kex_algorithms: first("kexalgorithms"),
            host_key_algorithms: first("hostkeyalgorithms"),
            pubkey_accepted_algorithms: first("pubkeyacceptedalgorithms"),
            preferred_authentications: first("preferredauthentications"),
            password_authentication: flag(opts.first("passwordauthentication")),
            pubkey_authentication: flag(opts.first("pubkeyauthentication")),
            kbd_interactive_authentication: flag(opts.first("kbdinteractiveauthentication")),
            batch_mode: flag(opts.first("batchmode")),
            compression: flag(opts.first("compression")),
            forward_agent: first("forwardagent"),
            connect_timeout: opts.first("connecttimeout").and_then(convtime),
            server_alive_interval: opts.first("serveraliveinterval").and_then(convtime),
            server_alive_count_max: opts
                .first("serveralivecountmax")
                .and_then(|v| v.parse().ok()),
            local_forwards: list("localforward"),
            remote_forwards: list("remoteforward"),
            dynamic_forwards: list("dynamicforward"),
            send_env: list("sendenv"),
            set_env,
            remote_command,
            request_tty: first("requesttty"),
            control_path,
            user,
            options: opts
                .list
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
            warnings,
        })
    }
}
