//! The evaluation: `read_config_file_depth`, `process_config_line_depth`
//! and `match_cfg_line` of OpenSSH's `readconf.c`, over strings.

use super::expand::{connection_hash, expand, tilde};
use super::keywords::{self, Kind};
use super::lex::{
    cidr_contains, match_pattern, match_pattern_list, parse_cidr_list, split_args, split_keyword,
};
use super::{
    ConfigError, ConfigFile, ResolvedConfig, Resolver, MAX_FILES, MAX_INCLUDE_DEPTH, MAX_LINES,
    MAX_LINE_LEN,
};

/// Most values one accumulating keyword may collect (OpenSSH allows 100
/// identity and certificate files).
const MAX_VALUES: usize = 100;

/// The options set so far, in the order first set.
#[derive(Default)]
pub(super) struct Options {
    pub(super) list: Vec<(&'static str, Vec<String>)>,
}

impl Options {
    pub(super) fn get(&self, k: &str) -> Option<&[String]> {
        self.list
            .iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.as_slice())
    }

    pub(super) fn first(&self, k: &str) -> Option<&str> {
        self.get(k).and_then(|v| v.first()).map(String::as_str)
    }

    fn entry(&mut self, k: &'static str) -> &mut Vec<String> {
        let i = match self.list.iter().position(|(n, _)| *n == k) {
            Some(i) => i,
            None => {
                self.list.push((k, Vec::new()));
                self.list.len() - 1
            }
        };
        &mut self.list[i].1
    }

    fn set_once(&mut self, k: &'static str, v: Vec<String>) {
        if self.get(k).is_none() {
            self.list.push((k, v));
        }
    }

    pub(super) fn replace(&mut self, k: &'static str, v: Vec<String>) {
        *self.entry(k) = v;
    }
}

/// A line's outcome besides success.
enum LineErr {
    /// Counted as a bad option; the file goes on, then ssh stops.
    Bad(Vec<String>),
    /// ssh stops at once.
    Fatal(ConfigError),
}

fn bad(msg: String) -> LineErr {
    LineErr::Bad(vec![msg])
}

struct Eval<'r, 'a> {
    r: &'r mut Resolver<'a>,
    opts: Options,
    /// The name `Host` lines match: the command-line host, then in the
    /// final pass the resolved host name.
    host: String,
    final_pass: bool,
    want_final: bool,
    files_read: usize,
    warnings: Vec<String>,
}

pub(super) fn resolve(
    r: &mut Resolver<'_>,
    files: &[ConfigFile],
) -> Result<ResolvedConfig, ConfigError> {
    let ctx = r.ctx;
    let mut ev = Eval {
        host: ctx.host.clone(),
        r,
        opts: Options::default(),
        final_pass: false,
        want_final: false,
        files_read: 0,
        warnings: Vec::new(),
    };
    if let Some(u) = &ctx.user {
        ev.opts.replace("user", vec![u.clone()]);
    }
    if let Some(p) = ctx.port {
        ev.opts.replace("port", vec![p.to_string()]);
    }
    for o in &ctx.options {
        // As `ssh -o`: line 0 of "command-line", always active.
        if let Some((kw, _)) = split_keyword(o) {
            let kw = kw.to_ascii_lowercase();
            if let Some(d) = ["host", "match", "include"].iter().find(|d| **d == kw) {
                let mut d = d.to_string();
                d[..1].make_ascii_uppercase();
                return Err(ConfigError::one(format!(
                    "{d} directive not supported as a command-line option"
                )));
            }
        }
        let mut active = true;
        match ev.line("command-line", 0, o, true, &mut active, false, 0) {
            Ok(()) => {}
            Err(LineErr::Bad(m)) => return Err(ConfigError { messages: m }),
            Err(LineErr::Fatal(e)) => return Err(e),
        }
    }
    ev.pass(files)?;
    // ssh.c: the host name takes its %h, and is lowercased unless it is an
    // address.
    let mut host = match ev.opts.first("hostname") {
        Some(h) => expand(h, &[('h', &ctx.host)], None).map_err(ConfigError::one)?,
        None => ctx.host.clone(),
    };
    if host.parse::<std::net::IpAddr>().is_err() {
        host = host.to_ascii_lowercase();
    }
    let canon = ev
        .opts
        .first("canonicalizehostname")
        .is_some_and(|v| !v.eq_ignore_ascii_case("no"));
    if ev.want_final || canon {
        ev.opts.replace("hostname", vec![host.clone()]);
        ev.host = host.clone();
        ev.final_pass = true;
        ev.files_read = 0;
        ev.pass(files)?;
    }
    let Eval { opts, warnings, .. } = ev;
    ResolvedConfig::build(ctx, opts, host, warnings, &*r.env)
}

impl Eval<'_, '_> {
    fn pass(&mut self, files: &[ConfigFile]) -> Result<(), ConfigError> {
        for f in files {
            let mut active = true;
            self.file(&f.path, &f.contents, f.user, &mut active, false, 0)?;
        }
        Ok(())
    }

    fn file(
        &mut self,
        path: &str,
        contents: &str,
        user: bool,
        active: &mut bool,
        never_match: bool,
        depth: usize,
    ) -> Result<(), ConfigError> {
        if depth > MAX_INCLUDE_DEPTH {
            return Err(ConfigError::one(
                "Too many recursive configuration includes",
            ));
        }
        self.files_read += 1;
        if self.files_read > MAX_FILES {
            return Err(ConfigError::one(format!(
                "{path}: too many configuration files (max {MAX_FILES})"
            )));
        }
        let mut messages = Vec::new();
        let mut bad_count = 0usize;
        for (i, line) in contents.split('\n').enumerate() {
            let n = i + 1;
            if n > MAX_LINES {
                return Err(ConfigError::one(format!(
                    "{path}: too many lines (max {MAX_LINES})"
                )));
            }
            if line.len() > MAX_LINE_LEN {
                return Err(ConfigError::one(format!(
                    "{path} line {n}: line too long (max {MAX_LINE_LEN} bytes)"
                )));
            }
            match self.line(path, n, line, user, active, never_match, depth) {
                Ok(()) => {}
                Err(LineErr::Bad(m)) => {
                    bad_count += 1;
                    messages.extend(m);
                }
                Err(LineErr::Fatal(mut e)) => {
                    messages.append(&mut e.messages);
                    return Err(ConfigError { messages });
                }
            }
        }
        if bad_count > 0 {
            messages.push(format!(
                "{path}: terminating, {bad_count} bad configuration options"
            ));
            return Err(ConfigError { messages });
        }
        self.warnings.extend(messages);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn line(
        &mut self,
        path: &str,
        n: usize,
        line: &str,
        user: bool,
        active: &mut bool,
        never_match: bool,
        depth: usize,
    ) -> Result<(), LineErr> {
        let Some((kw, rest)) = split_keyword(line) else {
            return Ok(());
        };
        let lower = kw.to_ascii_lowercase();
        if rest.is_empty() {
            return Err(bad(format!(
                "{path} line {n}: no argument after keyword \"{lower}\""
            )));
        }
        let Some((name, kind)) = keywords::lookup(&lower) else {
            let ignored = self
                .opts
                .first("ignoreunknown")
                .is_some_and(|p| match_pattern_list(&lower, p, true) == Some(true));
            if ignored {
                return Ok(());
            }
            return Err(bad(format!(
                "{path}: line {n}: Bad configuration option: {lower}"
            )));
        };
        let Some(args) = split_args(rest) else {
            return Err(bad(format!("{path} line {n}: invalid quotes")));
        };
        let on = *active;
        let extra = || {
            bad(format!(
                "{path} line {n}: keyword {lower} extra arguments at end of line"
            ))
        };
        let missing = || bad(format!("{path} line {n}: Missing argument."));
        match kind {
            Kind::Single | Kind::IgnoreUnknown => {
                let Some(a) = args.first().filter(|a| !a.is_empty()) else {
                    return Err(missing());
                };
                if args.len() > 1 {
                    return Err(extra());
                }
                if keywords::is_flag(name)
                    && !["yes", "no", "true", "false"]
                        .iter()
                        .any(|f| a.eq_ignore_ascii_case(f))
                {
                    return Err(bad(format!("{path} line {n}: unsupported option \"{a}\".")));
                }
                if name == "port" && parse_port(a).is_none() {
                    return Err(bad(format!("{path} line {n}: Bad port '{a}'.")));
                }
                if on {
                    self.opts.set_once(name, vec![a.clone()]);
                }
            }
            Kind::List => {
                if args.is_empty() {
                    return Err(missing());
                }
                if args.iter().any(String::is_empty) {
                    return Err(bad(format!(
                        "{path} line {n}: keyword {lower} empty argument"
                    )));
                }
                if name.ends_with("knownhostsfile")
                    && args.len() > 1
                    && args.iter().any(|a| a.eq_ignore_ascii_case("none"))
                {
                    return Err(bad(format!(
                        "{path} line {n}: keyword {lower} \"none\" argument must appear alone."
                    )));
                }
                if name == "setenv" && args.iter().any(|a| !a.contains('=')) {
                    return Err(bad(format!("{path} line {n}: Invalid SetEnv.")));
                }
                if on {
                    let mut v = args;
                    if name == "setenv" {
                        // A repeated name keeps its first value.
                        let mut seen: Vec<String> = Vec::new();
                        v.retain(|a| {
                            let k = a.split('=').next().unwrap_or("").to_string();
                            let dup = seen.contains(&k);
                            seen.push(k);
                            !dup
                        });
                    }
                    self.opts.set_once(name, v);
                }
            }
            Kind::Accumulate => {
                let Some(a) = args.first().filter(|a| !a.is_empty()) else {
                    return Err(missing());
                };
                if args.len() > 1 {
                    return Err(extra());
                }
                if on {
                    self.add_value(path, n, name, a.clone())?;
                }
            }
            Kind::Forward => {
                let Some(a) = args.first().filter(|a| !a.is_empty()) else {
                    return Err(missing());
                };
                let b = args.get(1).filter(|b| !b.is_empty());
                if args.len() > 2 {
                    return Err(extra());
                }
                let v = match b {
                    Some(b) => format!("{a} {b}"),
                    None if name == "remoteforward" => a.clone(),
                    None => return Err(bad(format!("{path} line {n}: Missing target argument."))),
                };
                if on {
                    self.add_value(path, n, name, v)?;
                }
            }
            Kind::Command => {
                // ProxyJump, when set first, stands for ProxyCommand too.
                let jump = name == "proxycommand"
                    && self
                        .opts
                        .first("proxyjump")
                        .is_some_and(|j| !j.eq_ignore_ascii_case("none"));
                // VersionAddendum alone drops a trailing comment.
                let v = match name {
                    "versionaddendum" => rest.split('#').next().unwrap_or("").trim_end(),
                    _ => rest,
                };
                if on && !jump {
                    self.opts.set_once(name, vec![v.to_string()]);
                }
            }
            Kind::ProxyJump => {
                let spec = rest.split('#').next().unwrap_or("").trim_end();
                if spec.eq_ignore_ascii_case("none") {
                    if on {
                        self.opts.set_once(name, vec!["none".into()]);
                    }
                } else {
                    if parse_jump_last(spec).is_none() {
                        return Err(bad(format!(
                            "{path} line {n}: Invalid ProxyJump \"{rest}\""
                        )));
                    }
                    if on && self.opts.get("proxycommand").is_none() {
                        self.opts.set_once(name, vec![spec.to_string()]);
                    }
                }
            }
            Kind::SendEnv => {
                if args.iter().any(|a| a.is_empty() || a.contains('=')) {
                    return Err(bad(format!("{path} line {n}: Invalid environment name.")));
                }
                if on {
                    for a in args {
                        let list = self.opts.entry(name);
                        if let Some(pat) = a.strip_prefix('-') {
                            list.retain(|e| !match_pattern(e, pat));
                        } else if list.len() < MAX_VALUES {
                            list.push(a);
                        }
                    }
                }
            }
            Kind::Host => {
                *active = false;
                for a in &args {
                    if a.is_empty() {
                        return Err(bad(format!(
                            "{path} line {n}: keyword {lower} empty argument"
                        )));
                    }
                    if never_match {
                        break;
                    }
                    let (neg, pat) = match a.strip_prefix('!') {
                        Some(p) => (true, p),
                        None => (false, a.as_str()),
                    };
                    if match_pattern(&self.host, pat) {
                        if neg {
                            *active = false;
                            break;
                        }
                        *active = true;
                    }
                }
            }
            Kind::Match => {
                let r = self.match_line(path, n, &args);
                match r {
                    Ok(v) => *active = !never_match && v,
                    Err(mut m) => {
                        m.push(format!("{path} line {n}: Bad Match condition"));
                        return Err(LineErr::Bad(m));
                    }
                }
            }
            Kind::Include => self.include(path, n, &lower, &args, user, active, depth)?,
            Kind::Refuse => {
                if on {
                    let a = args.first().map(String::as_str).unwrap_or("");
                    return Err(LineErr::Fatal(ConfigError::one(format!(
                        "{path} line {n}: RefuseConnection: {a}"
                    ))));
                }
            }
            Kind::Deprecated => {}
            Kind::Unsupported => {
                self.warnings
                    .push(format!("{path} line {n}: Unsupported option \"{lower}\""));
            }
        }
        Ok(())
    }

    fn add_value(
        &mut self,
        path: &str,
        n: usize,
        name: &'static str,
        v: String,
    ) -> Result<(), LineErr> {
        let list = self.opts.entry(name);
        // ssh adds an identity, certificate or forward only once.
        if list.contains(&v) {
            return Ok(());
        }
        if list.len() >= MAX_VALUES {
            return Err(bad(format!(
                "{path} line {n}: Too many {name} entries (max {MAX_VALUES})."
            )));
        }
        list.push(v);
        Ok(())
    }

    /// The host name `Match host` and `Match exec` see.
    fn match_host(&self) -> Result<String, String> {
        let ctx = self.r.ctx;
        match self.opts.first("hostname") {
            Some(h) if self.final_pass => Ok(h.to_string()),
            Some(h) => expand(h, &[('h', &self.host)], None),
            None => Ok(self.host.clone()),
        }
        .map(|h| if h.is_empty() { ctx.host.clone() } else { h })
    }

    /// Tokens for `Match exec` and `Include` (expand_match_exec_or_include_path).
    fn early_tokens(&self) -> Result<Vec<(char, String)>, String> {
        let ctx = self.r.ctx;
        let host = self.match_host()?;
        let port = self.opts.first("port").unwrap_or("22").to_string();
        let ruser = self
            .opts
            .first("user")
            .unwrap_or(&ctx.local_user)
            .to_string();
        let jump = match self.opts.first("proxyjump") {
            None => String::new(),
            Some(j) if j.eq_ignore_ascii_case("none") => String::new(),
            Some(j) => parse_jump_last(j).unwrap_or_default(),
        };
        let short = ctx
            .local_hostname
            .split('.')
            .next()
            .unwrap_or("")
            .to_string();
        let hash = connection_hash(&[&ctx.local_hostname, &host, &port, &ruser, &jump]);
        let keyalias = self.opts.first("hostkeyalias").unwrap_or(&host).to_string();
        Ok(vec![
            ('C', hash),
            ('L', short),
            ('d', ctx.home.clone()),
            ('h', host),
            ('k', keyalias),
            ('l', ctx.local_hostname.clone()),
            ('n', ctx.host.clone()),
            ('p', port),
            ('r', ruser),
            ('u', ctx.local_user.clone()),
            ('i', ctx.uid.to_string()),
            ('j', jump),
        ])
    }

    fn match_line(&mut self, path: &str, n: usize, args: &[String]) -> Result<bool, Vec<String>> {
        let ctx = self.r.ctx;
        let host = self.match_host().map_err(|e| vec![e])?;
        let ruser = self
            .opts
            .first("user")
            .unwrap_or(&ctx.local_user)
            .to_string();
        let mut result = true;
        let mut attributes = 0usize;
        let mut i = 0usize;
        while i < args.len() {
            let oattrib = args[i].as_str();
            i += 1;
            let (negate, attrib) = match oattrib.strip_prefix('!') {
                Some(a) => (true, a),
                None => (false, oattrib),
            };
            let a = attrib.to_ascii_lowercase();
            if a == "all" {
                if attributes > 1 || args.get(i).is_some_and(|x| !x.is_empty()) {
                    return Err(vec![format!(
                        "{path} line {n}: '{oattrib}' cannot be combined with other Match attributes"
                    )]);
                }
                if result {
                    result = !negate;
                }
                return Ok(result);
            }
            attributes += 1;
            if a == "canonical" || a == "final" {
                if a == "final" {
                    self.want_final |= !negate;
                }
                if self.final_pass == negate {
                    result = false;
                }
                continue;
            }
            let (a, arg) = match a.split_once('=') {
                Some((k, _))
                    if matches!(
                        k,
                        "host"
                            | "originalhost"
                            | "user"
                            | "localuser"
                            | "localnetwork"
                            | "version"
                            | "tagged"
                            | "command"
                            | "exec"
                    ) =>
                {
                    let v = &attrib[k.len() + 1..];
                    (k.to_string(), Some(v.to_string()))
                }
                _ => {
                    let v = args.get(i).cloned();
                    if v.is_some() {
                        i += 1;
                    }
                    (a, v)
                }
            };
            let Some(arg) = arg else {
                return Err(vec![format!(
                    "{path} line {n}: missing argument for Match '{oattrib}'"
                )]);
            };
            if arg.is_empty() && a != "tagged" && a != "command" {
                return Err(vec![format!("Missing Match criteria for {attrib}")]);
            }
            let r = match a.as_str() {
                "host" => match_pattern_list(&host.to_ascii_lowercase(), &arg, true) == Some(true),
                "originalhost" => {
                    match_pattern_list(&ctx.host.to_ascii_lowercase(), &arg, true) == Some(true)
                }
                "user" => match_pattern_list(&ruser, &arg, false) == Some(true),
                "localuser" => match_pattern_list(&ctx.local_user, &arg, false) == Some(true),
                "localnetwork" => {
                    let nets = parse_cidr_list(&arg)
                        .map_err(|e| vec![format!("Invalid network/mask \"{e}\"")])?;
                    ctx.local_addrs.iter().any(|&ip| cidr_contains(&nets, ip))
                }
                "version" => match_pattern_list(&ctx.version, &arg, false) == Some(true),
                "tagged" => {
                    let tag = self.opts.first("tag").unwrap_or("");
                    if tag.is_empty() {
                        arg.is_empty()
                    } else {
                        match_pattern_list(tag, &arg, false) == Some(true)
                    }
                }
                "command" => {
                    let cmd = ctx.remote_command.as_deref().unwrap_or("");
                    if cmd.is_empty() {
                        arg.is_empty()
                    } else {
                        match_pattern_list(cmd, &arg, false) == Some(true)
                    }
                }
                "sessiontype" => {
                    let st = self.opts.first("sessiontype").map(str::to_ascii_lowercase);
                    let kind = match st.as_deref() {
                        Some("subsystem") => "subsystem",
                        Some("none") => "none",
                        _ if ctx.remote_command.as_deref().is_some_and(|c| !c.is_empty()) => "exec",
                        _ => "shell",
                    };
                    match_pattern_list(kind, &arg, false) == Some(true)
                }
                "exec" => {
                    let toks = self.early_tokens().map_err(|e| vec![e])?;
                    let t: Vec<(char, &str)> = toks.iter().map(|(c, s)| (*c, s.as_str())).collect();
                    let cmd = expand(&arg, &t, None).map_err(|e| {
                        vec![
                            e,
                            format!("{path} line {n}: failed to expand match exec '{arg}'"),
                        ]
                    })?;
                    if !result {
                        continue;
                    }
                    (self.r.exec)(&cmd)
                }
                _ => return Err(vec![format!("Unsupported Match attribute {attrib}")]),
            };
            if r == negate {
                result = false;
            }
        }
        if attributes == 0 {
            return Err(vec!["One or more attributes required for Match".into()]);
        }
        Ok(result)
    }

    #[allow(clippy::too_many_arguments)]
    fn include(
        &mut self,
        path: &str,
        n: usize,
        lower: &str,
        args: &[String],
        user: bool,
        active: &mut bool,
        depth: usize,
    ) -> Result<(), LineErr> {
        let ctx = self.r.ctx;
        for arg in args {
            if arg.is_empty() {
                return Err(bad(format!(
                    "{path} line {n}: keyword {lower} empty argument"
                )));
            }
            let toks = self.early_tokens().map_err(bad)?;
            let t: Vec<(char, &str)> = toks.iter().map(|(c, s)| (*c, s.as_str())).collect();
            let p = match expand(arg, &t, Some(&*self.r.env)) {
                Ok(p) => p,
                Err(_) => {
                    self.warnings.push(format!(
                        "{path} line {n}: Unable to expand user config file '{arg}'"
                    ));
                    continue;
                }
            };
            if p.starts_with('~') && !user {
                return Err(bad(format!("{path} line {n}: bad include path {p}.")));
            }
            let full = if !p.starts_with('/') && !p.starts_with('~') {
                if user {
                    format!("~/.ssh/{p}")
                } else {
                    format!("/etc/ssh/{p}")
                }
            } else {
                p
            };
            let pattern = tilde(&full, &ctx.home);
            let found = (self.r.include)(&pattern);
            let oactive = *active;
            for (fpath, contents) in found {
                let r = self.file(&fpath, &contents, user, active, !oactive, depth + 1);
                *active = oactive;
                r.map_err(LineErr::Fatal)?;
            }
        }
        Ok(())
    }
}

/// A port number as `a2port` takes it: 1..=65535, decimal.
pub(super) fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u16>().ok().filter(|&p| p != 0)
}

/// Checks a ProxyJump list (`[user@]host[:port]` or `ssh://` URIs, comma
/// separated) and returns the host of its last hop (ssh's `%j`).
pub(super) fn parse_jump_last(spec: &str) -> Option<String> {
    let mut last = None;
    for hop in spec.split(',') {
        last = Some(parse_hop(hop)?.1);
    }
    last
}

/// One hop: (user, host, port).
pub(super) fn parse_hop(hop: &str) -> Option<(Option<String>, String, Option<u16>)> {
    let hop = hop.strip_prefix("ssh://").unwrap_or(hop);
    let (user, hostport) = match hop.rsplit_once('@') {
        Some((u, h)) => (Some(u.to_string()).filter(|u| !u.is_empty()), h),
        None => (None, hop),
    };
    let (host, port) = if let Some(r) = hostport.strip_prefix('[') {
        let (h, after) = r.split_once(']')?;
        match after {
            "" => (h, None),
            p => (h, Some(parse_port(p.strip_prefix(':')?)?)),
        }
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(parse_port(p)?)),
            None => (hostport, None),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/' || c == '@') {
        return None;
    }
    Some((user, host.to_string(), port))
}
