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

use std::net::IpAddr;

use super::known_hosts::{glob_match, pattern_list_match, ListMatch};
use super::PublicKey;

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

/// One `expiry-time=` value: a date and time, UTC or local.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpiryTime {
    /// 1970 or later.
    pub year: u32,
    /// 1..=12.
    pub month: u32,
    /// 1..=31 (a day past the month's end runs on into the next month, as with `mktime`).
    pub day: u32,
    /// 0..=23.
    pub hour: u32,
    /// 0..=59.
    pub minute: u32,
    /// 0..=60.
    pub second: u32,
    /// Written with a `Z` or `UTC` suffix; otherwise local time.
    pub utc: bool,
}

impl ExpiryTime {
    /// sshd's `parse_absolute_time`: `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`,
    /// optionally followed by `Z` or `UTC` (any case).
    pub fn parse(v: &str) -> Option<ExpiryTime> {
        let b = v.as_bytes();
        let (digits, utc) = if b.len() > 1 && b[b.len() - 1].eq_ignore_ascii_case(&b'z') {
            (&v[..v.len() - 1], true)
        } else if b.len() > 3 && b[b.len() - 3..].eq_ignore_ascii_case(b"utc") {
            (&v[..v.len() - 3], true)
        } else {
            (v, false)
        };
        if !matches!(digits.len(), 8 | 12 | 14) || !digits.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        let field = |r: std::ops::Range<usize>| -> u32 {
            digits.get(r).and_then(|f| f.parse().ok()).unwrap_or(0)
        };
        let e = ExpiryTime {
            year: field(0..4),
            month: field(4..6),
            day: field(6..8),
            hour: field(8..10),
            minute: field(10..12),
            second: field(12..14),
            utc,
        };
        let ok = e.year >= 1970
            && (1..=12).contains(&e.month)
            && (1..=31).contains(&e.day)
            && e.hour <= 23
            && e.minute <= 59
            && e.second <= 60;
        ok.then_some(e)
    }

    /// Seconds since the Unix epoch, reading the date and time as `utc_offset` seconds east
    /// of UTC (the offset is ignored for a UTC time).
    pub fn unix_time(&self, utc_offset: i64) -> i64 {
        // Days from 1970-01-01 to the civil date (the proleptic Gregorian calendar).
        let (y, m) = if self.month <= 2 {
            (i64::from(self.year) - 1, i64::from(self.month) + 9)
        } else {
            (i64::from(self.year), i64::from(self.month) - 3)
        };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let doy = (153 * m + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        let secs = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second);
        if self.utc {
            secs
        } else {
            secs - utc_offset
        }
    }
}

impl std::fmt::Display for ExpiryTime {
    /// sshd's `format_absolute_time` layout, `YYYY-MM-DDTHH:MM:SS`, with ` UTC` for a UTC time.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}",
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            if self.utc { " UTC" } else { "" }
        )
    }
}

// ---------------------------------------------------------------------------
// from= address matching
// ---------------------------------------------------------------------------

enum CidrEntry {
    /// Not an address: match it as a wildcard pattern instead.
    NotAddress,
    /// An address with a prefix length inconsistent with it (sshd's -2).
    Invalid,
    Net(IpAddr, u32),
}

/// sshd's `addr_pton_cidr`.
fn parse_cidr(p: &str) -> CidrEntry {
    if p.len() >= 64 {
        return CidrEntry::NotAddress;
    }
    let (addr, mask) = match p.split_once('/') {
        Some((a, m)) => {
            if m.is_empty() || !m.bytes().all(|c| c.is_ascii_digit()) {
                return CidrEntry::NotAddress;
            }
            match m.parse::<u32>() {
                Ok(n) if n <= 128 => (a, Some(n)),
                _ => return CidrEntry::NotAddress,
            }
        }
        None => (p, None),
    };
    let Ok(addr) = addr.parse::<IpAddr>() else {
        return CidrEntry::NotAddress;
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = mask.unwrap_or(max);
    if len > max || host_bits(addr, len) != 0 {
        return CidrEntry::Invalid;
    }
    CidrEntry::Net(addr, len)
}

fn addr_bits(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// The bits of `a` below its `len`-bit prefix.
fn host_bits(a: IpAddr, len: u32) -> u128 {
    let width = if a.is_ipv4() { 32 } else { 128 };
    let host = width - len.min(width);
    let mask = if host == 0 {
        0
    } else {
        u128::MAX >> (128 - host)
    };
    addr_bits(a) & mask
}

fn net_contains(net: IpAddr, len: u32, a: IpAddr) -> bool {
    if net.is_ipv4() != a.is_ipv4() {
        return false;
    }
    let width = if a.is_ipv4() { 32 } else { 128 };
    let shift = width - len.min(width);
    let (x, y) = (addr_bits(net), addr_bits(a));
    if shift >= 128 {
        true
    } else {
        x >> shift == y >> shift
    }
}

/// sshd's `addr_match_list`: `None` for a malformed list (which denies), otherwise whether
/// the client address matched a CIDR/wildcard entry, a negated one, or none.
fn addr_match_list(addr: Option<IpAddr>, addr_text: &str, list: &str) -> Option<ListMatch> {
    let Some(addr) = addr else {
        return Some(ListMatch::NoMatch);
    };
    let mut result = ListMatch::NoMatch;
    for entry in list.split(',') {
        let (negated, pat) = match entry.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, entry),
        };
        if pat.is_empty() {
            return None;
        }
        let matched = match parse_cidr(pat) {
            CidrEntry::Invalid => return None,
            CidrEntry::Net(net, len) => net_contains(net, len, addr),
            CidrEntry::NotAddress => glob_match(pat.as_bytes(), addr_text.as_bytes()),
        };
        if matched {
            if negated {
                return Some(ListMatch::Negated);
            }
            result = ListMatch::Positive;
        }
    }
    Some(result)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ED25519_LINE: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILcdzvjQPD5JVjZx1+WkztID8MU9mAjvGMAHiU8LJx9d alice@laptop";
    const ECDSA_LINE: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBO8rBy/qve2QjHx6vtD08FZqhbONmn+xXnyj79cPVvWag/VHmfAprh9oBtihwF3OcvSUB798cnk3ushN61YuWLU= bob@host";
    const RSA_LINE: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDAENb6d9aAsXhZYE9UgmVXpSg/sZW43vq8sZeCO/WhBZutCdAacK4NlzuX6D87UHCdiRNQRQ80JGj4kuBYmSIwpgEDKFiG64l08ZIxuGv5WMtVFVcxUGgLGvR8nR05yic+ts7G0vlcpmERkGchloxmAJN39LMvuyqCX5EhNtRSpN6HWy3sZv4byDXWZe9yc8u4eS5/nses4o7uvcdhAbPkMqB9ZwFmkTGIkLvBNRDoNSR7AeYKgEoz9zRLHGdiAnQsU8ZPDIehMAXwd1lzPGx5WEu2fvtcH1em7NVHhFTZnx8q7he710XJyFuaEnRJSl0ir9kpKg4NB1jPfgj7eP8j carol rsa key";

    fn key(line: &str) -> PublicKey {
        PublicKey::from_openssh(line).unwrap()
    }

    /// The key part of a test line, without its comment.
    fn bare(line: &str) -> String {
        key(line).to_openssh()
    }

    fn one(line: &str) -> AuthorizedKey {
        let ak = AuthorizedKeys::parse(line);
        assert!(ak.warnings.is_empty(), "{:?}", ak.warnings);
        assert_eq!(ak.keys.len(), 1);
        ak.keys.into_iter().next().unwrap()
    }

    fn opts(options: &str) -> KeyOptions {
        one(&format!("{options} {ED25519_LINE}")).options
    }

    fn parse_err(options: &str) -> String {
        let ak = AuthorizedKeys::parse(&format!("{options} {ED25519_LINE}"));
        assert!(ak.keys.is_empty(), "{options} should be rejected");
        assert_eq!(ak.warnings.len(), 1);
        ak.warnings[0].clone()
    }

    #[test]
    fn authorized_keys_plain_lines() {
        let text = format!(
            "# my keys\n\n{ED25519_LINE}\n   \n{ECDSA_LINE}\n\t{RSA_LINE}  \n{}\n",
            bare(ED25519_LINE)
        );
        let ak = AuthorizedKeys::parse(&text);
        assert!(ak.warnings.is_empty(), "{:?}", ak.warnings);
        assert_eq!(ak.len(), 4);
        assert_eq!(ak.keys[0].comment, "alice@laptop");
        assert_eq!(ak.keys[1].comment, "bob@host");
        assert_eq!(ak.keys[2].comment, "carol rsa key");
        assert_eq!(ak.keys[3].comment, "");
        assert_eq!(ak.keys[2].key.key_type(), "ssh-rsa");
        assert_eq!(ak.keys[1].key.key_type(), "ecdsa-sha2-nistp256");
        for line in [ED25519_LINE, ECDSA_LINE, RSA_LINE] {
            let found = ak.find(&key(line)).unwrap();
            assert_eq!(found.key, key(line));
            assert_eq!(found.options, KeyOptions::default());
        }
        assert_eq!(ak.find_all(&key(ED25519_LINE)).count(), 2);
        let other = AuthorizedKeys::parse(ECDSA_LINE);
        assert!(other.find(&key(ED25519_LINE)).is_none());
        assert!(AuthorizedKeys::parse("").is_empty());
    }

    #[test]
    fn authorized_keys_comment_with_spaces_and_tabs() {
        let k = one(&format!("{}  \t my  laptop\tkey  ", bare(RSA_LINE)));
        assert_eq!(k.comment, "my  laptop\tkey");
        let k = one(&format!("no-pty {}   a b c", bare(ECDSA_LINE)));
        assert_eq!(k.comment, "a b c");
        assert!(k.options.no_pty);
    }

    #[test]
    fn authorized_keys_crlf_line_endings() {
        let text = format!(
            "# comment\r\n\r\n{ED25519_LINE}\r\ncommand=\"ls\" {ECDSA_LINE}\r\n{RSA_LINE}\r\n"
        );
        let ak = AuthorizedKeys::parse(&text);
        assert!(ak.warnings.is_empty(), "{:?}", ak.warnings);
        assert_eq!(ak.len(), 3);
        assert_eq!(ak.keys[0].comment, "alice@laptop");
        assert_eq!(ak.keys[1].options.command.as_deref(), Some("ls"));
        assert_eq!(ak.keys[2].comment, "carol rsa key");
    }

    #[test]
    fn authorized_keys_quoted_options() {
        let o = opts(
            r#"command="echo \"hi, there\"; ls -l",environment="FOO=bar baz",environment="X_1=a=b",no-pty"#,
        );
        assert_eq!(o.command.as_deref(), Some(r#"echo "hi, there"; ls -l"#));
        assert_eq!(
            o.environment,
            vec![
                ("FOO".to_string(), "bar baz".to_string()),
                ("X_1".to_string(), "a=b".to_string())
            ]
        );
        assert!(o.no_pty);
        assert!(!o.no_port_forwarding && !o.restrict);

        // Only \" is an escape; other backslashes stay.
        let o = opts(r#"command="a\b\\c \"q\"""#);
        assert_eq!(o.command.as_deref(), Some(r#"a\b\\c "q""#));

        // First environment value for a name wins, as in sshd.
        let o = opts(r#"environment="A=1",environment="A=2""#);
        assert_eq!(o.environment, vec![("A".to_string(), "1".to_string())]);

        let o = opts(r#"from="*.example.com,!bad.example.com""#);
        assert_eq!(o.from.as_deref(), Some("*.example.com,!bad.example.com"));

        let o = opts(
            r#"permitopen="localhost:8080",permitopen="[::1]:*",permitlisten="2222",permitlisten="0.0.0.0:80""#,
        );
        assert_eq!(o.permitopen, vec!["localhost:8080", "[::1]:*"]);
        assert_eq!(o.permitlisten, vec!["*:2222", "0.0.0.0:80"]);

        let o =
            opts(r#"expiry-time="20991231",expiry-time="203001011200Z",expiry-time="20400101""#);
        assert_eq!(o.expiry_times.len(), 3);
        assert_eq!(o.expiry_times[1].to_string(), "2030-01-01T12:00:00 UTC");
        assert_eq!(o.expiry_times[2].to_string(), "2040-01-01T00:00:00");

        // Security-key options have no effect on the key types kept (see the module docs).
        let o = opts("no-touch-required,verify-required,touch-required");
        assert_eq!(o, KeyOptions::default());
    }

    #[test]
    fn authorized_keys_option_names_case_insensitive() {
        let o = opts(r#"NO-PTY,Command="x",No-Port-Forwarding,FROM="10.0.0.0/8""#);
        assert!(o.no_pty && o.no_port_forwarding);
        assert_eq!(o.command.as_deref(), Some("x"));
        assert_eq!(o.from.as_deref(), Some("10.0.0.0/8"));
    }

    #[test]
    fn authorized_keys_restrict_and_reenable() {
        let o = opts("restrict");
        assert!(o.restrict);
        assert!(o.no_pty && o.no_port_forwarding && o.no_agent_forwarding);
        assert!(o.no_x11_forwarding && o.no_user_rc);

        let o = opts("restrict,pty");
        assert!(o.restrict && !o.no_pty);
        assert!(o.no_port_forwarding && o.no_agent_forwarding && o.no_x11_forwarding);
        assert!(o.no_user_rc);

        let o = opts("restrict,port-forwarding,agent-forwarding,x11-forwarding,user-rc,pty");
        assert!(o.restrict);
        assert!(!o.no_pty && !o.no_port_forwarding && !o.no_agent_forwarding);
        assert!(!o.no_x11_forwarding && !o.no_user_rc);

        // Order matters: a later restrict wins.
        let o = opts("pty,restrict");
        assert!(o.no_pty);
        let o = opts("no-agent-forwarding,no-x11-forwarding,no-user-rc");
        assert!(o.no_agent_forwarding && o.no_x11_forwarding && o.no_user_rc);
        assert!(!o.no_pty && !o.restrict);
    }

    #[test]
    fn authorized_keys_options_that_cannot_be_honoured_refuse_the_line() {
        for (options, reason) in [
            ("cert-authority", "option cert-authority is not supported"),
            (
                r#"cert-authority,principals="alice""#,
                "option cert-authority is not supported",
            ),
            (
                r#"principals="alice""#,
                "option principals is not supported",
            ),
            (
                "no-pty,CERT-AUTHORITY",
                "option cert-authority is not supported",
            ),
            (r#"tunnel="0""#, "option tunnel is not supported"),
            (r#"tunnel="any""#, "option tunnel is not supported"),
        ] {
            let w = parse_err(options);
            assert!(w.contains(reason), "{options}: {w}");
        }
        // The key's other lines still count.
        let ak = AuthorizedKeys::parse(&format!(
            "cert-authority {ED25519_LINE}\nno-pty {ED25519_LINE}"
        ));
        assert_eq!(ak.len(), 1);
        assert_eq!(ak.warnings.len(), 1);
        assert!(ak.find(&key(ED25519_LINE)).unwrap().options.no_pty);
    }

    #[test]
    fn authorized_keys_expiry_times() {
        let e = ExpiryTime::parse("20300101").unwrap();
        assert_eq!(e.unix_time(0), 1_893_456_000);
        // Local time one hour east of UTC: an hour earlier in UTC.
        assert_eq!(e.unix_time(3600), 1_893_456_000 - 3600);
        let e = ExpiryTime::parse("203001012359utc").unwrap();
        assert!(e.utc);
        assert_eq!(e.unix_time(3600), 1_893_456_000 + 23 * 3600 + 59 * 60);
        assert_eq!(
            ExpiryTime::parse("20240229123456Z").unwrap().unix_time(0),
            1_709_210_096
        );
        assert_eq!(ExpiryTime::parse("19700102").unwrap().unix_time(0), 86_400);
        for bad in [
            "20300101246000",
            "Z",
            "é",
            "2030",
            "203001011",
            "20301301",
            "19691231",
            "2030010a",
        ] {
            assert!(ExpiryTime::parse(bad).is_none(), "{bad}");
        }

        // Expired strictly after the time, as in sshd; local times use the caller's offset.
        let o = opts(r#"expiry-time="203001010000Z""#);
        let t = 1_893_456_000;
        assert!(!o.is_expired(t, |_| panic!("not a local time")));
        assert!(o.is_expired(t + 1, |_| 0));
        let o = opts(r#"expiry-time="203001010100""#);
        assert!(!o.is_expired(t, |_| 0));
        assert!(o.is_expired(t + 1, |_| 3600));
        // Any of several expiry times.
        let o = opts(r#"expiry-time="20991231",expiry-time="20200101Z""#);
        assert!(o.is_expired(t, |_| 0));
        assert!(!KeyOptions::default().is_expired(i64::MAX, |_| 0));
    }

    #[test]
    fn authorized_keys_authorize_tries_each_line_like_sshd() {
        let k = key(ED25519_LINE);
        let now = 1_893_456_000; // 2030-01-01T00:00:00Z
        let text = format!(
            "expiry-time=\"20291231Z\" {ED25519_LINE}\nfrom=\"10.0.0.1\" {ED25519_LINE}\ncommand=\"ok\",expiry-time=\"20300102\" {ED25519_LINE}\n"
        );
        let ak = AuthorizedKeys::parse(&text);
        let found = ak.authorize(&k, "127.0.0.1", None, now, |_| 0).unwrap();
        assert_eq!(found.options.command.as_deref(), Some("ok"));
        // A day later the last line has expired too: every refusal is reported.
        let refused = ak
            .authorize(&k, "127.0.0.1", None, now + 2 * 86_400, |_| 0)
            .unwrap_err();
        assert_eq!(refused.len(), 3, "{refused:?}");
        assert!(
            refused[0].contains("expired at 2029-12-31T00:00:00 UTC"),
            "{refused:?}"
        );
        assert!(
            refused[1].contains("not allowed from 127.0.0.1"),
            "{refused:?}"
        );
        assert!(
            refused[2].contains("expired at 2030-01-02T00:00:00"),
            "{refused:?}"
        );
        // from= 10.0.0.1 lets that address in.
        assert!(ak
            .authorize(&k, "10.0.0.1", None, now + 2 * 86_400, |_| 0)
            .is_ok());
        // An unknown key: nothing to report.
        let other = AuthorizedKeys::parse(ECDSA_LINE);
        assert_eq!(
            other
                .authorize(&k, "127.0.0.1", None, now, |_| 0)
                .unwrap_err()
                .len(),
            0
        );
    }

    #[test]
    fn authorized_keys_from_patterns() {
        assert!(KeyOptions::default().from_allows("203.0.113.9", None));

        let o = opts(r#"from="!10.0.0.5,10.0.0.0/8,*.example.com,::1/128,192.168.1.*""#);
        assert!(o.from_allows("10.1.2.3", None));
        assert!(o.from_allows("10.1.2.3", Some("whatever.org")));
        assert!(!o.from_allows("10.0.0.5", None));
        assert!(!o.from_allows("10.0.0.5", Some("a.example.com")));
        assert!(o.from_allows("198.51.100.7", Some("host.example.com")));
        assert!(o.from_allows("198.51.100.7", Some("HOST.Example.COM")));
        assert!(!o.from_allows("198.51.100.7", Some("evil.org")));
        assert!(!o.from_allows("198.51.100.7", None));
        assert!(o.from_allows("::1", None));
        assert!(!o.from_allows("::2", None));
        assert!(o.from_allows("192.168.1.77", None));
        assert!(!o.from_allows("192.168.2.77", None));
        // IPv4-mapped IPv6 is the IPv4 address.
        assert!(o.from_allows("::ffff:10.9.9.9", None));
        assert!(!o.from_allows("::ffff:10.0.0.5", None));
        assert!(!o.from_allows("not an address", None));

        // A negated host name denies even when the address matches.
        let o = opts(r#"from="10.0.0.0/8,*.example.com,!bad.example.com""#);
        assert!(!o.from_allows("10.1.1.1", Some("bad.example.com")));
        assert!(!o.from_allows("198.51.100.7", Some("BAD.example.com")));
        assert!(o.from_allows("198.51.100.7", Some("good.example.com")));
        assert!(o.from_allows("10.1.1.1", Some("elsewhere.net")));

        // Only negations: nothing is allowed.
        let o = opts(r#"from="!10.0.0.1""#);
        assert!(!o.from_allows("10.0.0.2", None));

        // IPv6 networks and exact addresses.
        let o = opts(r#"from="2001:db8::/32,fe80::1""#);
        assert!(o.from_allows("2001:db8:1::42", None));
        assert!(o.from_allows("fe80::1", None));
        assert!(!o.from_allows("2001:db9::1", None));
        assert!(!o.from_allows("10.0.0.1", None));
        let o = opts(r#"from="0.0.0.0/0""#);
        assert!(o.from_allows("203.0.113.1", None));
        assert!(!o.from_allows("::1", None));

        // Host bits set in a CIDR entry, or an empty entry, make the list deny (sshd).
        let o = opts(r#"from="10.0.0.1/8,*""#);
        assert!(!o.from_allows("10.0.0.1", None));
        let o = opts(r#"from="10.0.0.0/33""#);
        assert!(!o.from_allows("10.0.0.1", None));
        let o = opts(r#"from="*,""#);
        assert!(!o.from_allows("10.0.0.1", Some("h")));
        // A mask that is not a number is a plain pattern, which matches nothing here.
        let o = opts(r#"from="10.0.0.0/x""#);
        assert!(!o.from_allows("10.0.0.1", None));
    }

    #[test]
    fn authorized_keys_rejected_options() {
        for (options, reason) in [
            ("bogus-option", "unknown key option"),
            ("no-pty,", "end with a comma"),
            ("no-pty,,pty", "unknown key option"),
            (r#"command=ls"#, "double quotes"),
            (r#"command="a"x"#, "unexpected text"),
            (r#"command="a",command="b""#, "multiple"),
            (r#"from="a",from="b""#, "multiple"),
            (r#"pty="yes""#, "takes no value"),
            ("command", "needs a quoted value"),
            (r#"environment="NOEQUALS""#, "invalid environment"),
            (
                r#"environment="1-BAD=x""#,
                "invalid environment variable name",
            ),
            (r#"environment="=x""#, "invalid environment variable name"),
            (r#"permitopen="host""#, "no port"),
            (r#"permitopen="host:0""#, "invalid permission port"),
            (r#"permitopen="host:65536""#, "invalid permission port"),
            (r#"permitopen="[::1:22""#, "invalid permission host"),
            (r#"permitlisten="abc""#, "invalid permission port"),
            (r#"expiry-time="2030""#, "invalid expiry-time"),
            (r#"expiry-time="20301301""#, "invalid expiry-time"),
            (r#"tunnel="x""#, "invalid tunnel"),
            (r#"command="unterminated"#, "unterminated quote"),
        ] {
            let w = parse_err(options);
            assert!(w.starts_with("line 1: "), "{w}");
            assert!(w.contains(reason), "{options}: {w}");
        }
    }

    #[test]
    fn authorized_keys_garbage_lines_are_skipped() {
        let long = "x".repeat(1_000_000);
        let quotes = "\"".repeat(100_001);
        let long_option = format!("command=\"{}\" {}", "y".repeat(200_000), ED25519_LINE);
        let lines: Vec<String> = vec![
            ED25519_LINE.into(),                                               // 1 ok
            "garbage".into(),                                                  // 2
            "ssh-ed25519 !!!not-base64!!! c".into(),                           // 3
            "ssh-ed25519".into(),                                              // 4
            format!("ssh-rsa {}", &bare(ED25519_LINE)[12..]),                  // 5 type mismatch
            "ssh-dss AAAAB3NzaC1kc3MAAACBAP comment".into(),                   // 6
            "no-pty".into(),                                                   // 7
            "no-pty   ".into(), // 8 (trimmed: same as 7)
            format!("command=\"unterminated {ED25519_LINE}"), // 9
            format!("bogus {ECDSA_LINE}"), // 10
            long.clone(),       // 11
            quotes,             // 12
            "\u{0}\u{1}\u{7f} ssh-ed25519 AAAA".into(), // 13
            "ключ ssh-ed25519 AAAAC3Nza".into(), // 14
            format!("command=\"é\\\" {ED25519_LINE}"), // 15 unterminated
            "\\\"\\\"\\".into(), // 16
            format!("no-pty unknown-type-name {}", &bare(ED25519_LINE)[12..]), // 17
            format!("{long} {RSA_LINE}"), // 18
            long_option,        // 19 ok
            RSA_LINE.into(),    // 20 ok
        ];
        let ak = AuthorizedKeys::parse(&lines.join("\n"));
        assert_eq!(ak.len(), 3, "{:?}", ak.warnings);
        assert_eq!(
            ak.keys[1].options.command.as_ref().map(String::len),
            Some(200_000)
        );
        assert_eq!(ak.keys[2].comment, "carol rsa key");
        let numbers: Vec<usize> = ak
            .warnings
            .iter()
            .map(|w| {
                assert!(w.len() < 300, "warning too long: {} bytes", w.len());
                w.strip_prefix("line ")
                    .unwrap()
                    .split(':')
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap()
            })
            .collect();
        assert_eq!(numbers, (2..=18).collect::<Vec<_>>(), "{:?}", ak.warnings);
        assert!(
            ak.warnings[4].contains("unsupported key type ssh-dss"),
            "{}",
            ak.warnings[4]
        );
        assert!(
            ak.warnings[15].contains("unknown key type"),
            "{}",
            ak.warnings[15]
        );
    }

    #[test]
    fn authorized_keys_pseudo_random_input_never_panics() {
        const PIECES: &[&str] = &[
            "\"",
            "\\",
            "\\\"",
            ",",
            "=",
            " ",
            "\t",
            "\r",
            "\n",
            "#",
            "!",
            "*",
            "no-pty",
            "command",
            "from",
            "environment",
            "restrict",
            "pty",
            "permitopen",
            "expiry-time",
            "ssh-ed25519",
            "ssh-rsa",
            "AAAA",
            "AAAAC3NzaC1lZDI1NTE5",
            ":",
            "[",
            "]",
            "é",
            "0",
            "/",
            "\u{0}",
        ];
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            let n = (next() % 40) as usize;
            let mut text = String::new();
            for _ in 0..n {
                text.push_str(PIECES[(next() % PIECES.len() as u64) as usize]);
            }
            // Sometimes follow random options with a real key.
            if next() % 3 == 0 {
                text.push(' ');
                text.push_str(ED25519_LINE);
            }
            let ak = AuthorizedKeys::parse(&text);
            for k in &ak.keys {
                let _ = k.options.from_allows("10.0.0.1", Some("h.example.com"));
                let _ = k.options.from_allows("::1", None);
            }
        }
    }

    #[test]
    fn authorized_keys_cidr_helpers() {
        assert!(matches!(parse_cidr("10.0.0.0/8"), CidrEntry::Net(_, 8)));
        assert!(matches!(parse_cidr("10.0.0.1"), CidrEntry::Net(_, 32)));
        assert!(matches!(parse_cidr("::1/128"), CidrEntry::Net(_, 128)));
        assert!(matches!(parse_cidr("::/0"), CidrEntry::Net(_, 0)));
        assert!(matches!(parse_cidr("10.0.0.1/8"), CidrEntry::Invalid));
        assert!(matches!(parse_cidr("10.0.0.0/40"), CidrEntry::Invalid));
        assert!(matches!(parse_cidr("10.0.0.0/129"), CidrEntry::NotAddress));
        assert!(matches!(parse_cidr("10.0.0.*"), CidrEntry::NotAddress));
        assert!(matches!(parse_cidr("10.0.0.0/"), CidrEntry::NotAddress));
        assert!(matches!(parse_cidr("host/8"), CidrEntry::NotAddress));
    }
}
