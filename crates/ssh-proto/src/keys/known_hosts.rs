//! OpenSSH `known_hosts` files (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT").
//!
//! Each line is `[@marker] patterns keytype base64 [comment]`. `patterns` is
//! either a comma list of host patterns (with `*`, `?` wildcards and `!`
//! negation; non-22 ports written as `[host]:port`) or one hashed entry
//! `|1|base64(salt)|base64(HMAC-SHA1(salt, host))`.

use base64ct::{Base64, Encoding};
use hmac::{KeyInit, Mac};

use super::PublicKey;

/// The verdict of [`KnownHosts::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostKeyStatus {
    /// An entry for the host holds this key.
    Match,
    /// Entries for the host exist (of this key type or another) but none holds this key.
    Mismatch,
    /// No entry matches the host.
    NotFound,
    /// A `@revoked` line for the host holds this key.
    Revoked,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    Revoked,
    CertAuthority,
}

#[derive(Debug, Clone)]
enum Hosts {
    /// Comma-separated pattern list, lowercased.
    Patterns(String),
    /// `|1|salt|hash`.
    Hashed { salt: Vec<u8>, hash: Vec<u8> },
}

#[derive(Debug, Clone)]
struct Entry {
    marker: Marker,
    hosts: Hosts,
    key: PublicKey,
}

/// A parsed `known_hosts` file.
#[derive(Debug, Clone, Default)]
pub struct KnownHosts {
    entries: Vec<Entry>,
}

impl KnownHosts {
    /// Parses `known_hosts` text. Never fails: blank lines, comments, malformed lines and
    /// lines with key types this crate does not support are skipped.
    pub fn parse(text: &str) -> KnownHosts {
        KnownHosts {
            entries: text.lines().filter_map(parse_line).collect(),
        }
    }

    /// Number of usable entries (including `@revoked` and `@cert-authority` lines).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no usable entry was found.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Looks `host` (a name or an IP literal) on `port` up and compares `key`.
    ///
    /// `@revoked` wins over everything; `@cert-authority` lines are ignored for plain keys.
    /// The host is compared case-insensitively (OpenSSH lowercases host names).
    ///
    /// On a port other than 22, when no entry names `[host]:port`, the bare `host` entries
    /// are tried as OpenSSH does ("checking without port identifier"): a key listed there
    /// matches, a revoked one is revoked, and anything else leaves the host unknown.
    pub fn check(&self, host: &str, port: u16, key: &PublicKey) -> HostKeyStatus {
        match self.check_exact(&host_string(host, port), key) {
            HostKeyStatus::NotFound if port != 22 => {
                match self.check_exact(&host_string(host, 22), key) {
                    s @ (HostKeyStatus::Match | HostKeyStatus::Revoked) => s,
                    HostKeyStatus::Mismatch | HostKeyStatus::NotFound => HostKeyStatus::NotFound,
                }
            }
            s => s,
        }
    }

    /// The verdict for entries naming exactly `lookup` (`host` or `[host]:port`).
    fn check_exact(&self, lookup: &str, key: &PublicKey) -> HostKeyStatus {
        let mut known = false;
        let mut matched = false;
        for e in self.entries.iter().filter(|e| e.hosts.matches(lookup)) {
            match e.marker {
                Marker::Revoked => {
                    if e.key == *key {
                        return HostKeyStatus::Revoked;
                    }
                }
                Marker::CertAuthority => {}
                Marker::None => {
                    known = true;
                    if e.key == *key {
                        matched = true;
                    }
                }
            }
        }
        if matched {
            HostKeyStatus::Match
        } else if known {
            HostKeyStatus::Mismatch
        } else {
            HostKeyStatus::NotFound
        }
    }

    /// The key types recorded for `host` on `port` (plain entries only), in file order without
    /// repeats, so a client can put these first in its HostKeyAlgorithms like OpenSSH does.
    pub fn known_key_types(&self, host: &str, port: u16) -> Vec<&'static str> {
        let lookup = host_string(host, port);
        let mut out: Vec<&'static str> = Vec::new();
        for e in &self.entries {
            if e.marker == Marker::None && e.hosts.matches(&lookup) {
                let t = e.key.key_type();
                if !out.contains(&t) {
                    out.push(t);
                }
            }
        }
        out
    }
}

/// The line to append for accept-new, OpenSSH style: `host key-type base64`, or
/// `[host]:port key-type base64` when `port != 22`. The host is lowercased. No newline.
pub fn known_hosts_line(host: &str, port: u16, key: &PublicKey) -> String {
    format!("{} {}", host_string(host, port), key.to_openssh())
}

/// The string OpenSSH matches and hashes: `host`, or `[host]:port` when `port != 22`.
fn host_string(host: &str, port: u16) -> String {
    let host = host.to_ascii_lowercase();
    if port == 22 {
        host
    } else {
        format!("[{host}]:{port}")
    }
}

fn parse_line(line: &str) -> Option<Entry> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let mut fields = line.split_ascii_whitespace();
    let mut first = fields.next()?;
    let marker = if first.starts_with('@') {
        let m = if first.eq_ignore_ascii_case("@revoked") {
            Marker::Revoked
        } else if first.eq_ignore_ascii_case("@cert-authority") {
            Marker::CertAuthority
        } else {
            return None;
        };
        first = fields.next()?;
        m
    } else {
        Marker::None
    };
    let key_type = fields.next()?;
    let b64 = fields.next()?;
    let hosts = if let Some(rest) = first.strip_prefix("|1|") {
        let (salt, hash) = rest.split_once('|')?;
        let salt = Base64::decode_vec(salt).ok()?;
        let hash = Base64::decode_vec(hash).ok()?;
        if hash.len() != 20 {
            return None;
        }
        Hosts::Hashed { salt, hash }
    } else if first.starts_with('|') {
        return None;
    } else {
        Hosts::Patterns(first.to_ascii_lowercase())
    };
    let key = PublicKey::from_type_and_base64(key_type, b64).ok()?;
    Some(Entry { marker, hosts, key })
}

impl Hosts {
    fn matches(&self, lookup: &str) -> bool {
        match self {
            Hosts::Hashed { salt, hash } => {
                let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(salt) else {
                    return false;
                };
                mac.update(lookup.as_bytes());
                mac.verify_slice(hash).is_ok()
            }
            Hosts::Patterns(list) => match_pattern_list(lookup, list),
        }
    }
}

/// OpenSSH `match_hostname`: true when some pattern matches and no negated pattern does.
fn match_pattern_list(s: &str, list: &str) -> bool {
    pattern_list_match(s, list) == ListMatch::Positive
}

/// Outcome of matching a string against a comma-separated pattern list (OpenSSH
/// `match_pattern_list`'s 1 / 0 / -1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListMatch {
    /// Some plain pattern matched and no negated pattern did.
    Positive,
    /// Nothing matched.
    NoMatch,
    /// A `!`-negated pattern matched.
    Negated,
}

/// OpenSSH `match_pattern_list` (case-sensitive: callers lowercase both sides when needed).
pub(crate) fn pattern_list_match(s: &str, list: &str) -> ListMatch {
    let mut positive = false;
    for pat in list.split(',') {
        let (negated, pat) = match pat.strip_prefix('!') {
            Some(p) => (true, p),
            None => (false, pat),
        };
        if glob_match(pat.as_bytes(), s.as_bytes()) {
            if negated {
                return ListMatch::Negated;
            }
            positive = true;
        }
    }
    if positive {
        ListMatch::Positive
    } else {
        ListMatch::NoMatch
    }
}

/// `*` matches any run of bytes, `?` any single byte (case-sensitive, as
/// OpenSSH's `match_pattern`). Linear-time two-pointer algorithm (no
/// recursion, so hostile patterns cannot blow up the stack or run
/// exponentially).
pub fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pat.len() && (pat[p] == b'?' || pat[p] == s[i]) {
            p += 1;
            i += 1;
        } else if p < pat.len() && pat[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pat[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_glob_and_pattern_lists() {
        assert!(glob_match(b"*", b""));
        assert!(glob_match(b"*", b"anything"));
        assert!(glob_match(b"*.example.com", b"a.b.example.com"));
        assert!(!glob_match(b"*.example.com", b"example.com"));
        assert!(glob_match(b"h?st", b"host"));
        assert!(!glob_match(b"h?st", b"hst"));
        assert!(glob_match(b"a*b*c", b"aXXbYYc"));
        assert!(!glob_match(b"a*b*c", b"aXXbYY"));
        assert!(glob_match(b"[*]:2222", b"[h]:2222"));
        assert!(match_pattern_list(
            "foo.example.com",
            "*.example.com,!bar.example.com"
        ));
        assert!(!match_pattern_list(
            "bar.example.com",
            "*.example.com,!bar.example.com"
        ));
        assert!(!match_pattern_list("bar.example.com", "!bar.example.com"));
        assert!(!match_pattern_list("x", ""));
        // A pathological pattern finishes quickly.
        let pat = "*a".repeat(50);
        let s = "a".repeat(40) + "b";
        assert!(!glob_match(pat.as_bytes(), s.as_bytes()));
    }

    #[test]
    fn keys_host_string_forms() {
        assert_eq!(host_string("Example.COM", 22), "example.com");
        assert_eq!(host_string("example.com", 2222), "[example.com]:2222");
        assert_eq!(host_string("::1", 2222), "[::1]:2222");
    }
}
