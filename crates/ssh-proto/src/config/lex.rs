//! Line splitting and pattern matching as OpenSSH's `readconf.c`,
//! `misc.c` (`strdelim`, `argv_split`) and `match.c` do them.

use std::net::IpAddr;

/// Whitespace for config lines.
fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// A config line split into its keyword and the rest of the line (after
/// the keyword's delimiter: whitespace, or one `=` with whitespace around).
/// `None` for a blank or comment line.
pub(crate) fn split_keyword(line: &str) -> Option<(&str, &str)> {
    let line = line.trim_end_matches(|c: char| is_ws(c) || c == '\x0c');
    let line = line.trim_start_matches(is_ws);
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line
        .find(|c: char| is_ws(c) || c == '=' || c == '"')
        .unwrap_or(line.len());
    let keyword = &line[..end];
    let mut rest = &line[end..];
    // One '=' may separate the keyword from its value, with whitespace on
    // either side (strdelim).
    rest = rest.trim_start_matches(is_ws);
    if let Some(r) = rest.strip_prefix('=') {
        rest = r.trim_start_matches(is_ws);
    }
    Some((keyword, rest))
}

/// Splits arguments as `argv_split(s, .., terminate_on_comment = 1)`:
/// whitespace separates, `"` and `'` quote, `\` escapes a quote, a
/// backslash or (outside quotes) a space; a `#` starting an argument ends
/// the line. `None` for an unterminated quote.
pub(crate) fn split_args(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut it = s.chars().peekable();
    loop {
        while matches!(it.peek(), Some(' ' | '\t')) {
            it.next();
        }
        match it.peek() {
            None | Some('#') => return Some(out),
            _ => {}
        }
        let mut arg = String::new();
        let mut quote: Option<char> = None;
        while let Some(&c) = it.peek() {
            if c == '\\' {
                it.next();
                match it.peek() {
                    Some(&n)
                        if n == '\'' || n == '"' || n == '\\' || (quote.is_none() && n == ' ') =>
                    {
                        arg.push(n);
                        it.next();
                    }
                    _ => arg.push('\\'),
                }
                continue;
            }
            if quote.is_none() && (c == ' ' || c == '\t') {
                break;
            }
            it.next();
            match quote {
                None if c == '"' || c == '\'' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ => arg.push(c),
            }
        }
        if quote.is_some() {
            return None;
        }
        out.push(arg);
    }
}

/// Shell-style wildcard match (`*` any run, `?` one character), as
/// OpenSSH's `match_pattern`. Iterative, so no input can make it recurse
/// deeply.
pub(crate) fn match_pattern(s: &str, pat: &str) -> bool {
    let s: Vec<char> = s.chars().collect();
    let p: Vec<char> = pat.chars().collect();
    let (mut si, mut pi) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == s[si]) {
            si += 1;
            pi += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, si));
            pi += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

/// `match_pattern_list`: a comma-separated list of patterns, each maybe
/// negated with `!`. `Some(true)` positive match, `Some(false)` a negated
/// pattern matched, `None` nothing matched. With `lower`, patterns are
/// lowercased first.
pub(crate) fn match_pattern_list(s: &str, list: &str, lower: bool) -> Option<bool> {
    let mut positive = false;
    for sub in list.split(',') {
        let (neg, sub) = match sub.strip_prefix('!') {
            Some(r) => (true, r),
            None => (false, sub),
        };
        // OpenSSH gives up (no match) on a subpattern of 1023+ bytes.
        if sub.len() >= 1023 {
            return None;
        }
        let m = if lower {
            match_pattern(s, &sub.to_ascii_lowercase())
        } else {
            match_pattern(s, sub)
        };
        if m {
            if neg {
                return Some(false);
            }
            positive = true;
        }
    }
    positive.then_some(true)
}

/// A CIDR list entry: address and prefix length.
fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (a, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = a.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => {
            if l.is_empty() || !l.bytes().all(|b| b.is_ascii_digit()) || l.len() > 3 {
                return None;
            }
            l.parse::<u8>().ok().filter(|&n| n <= max)?
        }
        None => max,
    };
    // OpenSSH refuses host bits set beyond the prefix.
    if masked(addr, len) != addr {
        return None;
    }
    Some((addr, len))
}

fn masked(a: IpAddr, len: u8) -> IpAddr {
    match a {
        IpAddr::V4(v) => {
            let bits = u32::from(v);
            let m = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            IpAddr::V4((bits & m).into())
        }
        IpAddr::V6(v) => {
            let bits = u128::from(v);
            let m = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            IpAddr::V6((bits & m).into())
        }
    }
}

/// Checks a comma-separated CIDR list (`Match localnetwork`); `Err` names
/// the first bad entry.
pub(crate) fn parse_cidr_list(list: &str) -> Result<Vec<(IpAddr, u8)>, String> {
    list.split(',')
        .map(|e| parse_cidr(e).ok_or_else(|| e.to_string()))
        .collect()
}

/// Whether `addr` lies inside one of the networks.
pub(crate) fn cidr_contains(nets: &[(IpAddr, u8)], addr: IpAddr) -> bool {
    nets.iter()
        .any(|&(net, len)| net.is_ipv4() == addr.is_ipv4() && masked(addr, len) == net)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyword_forms() {
        assert_eq!(split_keyword("Host foo"), Some(("Host", "foo")));
        assert_eq!(split_keyword("  Port=22"), Some(("Port", "22")));
        assert_eq!(split_keyword("Port = 22 "), Some(("Port", "22")));
        assert_eq!(split_keyword("Port\t22\r\n"), Some(("Port", "22")));
        assert_eq!(split_keyword("# c"), None);
        assert_eq!(split_keyword("   "), None);
        assert_eq!(split_keyword("User"), Some(("User", "")));
    }

    #[test]
    fn args_quotes_comments() {
        let v = split_args(r#"a "b c" 'd e' f\ g # comment"#).unwrap();
        assert_eq!(v, ["a", "b c", "d e", "f g"]);
        assert_eq!(split_args("x#y").unwrap(), ["x#y"]);
        assert_eq!(split_args(r#"a\"b"#).unwrap(), ["a\"b"]);
        assert_eq!(split_args(r"a\qb").unwrap(), [r"a\qb"]);
        assert!(split_args("\"open").is_none());
        assert_eq!(split_args("\"\"").unwrap(), [""]);
    }

    #[test]
    fn patterns() {
        assert!(match_pattern("foo.example.com", "*.example.com"));
        assert!(match_pattern("a", "?"));
        assert!(!match_pattern("ab", "?"));
        assert!(match_pattern("", "*"));
        assert!(match_pattern("abcabd", "*ab?"));
        assert!(!match_pattern("x", ""));
        assert_eq!(match_pattern_list("foo", "bar,f*", false), Some(true));
        assert_eq!(match_pattern_list("foo", "f*,!foo", false), Some(false));
        assert_eq!(match_pattern_list("foo", "bar", false), None);
        assert_eq!(match_pattern_list("foo", "FOO", true), Some(true));
    }

    #[test]
    fn cidr() {
        let n = parse_cidr_list("10.0.0.0/8,fe80::/10").unwrap();
        assert!(cidr_contains(&n, "10.1.2.3".parse().unwrap()));
        assert!(!cidr_contains(&n, "11.1.2.3".parse().unwrap()));
        assert!(cidr_contains(&n, "fe80::1".parse().unwrap()));
        assert!(parse_cidr_list("10.0.0.1/8").is_err());
        assert!(parse_cidr_list("10.0.0.0/33").is_err());
        assert!(parse_cidr_list("nonsense").is_err());
        assert!(parse_cidr_list("0.0.0.0/0").is_ok());
    }
}
