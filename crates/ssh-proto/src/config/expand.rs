//! `%` tokens, `${ENV}` and `~` expansion, as OpenSSH's `percent_expand`,
//! `percent_dollar_expand` and `tilde_expand_filename`.

/// An environment lookup.
pub(crate) type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Expands `%x` tokens from `tokens` (and `%%`); with `env`, also
/// `${NAME}` from the environment. `Err` carries ssh's message.
pub(crate) fn expand(
    s: &str,
    tokens: &[(char, &str)],
    env: Option<Env<'_>>,
) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut it = s.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        if c == '$' && env.is_some() && s[i + 1..].starts_with('{') {
            let rest = &s[i + 2..];
            let Some(end) = rest.find('}') else {
                return Err(format!("environment variable '{s}' missing closing '}}'"));
            };
            let name = &rest[..end];
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(format!("invalid environment variable name in '{s}'"));
            }
            let Some(v) = env.and_then(|f| f(name)) else {
                return Err(format!("env var ${{{name}}} has no value"));
            };
            out.push_str(&v);
            // Skip "{name}".
            for _ in 0..name.chars().count() + 2 {
                it.next();
            }
            continue;
        }
        if c != '%' {
            out.push(c);
            continue;
        }
        match it.next() {
            None => return Err("percent_expand: invalid format".into()),
            Some((_, '%')) => out.push('%'),
            Some((_, k)) => match tokens.iter().find(|(t, _)| *t == k) {
                Some((_, v)) => out.push_str(v),
                None => return Err(format!("percent_expand: unknown key %{k}")),
            },
        }
    }
    Ok(out)
}

/// `~` or `~/...` becomes the home directory; anything else (including
/// `~user/...`, which needs the user database) is left alone.
pub(crate) fn tilde(s: &str, home: &str) -> String {
    if s == "~" {
        return home.to_string();
    }
    match s.strip_prefix("~/") {
        Some(rest) => format!("{}/{rest}", home.trim_end_matches('/')),
        None => s.to_string(),
    }
}

/// Lowercase hex of SHA-1 over the parts (`%C`).
pub(crate) fn connection_hash(parts: &[&str]) -> String {
    use sha1::{Digest, Sha1};
    let mut h = Sha1::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_env() {
        let t = [('h', "host"), ('p', "22")];
        assert_eq!(expand("%h:%p %%", &t, None).unwrap(), "host:22 %");
        assert!(expand("%x", &t, None)
            .unwrap_err()
            .contains("unknown key %x"));
        assert!(expand("a%", &t, None).is_err());
        let env = |n: &str| (n == "HOME").then(|| "/h".to_string());
        assert_eq!(expand("${HOME}/x/%h", &t, Some(&env)).unwrap(), "/h/x/host");
        assert_eq!(expand("${HOME}", &t, None).unwrap(), "${HOME}");
        assert!(expand("${NOPE}", &t, Some(&env)).is_err());
        assert!(expand("${HOME", &t, Some(&env)).is_err());
        assert_eq!(expand("$x é", &t, Some(&env)).unwrap(), "$x é");
    }

    #[test]
    fn tilde_forms() {
        assert_eq!(tilde("~/.ssh/id", "/home/u"), "/home/u/.ssh/id");
        assert_eq!(tilde("~", "/home/u"), "/home/u");
        assert_eq!(tilde("~bob/x", "/home/u"), "~bob/x");
        assert_eq!(tilde("/a", "/home/u"), "/a");
    }

    #[test]
    fn hash() {
        assert_eq!(
            connection_hash(&["abc"]),
            "a9993e364706816aba3e25717850c26c9cd0d89d"
        );
    }
}
