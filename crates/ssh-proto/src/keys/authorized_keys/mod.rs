//! OpenSSH `authorized_keys` files (sshd(8) "AUTHORIZED_KEYS FILE FORMAT").
//!
//! Each line is `[options] keytype base64 [comment]`. Blank lines and lines starting with
//! `#` are ignored. A line starts with options iff its first whitespace-separated token is not
//! a key type name. Options are comma-separated `name` flags or `name="value"` pairs; values
//! may contain spaces and commas, and `\"` stands for a literal `"` (no other escapes exist).
//! Option names are case-insensitive.
//!
//! Like sshd, a line that does not parse (unknown option, unterminated quote, bad key...) is
//! skipped; unlike sshd, which only logs it, the reason is kept in
//! [`AuthorizedKeys::warnings`].
//!
//! Every option of sshd(8), and what becomes of it here:
//!
//! | option | here |
//! |---|---|
//! | `command=` | recorded in [`KeyOptions::command`]; the server application runs it instead of the client's command |
//! | `environment=` | recorded in [`KeyOptions::environment`]; the application sets it |
//! | `from=` | enforced by [`AuthorizedKeys::authorize`] ([`KeyOptions::from_allows`]) |
//! | `expiry-time=` | enforced by [`AuthorizedKeys::authorize`] ([`KeyOptions::is_expired`]) |
//! | `restrict`, `[no-]pty`, `[no-]port-forwarding`, `[no-]agent-forwarding`, `[no-]x11-forwarding`, `[no-]user-rc` | recorded as `no_*` flags; the application refuses what they forbid |
//! | `permitopen=`, `permitlisten=` | recorded; the application allows only those forwardings |
//! | `touch-required`, `no-touch-required`, `verify-required` | accepted: in sshd they only act on security-key (`sk-*`) signatures, and lines with those key types are refused here as unsupported, so on every line kept they have no effect in sshd either |
//! | `cert-authority`, `principals=` | **refused** (the line is skipped with a warning): this crate has no certificates, and sshd itself denies `principals=` on a non-CA line |
//! | `tunnel=` | **refused**: this crate has no tun forwarding |

mod expiry;
mod from;
#[cfg(test)]
mod tests;

use std::net::IpAddr;

use super::known_hosts::{pattern_list_match, ListMatch};
use super::PublicKey;
pub use expiry::ExpiryTime;
use from::addr_match_list;

/// Key type names sshd recognises at the start of a key. Lines using one of these that this
/// crate cannot parse are reported as unsupported rather than as bad options.
const KNOWN_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-ed25519-cert-v01@openssh.com",
    "sk-ssh-ed25519@openssh.com",
    "sk-ssh-ed25519-cert-v01@openssh.com",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "ecdsa-sha2-nistp384-cert-v01@openssh.com",
    "ecdsa-sha2-nistp521-cert-v01@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
    "sk-ecdsa-sha2-nistp256-cert-v01@openssh.com",
    "webauthn-sk-ecdsa-sha2-nistp256@openssh.com",
    "ssh-rsa",
    "ssh-rsa-cert-v01@openssh.com",
    "rsa-sha2-256",
    "rsa-sha2-512",
    "rsa-sha2-256-cert-v01@openssh.com",
    "rsa-sha2-512-cert-v01@openssh.com",
    "ssh-dss",
    "ssh-dss-cert-v01@openssh.com",
    "ssh-xmss@openssh.com",
    "ssh-xmss-cert-v01@openssh.com",
];

/// Key types [`PublicKey`] can parse.
const SUPPORTED_KEY_TYPES: &[&str] = &[
    super::ED25519,
    super::ECDSA_P256,
    super::ECDSA_P384,
    super::ECDSA_P521,
    super::SSH_RSA,
];

/// sshd's `SSH_AUTHOPT_ENV_MAX`.
const ENV_MAX: usize = 1024;
/// sshd's `SSH_AUTHOPT_PERMIT_MAX`.
const PERMIT_MAX: usize = 4096;
/// `NI_MAXHOST`: longest host accepted in `permitopen`/`permitlisten`.
const MAX_HOST_LEN: usize = 1025;
/// sshd's `SSH_TUNID_MAX`.
const TUNID_MAX: u32 = 0x7fff_fffd;

/// The options of one `authorized_keys` line (sshd(8) "AUTHORIZED_KEYS FILE FORMAT").
///
/// `restrict` turns on every `no_*` flag; a later `pty`, `port-forwarding`,
/// `agent-forwarding`, `x11-forwarding` or `user-rc` turns the matching flag back off.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyOptions {
    /// `command="..."`: forced command.
    pub command: Option<String>,
    /// `environment="NAME=value"`, in file order; for a repeated name the first one wins.
    pub environment: Vec<(String, String)>,
    /// `from="pattern-list"`, as written; see [`KeyOptions::from_allows`].
    pub from: Option<String>,
    /// `no-pty` (or `restrict` without a later `pty`).
    pub no_pty: bool,
    /// `no-port-forwarding` (or `restrict` without a later `port-forwarding`).
    pub no_port_forwarding: bool,
    /// `no-agent-forwarding` (or `restrict` without a later `agent-forwarding`).
    pub no_agent_forwarding: bool,
    /// `no-x11-forwarding` (or `restrict` without a later `x11-forwarding`).
    pub no_x11_forwarding: bool,
    /// `no-user-rc` (or `restrict` without a later `user-rc`).
    pub no_user_rc: bool,
    /// `permitopen="host:port"` entries (port may be `*`), in file order.
    pub permitopen: Vec<String>,
    /// `permitlisten="[host:]port"` entries; a bare port is stored as `*:port`, as sshd does.
    pub permitlisten: Vec<String>,
    /// Every `expiry-time="YYYYMMDD[HHMM[SS]][Z|UTC]"`, in file order. The line is expired
    /// once any of them has passed (sshd keeps the earliest); see [`KeyOptions::is_expired`].
    pub expiry_times: Vec<ExpiryTime>,
    /// `restrict` was given.
    pub restrict: bool,
}

/// One usable `authorized_keys` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedKey {
    /// The public key.
    pub key: PublicKey,
    /// Everything after the base64 key, trimmed (may contain spaces; empty when absent).
    pub comment: String,
    /// The line's options.
    pub options: KeyOptions,
}

/// A parsed `authorized_keys` file.
#[derive(Debug, Clone, Default)]
pub struct AuthorizedKeys {
    /// Usable lines, in file order.
    pub keys: Vec<AuthorizedKey>,
    /// One entry per skipped line: `"line N: reason"` (N counts from 1).
    pub warnings: Vec<String>,
}

impl AuthorizedKeys {
    /// Parses `authorized_keys` text (LF or CRLF line endings). Never fails and never
    /// panics: lines that do not parse are skipped and described in [`warnings`](Self::warnings).
    pub fn parse(text: &str) -> AuthorizedKeys {
        let mut out = AuthorizedKeys::default();
        for (i, line) in text.lines().enumerate() {
            match parse_line(line) {
                Ok(Some(k)) => out.keys.push(k),
                Ok(None) => {}
                Err(reason) => out.warnings.push(format!("line {}: {}", i + 1, reason)),
            }
        }
        out
    }

    /// The first line holding `key`, whatever its options.
    ///
    /// sshd tries every line holding the key until one's options (`from=`, `expiry-time=`)
    /// allow the connection; [`authorize`](Self::authorize) does that.
    pub fn find(&self, key: &PublicKey) -> Option<&AuthorizedKey> {
        self.keys.iter().find(|k| k.key == *key)
    }

    /// Every line holding `key`, in file order.
    pub fn find_all<'a>(
        &'a self,
        key: &'a PublicKey,
    ) -> impl Iterator<Item = &'a AuthorizedKey> + 'a {
        self.keys.iter().filter(move |k| k.key == *key)
    }

    /// sshd's check of a key against the file (`check_authkeys_file` and
    /// `auth_authorise_keyopts`): the first line holding `key` whose options let this
    /// connection in, or, when none does, one reason per line holding the key that refused it
    /// (for the log; empty when no line holds the key).
    ///
    /// `ip` and `hostname` are the client's, as for [`KeyOptions::from_allows`]; `now` is the
    /// time in seconds since the Unix epoch and `utc_offset` the local zone's offset, as for
    /// [`KeyOptions::is_expired`]. (This crate reads no clock: the caller passes the time.)
    pub fn authorize(
        &self,
        key: &PublicKey,
        ip: &str,
        hostname: Option<&str>,
        now: i64,
        utc_offset: impl Fn(&ExpiryTime) -> i64,
    ) -> Result<&AuthorizedKey, Vec<String>> {
        let mut refused = Vec::new();
        for (i, entry) in self.keys.iter().enumerate() {
            if entry.key != *key {
                continue;
            }
            if let Some(at) = entry.options.expired_at(now, &utc_offset) {
                refused.push(format!(
                    "key {} (entry {}) expired at {at}",
                    key.fingerprint(),
                    i + 1
                ));
                continue;
            }
            if !entry.options.from_allows(ip, hostname) {
                refused.push(format!(
                    "key {} (entry {}) not allowed from {ip} (from=\"{}\")",
                    key.fingerprint(),
                    i + 1,
                    entry.options.from.as_deref().unwrap_or("").escape_default()
                ));
                continue;
            }
            return Ok(entry);
        }
        Err(refused)
    }

    /// Number of usable lines.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when no usable line was found.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl KeyOptions {
    /// sshd's expiry check: true when an `expiry-time` of the line lies before `now` (seconds
    /// since the Unix epoch); at that very second the key is still valid, as in sshd.
    ///
    /// A time written with `Z` or `UTC` is UTC. One without is local time, as sshd reads it
    /// (`mktime`): `utc_offset` gives the local zone's offset east of UTC, in seconds, in
    /// effect at that local date and time (e.g. 3600 for 12:00 in Paris in winter). It is
    /// not called for UTC times; pass `|_| 0` for a server that runs on UTC.
    pub fn is_expired(&self, now: i64, utc_offset: impl Fn(&ExpiryTime) -> i64) -> bool {
        self.expired_at(now, &utc_offset).is_some()
    }

    /// The earliest expiry time before `now`, if any.
    fn expired_at(&self, now: i64, utc_offset: &dyn Fn(&ExpiryTime) -> i64) -> Option<ExpiryTime> {
        let unix = |e: &ExpiryTime| e.unix_time(if e.utc { 0 } else { utc_offset(e) });
        self.expiry_times
            .iter()
            .filter(|e| unix(e) < now)
            .min_by_key(|e| unix(e))
            .copied()
    }

    /// sshd's `from=` check (`match_host_and_ip`): true when there is no `from=` option, or
    /// when the client's IP address or canonical host name matches the pattern list and
    /// neither matches a `!`-negated entry.
    ///
    /// Entries are `*`/`?` wildcards matched against the host name (case-insensitively) and
    /// against the textual IP address, or CIDR networks (`10.0.0.0/8`, `::1/128`, a bare
    /// address) matched against the IP address. `hostname` is the client's canonical (DNS
    /// verified) name; `None` means "not resolved", and the IP text is used instead, as sshd
    /// does with `UseDNS no`. An IPv4-mapped IPv6 address is treated as the IPv4 address.
    /// A malformed CIDR entry (host bits set, e.g. `10.0.0.1/8`) or an empty entry makes the
    /// whole list deny, as in sshd.
    pub fn from_allows(&self, ip: &str, hostname: Option<&str>) -> bool {
        let Some(list) = &self.from else {
            return true;
        };
        let addr = ip.parse::<IpAddr>().ok().map(|a| match a {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
            v4 => v4,
        });
        let ip_text = addr.map_or_else(|| ip.to_string(), |a| a.to_string());
        let ip_match = match addr_match_list(addr, &ip_text, list) {
            Some(m) => m,
            None => return false,
        };
        if ip_match == ListMatch::Negated {
            return false;
        }
        let host = hostname.unwrap_or(&ip_text).to_ascii_lowercase();
        match pattern_list_match(&host, &list.to_ascii_lowercase()) {
            ListMatch::Negated => false,
            ListMatch::Positive => true,
            ListMatch::NoMatch => ip_match == ListMatch::Positive,
        }
    }
}

// ---------------------------------------------------------------------------
// Line parsing
// ---------------------------------------------------------------------------

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Splits off the first space/tab-separated token; the rest has its leading blanks removed.
fn split_token(s: &str) -> (&str, &str) {
    match s.find(is_blank) {
        Some(i) => (&s[..i], s[i..].trim_start_matches(is_blank)),
        None => (s, ""),
    }
}

/// A short, escaped excerpt of untrusted text for a warning message.
fn excerpt(s: &str) -> String {
    const MAX: usize = 40;
    let mut out: String = s
        .chars()
        .take(MAX)
        .collect::<String>()
        .escape_default()
        .to_string();
    if s.chars().nth(MAX).is_some() {
        out.push_str("...");
    }
    format!("\"{out}\"")
}

fn parse_line(line: &str) -> Result<Option<AuthorizedKey>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (first, _) = split_token(line);
    let (options, key_part) = if KNOWN_KEY_TYPES.contains(&first) {
        (KeyOptions::default(), line)
    } else {
        let end = options_end(line)?;
        (parse_options(&line[..end])?, line[end..].trim_start())
    };
    let (key_type, rest) = split_token(key_part);
    if key_type.is_empty() {
        return Err("options but no key".into());
    }
    if !KNOWN_KEY_TYPES.contains(&key_type) {
        return Err(format!("unknown key type {}", excerpt(key_type)));
    }
    if !SUPPORTED_KEY_TYPES.contains(&key_type) {
        return Err(format!("unsupported key type {key_type}"));
    }
    let (b64, comment) = split_token(rest);
    if b64.is_empty() {
        return Err(format!("{key_type} key without base64 data"));
    }
    let key = PublicKey::from_type_and_base64(key_type, b64).map_err(|e| e.detail().to_string())?;
    Ok(Some(AuthorizedKey {
        key,
        comment: comment.trim().to_string(),
        options,
    }))
}

/// sshd's `sshkey_advance_past_options`: the byte offset of the first space or tab outside
/// double quotes (`\"` never toggles quoting).
fn options_end(line: &str) -> Result<usize, String> {
    let b = line.as_bytes();
    let mut quoted = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if b.get(i + 1) == Some(&b'"') => i += 1,
            b'"' => quoted = !quoted,
            b' ' | b'\t' if !quoted => return Ok(i),
            _ => {}
        }
        i += 1;
    }
    if quoted {
        Err("unterminated quote in options".into())
    } else {
        Ok(b.len())
    }
}

/// sshd's `opt_dequote`: `s` must start with `"`; returns the value (with `\"` unescaped) and
/// the text after the closing quote.
fn dequote(s: &str) -> Result<(String, &str), String> {
    let Some(body) = s.strip_prefix('"') else {
        return Err("option value must be in double quotes".into());
    };
    let mut value = String::new();
    let mut chars = body.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' if matches!(chars.peek(), Some((_, '"'))) => {
                value.push('"');
                chars.next();
            }
            '"' => return Ok((value, &body[i + 1..])),
            c => value.push(c),
        }
    }
    Err("missing closing quote in option value".into())
}

/// sshd's `sshauthopt_parse` over the options field (which contains no unquoted blanks).
fn parse_options(s: &str) -> Result<KeyOptions, String> {
    let mut o = KeyOptions::default();
    let mut rest = s;
    loop {
        let name_end = rest.find(['=', ',']).unwrap_or(rest.len());
        let name = &rest[..name_end];
        rest = &rest[name_end..];
        let value = match rest.strip_prefix('=') {
            Some(r) => {
                let (v, r) = dequote(r)?;
                rest = r;
                Some(v)
            }
            None => None,
        };
        apply_option(&mut o, name, value)?;
        if rest.is_empty() {
            return Ok(o);
        }
        match rest.strip_prefix(',') {
            Some("") => return Err("options end with a comma".into()),
            Some(r) => rest = r,
            None => {
                return Err(format!(
                    "unexpected text {} after option {}",
                    excerpt(rest),
                    excerpt(name)
                ))
            }
        }
    }
}

const FLAG_OPTIONS: &[&str] = &[
    "restrict",
    "cert-authority",
    "pty",
    "no-pty",
    "port-forwarding",
    "no-port-forwarding",
    "agent-forwarding",
    "no-agent-forwarding",
    "x11-forwarding",
    "no-x11-forwarding",
    "user-rc",
    "no-user-rc",
    "touch-required",
    "no-touch-required",
    "verify-required",
    "no-verify-required",
];

const VALUE_OPTIONS: &[&str] = &[
    "command",
    "environment",
    "from",
    "permitopen",
    "permitlisten",
    "principals",
    "expiry-time",
    "tunnel",
];

fn apply_option(o: &mut KeyOptions, name: &str, value: Option<String>) -> Result<(), String> {
    let lname = name.to_ascii_lowercase();
    let lname = lname.as_str();
    let Some(v) = value else {
        match lname {
            "restrict" => {
                o.restrict = true;
                o.no_pty = true;
                o.no_port_forwarding = true;
                o.no_agent_forwarding = true;
                o.no_x11_forwarding = true;
                o.no_user_rc = true;
            }
            // No certificates in this crate: a CA line cannot be honoured.
            "cert-authority" => {
                return Err("option cert-authority is not supported (no certificates)".into())
            }
            "pty" => o.no_pty = false,
            "no-pty" => o.no_pty = true,
            "port-forwarding" => o.no_port_forwarding = false,
            "no-port-forwarding" => o.no_port_forwarding = true,
            "agent-forwarding" => o.no_agent_forwarding = false,
            "no-agent-forwarding" => o.no_agent_forwarding = true,
            "x11-forwarding" => o.no_x11_forwarding = false,
            "no-x11-forwarding" => o.no_x11_forwarding = true,
            "user-rc" => o.no_user_rc = false,
            "no-user-rc" => o.no_user_rc = true,
            // Security-key (FIDO) options. sshd applies them only to sk-* signatures, and
            // lines with sk-* keys are refused here as unsupported key types, so on every
            // line that is kept they have no effect in sshd either.
            "touch-required" | "no-touch-required" | "verify-required" | "no-verify-required" => {}
            _ if VALUE_OPTIONS.contains(&lname) => {
                return Err(format!("option {lname} needs a quoted value"))
            }
            _ => return Err(format!("unknown key option {}", excerpt(name))),
        }
        return Ok(());
    };
    match lname {
        "command" => set_once(&mut o.command, v, "command")?,
        "from" => set_once(&mut o.from, v, "from")?,
        // sshd denies principals= on a non-CA line, and cert-authority is refused here.
        "principals" => return Err("option principals is not supported (no certificates)".into()),
        "environment" => {
            if o.environment.len() >= ENV_MAX {
                return Err("too many environment options".into());
            }
            let Some((env_name, env_value)) = v.split_once('=') else {
                return Err(format!("invalid environment string {}", excerpt(&v)));
            };
            if env_name.is_empty()
                || !env_name
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_')
            {
                return Err(format!(
                    "invalid environment variable name {}",
                    excerpt(env_name)
                ));
            }
            if !o.environment.iter().any(|(n, _)| n == env_name) {
                o.environment
                    .push((env_name.to_string(), env_value.to_string()));
            }
        }
        "permitopen" => {
            let p = permit(v, false)?;
            push_permit(&mut o.permitopen, p)?;
        }
        "permitlisten" => {
            let p = permit(v, true)?;
            push_permit(&mut o.permitlisten, p)?;
        }
        "expiry-time" => {
            let e = ExpiryTime::parse(&v)
                .ok_or_else(|| format!("invalid expiry-time {}", excerpt(&v)))?;
            if o.expiry_times.len() >= PERMIT_MAX {
                return Err("too many expiry-time options".into());
            }
            o.expiry_times.push(e);
        }
        "tunnel" => {
            let ok = v == "any" || v.parse::<u32>().is_ok_and(|n| n <= TUNID_MAX);
            if !ok {
                return Err(format!("invalid tunnel device {}", excerpt(&v)));
            }
            // No tun forwarding in this crate: the restriction cannot be honoured.
            return Err("option tunnel is not supported (no tun forwarding)".into());
        }
        _ if FLAG_OPTIONS.contains(&lname) => return Err(format!("option {lname} takes no value")),
        _ => return Err(format!("unknown key option {}", excerpt(name))),
    }
    Ok(())
}

fn set_once(slot: &mut Option<String>, v: String, name: &str) -> Result<(), String> {
    if slot.is_some() {
        return Err(format!("multiple \"{name}\" options"));
    }
    *slot = Some(v);
    Ok(())
}

fn push_permit(list: &mut Vec<String>, p: String) -> Result<(), String> {
    if list.len() >= PERMIT_MAX {
        return Err("too many permitopen/permitlisten options".into());
    }
    list.push(p);
    Ok(())
}

/// Validates a `permitopen`/`permitlisten` value like sshd's `handle_permit`: `host:port`,
/// `[v6addr]:port` (or `/` instead of `:`); port is `*` or 1..=65535. With `allow_bare_port`
/// (permitlisten) a value without `:` is a port and becomes `*:port`.
fn permit(v: String, allow_bare_port: bool) -> Result<String, String> {
    let v = if allow_bare_port && !v.contains(':') {
        format!("*:{v}")
    } else {
        v
    };
    // sshd's hpdelim2.
    let host_end = if v.starts_with('[') {
        v.find(']').map(|i| i + 1)
    } else {
        Some(v.find([':', '/']).unwrap_or(v.len()))
    };
    let port = match host_end {
        Some(i) if i <= MAX_HOST_LEN => match v.as_bytes().get(i) {
            Some(b':') | Some(b'/') => &v[i + 1..],
            None => return Err(format!("permission {} has no port", excerpt(&v))),
            Some(_) => return Err(format!("invalid permission host in {}", excerpt(&v))),
        },
        _ => return Err(format!("invalid permission host in {}", excerpt(&v))),
    };
    if port != "*" && !port.parse::<u16>().is_ok_and(|p| p > 0) {
        return Err(format!("invalid permission port in {}", excerpt(&v)));
    }
    Ok(v)
}
