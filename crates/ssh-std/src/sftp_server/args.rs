//! The command line of OpenSSH's `sftp-server`: [`ServerArgs`], the
//! start directory's expansion and the usage line.

use ssh_proto::sftp::SftpServerConfig;

/// The options of OpenSSH's `sftp-server` (and of sshd's `internal-sftp`),
/// parsed as its `getopt(3)` does: bundled flags (`-eR`), option values
/// attached or separate (`-u022`, `-u 022`), `--` ends the options, and
/// the first non-option argument ends them too (the rest, such as the
/// `HOST sftp` that `scp -D` and `sftp -D` append, is left alone).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerArgs {
    /// `-R`: refuse every request that writes.
    pub read_only: bool,
    /// `-P LIST`: request names to refuse.
    pub denied: Option<Vec<String>>,
    /// `-p LIST`: the only request names served.
    pub allowed: Option<Vec<String>>,
    /// `-u UMASK` (octal, at most 0777).
    pub umask: Option<u32>,
    /// `-d DIR`: the starting directory, before `~` and `%` expansion
    /// ([`expand_start_dir`]).
    pub start_dir: Option<String>,
    /// `-e`: log to stderr.
    pub log_stderr: bool,
    /// `-l LEVEL`, one of OpenSSH's names (upper case).
    pub log_level: Option<String>,
    /// `-f FACILITY`, one of OpenSSH's names (upper case).
    pub log_facility: Option<String>,
    /// `-Q WHAT`: print what is asked (`requests`) and exit.
    pub query: Option<String>,
    /// `-h`: print the usage and exit.
    pub help: bool,
    /// Values of the extra options the caller asked for, in order.
    pub extra: Vec<(char, String)>,
    /// The arguments after the options (OpenSSH's sftp-server ignores
    /// them), and after `-c`.
    pub operands: Vec<String>,
}

/// Why [`ServerArgs::parse`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsError {
    /// A getopt error (`unknown option -- x`, `option requires an argument
    /// -- d`): print it and the usage, exit 1.
    Usage(String),
    /// A bad value (`Invalid umask "9"`): print it, exit 255 as OpenSSH's
    /// `fatal` does.
    Fatal(String),
}

/// OpenSSH's log level names (`-l`).
pub const LOG_LEVELS: &[&str] = &[
    "QUIET", "FATAL", "ERROR", "INFO", "VERBOSE", "DEBUG", "DEBUG1", "DEBUG2", "DEBUG3",
];

/// OpenSSH's syslog facility names (`-f`).
pub const LOG_FACILITIES: &[&str] = &[
    "DAEMON", "USER", "AUTH", "AUTHPRIV", "LOCAL0", "LOCAL1", "LOCAL2", "LOCAL3", "LOCAL4",
    "LOCAL5", "LOCAL6", "LOCAL7",
];

impl ServerArgs {
    /// Parses `args` (without the program name). `extra` names further
    /// option letters that take a value (such as `r` for a root), returned
    /// in [`extra`](Self::extra).
    pub fn parse(args: &[String], extra: &str) -> Result<ServerArgs, ArgsError> {
        let mut a = ServerArgs::default();
        let mut i = 0;
        'args: while i < args.len() {
            let arg = args[i].as_str();
            i += 1;
            if arg == "--" {
                a.operands = args[i..].to_vec();
                break;
            }
            if arg.len() < 2 || !arg.starts_with('-') {
                a.operands = args[i - 1..].to_vec();
                break;
            }
            let flags: Vec<char> = arg[1..].chars().collect();
            let mut j = 0;
            while j < flags.len() {
                let c = flags[j];
                j += 1;
                let takes_value = "dflPpQu".contains(c) || extra.contains(c);
                if !takes_value {
                    match c {
                        'R' => a.read_only = true,
                        'e' => a.log_stderr = true,
                        'h' => a.help = true,
                        // As OpenSSH's sftp-server: run as a user's login
                        // shell ("sftp-server -c command"), it stops reading
                        // options at -c and serves SFTP whatever follows
                        // (its getopt loop ends on `skipargs`).
                        'c' => {
                            a.operands = args[i..].to_vec();
                            break 'args;
                        }
                        _ => return Err(ArgsError::Usage(format!("unknown option -- {c}"))),
                    }
                    continue;
                }
                let value = if j < flags.len() {
                    flags[j..].iter().collect::<String>()
                } else if i < args.len() {
                    i += 1;
                    args[i - 1].clone()
                } else {
                    return Err(ArgsError::Usage(format!(
                        "option requires an argument -- {c}"
                    )));
                };
                j = flags.len();
                a.set(c, value, extra)?;
            }
        }
        Ok(a)
    }

    fn set(&mut self, c: char, v: String, extra: &str) -> Result<(), ArgsError> {
        let names = |v: &str| {
            ssh_proto::sftp::parse_request_names(v)
                .map_err(|n| ArgsError::Fatal(format!("Unknown request name \"{n}\"")))
        };
        match c {
            'd' => self.start_dir = Some(v),
            'l' => match LOG_LEVELS.iter().find(|n| n.eq_ignore_ascii_case(&v)) {
                Some(n) => self.log_level = Some(n.to_string()),
                None => return Err(ArgsError::Fatal(format!("Invalid log level \"{v}\""))),
            },
            'f' => match LOG_FACILITIES.iter().find(|n| n.eq_ignore_ascii_case(&v)) {
                Some(n) => self.log_facility = Some(n.to_string()),
                None => return Err(ArgsError::Fatal(format!("Invalid log facility \"{v}\""))),
            },
            'P' => {
                if self.denied.is_some() {
                    return Err(ArgsError::Fatal("Refused requests already set".into()));
                }
                self.denied = Some(names(&v)?);
            }
            'p' => {
                if self.allowed.is_some() {
                    return Err(ArgsError::Fatal("Permitted requests already set".into()));
                }
                self.allowed = Some(names(&v)?);
            }
            'Q' => self.query = Some(v),
            'u' => {
                let ok =
                    !v.is_empty() && v.len() <= 11 && v.bytes().all(|b| (b'0'..=b'7').contains(&b));
                match u32::from_str_radix(&v, 8) {
                    Ok(m) if ok && m <= 0o777 => self.umask = Some(m),
                    _ => return Err(ArgsError::Fatal(format!("Invalid umask \"{v}\""))),
                }
            }
            c if extra.contains(c) => self.extra.push((c, v)),
            c => return Err(ArgsError::Usage(format!("unknown option -- {c}"))),
        }
        Ok(())
    }

    /// The request-policy, umask and start options as arguments again
    /// (`-R`, `-P`, `-p`, `-u`, `-d`), for a child process that parses
    /// them with [`parse`](Self::parse).
    pub fn to_args(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.read_only {
            v.push("-R".to_string());
        }
        if let Some(d) = &self.denied {
            v.extend(["-P".to_string(), d.join(",")]);
        }
        if let Some(p) = &self.allowed {
            v.extend(["-p".to_string(), p.join(",")]);
        }
        if let Some(u) = self.umask {
            v.extend(["-u".to_string(), format!("{u:03o}")]);
        }
        if let Some(d) = &self.start_dir {
            v.extend(["-d".to_string(), d.clone()]);
        }
        v
    }

    /// The SFTP machine's configuration for these options (read-only mode,
    /// deny and allow lists), on top of `base`.
    pub fn config(&self, base: SftpServerConfig) -> SftpServerConfig {
        SftpServerConfig {
            read_only: self.read_only,
            denied_requests: self.denied.clone().unwrap_or_default(),
            allowed_requests: self.allowed.clone(),
            ..base
        }
    }

    /// The `tracing` level for `-l` (None for QUIET; INFO when not given,
    /// OpenSSH's default).
    pub fn tracing_level(&self) -> Option<tracing::Level> {
        match self.log_level.as_deref().unwrap_or("INFO") {
            "QUIET" => None,
            "FATAL" | "ERROR" => Some(tracing::Level::ERROR),
            "INFO" => Some(tracing::Level::INFO),
            "VERBOSE" | "DEBUG" | "DEBUG1" | "DEBUG2" => Some(tracing::Level::DEBUG),
            _ => Some(tracing::Level::TRACE),
        }
    }

    /// The answer to `-Q WHAT`: the text to print, or Err for an unknown
    /// query (OpenSSH prints `Invalid query type` and exits 1).
    pub fn query_answer(what: &str) -> Result<String, String> {
        if what.eq_ignore_ascii_case("requests") {
            let mut s = String::new();
            for (n, _) in ssh_proto::sftp::REQUEST_NAMES {
                s.push_str(n);
                s.push('\n');
            }
            Ok(s)
        } else {
            Err("Invalid query type".into())
        }
    }
}

/// Expands `-d`'s directory as OpenSSH's sftp-server does: a leading `~`
/// or `~USER` becomes that user's home, then `%d` the home of `user`,
/// `%u` its name, `%U` its uid and `%%` a `%`. Err names what failed.
pub fn expand_start_dir(spec: &str, user: &crate::passwd::Passwd) -> Result<String, String> {
    let tilde = if let Some(rest) = spec.strip_prefix('~') {
        let (name, tail) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let home = if name.is_empty() {
            user.dir.clone()
        } else {
            match crate::passwd::Passwd::by_name(name) {
                Ok(Some(p)) => p.dir,
                _ => return Err(format!("No such user {name}")),
            }
        };
        if tail.is_empty() {
            home
        } else {
            format!("{}{tail}", home.trim_end_matches('/'))
        }
    } else {
        spec.to_string()
    };
    let mut out = String::new();
    let mut chars = tilde.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('%') => out.push('%'),
            Some('d') => out.push_str(&user.dir),
            Some('u') => out.push_str(&user.name),
            Some('U') => out.push_str(&user.uid.to_string()),
            Some(k) => return Err(format!("percent_expand: unknown key %{k}")),
            None => return Err("percent_expand: invalid format".into()),
        }
    }
    Ok(out)
}

/// The usage line of OpenSSH's sftp-server, with this program's name.
pub fn usage(prog: &str) -> String {
    format!(
        "usage: {prog} [-ehR] [-d start_directory] [-f log_facility] [-l log_level]\n\t\
         [-P denied_requests] [-p allowed_requests] [-u umask]\n       {prog} -Q protocol_feature"
    )
}
